"""ProvenanceLogging as an Academy LogConfig: picklable, idempotent, tidy."""

from __future__ import annotations

import logging
import os
import pickle
import sys
import uuid

import pytest
from academy.logging.helpers import log_context

import provlog
from provlog.academy import ProvenanceLogging
from provlog.capture.session import flush_all
from provlog.capture.taps import CAPTURE_LOGGERS
from provlog.capture.taps import installed_handlers
from provlog.capture.taps import TAP_LEVEL


def _our_handlers() -> list[logging.Handler]:
    return list(installed_handlers())


def _start(tag: uuid.UUID) -> None:
    logging.getLogger('academy.handle').debug(
        'Invoking action %s with tag id %s',
        'f',
        tag,
        extra={
            'academy.action': 'f',
            'academy.action_tag': tag,
            'academy.action_state': 'start',
            'academy.action_args': (),
            'academy.action_kwargs': {},
        },
    )


class TestConfig:
    """The config travels by pickle and installs one handler per process."""

    def test_pickle_keeps_uuid_and_options(self, tmp_path):
        config = ProvenanceLogging(
            tmp_path, max_value_bytes=10, redact_keys=['pin']
        )
        clone = pickle.loads(pickle.dumps(config))
        assert clone.uuid == config.uuid
        assert clone.run_dir == config.run_dir
        assert clone.policy() == config.policy()
        assert clone.policy().is_secret('my_PIN')

    def test_relative_output_dir_resolved_at_creation(
        self, tmp_path, monkeypatch
    ):
        monkeypatch.chdir(tmp_path)
        config = ProvenanceLogging('runs')
        assert config.output_dir == str(tmp_path / 'runs')

    def test_bad_options_rejected(self, tmp_path):
        with pytest.raises(ValueError, match='flush_interval'):
            ProvenanceLogging(tmp_path, flush_interval=0)

    def test_init_twice_one_handler_levels_restored(self, tmp_path):
        root_level = logging.getLogger().level
        root_handlers = list(logging.getLogger().handlers)
        before = {n: logging.getLogger(n).level for n in CAPTURE_LOGGERS}
        config = ProvenanceLogging(tmp_path)
        copy = pickle.loads(pickle.dumps(config))
        handlers_before = _our_handlers()
        stop_a = config.init_logging()
        stop_b = copy.init_logging()  # same uuid, same process
        assert len(_our_handlers()) == len(handlers_before) + 1
        assert all(
            logging.getLogger(n).level == TAP_LEVEL for n in CAPTURE_LOGGERS
        )
        stop_a()
        assert len(_our_handlers()) == len(handlers_before) + 1
        stop_b()
        stop_b()  # a second call is harmless
        assert _our_handlers() == handlers_before
        assert {
            n: logging.getLogger(n).level for n in CAPTURE_LOGGERS
        } == before
        assert logging.getLogger().level == root_level
        assert logging.getLogger().handlers == root_handlers
        (journal,) = config.run_dir.iterdir()
        assert journal.name.endswith(
            f'-{os.getpid()}-{journal.name.split("-")[-1]}'
        )

    def test_log_context_drains_journal(self, tmp_path):
        config = ProvenanceLogging(tmp_path)
        tag = uuid.uuid4()
        with log_context(config):
            _start(tag)
        graph = provlog.load(config.run_dir)
        assert list(graph.run.actions) == [str(tag)]
        assert graph.stats()['states']['not_ended'] == 1
        (process,) = graph.run.processes.values()
        assert process.closed
        header = process.header
        assert header['academy'] == '1.0.0'
        assert header['pid'] == os.getpid()
        assert header['python'] == '.'.join(map(str, sys.version_info[:3]))


@pytest.mark.skipif(not hasattr(os, 'fork'), reason='needs fork')
def test_fork_gets_its_own_journal(tmp_path):
    """Parent and forked child never write into the same journal."""
    config = ProvenanceLogging(tmp_path)
    stop = config.init_logging()
    try:
        parent_tag, child_tag = uuid.uuid4(), uuid.uuid4()
        _start(parent_tag)
        pid = os.fork()
        if pid == 0:  # child
            code = 0
            try:
                _start(child_tag)
                flush_all()
            except BaseException:
                code = 1
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        stop()
    graph = provlog.load(config.run_dir)
    assert set(graph.run.actions) == {str(parent_tag), str(child_tag)}
    by_pid = {p.pid: p for p in graph.run.processes.values()}
    assert set(by_pid) == {os.getpid(), pid}
    child_file = config.run_dir / by_pid[pid].files[0]
    assert str(child_tag).encode() in child_file.read_bytes()
    parent_file = config.run_dir / by_pid[os.getpid()].files[0]
    assert str(child_tag).encode() not in parent_file.read_bytes()


def _child_dies_without_uninit(output_dir: str, run_uuid: str) -> None:
    config = ProvenanceLogging(output_dir, flush_interval=60)
    config.uuid = run_uuid
    config.init_logging()  # never uninitialised
    _start(uuid.UUID(run_uuid))
    raise RuntimeError('worker crashes')


def _closed_at_exit(run_dir) -> bool:
    (journal,) = run_dir.glob('*.jsonl')
    last = journal.read_bytes().splitlines()[-1]
    return b'"e":"close"' in last and b'"at_exit":true' in last


class TestExitFlush:
    """A process that exits without the uninit callback saves and closes."""

    def test_interpreter_exit(self, tmp_path):
        import subprocess
        import textwrap

        run_uuid = str(uuid.uuid4())
        code = textwrap.dedent(f"""
            import uuid
            from tests.unit.academy_config_test import _child_dies_without_uninit
            _child_dies_without_uninit({str(tmp_path)!r}, {run_uuid!r})
        """)
        proc = subprocess.run(
            [sys.executable, '-c', code],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 1
        assert 'worker crashes' in proc.stderr
        graph = provlog.load(tmp_path / run_uuid)
        assert list(graph.run.actions) == [run_uuid]
        assert graph.stats()['processes_not_closed'] == []
        assert _closed_at_exit(tmp_path / run_uuid)

    @pytest.mark.skipif(not hasattr(os, 'fork'), reason='needs fork')
    def test_forked_multiprocessing_child_exit(self, tmp_path):
        # fork-context children leave through os._exit: no atexit, no
        # logging.shutdown; only multiprocessing's finalizers run
        import multiprocessing

        run_uuid = str(uuid.uuid4())
        ctx = multiprocessing.get_context('fork')
        proc = ctx.Process(
            target=_child_dies_without_uninit,
            args=(str(tmp_path), run_uuid),
        )
        proc.start()
        proc.join(60)
        assert proc.exitcode == 1
        graph = provlog.load(tmp_path / run_uuid)
        assert list(graph.run.actions) == [run_uuid]
        assert graph.stats()['processes_not_closed'] == []
        assert _closed_at_exit(tmp_path / run_uuid)
