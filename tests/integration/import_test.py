"""``provlog import jsonpool`` against live capture of the same workflow.

The example workflow runs once under Academy's ``MultiLogging`` of its own
``JSONPoolLogging`` and provlog's ``ProvenanceLogging``: agents in a spawn
process pool over the HTTP exchange, and again on the local exchange in one
process. The JSONPool logs are imported, and the imported run must hold,
action by action (matched by tag), what live capture holds: the same
actions, states, names, callees, executing agents, callers and parents,
the same agents with their classes, and the same launches.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from academy.logging.configs.jsonpool import JSONPoolLogging
from examples.pipeline import run_workflow

import provlog
from provlog.actions.merge import merge_run
from provlog.actions.merge import MergedRun
from provlog.cli import main
from provlog.vocab import Action


@pytest.fixture(scope='module', params=('procpool', 'local'))
def both(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """One workflow run captured both ways; the pool logs imported."""
    tmp = tmp_path_factory.mktemp(f'import-{request.param}')
    home = tmp / 'academy-home'
    pool = JSONPoolLogging()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('ACADEMY_HOME', str(home))
        outcome = asyncio.run(
            run_workflow(tmp / 'live', request.param, also=[pool])
        )
    assert main(['import', 'jsonpool', str(home), '-o', str(tmp / 'out')]) == 0
    return {
        'live': merge_run(outcome['run_dir']),
        'imported': merge_run(tmp / 'out' / pool.uuid),
        'home': home,
        'pool': pool,
        'outcome': outcome,
        'tmp': tmp,
    }


def _uid(ident: object) -> str | None:
    return ident.get('uid') if isinstance(ident, dict) else None


def _facts(action: Action) -> dict[str, Any]:
    """What must agree between live capture and the import, per action."""
    start = action.get('start') or {}
    sending = action.get('sending') or {}
    execution = action.get('execute_start') or {}
    agent = execution.get('agent') or (action.get('exec_agent') or {}).get(
        'agent'
    )
    return {
        'name': action.name,
        'state': action.state,
        'caller_state': action.caller_state,
        'execution_state': action.execution_state,
        'callee': _uid(start.get('callee')),
        'agent': _uid(agent),
        'caller': _uid(start.get('caller')) or _uid(sending.get('src')),
        'parent': start.get('parent'),
        'args': len(start.get('args', ())),
        'kwargs': sorted(start.get('kwargs', {})),
        'error': (action.get('execute_exception') or {})
        .get('error', {})
        .get('type'),
    }


def _agents(run: MergedRun) -> dict[str, tuple[Any, Any]]:
    return {
        uid: (info.get('name'), info.get('class'))
        for uid, info in run.agents.items()
        if info.get('role', 'agent') == 'agent'
    }


class TestSameAsLive:
    """Action by action, the import says what live capture says."""

    def test_same_actions(self, both: dict[str, Any]) -> None:
        live, imported = both['live'], both['imported']
        assert len(live.actions) == 11
        assert set(imported.actions) == set(live.actions)

    def test_each_action(self, both: dict[str, Any]) -> None:
        live, imported = both['live'], both['imported']
        for tag, action in live.actions.items():
            assert _facts(imported.actions[tag]) == _facts(action), tag

    def test_nested_calls_have_parents(self, both: dict[str, Any]) -> None:
        imported = both['imported']
        parents = [
            a.get('start')['parent']  # type: ignore[index]
            for a in imported.actions.values()
            if a.get('start') is not None
        ]
        assert sum(p is not None for p in parents) == 7  # square x3, ...

    def test_agents_and_launches(self, both: dict[str, Any]) -> None:
        live, imported = both['live'], both['imported']
        assert _agents(imported) == _agents(live)
        assert len(_agents(live)) == 3
        assert {
            uid: _uid(e.get('launcher'))
            for uid, e in imported.launches.items()
        } == {uid: _uid(e.get('launcher')) for uid, e in live.launches.items()}
        assert set(imported.lifecycles) == set(live.lifecycles)

    def test_processes(self, both: dict[str, Any]) -> None:
        live, imported = both['live'], both['imported']
        assert sorted(p.pid for p in imported.processes.values()) == sorted(
            p.pid for p in live.processes.values()
        )
        assert all(p.closed for p in imported.processes.values())


class TestValues:
    """Values are their str() text, flagged, hashed as text; secrets masked."""

    def test_values_are_str_forms(self, both: dict[str, Any]) -> None:
        imported = both['imported']
        square = next(
            a for a in imported.actions.values() if a.name == 'run_pipeline'
        )
        arg = square.get('start')['args'][0]  # type: ignore[index]
        assert arg['preview'] == '[1.0, 2.0, 3.0]'
        assert arg['str_form'] is True
        assert arg['type'] == 'unknown'
        result = square.get('success')['result']  # type: ignore[index]
        assert result['preview'] == "{'mean': 2.3333333333333335, 'max': 9.0}"

    def test_secret_masked(self, both: dict[str, Any]) -> None:
        run_dir = both['imported'].run_dir
        text = b''.join(p.read_bytes() for p in run_dir.glob('*.jsonl'))
        assert b'sk-demo-0123456789' not in text
        store = next(
            a for a in both['imported'].actions.values() if a.name == 'store'
        )
        kwargs = store.get('start')['kwargs']  # type: ignore[index]
        assert kwargs['api_key']['redacted'] is True


class TestCommands:
    """Every command reads the import and says it is one."""

    def test_stats_and_validate_say_imported(
        self, both: dict[str, Any], capsys: pytest.CaptureFixture[str]
    ) -> None:
        run_dir = both['imported'].run_dir
        assert main(['stats', str(run_dir), '--json']) == 0
        stats = orjson.loads(capsys.readouterr().out)
        assert stats['actions'] == 11
        assert [g['code'] for g in stats['gaps']] == ['imported']
        assert main(['validate', str(run_dir), '--json']) == 1
        problems = orjson.loads(capsys.readouterr().out)['problems']
        assert [p['code'] for p in problems] == ['imported']

    def test_diff_matches_every_call(
        self, both: dict[str, Any], capsys: pytest.CaptureFixture[str]
    ) -> None:
        live_dir, run_dir = both['live'].run_dir, both['imported'].run_dir
        main(['diff', str(live_dir), str(run_dir), '--json'])
        summary = orjson.loads(capsys.readouterr().out)['summary']
        assert summary['matched'] == 11
        assert summary['added'] == summary['missing'] == 0
        assert summary['state_changes'] == 0

    def test_report_and_why(
        self, both: dict[str, Any], tmp_path: Path
    ) -> None:
        run = provlog.load(both['imported'].run_dir)
        root = next(
            a for a in run.run.actions.values() if a.name == 'run_pipeline'
        )
        assert main(['why', str(run.run.run_dir), root.tag]) == 0
        assert (
            main(
                [
                    'report',
                    str(run.run.run_dir),
                    '-o',
                    str(tmp_path / 'r.html'),
                ]
            )
            == 0
        )

    def test_again_refused(
        self, both: dict[str, Any], capsys: pytest.CaptureFixture[str]
    ) -> None:
        out = both['tmp'] / 'out'
        before = sorted(p.name for p in out.rglob('*'))
        assert (
            main(['import', 'jsonpool', str(both['home']), '-o', str(out)])
            == 2
        )
        err = capsys.readouterr().err
        assert 'exists already' in err
        assert err.count('\n') == 1
        assert sorted(p.name for p in out.rglob('*')) == before
