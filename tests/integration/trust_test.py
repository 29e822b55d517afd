"""Everyday set-ups: gaps reported, children quiet, runs apart, no crash."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest
from academy.exchange import LocalExchangeFactory
from academy.manager import Manager

import provlog
from provlog.academy import ProvenanceLogging
from provlog.cli import main
from tests.integration.host_logging_test import workflow_env
from tests.workflows.shapes import Counter


def _lines(run_dir: Path) -> list[dict[str, object]]:
    out = []
    for journal in sorted(run_dir.glob('*.jsonl')):
        out += [orjson.loads(x) for x in journal.read_bytes().splitlines()]
    return out


class TestGapsReported:
    """Logging reconfigured mid-run: the gap is in stats, validate, export."""

    @pytest.mark.parametrize(
        ('change', 'reason'),
        (
            ('disable', 'logging.disable(INFO)'),
            ('dictconfig', 'was disabled'),
            ('fileconfig', 'was disabled'),
            ('level', 'level was set to WARNING'),
        ),
    )
    def test_reported(self, change, reason, tmp_path, capsys):
        began = time.monotonic()
        proc = subprocess.run(
            [sys.executable, '-m', 'tests.workflows.midrun', change, tmp_path],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=workflow_env(),
        )
        # dictConfig flushes every handler under logging's lock: never a
        # stall (a writer that needed that lock cost 10 s here)
        assert time.monotonic() - began < 8
        assert proc.returncode == 0, proc.stderr
        assert 'count: 60' in proc.stdout
        assert 'provlog: capture interrupted' in proc.stderr
        (run,) = tmp_path.iterdir()
        gaps = [x for x in _lines(run) if x['e'] == 'gap']
        assert len(gaps) == 1
        assert reason in str(gaps[0]['reason'])
        assert any(x['e'] == 'resume' for x in _lines(run))
        graph = provlog.load(run)
        stats = graph.stats()
        assert stats['complete'] is False
        assert stats['capture_gaps'] == 1
        assert main(['validate', str(run)]) == 1
        assert 'capture-gap' in capsys.readouterr().out
        doc = graph.to_provjson()
        (run_entity,) = (
            e
            for e in doc['entity'].values()
            if e.get('provlog:complete') is not None
        )
        assert run_entity['provlog:complete'] is False

    def test_untouched_run_has_no_gap(self, tmp_path):
        proc = subprocess.run(
            [sys.executable, '-m', 'tests.workflows.midrun', 'none', tmp_path],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=workflow_env(),
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == ''
        (run,) = tmp_path.iterdir()
        assert main(['validate', str(run)]) == 0
        assert provlog.load(run).stats()['actions'] == 61


def _fork_child_exits() -> None:
    """A forked child that captures nothing."""


@pytest.mark.skipif(not hasattr(os, 'fork'), reason='needs fork')
class TestQuietChildren:
    """A child that execs or exits without capturing leaves no journal."""

    def test_subprocess_with_preexec_fn(self, tmp_path):
        config = ProvenanceLogging(tmp_path)
        stop = config.init_logging()
        try:
            # Parsl starts its workers this way: fork, preexec_fn, exec
            subprocess.run(['true'], preexec_fn=os.setsid, check=True)
        finally:
            stop()
        assert len(list(config.run_dir.glob('*.jsonl'))) == 1
        assert main(['validate', str(config.run_dir)]) == 0

    def test_fork_child_exits_without_events(self, tmp_path):
        config = ProvenanceLogging(tmp_path)
        stop = config.init_logging()
        try:
            ctx = multiprocessing.get_context('fork')
            child = ctx.Process(target=_fork_child_exits)
            child.start()
            child.join(30)
            assert child.exitcode == 0
        finally:
            stop()
        assert len(list(config.run_dir.glob('*.jsonl'))) == 1

    def test_journal_readable_by_owner_only(self, tmp_path):
        config = ProvenanceLogging(tmp_path)
        config.init_logging()()
        (journal,) = config.run_dir.glob('*.jsonl')
        assert journal.stat().st_mode & 0o077 == 0
        assert config.run_dir.stat().st_mode & 0o077 == 0


async def _count_to(config: ProvenanceLogging, marker: str) -> int:
    async with await Manager.from_exchange_factory(
        LocalExchangeFactory(),
        log_config=config,
    ) as manager:
        counter = await manager.launch(Counter, name=f'counter-{marker}')
        for _ in range(25):
            await counter.increment(1)
            await asyncio.sleep(0)
        return int(await counter.get_count())


class TestRunsApart:
    """Two Managers in two threads of one process: each keeps its own calls."""

    def test_two_managers_two_threads(self, tmp_path):
        configs = {m: ProvenanceLogging(tmp_path / m) for m in 'AB'}
        results: dict[str, int] = {}
        barrier = threading.Barrier(2)

        def run(marker: str) -> None:
            barrier.wait()
            results[marker] = asyncio.run(_count_to(configs[marker], marker))

        threads = [threading.Thread(target=run, args=(m,)) for m in 'AB']
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert results == {'A': 25, 'B': 25}
        for marker, config in configs.items():
            graph = provlog.load(config.run_dir)
            assert graph.stats()['actions'] == 26
            names = {
                a['name']
                for a in graph.run.agents.values()
                if a.get('name', '').startswith('counter-')
            }
            assert names == {f'counter-{marker}'}
            assert main(['validate', str(config.run_dir)]) == 0


class TestUnusableOutputDir:
    """An output_dir that cannot hold journals never stops the workflow."""

    @pytest.mark.parametrize('kind', ('file', 'proc'))
    def test_runs_and_says_once(self, kind, tmp_path, capfd):
        if kind == 'file':
            output = tmp_path / 'not-a-dir'
            output.write_text('x')
        else:
            output = Path('/proc/provlog-cannot-write-here')
        config = ProvenanceLogging(output)
        assert asyncio.run(_count_to(config, 'x')) == 25
        err = capfd.readouterr().err
        assert err.count('provlog: capture is off in process') == 1
        assert 'strict=True' in err

    def test_strict_raises(self, tmp_path):
        output = tmp_path / 'not-a-dir'
        output.write_text('x')
        config = ProvenanceLogging(output, strict=True)
        with pytest.raises(OSError):  # noqa: PT011 - any OS refusal
            asyncio.run(_count_to(config, 'x'))


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs, nearly full: a disk that fills and then frees."""
    mount = tmp_path / 'disk'
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip('mounting a tmpfs needs root')
    subprocess.run(
        ['mount', '-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', str(mount)],
        check=True,
    )
    try:
        (mount / 'filler').write_bytes(b'x' * (1024 * 1024 - 96 * 1024))
        yield mount
    finally:
        subprocess.run(['umount', str(mount)], check=False)


async def _fill_then_free(config: ProvenanceLogging, disk: Path) -> int:
    async with await Manager.from_exchange_factory(
        LocalExchangeFactory(),
        log_config=config,
    ) as manager:
        counter = await manager.launch(Counter)
        for _ in range(300):
            await counter.increment(1)
        await asyncio.sleep(3 * config.flush_interval)  # the write fails
        (disk / 'filler').unlink()  # and the disk frees
        for _ in range(20):
            await counter.increment(1)
        return int(await counter.get_count())


class TestDiskFillsThenFrees:
    """A cut line before the writer's ``lost`` marker reads as a cut."""

    def test_reads_cleanly_and_reports_the_loss(self, small_disk, capfd):
        config = ProvenanceLogging(small_disk, flush_interval=0.05)
        assert asyncio.run(_fill_then_free(config, small_disk)) == 320
        assert capfd.readouterr().err.count('cannot write journal') == 1
        (journal,) = config.run_dir.glob('*.jsonl')
        assert b'"e":"lost"' in journal.read_bytes().splitlines()[-1]
        stats = provlog.load(config.run_dir).stats()  # strict: no error
        assert 0 < stats['actions'] < 321
        assert stats['complete'] is False
        assert stats['events_lost'] > 0
        assert main(['validate', str(config.run_dir)]) == 1
        assert 'events-lost' in capfd.readouterr().out


class TestHugeValueThenKill:
    """SIGKILL a second after a 500 MB value: the calls around it are kept."""

    @pytest.mark.timeout(180)
    def test_calls_around_a_huge_value_survive(self, tmp_path):
        proc = subprocess.Popen(
            [sys.executable, '-m', 'tests.workflows.bigvalue', tmp_path],
            stdout=subprocess.PIPE,
            text=True,
            env=workflow_env(),
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.startswith('sent'), line
            time.sleep(1.0)
        finally:
            proc.kill()
            proc.wait(30)
        run_dir = Path(line.split(maxsplit=1)[1].strip())
        stats = provlog.load(run_dir).stats()
        # 200 small calls and the big one, plus the agent's launch
        assert stats['states']['completed'] >= 200, stats
