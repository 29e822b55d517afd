"""Forwarding to Flowcept: offline, and a real Redis with the LMDB keeper."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

import provlog
from provlog.cli import main
from provlog.testing import flowcept_settings
from provlog.testing import free_port
from provlog.testing import start_redis

ROOT = Path(__file__).resolve().parents[2]


def _settings(path: Path, **mode: Any) -> Path:
    """Offline, or online with Redis and an LMDB store next to ``path``."""
    port = mode.get('redis_port')
    return flowcept_settings(
        path,
        redis_port=port,
        lmdb_path=path.parent / 'lmdb' if port is not None else None,
    )


def _python(code: str, settings: Path, timeout: float = 120) -> str:
    env = dict(os.environ, FLOWCEPT_SETTINGS_PATH=str(settings))
    proc = subprocess.run(
        [sys.executable, '-c', textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def _forward(run_dir: Path, settings: Path) -> None:
    _python(
        f"""
        from provlog.cli import main
        raise SystemExit(main(['forward', {str(run_dir)!r}, '--settings', {str(settings)!r}]))
        """,
        settings,
    )


class TestOffline:
    """Forwarded tasks read back with Flowcept's own reader equal the run's actions."""

    def test_field_by_field(self, procpool_run, tmp_path, capsys):
        run_dir = tmp_path / 'run'
        shutil.copytree(procpool_run['run_dir'], run_dir)
        settings = _settings(tmp_path / 'settings.yaml')
        _forward(run_dir, settings)
        out = _python(
            f"""
            import orjson
            from flowcept import Flowcept
            msgs = Flowcept.read_buffer_file({str(tmp_path / 'buffer.jsonl')!r}, cleanup_files=False)
            print(orjson.dumps(msgs).decode())
            """,
            settings,
        )
        messages = orjson.loads(out)
        tasks = {m['task_id']: m for m in messages if m.get('type') == 'task'}
        graph = provlog.load(run_dir)
        run = graph.run
        assert set(tasks) == set(run.actions)
        agents = {m['agent_id'] for m in messages if m.get('type') == 'agent'}
        assert agents == set(run.agents)
        workflows = [m for m in messages if m.get('type') == 'workflow']
        assert {w['workflow_id'] for w in workflows} == {run.run_id}
        status = {
            'completed': 'FINISHED',
            'failed': 'ERROR',
            'cancelled': 'ERROR',
        }
        for tag, action in run.actions.items():
            task = tasks[tag]
            assert task['activity_id'] == action.name
            assert task['workflow_id'] == run.run_id
            assert task['status'] == status[action.state]
            assert task['custom_metadata']['provlog']['state'] == action.state
            start = action.get('start')
            assert task['agent_id'] == start['callee']['uid']
            parent = start['parent']
            assert task.get('parent_task_id') == parent
            caller = start.get('caller') or action.get('sending')['src']
            if caller['role'] == 'agent':
                assert task['source_agent_id'] == caller['uid']
            else:
                assert 'source_agent_id' not in task
            assert task['started_at'] == action.get('execute_start')['t']
            for n, desc in enumerate(start['args']):
                assert task['used'][f'arg{n}']['sha256'] == desc['sha256']
            if action.state == 'completed':
                assert (
                    task['generated']['result']['sha256']
                    == (action.get('success')['result']['sha256'])
                )
            if action.state == 'failed':
                assert task['stderr'].startswith('ZeroDivisionError: ')
                assert 'Traceback' in task['stderr']
        # a secret never travels: the store kwarg was redacted in the journal
        assert (
            b'sk-demo-0123456789'
            not in (tmp_path / 'buffer.jsonl').read_bytes()
        )
        assert main(['stats', str(run_dir), '--json']) == 0
        stats = orjson.loads(capsys.readouterr().out)
        assert stats['flowcept'] == {
            'forwarded': len(run.actions),
            'pending': 0,
        }


def _start_redis(port: int) -> subprocess.Popen[bytes]:
    try:
        return start_redis(port)
    except RuntimeError as exc:
        pytest.fail(f'{exc} (.ci/run installs redis-server)')


def _start_keeper(settings: Path) -> subprocess.Popen[bytes]:
    """Flowcept's own consumer: Redis -> LMDB, in a process of its own."""
    keeper = subprocess.Popen(
        [
            sys.executable,
            '-c',
            (
                'from flowcept import Flowcept\n'
                'Flowcept.start_consumption_services()\n'
                'import time\n'
                'time.sleep(3600)\n'
            ),
        ],
        cwd=ROOT,
        env=dict(os.environ, FLOWCEPT_SETTINGS_PATH=str(settings)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(3)  # it subscribes; pub/sub keeps no backlog
    return keeper


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)


@pytest.fixture
def redis_server():
    """A real redis-server on 127.0.0.1, started and stopped here."""
    port = free_port()
    proc = _start_redis(port)
    yield port, proc
    _stop(proc)


def _query_store(
    settings: Path, workflow_id: str, expect: int
) -> dict[str, Any]:
    query = f"""
    import time, orjson
    from flowcept import Flowcept
    deadline = time.time() + 30
    while True:
        tasks = Flowcept.db.task_query({{'workflow_id': {workflow_id!r}}}) or []
        if len(tasks) >= {expect} or time.time() > deadline:
            break
        time.sleep(0.5)
    time.sleep(1.0)  # and nothing more arrives
    tasks = Flowcept.db.task_query({{'workflow_id': {workflow_id!r}}}) or []
    workflows = Flowcept.db.workflow_query({{'workflow_id': {workflow_id!r}}}) or []
    agents = Flowcept.db.agent_query({{'workflow_id': {workflow_id!r}}}) or []
    print(orjson.dumps({{'tasks': tasks, 'workflows': workflows, 'agents': agents}}, default=str).decode())
    """
    return dict(orjson.loads(_python(query, settings)))


def _worker(*args: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, '-m', 'tests.integration.flowcept_worker', *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(orjson.loads(proc.stdout.strip().splitlines()[-1]))


class TestRedisLmdb:
    """A real Redis broker and Flowcept's LMDB keeper: every action once, twice sent."""

    def test_replay_is_idempotent(self, procpool_run, tmp_path, redis_server):
        port, _ = redis_server
        run_dir = tmp_path / 'run'
        shutil.copytree(procpool_run['run_dir'], run_dir)
        settings = _settings(
            tmp_path / 'settings.yaml', flush='online', redis_port=port
        )
        keeper = _start_keeper(settings)
        try:
            _forward(run_dir, settings)
            _forward(run_dir, settings)  # again: no duplicates
            run = provlog.load(run_dir).run
            found = _query_store(settings, run.run_id, len(run.actions))
        finally:
            _stop(keeper)
        tasks = found['tasks']
        assert sorted(t['task_id'] for t in tasks) == sorted(run.actions)
        assert len(found['workflows']) == 1
        for task in tasks:
            action = run.actions[task['task_id']]
            assert task['activity_id'] == action.name
            assert task['agent_id'] == action.get('start')['callee']['uid']
            assert task.get('parent_task_id') == action.get('start')['parent']
            assert task['status'] == {'completed': 'FINISHED'}.get(
                action.state, 'ERROR'
            )


class TestLive:
    """Every process forwards its completed calls as they finish."""

    def test_multiprocess_run_one_workflow(self, tmp_path, redis_server):
        port, _ = redis_server
        settings = _settings(
            tmp_path / 'settings.yaml', flush='online', redis_port=port
        )
        keeper = _start_keeper(settings)
        try:
            result = _worker('pipeline', str(tmp_path / 'runs'), str(settings))
            run = provlog.load(result['run_dir']).run
            found = _query_store(settings, run.run_id, len(run.actions))
        finally:
            _stop(keeper)
        tasks = {t['task_id']: t for t in found['tasks']}
        assert sorted(tasks) == sorted(run.actions)  # each action once
        assert len(found['workflows']) == 1  # four processes, one workflow
        assert {a['agent_id'] for a in found['agents']} == set(run.agents)
        for tag, action in run.actions.items():
            task = tasks[tag]
            start = action.get('start')
            assert task['agent_id'] == start['callee']['uid']
            assert task.get('parent_task_id') == start['parent']
            assert task['custom_metadata']['provlog']['live'] is True
        stats = provlog.load(result['run_dir']).stats()
        assert stats['flowcept'] == {
            'forwarded': len(run.actions),
            'pending': 0,
        }

    def test_broker_stopped_mid_run(self, tmp_path, redis_server):
        port, redis = redis_server
        settings = _settings(
            tmp_path / 'settings.yaml', flush='online', redis_port=port
        )
        keeper = _start_keeper(settings)
        try:
            n = 400
            result = _worker(
                'outage',
                str(tmp_path / 'runs'),
                str(settings),
                str(redis.pid),
                str(n),
            )
        finally:
            _stop(keeper)
        # the run completed (every call returned, asserted in the worker)
        # at normal speed after the broker went away
        assert result['after_ms'] < result['before_ms'] * 3 + 1, result
        graph = provlog.load(result['run_dir'])
        assert graph.stats()['actions'] == n
        # the broker comes back; the replay brings the store to the full run
        redis.wait(10)
        redis2 = _start_redis(port)
        keeper = _start_keeper(settings)
        try:
            _forward(Path(result['run_dir']), settings)
            found = _query_store(settings, graph.run_id, n)
        finally:
            _stop(keeper)
            _stop(redis2)
        ids = [t['task_id'] for t in found['tasks']]
        assert len(ids) == len(set(ids)) == n


class TestHostFlowcept:
    """A host application running its own Flowcept keeps all of its messages."""

    def test_host_messages_survive(self, tmp_path, redis_server):
        port, _ = redis_server
        settings = _settings(
            tmp_path / 'settings.yaml', flush='online', redis_port=port
        )
        keeper = _start_keeper(settings)
        host_workflow = 'host-workflow-1'
        try:
            result = _worker(
                'host', str(tmp_path / 'runs'), str(settings), host_workflow
            )
            run = provlog.load(result['run_dir']).run
            found = _query_store(settings, host_workflow, 3)
            ours = _query_store(settings, run.run_id, len(run.actions))
        finally:
            _stop(keeper)
        assert sorted(t['task_id'] for t in found['tasks']) == [
            'host-after',
            'host-before',
            'host-during',
        ]
        assert sorted(t['task_id'] for t in ours['tasks']) == sorted(
            run.actions
        )
