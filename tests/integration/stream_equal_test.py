"""The streamed exports of the suite's real runs equal the in-memory ones.

Each run is one the suite already makes, its fixture reused here (or, for
runs a test makes inline, made again the same way, small): the chatty run
with log lines, prints and warnings; the grid search with members of
results, local, in a spawn pool and with agents not observed; an agent
whose process wrote no journal; hostile and secret values; busy runs in
one process and in a pool; Academy-example-shaped workflows (Parsl among
them); a host that reconfigures logging mid-run; a SIGKILLed worker; two
managers in two threads; the example run damaged as a full disk, a
capture gap or lost events leave it. PROV-JSON, N-Triples (literals the
same text, not only the same values) and PROV-N must all be the same
document, and no line may come later than the stream's window. On the
same runs, ``stats`` counts the graph's agents without building it.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest

import provlog
from provlog.academy import ProvenanceLogging
from provlog.actions.merge import run_folders
from tests.integration import busy_test
from tests.integration import completeness_test
from tests.integration import derivation_test
from tests.integration import inside_test
from tests.integration import secrets_test
from tests.integration import sigkill_test
from tests.integration import values_test
from tests.integration.host_logging_test import workflow_env
from tests.integration.trust_test import _count_to
from tests.streamcheck import same_provjson
from tests.streamcheck import same_provn
from tests.streamcheck import same_rdf

chatty_run = inside_test.chatty_run
grid_run = derivation_test.grid_run
grid_unobserved = derivation_test.unobserved_run
unobserved_run = completeness_test.unobserved_run
values_run = values_test.values_run
secrets_run = secrets_test.secrets_run


def _same(run: Path, *, lenient: bool = False) -> None:
    """Every streamed format is the in-memory document; nothing came late."""
    memory = provlog.load(run, lenient=lenient)
    merge = same_provjson(run, lenient=lenient)
    assert merge.late == 0
    assert merge.actions == len(memory.run.actions)
    assert [g.message for g in merge.run.gaps()] == [
        g.message for g in memory.run.gaps()
    ]
    same_rdf(run, 'nt', lenient=lenient)
    same_provn(run, lenient=lenient)
    # stats counts agents without the graph: the graph's count
    assert memory.stats()['agents'] == sum(
        1
        for _, d in memory.nx.nodes(data=True)
        if d['kind'] == 'agent' and 'prov:SoftwareAgent' in d['prov:type']
    )


def test_chatty(chatty_run: Path) -> None:
    _same(Path(chatty_run))


def test_grid(grid_run: dict[str, Any]) -> None:
    _same(Path(grid_run['run_dir']))


def test_grid_unobserved(grid_unobserved: dict[str, Any]) -> None:
    _same(Path(grid_unobserved['run_dir']))


def test_unobserved(unobserved_run: dict[str, Any]) -> None:
    _same(Path(unobserved_run['run_dir']))


def test_values(values_run: provlog.RunGraph) -> None:
    _same(values_run.run.run_dir)


def test_secrets(secrets_run: dict[str, Any]) -> None:
    _same(Path(secrets_run['run_dir']))


def test_busy(tmp_path: Path) -> None:
    config = ProvenanceLogging(tmp_path)
    asyncio.run(busy_test._one_process(config, 400))
    _same(config.run_dir)


def test_busy_pool(tmp_path: Path) -> None:
    config = ProvenanceLogging(tmp_path)
    asyncio.run(busy_test._pool(config, 200))
    _same(config.run_dir)


@pytest.mark.parametrize(
    'shape', ('actor', 'loop', 'chain', 'chatty', 'parsl')
)
def test_shape(shape: str, tmp_path: Path) -> None:
    """The workflows of Academy's examples' shapes, run as users run them."""
    args = [sys.executable, '-m', 'tests.workflows', shape]
    args += ['--provlog', str(tmp_path / 'prov-runs')]
    if shape == 'parsl':
        args += ['--parsl-dir', str(tmp_path / 'parsl')]
    # ``loop`` has a loop that fails, and the script says so by its status
    subprocess.run(
        args,
        check=shape != 'loop',
        capture_output=True,
        timeout=240,
        cwd=tmp_path,
        env=workflow_env(),
    )
    (run,) = run_folders(tmp_path / 'prov-runs')
    _same(run)


@pytest.mark.parametrize('change', ('disable', 'dictconfig', 'level'))
def test_midrun(change: str, tmp_path: Path) -> None:
    """Logging reconfigured half-way: capture gaps and resumes."""
    subprocess.run(
        [sys.executable, '-m', 'tests.workflows.midrun', change, tmp_path],
        check=True,
        capture_output=True,
        timeout=120,
        env=workflow_env(),
    )
    (run,) = tmp_path.iterdir()
    _same(run)


@pytest.mark.timeout(120)
def test_sigkilled_worker(tmp_path: Path) -> None:
    config, _ = asyncio.run(sigkill_test._run(tmp_path))
    _same(config.run_dir)


def test_two_managers_two_threads(tmp_path: Path) -> None:
    configs = {m: ProvenanceLogging(tmp_path / m) for m in 'AB'}
    barrier = threading.Barrier(2)

    def run(marker: str) -> None:
        barrier.wait()
        asyncio.run(_count_to(configs[marker], marker))

    threads = [threading.Thread(target=run, args=(m,)) for m in 'AB']
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for config in configs.values():
        _same(config.run_dir)


def _damage(run_dir: Path, case: str) -> None:
    """Damage a copy of a run as completeness_test does."""
    c = completeness_test
    journal = c._client_journal(run_dir)
    since, noticed = c._times(journal)
    if case == 'gap-resume':
        c._insert_before_close(
            journal,
            {'e': 'gap', 't': noticed, 'since': since, 'reason': 'off'},
            {'e': 'resume', 't': noticed + 1.0},
        )
    elif case == 'gap':
        c._insert_before_close(
            journal,
            {'e': 'gap', 't': noticed, 'since': since, 'reason': 'a\nb'},
        )
    elif case == 'lost-dropped':
        c._insert_before_close(
            journal,
            {'e': 'dropped', 'n': 3, 't': noticed},
            {'e': 'lost', 'since': since, 'n': 5},
        )
    elif case == 'encode-error':
        c._insert_before_close(
            journal,
            {'e': 'encode_error', 't': noticed, 'n': 2, 'error': 'x'},
        )
    elif case == 'capture-off':
        header = c._events(c._journals(run_dir)[0])[0]
        header = {**header, 'process': 'worker-without-capture', 'pid': 1}
        off = {'e': 'capture_off', 't': header['t'], 'reason': 'no'}
        close = {'e': 'close', 't': header['t'] + 1}
        (run_dir / 'worker-without-capture.jsonl').write_bytes(
            b''.join(orjson.dumps(e) + b'\n' for e in (header, off, close)),
        )
    else:  # disk full: a cut line, then the writer's ``lost`` marker
        data = journal.read_bytes()
        body = data[: data.rindex(b'{"e":"close"')]
        marker = orjson.dumps({'e': 'lost', 'since': 1.0, 'n': 9})
        cut = b'{"e":"success","tag":"4a'
        journal.write_bytes(body + cut + b'\n' + marker + b'\n')


@pytest.mark.parametrize(
    'case',
    (
        'gap-resume',
        'gap',
        'lost-dropped',
        'encode-error',
        'capture-off',
        'disk-full',
    ),
)
def test_damaged(
    workflow_run: dict[str, Any], case: str, tmp_path: Path
) -> None:
    run_dir = completeness_test._copy(workflow_run, tmp_path)
    _damage(run_dir, case)
    assert not provlog.load(run_dir, lenient=True).run.complete
    _same(run_dir, lenient=case == 'disk-full')


def test_literal_text_is_the_stores() -> None:
    """Times and doubles are written as the in-memory export writes them.

    That export is dumped from an Oxigraph store, which writes them in
    canonical text. Hard doubles among them: exact ties (Rust breaks them
    away from zero, Python's ``repr`` to even), the smallest and largest,
    infinities, NaN, and negative zero after zero (equal as keys); on
    nodes, in lists and on relations.
    """
    import io

    import networkx as nx
    import pyoxigraph

    from provlog.mapping.model import iso_time
    from provlog.mapping.rdf import load_store
    from provlog.mapping.rdf import serialize_store
    from provlog.mapping.streamwrite import NTriplesSink

    doubles = [0.0, -0.0, 1.5, 1e20, 1e-7, 5e-324, 1.7976931348623157e308]
    doubles += [float('inf'), float('-inf'), float('nan'), 0.1 * 3]
    doubles += [-685975681925858.2, 2.0**52 + 0.5, 123456789.125]
    times = [0.0, 1.5, 1_700_000_000.0, 1_764_616_277.7635, -0.5, 2.000001]
    nodes: dict[str, dict[str, Any]] = {
        f'plid:d{n}': {'kind': 'entity', 'prov:value': v}
        for n, v in enumerate(doubles)
    }
    nodes |= {
        f'plid:t{n}': {'kind': 'activity', 'prov:startTime': iso_time(t)}
        for n, t in enumerate(times)
    }
    nodes['plid:list'] = {'kind': 'entity', 'provlog:x': [-0.0, 2.50]}
    edges = [
        (
            f'plid:d{n}',
            f'plid:t{n}',
            {'rel': 'wasGeneratedBy', 'prov:time': iso_time(t), 'x:v': -0.0},
        )
        for n, t in enumerate(times)
    ]
    out = io.BytesIO()
    sink = NTriplesSink(out)
    sink.add(nodes, edges)
    sink.close()
    graph = nx.MultiDiGraph()
    graph.add_nodes_from(nodes.items())
    graph.add_edges_from(edges)
    memory = serialize_store(load_store(graph), 'nt')

    def literals(data: bytes) -> list[str]:
        return sorted(
            str(t.object)
            for t in pyoxigraph.parse(
                data, format=pyoxigraph.RdfFormat.N_TRIPLES
            )
            if isinstance(t.object, pyoxigraph.Literal)
        )

    assert literals(out.getvalue()) == literals(memory)
