"""Every gap in the record of a run is reported: stats, validate, export.

Journals come from real runs of the example workflow (and, for executions
not observed, a real agent in a spawn process started without the config);
the writer's marker lines (``gap``, ``resume``, ``capture_off``, ``lost``,
``dropped``, ``encode_error``) are added as the writer writes them.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest
import rdflib
from academy.exchange.cloud import spawn_http_exchange
from academy.manager import Manager
from examples.pipeline import open_port
from examples.pipeline import WorkerA

import provlog
from provlog.academy import ProvenanceLogging
from provlog.cli import main

ROOT = Path(__file__).resolve().parents[2]
SHAPES = ROOT / 'ontologies' / 'provlog-shapes.ttl'
RUN_TYPE = {'$': 'provlog:Run', 'type': 'prov:QUALIFIED_NAME'}


def _copy(run: dict[str, Any], tmp_path: Path) -> Path:
    dst = tmp_path / run['run_dir'].name
    shutil.copytree(run['run_dir'], dst)
    return dst


def _journals(run_dir: Path) -> list[Path]:
    return sorted(run_dir.glob('*.jsonl'))


def _client_journal(run_dir: Path) -> Path:
    """The journal of the process that ran the client (it logs sending)."""
    (client,) = (
        p for p in _journals(run_dir) if b'"e":"sending"' in p.read_bytes()
    )
    return client


def _events(journal: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in journal.read_bytes().splitlines()]


def _label(journal: Path) -> str:
    header = _events(journal)[0]
    return f'{header["host"]}:{header["pid"]}'


def _insert_before_close(journal: Path, *lines: dict[str, Any]) -> None:
    """Write ``lines`` where the writer would: before the closing line."""
    events = _events(journal)
    assert events[-1]['e'] == 'close'
    events[-1:-1] = lines
    journal.write_bytes(b''.join(orjson.dumps(e) + b'\n' for e in events))


def _times(journal: Path) -> tuple[float, float]:
    """A time in the middle of the journal, and one a little later."""
    ts = [e['t'] for e in _events(journal) if isinstance(e.get('t'), float)]
    middle = ts[len(ts) // 2]
    return middle, middle + 0.01


def _run_entity(doc: dict[str, Any]) -> dict[str, Any]:
    (run,) = (e for e in doc['entity'].values() if e['prov:type'] == RUN_TYPE)
    return run


def _reports(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[dict[str, Any], list[dict[str, str]], dict[str, Any], str]:
    """What ``stats --json``, ``validate --json``, export and ``stats`` say.

    Also checks the exit codes: 0 for stats, 1 for validate (a gap).
    """
    assert main(['stats', str(run_dir), '--json']) == 0
    stats = orjson.loads(capsys.readouterr().out)
    assert main(['validate', str(run_dir), '--json']) == 1
    problems = orjson.loads(capsys.readouterr().out)['problems']
    assert main(['export', str(run_dir), '-o', str(run_dir / 'x.json')]) == 0
    capsys.readouterr()
    run = _run_entity(orjson.loads((run_dir / 'x.json').read_bytes()))
    (run_dir / 'x.json').unlink()
    assert main(['stats', str(run_dir)]) == 0
    text = capsys.readouterr().out
    return stats, problems, run, text


def _assert_agree(
    stats: dict[str, Any],
    problems: list[dict[str, str]],
    run: dict[str, Any],
) -> None:
    """Stats, validate and the export list the same gaps, and say so."""
    messages = [g['message'] for g in stats['gaps']]
    assert messages
    assert stats['complete'] is False
    assert [
        p['message'] for p in problems if p['kind'] == 'completeness'
    ] == messages
    assert [p['code'] for p in problems if p['kind'] == 'completeness'] == [
        g['code'] for g in stats['gaps']
    ]
    assert run['provlog:complete'] is False
    assert run['provlog:incompleteness'].split('\n') == messages


class TestCaptureGap:
    """Capture off or interrupted in a process: the run is incomplete."""

    def test_gap_then_resume_reported_everywhere(
        self, local_run, tmp_path, capsys
    ):
        run_dir = _copy(local_run, tmp_path)
        journal = _client_journal(run_dir)
        since, noticed = _times(journal)
        reason = 'logging.disable(INFO) is in force'
        _insert_before_close(
            journal,
            {'e': 'gap', 't': noticed, 'since': since, 'reason': reason},
            {'e': 'resume', 't': noticed + 1.0},
        )
        stats, problems, run, text = _reports(run_dir, capsys)
        _assert_agree(stats, problems, run)
        process = _label(journal)
        (gap,) = [g for g in stats['gaps'] if g['code'] == 'capture-gap']
        assert gap['process'] == process
        assert reason in gap['message']
        assert process in gap['message']
        assert stats['capture_gaps'] == 1
        (problem,) = [p for p in problems if p['code'] == 'capture-gap']
        assert problem['kind'] == 'completeness'
        assert reason in problem['message']
        assert process in problem['message']
        assert run['provlog:captureGaps'] == 1
        assert reason in run['provlog:incompleteness']
        assert 'INCOMPLETE' in text
        assert reason in text

    def test_gap_without_resume_runs_to_the_end(
        self, local_run, tmp_path, capsys
    ):
        run_dir = _copy(local_run, tmp_path)
        journal = _client_journal(run_dir)
        since, noticed = _times(journal)
        reason = 'logger academy.handle level raised to WARNING'
        _insert_before_close(
            journal,
            {'e': 'gap', 't': noticed, 'since': since, 'reason': reason},
        )
        stats, problems, run, _ = _reports(run_dir, capsys)
        _assert_agree(stats, problems, run)
        (gap,) = stats['gaps']
        assert gap['code'] == 'capture-gap'
        assert 'to the end of its journal' in gap['message']

    def test_capture_off_in_a_process(self, local_run, tmp_path, capsys):
        run_dir = _copy(local_run, tmp_path)
        header = _events(_journals(run_dir)[0])[0]
        header = {**header, 'process': 'worker-without-capture', 'pid': 1}
        reason = 'output_dir /proc/x is not writable (Permission denied)'
        off = {'e': 'capture_off', 't': header['t'], 'reason': reason}
        close = {'e': 'close', 't': header['t'] + 1}
        (run_dir / 'worker-without-capture.jsonl').write_bytes(
            b''.join(orjson.dumps(e) + b'\n' for e in (header, off, close)),
        )
        stats, problems, run, text = _reports(run_dir, capsys)
        _assert_agree(stats, problems, run)
        (gap,) = stats['gaps']
        assert gap['code'] == 'capture-off'
        assert gap['process'] == f'{header["host"]}:1'
        assert reason in gap['message']
        assert [p['code'] for p in problems] == ['capture-off']
        assert run['provlog:captureGaps'] == 1
        assert reason in text

    def test_control_characters_in_a_reason_stay_on_one_line(
        self, local_run, tmp_path, capsys
    ):
        run_dir = _copy(local_run, tmp_path)
        journal = _client_journal(run_dir)
        since, noticed = _times(journal)
        reason = 'dictConfig\nfaked: second line\x1b[2J'
        _insert_before_close(
            journal,
            {'e': 'gap', 't': noticed, 'since': since, 'reason': reason},
        )
        stats, problems, run, text = _reports(run_dir, capsys)
        _assert_agree(stats, problems, run)
        (gap,) = stats['gaps']
        assert 'dictConfig faked: second line' in gap['message']
        assert '\x1b' not in text
        assert len(run['provlog:incompleteness'].split('\n')) == 1


class TestLostAndDropped:
    """Events lost (write failed) and dropped (writer lagged) told apart."""

    def test_counts_and_reasons_distinct(self, local_run, tmp_path, capsys):
        run_dir = _copy(local_run, tmp_path)
        journal = _client_journal(run_dir)
        since, noticed = _times(journal)
        _insert_before_close(
            journal,
            {'e': 'dropped', 'n': 3, 't': noticed},
            {'e': 'lost', 'since': since, 'n': 5},
        )
        stats, problems, run, _ = _reports(run_dir, capsys)
        _assert_agree(stats, problems, run)
        assert stats['events_dropped'] == 3
        assert stats['events_lost'] == 5
        codes = {g['code']: g['message'] for g in stats['gaps']}
        assert 'dropped (writer lagged)' in codes['events-dropped']
        assert 'lost (write failed' in codes['events-lost']
        assert codes['events-dropped'].startswith('3 ')
        assert codes['events-lost'].startswith('5 ')
        assert run['provlog:eventsDropped'] == 3
        assert run['provlog:eventsLost'] == 5

    def test_disk_full_shape_cut_line_then_lost(self, local_run, tmp_path):
        """The writer's shape after a full disk: a cut line, then ``lost``."""
        run_dir = _copy(local_run, tmp_path)
        journal = _client_journal(run_dir)
        data = journal.read_bytes()
        body = data[: data.rindex(b'{"e":"close"')]  # the process never closed
        cut = b'{"e":"success","tag":"4a'  # half a line: the disk was full
        marker = {'e': 'lost', 'since': 1.0, 'n': 9}
        journal.write_bytes(body + cut + b'\n' + orjson.dumps(marker) + b'\n')
        # the reader's acceptance of this shape without --lenient is the
        # reader's; what is reported is the same either way
        graph = provlog.load(run_dir, lenient=True)
        stats = graph.stats()
        assert stats['complete'] is False
        assert stats['events_lost'] == 9
        assert stats['events_dropped'] == 0
        codes = [g['code'] for g in stats['gaps']]
        assert 'events-lost' in codes
        assert 'process-not-closed' in codes


class TestEncodeError:
    """Events the writer could not encode make the run incomplete."""

    def test_counted_and_reported(self, local_run, tmp_path, capsys):
        run_dir = _copy(local_run, tmp_path)
        journal = _client_journal(run_dir)
        error = {
            'e': 'encode_error',
            'kind': 'start',
            'tag': 'None',
            'error': 'Integer exceeds 64-bit range',
        }
        _insert_before_close(journal, error, error)
        stats, problems, run, text = _reports(run_dir, capsys)
        _assert_agree(stats, problems, run)
        assert stats['encode_errors'] == 2
        (problem,) = problems
        assert problem['code'] == 'encode-error'
        assert _label(journal) in problem['message']
        assert problem['message'].startswith('2 events')
        assert run['provlog:encodeErrors'] == 2
        assert 'encode-error' in text


async def _call_agent_without_config(output_dir: Path) -> dict[str, Any]:
    """The client captures; its agent runs in a spawn worker with no config.

    As when agents are started by hand: the Manager has no ``log_config``,
    so the worker never starts capture; this process does, by itself.
    """
    config = ProvenanceLogging(output_dir)
    stop = config.init_logging()
    outcome: dict[str, Any] = {'run_dir': config.run_dir}
    try:
        context = multiprocessing.get_context('spawn')
        with (
            spawn_http_exchange('127.0.0.1', open_port()) as factory,
            ProcessPoolExecutor(max_workers=1, mp_context=context) as pool,
        ):
            async with await Manager.from_exchange_factory(
                factory, executors=pool
            ) as manager:
                worker = await manager.launch(WorkerA, name='by-hand')
                outcome['squares'] = [
                    await worker.square(2.0),
                    await worker.square(3.0),
                ]
                try:
                    await worker.invert(0.0)
                except ZeroDivisionError:
                    outcome['failed'] = True
    finally:
        stop()
    return outcome


@pytest.fixture(scope='module')
def unobserved_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A real run whose agent's process wrote no journal."""
    tmp = tmp_path_factory.mktemp('unobserved')
    return asyncio.run(_call_agent_without_config(tmp / 'prov-runs'))


class TestExecutionsNotObserved:
    """An agent started without the config: the run is incomplete."""

    def test_reported_everywhere(self, unobserved_run, tmp_path, capsys):
        assert unobserved_run['squares'] == [4.0, 9.0]
        assert unobserved_run['failed'] is True
        run_dir = _copy(unobserved_run, tmp_path)
        assert len(_journals(run_dir)) == 1  # the client's only
        stats, problems, run, text = _reports(run_dir, capsys)
        _assert_agree(stats, problems, run)
        # the two calls that returned a result certainly ran in the agent;
        # the failed call may never have reached it, so it is not counted
        assert stats['executions_not_observed'] == 2
        assert stats['states']['completed'] == 2
        assert stats['states']['failed'] == 1
        (problem,) = problems
        assert problem['code'] == 'execution-not-observed'
        assert problem['message'].startswith(
            "2 executions not observed (their agents' processes wrote no "
            'journal: started without the config?)',
        )
        assert 'square' in problem['message']
        assert 'invert' not in problem['message']
        assert problem['message'].endswith('; agents: by-hand')
        assert run['provlog:executionsNotObserved'] == 2
        assert 'execution-not-observed' in text

    def test_full_capture_has_none(self, procpool_run):
        graph = provlog.load(procpool_run['run_dir'])
        assert graph.stats()['executions_not_observed'] == 0
        assert graph.stats()['complete'] is True


class TestRequestsNotObserved:
    """A caller started without the config: the run is incomplete."""

    def test_client_without_config(self, procpool_run, tmp_path, capsys):
        run_dir = _copy(procpool_run, tmp_path)
        _client_journal(run_dir).unlink()  # the client ran without config
        stats, problems, run, _ = _reports(run_dir, capsys)
        _assert_agree(stats, problems, run)
        # the client called run_pipeline, validate, slow_simulation, store
        assert stats['requests_not_observed'] == 4
        (problem,) = problems
        assert problem['code'] == 'request-not-observed'
        assert 'arguments and results are not recorded' in problem['message']


class TestAgreement:
    """complete is false exactly when a reason exists, listed alike."""

    def test_clean_run_has_no_reason(self, workflow_run, capsys):
        run_dir = workflow_run['run_dir']
        assert main(['stats', str(run_dir), '--json']) == 0
        stats = orjson.loads(capsys.readouterr().out)
        assert stats['complete'] is True
        assert stats['gaps'] == []
        assert main(['validate', str(run_dir)]) == 0
        capsys.readouterr()
        run = _run_entity(provlog.load(run_dir).to_provjson())
        assert run['provlog:complete'] is True
        assert 'provlog:incompleteness' not in run
        for term in (
            'provlog:eventsLost',
            'provlog:encodeErrors',
            'provlog:captureGaps',
            'provlog:executionsNotObserved',
        ):
            assert run[term] == 0

    def test_many_gaps_one_list(self, procpool_run, tmp_path, capsys):
        run_dir = _copy(procpool_run, tmp_path)
        client = _client_journal(run_dir)
        worker = next(p for p in _journals(run_dir) if p != client)
        since, noticed = _times(client)
        _insert_before_close(
            client,
            {'e': 'gap', 't': noticed, 'since': since, 'reason': 'dictConfig'},
            {'e': 'resume', 't': noticed + 1},
            {'e': 'encode_error', 'error': 'surrogates not allowed'},
        )
        _insert_before_close(worker, {'e': 'dropped', 'n': 2, 't': noticed})
        data = worker.read_bytes()
        worker.write_bytes(data[: data.rindex(b'{"e":"close"')])
        stats, problems, run, text = _reports(run_dir, capsys)
        _assert_agree(stats, problems, run)
        assert sorted(g['code'] for g in stats['gaps']) == [
            'capture-gap',
            'encode-error',
            'events-dropped',
            'process-not-closed',
        ]
        for gap in stats['gaps']:
            assert f'{gap["code"]}: {gap["message"]}' in text

    def test_prov_o_meets_the_run_shape(self, local_run, tmp_path):
        pyshacl = pytest.importorskip('pyshacl')
        run_dir = _copy(local_run, tmp_path)
        _insert_before_close(
            _client_journal(run_dir), {'e': 'dropped', 'n': 1, 't': 1.0}
        )
        shapes = rdflib.Graph().parse(SHAPES)
        for path in (local_run['run_dir'], run_dir):
            data = rdflib.Graph().parse(
                data=provlog.load(path).serialize('turtle').decode(),
                format='turtle',
            )
            conforms, _, report = pyshacl.validate(data, shacl_graph=shapes)
            assert conforms, report
        # an export that says incomplete without saying why breaks the shape
        ns = rdflib.Namespace('https://w3id.org/provlog/ns#')
        data.remove((None, ns.incompleteness, None))
        conforms, _, _ = pyshacl.validate(data, shacl_graph=shapes)
        assert not conforms
