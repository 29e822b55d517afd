"""Faults the host must survive: a full disk, logging reconfigured mid-run."""

from __future__ import annotations

import logging
import logging.config
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import orjson
import pytest

import provlog
from provlog.academy import ProvenanceLogging

ROOT = Path(__file__).resolve().parents[2]


def _worker(out: Path, n: int, limit: int) -> tuple[dict, str]:
    proc = subprocess.run(
        [
            sys.executable,
            '-m',
            'tests.integration.fault_worker',
            str(out),
            str(n),
            str(limit),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return orjson.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


class TestDiskFull:
    """The journal hits a size limit mid-run: the host does not notice."""

    def test_keeps_running_reports_once_and_says_what_was_lost(self, tmp_path):
        n = 1500
        normal, normal_err = _worker(tmp_path / 'normal', n, 0)
        full, err = _worker(tmp_path / 'full', n, 40_000)
        assert 'provlog' not in normal_err
        # nothing raised into the host and every call returned (asserted in
        # the worker); the problem is reported once, on stderr
        assert err.count('provlog: cannot write journal') == 1
        assert 'Traceback' not in err
        # at normal speed (generous bound for a noisy machine)
        assert full['elapsed'] < normal['elapsed'] * 2 + 0.5, (full, normal)
        graph = provlog.load(full['run_dir'])
        stats = graph.stats()
        assert 0 < stats['actions'] < n
        assert stats['complete'] is False
        assert stats['journals_cut'] or stats['processes_not_closed']
        codes = {p.code for p in graph.validate()}
        assert codes & {'journal-cut', 'process-not-closed'}
        # what was written before the limit is intact
        assert provlog.load(normal['run_dir']).stats()['actions'] == n + 50


def _start(tag: uuid.UUID) -> None:
    logging.getLogger('academy.handle').debug(
        'start',
        extra={
            'academy.action': 'f',
            'academy.action_tag': tag,
            'academy.action_state': 'start',
            'academy.action_args': (list(range(50)),),
            'academy.action_kwargs': {},
        },
    )


class TestLoggingReconfigured:
    """dictConfig and shutdown while the writer is busy: no deadlock."""

    @pytest.mark.timeout(60)
    def test_dictconfig_and_shutdown_while_busy(self, tmp_path):
        config = ProvenanceLogging(tmp_path, flush_interval=0.01)
        stop = config.init_logging()
        done = threading.Event()

        def hammer() -> None:
            while not done.is_set():
                _start(uuid.uuid4())

        threads = [threading.Thread(target=hammer) for _ in range(2)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(0.3)
            t0 = time.perf_counter()
            logging.config.dictConfig(
                {'version': 1, 'disable_existing_loggers': False},
            )
            logging.shutdown()
            assert time.perf_counter() - t0 < 15
        finally:
            done.set()
            for thread in threads:
                thread.join(10)
            stop()
        graph = provlog.load(config.run_dir)
        assert graph.stats()['actions'] > 100
        assert graph.stats()['processes_not_closed'] == []
