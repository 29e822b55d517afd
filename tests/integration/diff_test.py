"""``provlog diff``: actions matched across two runs by what they are.

Real runs of the example workflow (local exchange); differences are
planted by editing a copy of a run's journals, so each test knows exactly
what the diff must report, and nothing else.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from academy.exchange import LocalExchangeFactory
from academy.manager import Manager
from examples.pipeline import Coordinator
from examples.pipeline import run_workflow
from examples.pipeline import WorkerA
from examples.pipeline import WorkerB

from provlog import load
from provlog.academy import ProvenanceLogging
from provlog.cli import main
from provlog.views.diff import diff_runs

PIPELINE = 'Coordinator.run_pipeline[0]'
SQUARE = PIPELINE + ' / WorkerA.square[{}]'
SUMMARIZE = PIPELINE + ' / WorkerB.summarize[0]'
HUGE = ('--time-threshold', '1e12', '--time-min', '1e12')
_NOTHING = {
    'added': 0,
    'missing': 0,
    'changed_args': 0,
    'changed_results': 0,
    'state_changes': 0,
    'slower': 0,
    'faster': 0,
}

Edit = Callable[[dict[str, Any]], dict[str, Any] | None]


@pytest.fixture(scope='module')
def second_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example workflow again, same inputs."""
    out = tmp_path_factory.mktemp('second') / 'prov-runs'
    return Path(asyncio.run(run_workflow(out, 'local'))['run_dir'])


@pytest.fixture
def run_a(local_run: dict[str, Any]) -> Path:
    return Path(local_run['run_dir'])


def _diff(
    capsys: pytest.CaptureFixture[str], a: Path, b: Path, *extra: str
) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()  # what a workflow printed
    code = main(['diff', str(a), str(b), '--json', *HUGE, *extra])
    return code, orjson.loads(capsys.readouterr().out)


def _tags(run_dir: Path) -> dict[str, str]:
    """Path -> tag of every call of a run."""
    graph = load(run_dir)
    return {p['path']: p['tag_a'] for p in diff_runs(graph, graph).pairs}


def _planted(run_dir: Path, tmp_path: Path, tag: str, edit: Edit) -> Path:
    """A copy of the run where every event of ``tag`` went through ``edit``
    (which returns the changed event, or None to drop it)."""
    copy = tmp_path / 'planted'
    shutil.copytree(run_dir, copy)
    for journal in copy.glob('*.jsonl'):
        lines = []
        for raw in journal.read_bytes().splitlines():
            event = orjson.loads(raw)
            if event.get('tag') == tag:
                event = edit(event)
            if event is not None:
                lines.append(orjson.dumps(event))
        journal.write_bytes(b'\n'.join(lines) + b'\n')
    return copy


def _changed_only(out: dict[str, Any], **counts: int) -> None:
    assert out['summary'] == {
        **_NOTHING,
        'matched': out['summary']['matched'],
        **counts,
    }


class TestSameInputs:
    """Two runs of the same workflow must not differ but in timing."""

    def test_no_difference(self, capsys, run_a, second_run):
        code, out = _diff(capsys, run_a, second_run)
        assert code == 0
        assert out['different'] is False
        _changed_only(out)
        assert out['summary']['matched'] == 11
        assert {m['path'] for m in out['matched']} == set(_tags(run_a))

    def test_terminal_summary_first(self, capsys, run_a, second_run):
        capsys.readouterr()
        code = main(['diff', str(run_a), str(second_run), *HUGE])
        lines = capsys.readouterr().out.splitlines()
        assert code == 0
        assert lines[0] == (
            '11 matched, 0 added, 0 missing, 0 changed args, '
            '0 changed results, 0 state changes, 0 slower, 0 faster'
        )


class TestChangedArgument:
    """A changed argument is reported at its call and position only."""

    def test_planted(self, capsys, run_a, tmp_path):
        def edit(event: dict[str, Any]) -> dict[str, Any]:
            if event['e'] == 'start':
                event['args'][0].update(sha256='f' * 64, preview='2.5')
            return event

        b = _planted(run_a, tmp_path, _tags(run_a)[SQUARE.format(1)], edit)
        code, out = _diff(capsys, run_a, b)
        assert code == 1
        _changed_only(out, changed_args=1)
        [entry] = out['changed']
        assert entry['path'] == SQUARE.format(1)
        [arg] = entry['args']
        assert arg['arg'] == 0
        assert arg['a']['preview'] == '2.0'
        assert arg['b'] == {
            'sha256': 'f' * 64,
            'type': 'float',
            'preview': '2.5',
        }
        assert out['lineage'] == []  # no final result changed


class TestChangedResult:
    """A changed result is reported with both hashes and previews."""

    def test_planted(self, capsys, run_a, tmp_path):
        def edit(event: dict[str, Any]) -> dict[str, Any]:
            if event['e'] == 'success':
                event['result'].update(sha256='e' * 64, preview='{"mean":0}')
            return event

        b = _planted(run_a, tmp_path, _tags(run_a)[SUMMARIZE], edit)
        code, out = _diff(capsys, run_a, b)
        assert code == 1
        _changed_only(out, changed_results=1)
        [entry] = out['changed']
        assert entry['path'] == SUMMARIZE
        assert entry['args'] == []
        assert entry['result']['b']['sha256'] == 'e' * 64
        assert entry['result']['b']['preview'] == '{"mean":0}'
        assert entry['result']['a']['sha256'] != 'e' * 64


class TestFailureAppeared:
    """A success turned into an exception is a state change with its error."""

    def test_planted(self, capsys, run_a, tmp_path):
        def edit(event: dict[str, Any]) -> dict[str, Any]:
            if event['e'] == 'success':
                return {'e': 'exception', 'tag': event['tag'], 't': event['t']}
            if event['e'] == 'execute_success':
                event['e'] = 'execute_exception'
                event['error'] = {
                    'type': 'ValueError',
                    'message': 'planted',
                    'traceback': 'Traceback ...',
                }
            return event

        b = _planted(run_a, tmp_path, _tags(run_a)[SQUARE.format(2)], edit)
        code, out = _diff(capsys, run_a, b)
        assert code == 1
        _changed_only(out, state_changes=1)
        [entry] = out['changed']
        assert entry['path'] == SQUARE.format(2)
        assert entry['state'] == {
            'a': 'completed',
            'b': 'failed',
            'error_a': None,
            'error_b': {'type': 'ValueError', 'message': 'planted'},
            'change': 'failure appeared',
        }
        # and the other way round: the failure went away
        code, out = _diff(capsys, b, run_a)
        assert out['changed'][0]['state']['change'] == 'failure went away'


class TestMissingAction:
    """A call dropped from a fan-out is missing; its siblings still match."""

    def test_planted(self, capsys, run_a, tmp_path):
        b = _planted(
            run_a, tmp_path, _tags(run_a)[SQUARE.format(1)], lambda e: None
        )
        code, out = _diff(capsys, run_a, b)
        assert code == 1
        _changed_only(out, missing=1)
        assert [m['path'] for m in out['missing']] == [SQUARE.format(1)]
        assert out['missing'][0]['action'] == 'square'
        assert out['missing'][0]['class'] == 'WorkerA'
        # the other way round it was added
        code, out = _diff(capsys, b, run_a)
        _changed_only(out, added=1)
        assert [m['path'] for m in out['added']] == [SQUARE.format(1)]


class TestMissingSubtree:
    """A missing call lists every call beneath it too, each with its path."""

    def test_planted(self, capsys, run_a, tmp_path):
        gone = _tags(run_a)['Coordinator.validate[0]']
        b = _planted(run_a, tmp_path, gone, lambda e: None)
        code, out = _diff(capsys, run_a, b)
        assert code == 1
        # the invert beneath it is now a root of B: added there
        assert [m['path'] for m in out['missing']] == [
            'Coordinator.validate[0]',
            'Coordinator.validate[0] / WorkerA.invert[0]',
        ]
        assert [m['path'] for m in out['added']] == ['WorkerA.invert[0]']


class TestTiming:
    """A call slower by more than both thresholds is reported, else not."""

    def test_planted(self, capsys, run_a, tmp_path):
        def edit(event: dict[str, Any]) -> dict[str, Any]:
            if event['e'] == 'success':
                event['t'] += 1.0
            return event

        b = _planted(run_a, tmp_path, _tags(run_a)['WorkerB.store[0]'], edit)
        code = main(['diff', str(run_a), str(b), '--json'])
        out = orjson.loads(capsys.readouterr().out)
        assert code == 1
        _changed_only(out, slower=1)
        [entry] = out['changed']
        assert entry['path'] == 'WorkerB.store[0]'
        assert entry['timing']['b'] - entry['timing']['a'] == pytest.approx(1)
        code, out = _diff(capsys, run_a, b)  # huge threshold
        assert code == 0
        code = main(['diff', str(b), str(run_a), '--json'])
        out = orjson.loads(capsys.readouterr().out)
        _changed_only(out, faster=1)


class TestTimingBothBounds:
    """A duration change must exceed the percentage and the milliseconds both."""

    @staticmethod
    def _later(run_a: Path, tmp_path: Path, path: str, seconds: float) -> Path:
        def edit(event: dict[str, Any]) -> dict[str, Any]:
            if event['e'] in {'success', 'cancelled'}:
                event['t'] += seconds
            return event

        return _planted(run_a, tmp_path, _tags(run_a)[path], edit)

    def test_short_call_few_ms(self, capsys, run_a, tmp_path):
        b = self._later(run_a, tmp_path, 'WorkerB.store[0]', 0.005)
        assert main(['diff', str(run_a), str(b)]) == 0  # < 10 ms
        assert main(['diff', str(run_a), str(b), '--time-min', '1']) == 1

    def test_long_call_small_share(self, capsys, run_a, tmp_path):
        b = self._later(run_a, tmp_path, 'WorkerB.slow_simulation[0]', 0.05)
        assert main(['diff', str(run_a), str(b)]) == 0  # < 50 %
        args = ['--time-threshold', '1']
        assert main(['diff', str(run_a), str(b), *args]) == 1


class TestLineage:
    """A changed final result lists the changed calls beneath it, deepest first."""

    def test_planted(self, capsys, run_a, tmp_path):
        tags = _tags(run_a)
        root, square = tags[PIPELINE], tags[SQUARE.format(0)]

        def edit(event: dict[str, Any]) -> dict[str, Any]:
            if event['tag'] == square and event['e'] == 'start':
                event['args'][0]['sha256'] = 'a' * 64
            if event['tag'] == root and event['e'] == 'start':
                event['kwargs']['scale']['sha256'] = 'b' * 64
            if event['tag'] == root and event['e'] == 'success':
                event['result']['sha256'] = 'c' * 64
            return event

        b = _planted(run_a, tmp_path, root, edit)
        b2 = _planted(b, tmp_path / 'x', square, edit)
        code, out = _diff(capsys, run_a, b2)
        assert code == 1
        _changed_only(out, changed_args=2, changed_results=1)
        [final] = out['lineage']
        assert final['path'] == PIPELINE
        assert final['result']['b']['sha256'] == 'c' * 64
        assert final['because'] == [
            {
                'path': SQUARE.format(0),
                'depth': 1,
                'args': [0],
                'result': False,
            },
            {
                'path': PIPELINE,
                'depth': 0,
                'args': ['scale'],
                'result': False,
            },
        ]
        main(['diff', str(run_a), str(b2), *HUGE])
        text = capsys.readouterr().out
        assert f'argument     {PIPELINE} scale=: ' in text
        assert f'argument     {SQUARE.format(0)} #0: 1.0 (' in text
        assert f'final result {PIPELINE} changed' in text
        assert text.index(SQUARE.format(0) + ': argument #0') < text.index(
            PIPELINE + ': argument scale='
        )


async def _pipeline(out: Path, xs: list[float]) -> Path:
    """The example's pipeline alone, over ``xs``."""
    config = ProvenanceLogging(out)
    async with await Manager.from_exchange_factory(
        LocalExchangeFactory(), log_config=config
    ) as manager:
        worker_a = await manager.launch(WorkerA, name='worker-a')
        worker_b = await manager.launch(WorkerB, name='worker-b')
        coordinator = await manager.launch(
            Coordinator, args=(worker_a, worker_b), name='coordinator'
        )
        await coordinator.run_pipeline(xs, scale=0.5)
    return Path(config.run_dir)


class TestDifferentInputs:
    """Two real runs over different inputs differ exactly where the data flowed."""

    def test_one_input_changed(self, capsys, tmp_path):
        a = asyncio.run(_pipeline(tmp_path / 'a', [1.0, 2.0, 3.0]))
        b = asyncio.run(_pipeline(tmp_path / 'b', [1.0, 2.0, 4.0]))
        code, out = _diff(capsys, a, b)
        assert code == 1
        _changed_only(out, changed_args=3, changed_results=3)
        changed = {c['path']: c for c in out['changed']}
        assert set(changed) == {PIPELINE, SQUARE.format(2), SUMMARIZE}
        assert [a['arg'] for a in changed[PIPELINE]['args']] == [0]
        assert changed[SQUARE.format(2)]['args'][0]['b']['preview'] == '4.0'
        assert changed[SQUARE.format(2)]['result']['b']['preview'] == '16.0'
        [final] = out['lineage']
        assert [c['path'] for c in final['because']] == [
            SQUARE.format(2),
            SUMMARIZE,
            PIPELINE,
        ]

    def test_one_input_more(self, capsys, tmp_path):
        a = asyncio.run(_pipeline(tmp_path / 'a', [1.0, 2.0, 3.0]))
        b = asyncio.run(_pipeline(tmp_path / 'b', [1.0, 2.0, 3.0, 5.0]))
        code, out = _diff(capsys, a, b)
        assert code == 1
        assert [m['path'] for m in out['added']] == [SQUARE.format(3)]
        assert out['missing'] == []


class TestJsonSchema:
    """Scripts read the JSON: its keys and shapes must not drift."""

    def test_keys(self, capsys, run_a, tmp_path):
        b = _planted(
            run_a, tmp_path, _tags(run_a)[SQUARE.format(1)], lambda e: None
        )
        _, out = _diff(capsys, run_a, b)
        assert out['schema'] == 1
        assert list(out) == [
            'schema',
            'a',
            'b',
            'threshold',
            'different',
            'summary',
            'matched',
            'added',
            'missing',
            'changed',
            'lineage',
        ]
        assert set(out['a']) == {'run', 'dir'}
        assert set(out['threshold']) == {'ratio', 'seconds'}
        assert list(out['summary']) == ['matched', *_NOTHING]
        assert set(out['matched'][0]) == {'path', 'tag_a', 'tag_b'}
        assert set(out['missing'][0]) == {
            'path',
            'tag',
            'action',
            'class',
            'state',
            'depth',
        }

    def test_changed_entry(self, capsys, run_a, tmp_path):
        def edit(event: dict[str, Any]) -> dict[str, Any]:
            if event['e'] == 'success':
                event['result']['sha256'] = 'e' * 64
            return event

        b = _planted(run_a, tmp_path, _tags(run_a)[SUMMARIZE], edit)
        _, out = _diff(capsys, run_a, b)
        assert set(out['changed'][0]) == {
            'path',
            'tag_a',
            'tag_b',
            'action',
            'class',
            'depth',
            'args',
            'result',
            'state',
            'timing',
        }
        assert set(out['changed'][0]['result']['a']) == {
            'sha256',
            'type',
            'preview',
        }


class TestHostileText:
    """Journal text is shown, never run: markup and escapes stay on one line."""

    def test_preview_with_escape_and_markup(self, capsys, run_a, tmp_path):
        hostile = '[bold red]x[/]\x1b[2J\nsecond line'

        def edit(event: dict[str, Any]) -> dict[str, Any]:
            if event['e'] == 'success':
                event['result'].update(sha256='e' * 64, preview=hostile)
            return event

        b = _planted(run_a, tmp_path, _tags(run_a)[SUMMARIZE], edit)
        capsys.readouterr()
        assert main(['diff', str(run_a), str(b), *HUGE]) == 1
        out = capsys.readouterr().out
        assert '\x1b' not in out
        [line] = [x for x in out.splitlines() if x.startswith('result')]
        assert '[bold red]x[/]\\x1b[2J\\nsecond line' in line


class TestBadInput:
    """Bad input is one line on stderr and exit 2, never a traceback."""

    @pytest.mark.parametrize('which', ('a', 'b'))
    def test_no_such_run(self, capsys, run_a, tmp_path, which):
        gone = tmp_path / 'nothing'
        args = [run_a, gone] if which == 'b' else [gone, run_a]
        code = main(['diff', *map(str, args)])
        err = capsys.readouterr().err
        assert code == 2
        assert err.count('\n') == 1
        assert err.startswith('provlog: error: ')

    def test_damaged_journal(self, capsys, run_a, tmp_path):
        copy = tmp_path / 'damaged'
        shutil.copytree(run_a, copy)
        for journal in copy.glob('*.jsonl'):
            lines = journal.read_bytes().splitlines(keepends=True)
            journal.write_bytes(
                b''.join([*lines[:3], b'{not json\n', *lines[3:]])
            )
        code = main(['diff', str(run_a), str(copy)])
        err = capsys.readouterr().err
        assert code == 2
        assert err.count('\n') == 1
        # --lenient skips the damaged line: the runs are the same
        assert main(['diff', str(run_a), str(copy), '--lenient', *HUGE]) == 0

    def test_bad_threshold(self, capsys, run_a):
        with pytest.raises(SystemExit) as exc:
            main(['diff', str(run_a), str(run_a), '--time-threshold', 'x'])
        assert exc.value.code == 2
        assert "'x' is not a number above 0" in capsys.readouterr().err
