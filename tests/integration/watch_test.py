"""``provlog watch``: a live view that reads only what the journals gained.

Real journals throughout: the example workflow's (a spawn process pool),
synthetic runs in the real line format, and a workflow running in another
process while ``provlog watch`` follows it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from benchmarks.synthetic import make_run

import provlog
from provlog.cli import main
from provlog.watch import RunWatch
from provlog.watchview import gaps

ROOT = Path(__file__).resolve().parents[2]
_STATES = {
    'success': 'completed',
    'exception': 'failed',
    'cancelled': 'cancelled',
    None: 'running',
}
_COLUMNS = ('running', 'completed', 'failed', 'cancelled')


def _expected(run_dir: Path) -> dict[str, dict[str, int]]:
    """Execution states by agent name, from the full merge."""
    run = provlog.load(run_dir).run
    counts: dict[str, Counter[str]] = {}
    for action in run.actions.values():
        start = action.get('execute_start')
        if start is None:
            continue
        name = run.agents[start['agent']['uid']].get('name')
        counts.setdefault(name, Counter())[
            _STATES[action.execution_state]
        ] += 1
    return {n: {k: c[k] for k in _COLUMNS} for n, c in counts.items()}


def _shown(out: str, names: list[str]) -> dict[str, dict[str, int]]:
    """The agent table rows of a printed snapshot, by agent name."""
    rows = {}
    for line in out.splitlines():
        first, _, rest = line.strip().partition(' ')
        if first in names:
            numbers = [int(n) for n in re.findall(r'\d+', rest)]
            rows[first] = dict(zip(_COLUMNS, numbers, strict=True))
    return rows


def _state(w: RunWatch) -> dict[str, Any]:
    """Everything a refresh folds, comparable between two watches."""
    return {
        'agents': {
            uid: (c.name, c.running, c.completed, c.failed, c.cancelled)
            for uid, c in w.agents.items()
        },
        'failures': list(w.failures),
        'ended': w.ended,
        'times': (w.t_first, w.t_last),
        'journals': {
            name: (
                j.label,
                j.closed,
                dict(j.running),
                set(j.waiting),
                j.damaged,
                list(j.gaps),
                j.problem,
            )
            for name, j in w.journals.items()
        },
        'done': w.done,
    }


class TestOnceOnFinishedRun:
    """--once shows per agent the execution states the full merge finds."""

    def test_counts_and_failures(self, procpool_run, capsys):
        run_dir = procpool_run['run_dir']
        expected = _expected(run_dir)
        assert sum(c['failed'] for c in expected.values()) >= 1
        code = main(['watch', str(run_dir), '--once'])
        out = capsys.readouterr().out
        assert code == 0
        assert _shown(out, list(expected)) == expected
        assert 'ZeroDivisionError: float division by zero' in out
        assert re.search(r'processes 0 open, \d+ closed', out), out

    def test_parent_folder_resolves_to_the_run(self, procpool_run, capsys):
        run_dir = procpool_run['run_dir']
        assert main(['watch', str(run_dir.parent), '--once']) == 0
        assert run_dir.name in capsys.readouterr().out


def _pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


class TestIncrementalRefresh:
    """A journal read in pieces folds to the same state as read whole, and
    each refresh reads only the bytes that were added."""

    def test_pieces_equal_whole(self, procpool_run, tmp_path, monkeypatch):
        sources = sorted(procpool_run['run_dir'].glob('*.jsonl'))
        run_dir = tmp_path / 'run'
        run_dir.mkdir()
        read: list[int] = []
        real_pread = os.pread

        def counting_pread(fd: int, n: int, offset: int) -> bytes:
            data = real_pread(fd, n, offset)
            read.append(len(data))
            return data

        monkeypatch.setattr(os, 'pread', counting_pread)
        watch = RunWatch(run_dir)
        cut_mid_line = 0
        for source in sources:
            target = run_dir / source.name
            target.touch()
            for piece in _pieces(source.read_bytes(), 997):
                with target.open('ab') as fh:
                    fh.write(piece)
                read.clear()
                assert watch.refresh() == len(piece)
                assert sum(read) == len(piece)
                cut_mid_line += watch.journals[source.name].tail.pending > 0
                whole = RunWatch(run_dir)
                whole.refresh()
                assert _state(watch) == _state(whole)
        assert cut_mid_line > 10
        assert watch.done
        assert watch.refresh() == 0  # nothing gained, nothing read


class TestProcessesJoining:
    """A journal that appears between refreshes is read from then on."""

    def test_new_journal_picked_up(self, procpool_run, tmp_path):
        sources = sorted(procpool_run['run_dir'].glob('*.jsonl'))
        run_dir = tmp_path / 'run'
        run_dir.mkdir()
        watch = RunWatch(run_dir)
        seen = []
        for source in sources:
            shutil.copy(source, run_dir / source.name)
            watch.refresh()
            seen.append(len(watch.journals))
            assert watch.done  # each journal present is closed
        assert seen == list(range(1, len(sources) + 1))
        whole = RunWatch(run_dir)
        whole.refresh()
        assert _state(watch) == _state(whole)
        names = {c.name for c in watch.agents.values()}
        assert {'coordinator', 'worker-a', 'worker-b'} <= names


_WORKFLOW = (
    'import asyncio, sys\n'
    'from examples.pipeline import run_workflow\n'
    "asyncio.run(run_workflow(sys.argv[1], 'procpool'))\n"
)


class TestLiveRun:
    """Live mode follows a run in another process from before it starts
    and exits 0 by itself once every journal is closed, ending with the
    final counts."""

    @pytest.mark.slow
    def test_follows_run_to_its_end(self, tmp_path):
        out = tmp_path / 'prov-runs'
        watcher = subprocess.Popen(
            [
                sys.executable,
                '-m',
                'provlog.cli',
                'watch',
                str(out),
                '--interval',
                '0.1',
                '--timeout',
                '120',
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        try:
            time.sleep(0.5)
            assert watcher.poll() is None  # waits for journals to appear
            workflow = subprocess.run(
                [sys.executable, '-c', _WORKFLOW, str(out)],
                capture_output=True,
                text=True,
                timeout=180,
                check=False,
                cwd=ROOT,
            )
            assert workflow.returncode == 0, workflow.stderr[-2000:]
            stdout, stderr = watcher.communicate(timeout=60)
        finally:
            if watcher.poll() is None:
                watcher.kill()
                watcher.wait()
        assert watcher.returncode == 0, stderr
        (run_dir,) = out.iterdir()
        expected = _expected(run_dir)
        assert _shown(stdout, list(expected)) == expected
        assert 'every journal is closed' in stdout
        assert re.search(r'processes 0 open, [1-9]\d* closed', stdout)


class TestRefreshSpeed:
    """After 1000 lines join a 20k-action run, one refresh reads only those
    lines, fast (the goal is 100 ms at 1M actions)."""

    GAINED = 1000

    def test_refresh_reads_only_new_lines(self, tmp_path):
        run_dir = make_run(tmp_path, 20_000)
        biggest = max(run_dir.glob('*.jsonl'), key=lambda p: p.stat().st_size)
        data = biggest.read_bytes()
        lines = data.splitlines(keepends=True)
        kept = b''.join(lines[: -self.GAINED])
        gained = b''.join(lines[-self.GAINED :])
        biggest.write_bytes(kept)
        watch = RunWatch(run_dir)
        first = watch.refresh()
        assert first == sum(p.stat().st_size for p in run_dir.glob('*.jsonl'))
        assert not watch.done  # the held-back lines hold its close
        with biggest.open('ab') as fh:
            fh.write(gained)
        t0 = time.perf_counter()
        got = watch.refresh()
        took = time.perf_counter() - t0
        assert got == len(gained)
        assert took < 0.5, took
        whole = RunWatch(run_dir)
        whole.refresh()
        assert watch.done
        assert _state(watch) == _state(whole)


class TestDamageNeverFatal:
    """A damaged line is counted and a shrunk journal is reported; neither
    stops the watch."""

    def test_damaged_line_counted(self, procpool_run, tmp_path, capsys):
        source = max(
            procpool_run['run_dir'].glob('*.jsonl'),
            key=lambda p: p.stat().st_size,
        )
        lines = source.read_bytes().splitlines(keepends=True)
        run_dir = tmp_path / 'run'
        run_dir.mkdir()
        target = run_dir / source.name
        target.write_bytes(
            b''.join([*lines[:3], b'{"e": "start", cut\n', *lines[3:]])
        )
        watch = RunWatch(run_dir)
        watch.refresh()
        assert watch.journals[source.name].damaged == 1
        assert watch.done
        assert main(['watch', str(run_dir), '--once']) == 0
        assert '1 damaged lines' in capsys.readouterr().out

    def test_shrunk_or_replaced_journal_reported(self, procpool_run, tmp_path):
        first, second = sorted(procpool_run['run_dir'].glob('*.jsonl'))[:2]
        run_dir = tmp_path / 'run'
        shutil.copytree(first.parent, run_dir)
        watch = RunWatch(run_dir)
        watch.refresh()
        with (run_dir / first.name).open('r+b') as fh:
            fh.truncate(100)
        shutil.copy(second, tmp_path / 'new')  # same bytes, another file
        (tmp_path / 'new').replace(run_dir / second.name)
        watch.refresh()
        problems = {n: j.problem or '' for n, j in watch.journals.items()}
        assert 'shrank' in problems[first.name]
        assert 'replaced' in problems[second.name]
        codes = [g.code for g in gaps(watch, final=True)]
        assert codes.count('journal-unread') == 2


# a child started in the background inherits SIGINT ignored; a terminal's
# Ctrl-C is not, so the child restores Python's handler first
_CTRL_C = (
    'import signal, sys\n'
    'signal.signal(signal.SIGINT, signal.default_int_handler)\n'
    'from provlog.cli import main\n'
    'sys.exit(main(sys.argv[1:]))\n'
)


class TestInterrupt:
    """Ctrl-C stops the live view with its last snapshot and exit 130."""

    def test_ctrl_c(self, procpool_run, tmp_path):
        run_dir = tmp_path / 'run'
        shutil.copytree(procpool_run['run_dir'], run_dir)
        journal = sorted(run_dir.glob('*.jsonl'))[0]
        lines = journal.read_bytes().splitlines(keepends=True)
        journal.write_bytes(b''.join(lines[:-1]))  # no close: still going
        watcher = subprocess.Popen(
            [sys.executable, '-c', _CTRL_C, 'watch', str(run_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        try:
            time.sleep(3)
            assert watcher.poll() is None
            watcher.send_signal(signal.SIGINT)
            stdout, stderr = watcher.communicate(timeout=30)
        finally:
            if watcher.poll() is None:
                watcher.kill()
                watcher.wait()
        assert watcher.returncode == 130, stderr
        assert 'Traceback' not in stderr
        assert 'stopped (Ctrl-C)' in stdout
        assert 'process-not-closed' in stdout
        expected = _expected(run_dir)
        assert _shown(stdout, list(expected)) == expected


def _one_line(err: str) -> str:
    text = err.strip()
    assert text.startswith('provlog: error: '), text
    assert '\n' not in text
    return text


class TestBadInput:
    """--once on a missing folder or one without journals: exit 2 and one
    line naming the path; live mode gives up after --timeout with exit 1."""

    def test_missing_folder(self, tmp_path, capsys):
        missing = tmp_path / 'no-such-run'
        assert main(['watch', str(missing), '--once']) == 2
        err = capsys.readouterr().err
        assert str(missing) in _one_line(err)

    def test_no_journals(self, tmp_path, capsys):
        (tmp_path / 'notes.txt').write_text('hello\n')
        assert main(['watch', str(tmp_path), '--once']) == 2
        err = capsys.readouterr().err
        assert str(tmp_path) in _one_line(err)
        assert 'no provlog journals' in err

    def test_live_gives_up(self, tmp_path, capsys):
        code = main(
            ['watch', str(tmp_path), '--interval', '0.05', '--timeout', '0.3']
        )
        assert code == 1
        err = capsys.readouterr().err
        assert 'gave up after 0.3 s' in _one_line(err)
