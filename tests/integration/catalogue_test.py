"""``provlog query DIR``: questions across the runs of a folder.

Three real runs of the example pipeline, each with its own inputs, scale
and number of extra failed calls, are copied into one folder; the shipped
questions across runs must find exactly the planted differences, each run
must be one named graph holding exactly what ``provlog query RUN`` reads,
and the store must follow the folder: unchanged runs are not read again,
a changed run is reloaded, a deleted one dropped, a damaged one skipped
with a warning.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from academy.exchange import LocalExchangeFactory
from academy.manager import Manager
from examples.pipeline import Coordinator
from examples.pipeline import WorkerA
from examples.pipeline import WorkerB

import provlog
from provlog.academy import ProvenanceLogging
from provlog.catalog import open_catalogue
from provlog.catalog import STORE_DIR
from provlog.cli import main
from provlog.runs import SUMMARY_FILE

RUN_IRI = 'https://w3id.org/provlog/id/run/'
#: Lists the client summarizes in every run: means 15 and 0.5, beside the
#: pipeline's own summary (mean 4.67 or 11.5)
SUMMARIES = ([10.0, 20.0], [0.5])
#: name -> (inputs, scale, extra failed invert calls from the client)
PLAN = {
    'a': ([1.0, 2.0, 3.0], 0.5, 0),
    'b': ([1.0, 2.0, 4.0, 5.0], 2.0, 2),
    'c': ([1.0, 2.0, 3.0], 1.0, 1),
}


async def _pipeline(
    out: Path, xs: list[float], scale: float, failures: int
) -> Path:
    config = ProvenanceLogging(out)
    async with await Manager.from_exchange_factory(
        LocalExchangeFactory(), log_config=config
    ) as manager:
        worker_a = await manager.launch(WorkerA, name='worker-a')
        worker_b = await manager.launch(WorkerB, name='worker-b')
        coordinator = await manager.launch(
            Coordinator, args=(worker_a, worker_b), name='coordinator'
        )
        await coordinator.run_pipeline(xs, scale=scale)
        for _ in range(failures):
            with pytest.raises(ZeroDivisionError):
                await worker_a.invert(0.0)
        for values in SUMMARIES:  # the same in every run
            await worker_b.summarize(values)
    return Path(config.run_dir)


@pytest.fixture(scope='module')
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The three runs, made once: name -> run folder."""
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        home = tmp_path_factory.mktemp('academy-home')
        mp.setenv('ACADEMY_HOME', str(home))
        for name, (xs, scale, failures) in PLAN.items():
            parent = tmp_path_factory.mktemp(name)
            out[name] = asyncio.run(_pipeline(parent, xs, scale, failures))
    return out


@pytest.fixture
def folder(made: dict[str, Path], tmp_path: Path) -> Path:
    """A fresh copy of the three runs in one folder."""
    out = tmp_path / 'prov-runs'
    for run in made.values():
        shutil.copytree(run, out / run.name)
    return out


def _iri(run: Path) -> str:
    """The run's IRI, from its journal header (read here, not by provlog)."""
    journal = next(run.glob('*.jsonl'))
    header = orjson.loads(journal.read_bytes().split(b'\n', 1)[0])
    return RUN_IRI + header['run']


def _query(
    capsys: pytest.CaptureFixture[str], folder: Path, *args: str
) -> list[dict[str, str]]:
    capsys.readouterr()
    assert main(['query', str(folder), *args, '-f', 'json']) == 0
    rows = orjson.loads(capsys.readouterr().out)['results']['bindings']
    return [{k: v['value'] for k, v in row.items()} for row in rows]


def _graph_sizes(folder: Path, *, update: bool = True) -> dict[str, int]:
    """Triples per graph (after bringing the store up to date)."""
    with open_catalogue(folder) as catalogue:
        if update:
            catalogue.update()
        result = catalogue.sparql(
            'SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } '
            'GROUP BY ?g',
        )
    return {r['g']['value']: int(r['n']['value']) for r in result.rows}


class TestGraphs:
    """One named graph per run, named by its provlog:Run, holding its PROV-O."""

    def test_named_by_the_run(self, folder: Path, made: dict[str, Path]):
        with open_catalogue(folder) as catalogue:
            update = catalogue.update()
            assert sorted(update.loaded) == sorted(
                p.name for p in made.values()
            )
            assert catalogue.graphs == {p.name: _iri(p) for p in made.values()}
            runs = catalogue.sparql(
                'SELECT ?g ?run WHERE { GRAPH ?g { ?run a provlog:Run } }',
            )
        pairs = {(r['g']['value'], r['run']['value']) for r in runs.rows}
        assert pairs == {(_iri(p), _iri(p)) for p in made.values()}

    def test_each_graph_is_the_run(self, folder: Path, made: dict[str, Path]):
        sizes = _graph_sizes(folder)
        for run in made.values():
            assert sizes[_iri(run)] == len(provlog.load(run).store)

    def test_default_graph_is_the_union(
        self, folder: Path, made: dict[str, Path], capsys
    ):
        rows = _query(capsys, folder, '@failed-actions')
        one = [
            provlog.load(p).sparql('@failed-actions') for p in made.values()
        ]
        assert len(rows) == sum(len(r.rows) for r in one)


class TestShippedQueries:
    """Each question across runs answers the planted differences exactly."""

    def test_failure_rate(self, folder: Path, made: dict[str, Path], capsys):
        rows = _query(capsys, folder, '@runs-failure-rate')
        got = {r['run']: (int(r['actions']), int(r['failed'])) for r in rows}
        stats = {name: provlog.load(run).stats() for name, run in made.items()}
        assert got == {
            _iri(made[n]): (s['actions'], s['states']['failed'])
            for n, s in stats.items()
        }
        # the planted failures: b has two more than a, c one more
        failed = {n: s['states']['failed'] for n, s in stats.items()}
        assert failed['b'] - failed['a'] == 2
        assert failed['c'] - failed['a'] == 1
        rates = [float(r['rate']) for r in rows]
        assert rates == sorted(rates, reverse=True)
        assert rows[0]['run'] == _iri(made['b'])

    @pytest.mark.parametrize('which', ('lowest', 'highest'))
    def test_best(self, folder: Path, made: dict[str, Path], capsys, which):
        rows = _query(
            capsys,
            folder,
            f'@runs-best-{which}',
            '--bind',
            'field="mean"',
            '--bind',
            'action="run_pipeline"',
        )
        # mean of the squares, times the scale
        means = {
            n: sum(x * x for x in xs) / len(xs) * scale
            for n, (xs, scale, _) in PLAN.items()
        }
        order = sorted(means, key=means.get, reverse=which == 'highest')
        assert [r['run'] for r in rows] == [_iri(made[n]) for n in order]
        for row, name in zip(rows, order, strict=True):
            assert float(row['value']) == pytest.approx(means[name])
            assert f'scale={PLAN[name][1]}' in row['arguments']
            assert row['action'] == 'run_pipeline'

    @pytest.mark.parametrize(
        ('which', 'mean', 'inputs'),
        (('lowest', 0.5, '[0.5]'), ('highest', 15.0, '[10.0,20.0]')),
    )
    def test_best_of_every_action(
        self, folder: Path, capsys, which: str, mean: float, inputs: str
    ):
        rows = _query(
            capsys, folder, f'@runs-best-{which}', '--bind', 'field="mean"'
        )
        # run_pipeline and summarize both return a mean, in each run
        assert (
            sorted(r['action'] for r in rows)
            == ['run_pipeline'] * 3 + ['summarize'] * 3
        )
        best = [r for r in rows if r['action'] == 'summarize']
        assert {(float(r['value']), r['arguments']) for r in best} == {
            (mean, f'arg0={inputs}')
        }

    def test_using_value(self, folder: Path, made: dict[str, Path], capsys):
        graph = provlog.load(made['b']).nx
        [sha] = {
            d['provlog:sha256']
            for _, d in graph.nodes(data=True)
            if d.get('prov:label') == 'square arg0'
            and d.get('provlog:preview') == '4.0'
        }
        rows = _query(
            capsys, folder, '@runs-using-value', '--bind', f'sha256="{sha}"'
        )
        got = {(r['run'], r['action'], r['role']) for r in rows}
        a, b, c = (_iri(made[n]) for n in 'abc')
        assert got == {
            (b, 'square', 'arg0'),  # the value itself
            (b, 'run_pipeline', 'arg0'),  # in the inputs [1, 2, 4, 5]
            (b, 'summarize', 'arg0'),  # 4 = 2 * 2 in every run's squares
            (a, 'summarize', 'arg0'),
            (c, 'summarize', 'arg0'),
        }
        assert {r['sha256'] for r in rows} == {sha}
        nobody = _query(
            capsys,
            folder,
            '@runs-using-value',
            '--bind',
            f'sha256="{"0" * 64}"',
        )
        assert nobody == []

    def test_differing_args(self, folder: Path, made: dict[str, Path], capsys):
        rows = _query(capsys, folder, '@runs-differing-args')
        a, b, c = (_iri(made[n]) for n in 'abc')
        got = {
            (
                r['action'],
                r['role'],
                r['preview'],
                frozenset(r['runs'].split()),
            )
            for r in rows
        }
        assert {int(r['ofRuns']) for r in rows} == {3}
        assert got == {
            ('run_pipeline', 'arg0', '[1.0,2.0,3.0]', frozenset({a, c})),
            ('run_pipeline', 'arg0', '[1.0,2.0,4.0,5.0]', frozenset({b})),
            ('run_pipeline', 'scale', '0.5', frozenset({a})),
            ('run_pipeline', 'scale', '2.0', frozenset({b})),
            ('run_pipeline', 'scale', '1.0', frozenset({c})),
            ('square', 'arg0', '3.0', frozenset({a, c})),
            ('square', 'arg0', '4.0', frozenset({b})),
            ('square', 'arg0', '5.0', frozenset({b})),
            ('summarize', 'arg0', '[1.0,4.0,9.0]', frozenset({a, c})),
            ('summarize', 'arg0', '[1.0,4.0,16.0,25.0]', frozenset({b})),
        }
        one = _query(
            capsys,
            folder,
            '@runs-differing-args',
            '--bind',
            'action="square"',
        )
        assert {r['preview'] for r in one} == {'3.0', '4.0', '5.0'}


class TestIncremental:
    """The store follows the folder, reading only what changed."""

    def test_unchanged_not_read(self, folder: Path, made: dict[str, Path]):
        names = sorted(p.name for p in made.values())
        with open_catalogue(folder) as catalogue:
            assert sorted(catalogue.update().loaded) == names
        with open_catalogue(folder) as catalogue:
            again = catalogue.update()
        assert again.loaded == []
        assert again.removed == []
        assert sorted(again.unchanged) == names

    def test_changed_reloaded(self, folder: Path, made: dict[str, Path]):
        before = _graph_sizes(folder)
        run = folder / made['a'].name
        journal = next(run.glob('*.jsonl'))
        st = journal.stat()
        os.utime(journal, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        with open_catalogue(folder) as catalogue:
            update = catalogue.update()
        assert update.loaded == [run.name]
        assert update.removed == [run.name]
        # dropped first: loading again added no second copy
        assert _graph_sizes(folder, update=False) == before

    def test_deleted_dropped(
        self, folder: Path, made: dict[str, Path], capsys
    ):
        _graph_sizes(folder)
        shutil.rmtree(folder / made['c'].name)
        with open_catalogue(folder) as catalogue:
            update = catalogue.update()
            assert update.removed == [made['c'].name]
            assert _iri(made['c']) not in catalogue.graphs.values()
        rows = _query(capsys, folder, '@runs-failure-rate')
        assert {r['run'] for r in rows} == {_iri(made[n]) for n in 'ab'}

    def test_manifest_lost(self, folder: Path, made: dict[str, Path]):
        before = _graph_sizes(folder)
        (folder / STORE_DIR / 'manifest.json').unlink()  # a crash, say
        shutil.rmtree(folder / made['c'].name)
        with open_catalogue(folder) as catalogue:
            update = catalogue.update()
        # graphs it no longer knows are dropped, the runs loaded again
        assert sorted(update.loaded) == sorted(made[n].name for n in 'ab')
        del before[_iri(made['c'])]
        assert _graph_sizes(folder, update=False) == before

    def test_same_run_twice(self, folder: Path, made: dict[str, Path]):
        _graph_sizes(folder)
        shutil.copytree(folder / made['a'].name, folder / 'a-copy')
        with open_catalogue(folder) as catalogue:
            update = catalogue.update()
            assert list(update.failed) == ['a-copy']
            assert 'the same run as' in update.failed['a-copy']
            assert len(catalogue.graphs) == len(made)

    def test_summaries_written(self, folder: Path, made: dict[str, Path]):
        _graph_sizes(folder)
        for run in made.values():
            assert (folder / run.name / SUMMARY_FILE).is_file()


class TestRefused:
    """Read-only, as for one run; a damaged run is skipped, not fatal."""

    @pytest.mark.parametrize(
        'text',
        (
            'INSERT DATA { <urn:a> <urn:b> <urn:c> }',
            'CLEAR GRAPH <urn:a>',
            'DROP ALL',
            'SELECT * FROM <urn:a> WHERE { ?s ?p ?o }',
            'SELECT * WHERE { SERVICE <http://x/> { ?s ?p ?o } }',
        ),
    )
    def test_updates(self, folder: Path, capsys, text: str):
        before = _graph_sizes(folder)
        capsys.readouterr()
        assert main(['query', str(folder), text]) == 1
        assert 'refused' in capsys.readouterr().err
        assert _graph_sizes(folder, update=False) == before

    def test_rdflib_engine(self, folder: Path, capsys):
        assert (
            main(['query', str(folder), '@where', '--engine', 'rdflib']) == 2
        )
        assert 'folder of runs' in capsys.readouterr().err

    def test_damaged_run(self, folder: Path, made: dict[str, Path], capsys):
        damaged = folder / 'damaged'
        damaged.mkdir()
        (damaged / 'x.jsonl').write_text('not a header\n')
        for _ in range(2):  # said again while the run stays damaged
            capsys.readouterr()
            assert main(['query', str(folder), '@runs-failure-rate']) == 0
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1
            assert 'skipped run damaged' in err[0]
            assert f'{damaged / "x.jsonl"}:1' in err[0]
        rows = _query(capsys, folder, '@runs-failure-rate')
        assert {r['run'] for r in rows} == {_iri(p) for p in made.values()}

    def test_two_commands_at_once(self, folder: Path, made: dict[str, Path]):
        env = {**os.environ, 'PYTHONPATH': os.pathsep.join(sys.path)}
        args = [
            sys.executable,
            '-m',
            'provlog',
            'query',
            str(folder),
            '@runs-failure-rate',
            '-f',
            'json',
        ]
        procs = [
            subprocess.Popen(args, stdout=subprocess.PIPE, env=env)
            for _ in range(2)
        ]
        outs = [p.communicate(timeout=120)[0] for p in procs]
        assert [p.returncode for p in procs] == [0, 0]
        for out in outs:
            rows = orjson.loads(out)['results']['bindings']
            assert {r['run']['value'] for r in rows} == {
                _iri(p) for p in made.values()
            }
        assert (folder / STORE_DIR).is_dir()


class TestStringBindings:
    """``--bind VAR='"text"'`` binds a string, on both engines, for one run."""

    @pytest.mark.parametrize('engine', ('oxigraph', 'rdflib'))
    def test_one_run(self, made: dict[str, Path], capsys, engine: str):
        text = (
            'SELECT ?action ?execution WHERE { '
            '?execution a provlog:ActionExecution ; provlog:actionName ?action }'
        )
        capsys.readouterr()
        args = ['query', str(made['b']), text, '-f', 'json']
        args += ['--bind', 'action="square"', '--engine', engine]
        assert main(args) == 0
        rows = orjson.loads(capsys.readouterr().out)['results']['bindings']
        assert len(rows) == len(PLAN['b'][0])  # one square per input
        assert {r['action']['value'] for r in rows} == {'square'}
