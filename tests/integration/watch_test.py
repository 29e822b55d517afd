"""``provlog watch``: a live view that reads only what the journals gained.

Real journals throughout: the example workflow's (a spawn process pool),
synthetic runs in the real line format, and a workflow running in another
process while ``provlog watch`` follows it.
"""

from __future__ import annotations

import io
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

import orjson
import pytest
from benchmarks.synthetic import make_run
from rich.console import Console

import provlog
from provlog.cli import main
from provlog.views.watch import RunWatch
from provlog.views.watchview import gaps
from provlog.views.watchview import view

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
        'closed': w.closed,
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
        assert watch.closed
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
            assert watch.closed  # each journal present is closed
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
        assert not watch.closed  # the held-back lines hold its close
        with biggest.open('ab') as fh:
            fh.write(gained)
        t0 = time.perf_counter()
        got = watch.refresh()
        took = time.perf_counter() - t0
        assert got == len(gained)
        assert took < 0.5, took
        whole = RunWatch(run_dir)
        whole.refresh()
        assert watch.closed
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
        assert watch.closed
        assert main(['watch', str(run_dir), '--once']) == 0
        assert '1 damaged line in' in capsys.readouterr().out

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


_RUN = '2230f830-f5c5-4806-84f8-2fea02144fe2'
_DEEP = (
    '[' * 1010 + ']' * 1010
)  # parses (orjson allows 1024), too deep to print
#: Raw JSON of each value tried; ``None``: the field left out.
_VALUES = (
    None,
    'null',
    'true',
    '0',
    '-1',
    '1.5',
    '1e300',
    '""',
    '"x"',
    '[]',
    '[1]',
    '{}',
    '{"a":1}',
    _DEEP,
)
_ABSENT = object()


def _is_time(v: object) -> bool:
    return type(v) in {int, float} and 0 <= v <= 253_402_300_799


def _str(v: object) -> bool:
    return type(v) is str


def _str_or_null(v: object) -> bool:
    return v is _ABSENT or v is None or type(v) is str


_TIME = ('t', lambda v: v is _ABSENT or _is_time(v))
_TAG = ('tag', _str)
_ACTION = ('action', _str_or_null)
#: Per kind: a line the fold reads whole, and each field it reads with
#: what the field may be (``_ABSENT``: left out); ``t`` for every kind.
_SPEC: dict[str, tuple[dict[str, Any], tuple[tuple[str, Any], ...]]] = {
    'execute_start': (
        {'tag': 'x', 'action': 'a', 'agent': {'uid': 'u', 'name': 'n'}},
        (_TAG, _ACTION),
    ),
    'exec_agent': ({'tag': 'x', 'agent': {'uid': 'u'}}, (_TAG, _ACTION)),
    'execute_success': ({'tag': 'x'}, (_TAG,)),
    'execute_cancelled': ({'tag': 'x'}, (_TAG,)),
    'execute_exception': (
        {'tag': 'x', 'error': {'type': 'E', 'message': 'm'}},
        (_TAG,),
    ),
    'start': ({'tag': 'y'}, (_TAG,)),
    'success': ({'tag': 'y'}, (_TAG,)),
    'exception': ({'tag': 'y'}, (_TAG,)),
    'cancelled': ({'tag': 'y'}, (_TAG,)),
    'agent': (
        {'uid': 'u', 'name': 'n'},
        (('uid', _str), ('name', _str_or_null)),
    ),
    'launch': ({'agent': {'uid': 'u'}}, ()),
    'lifecycle': ({'agent': {'uid': 'u'}}, ()),
    'dropped': ({'n': 2}, (('n', lambda v: type(v) is int and v >= 0),)),
    'lost': ({'n': 2}, (('n', lambda v: type(v) is int and v >= 0),)),
    'gap': (
        {'since': 5.0, 'reason': 'r'},
        (
            ('since', lambda v: v is _ABSENT or v is None or _is_time(v)),
            ('reason', _str_or_null),
        ),
    ),
    'capture_off': ({'reason': 'r'}, (('reason', _str_or_null),)),
    'close': ({}, ()),
    'resume': ({}, ()),
    'encode_error': ({}, ()),
}
#: Fields inside an object field: the identity's, the error's.
_INNER = {
    'agent': (('uid', _str), ('name', _str_or_null)),
    'error': (('type', _str_or_null), ('message', _str_or_null)),
}


def _line(fields: dict[str, Any], raw: dict[str, str | None]) -> str:
    """A JSON line: ``fields``, then ``raw`` JSON texts (``None``: left out)."""
    keep = {k: v for k, v in fields.items() if k not in raw}
    text = orjson.dumps(keep).decode()
    extra = ','.join(f'"{k}":{v}' for k, v in raw.items() if v is not None)
    if not extra:
        return text
    return text[:-1] + (',' if keep else '') + extra + '}'


def _value(raw: str | None) -> object:
    return _ABSENT if raw is None else orjson.loads(raw)


def _wrong_lines() -> list[str]:
    """A line per kind, field and value the fold must not take."""
    lines = [
        _line({}, {'e': raw})
        for raw in _VALUES
        if not isinstance(_value(raw), str)
    ]
    for kind, (fields_read, fields) in _SPEC.items():
        base = {'e': kind, **fields_read}
        for name, ok in (*fields, _TIME):
            lines.extend(
                _line(base, {name: raw})
                for raw in _VALUES
                if not ok(_value(raw))
            )
        for name, inner in _INNER.items():
            if name not in base:
                continue
            lines.extend(  # not an object (an identity needs its uid)
                _line(base, {name: raw})
                for raw in _VALUES
                if raw not in {None, 'null'}
                and (name == 'agent' or not raw.startswith('{'))
            )
            for key, ok in inner:
                lines.extend(
                    _line(base, {name: _line(base[name], {key: raw})})
                    for raw in _VALUES
                    if not ok(_value(raw))
                )
    return lines


def _header(process: str, raw: dict[str, str | None]) -> str:
    return _line(
        {
            'e': 'journal',
            'v': 1,
            'run': _RUN,
            'process': process,
            'host': 'vm',
            'pid': 1,
            't': 1000.0,
        },
        raw,
    )


class TestWrongShapes:
    """Valid JSON of the wrong shape, for every field the fold reads: each
    line is counted as damaged, never fatal; header fields are shown only
    when they are a string or an integer."""

    def test_fuzz_fields(self, tmp_path, capsys):
        wrong = _wrong_lines()
        assert len(wrong) > 200
        run_dir = tmp_path / 'run'
        run_dir.mkdir()
        good = [
            _line({'e': kind, 't': 1000.0 + i, **base}, {})
            for i, (kind, (base, _)) in enumerate(_SPEC.items())
            if kind != 'close'
        ]
        body = [_header('p0', {})]
        for line in wrong:
            body += [line, *good]
        (run_dir / 'a.jsonl').write_text('\n'.join(body) + '\n')
        watch = RunWatch(run_dir)
        watch.refresh()
        journal = watch.journals['a.jsonl']
        assert journal.problem is None
        assert journal.damaged == len(wrong)  # none of the good lines
        console = Console(file=io.StringIO(), width=100)
        console.print(view(watch, time.time(), final=True))
        assert main(['watch', str(run_dir), '--once']) == 0
        assert f'{len(wrong)} damaged lines' in capsys.readouterr().out

    def test_fuzz_header(self, tmp_path, capsys):
        run_dir = tmp_path / 'run'
        run_dir.mkdir()
        shown: dict[str, tuple[str, str | None]] = {}
        n = 0
        for key in ('host', 'pid', 'v', 'run', 'process', 't', 'e'):
            for raw in _VALUES:
                n += 1
                name = f'{n:03d}.jsonl'
                header = _header(f'p{n}', {key: raw})
                (run_dir / name).write_text(header + '\n{"e":"close"}\n')
                shown[name] = (key, raw)
        watch = RunWatch(run_dir)
        watch.refresh()
        for name, (key, raw) in shown.items():
            j = watch.journals[name]
            value = _value(raw)
            if key == 'host':
                want = value if type(value) is str else '?'
                assert j.label == f'{want}:1', (key, raw)
            elif key == 'pid':
                want = str(value) if type(value) is int else '?'
                assert j.label == f'vm:{want}', (key, raw)
            assert len(j.label) < 80
            assert len(j.problem or '') < 200
        assert main(['watch', str(run_dir), '--once']) == 0
        out = capsys.readouterr().out
        assert 'journal-unread' in out
        assert 'Traceback' not in out

    @pytest.mark.parametrize(
        'line',
        (
            '{"e":[1],"t":1}',
            '{"e":{"a":1}}',
            '{"e":"success","tag":[1]}',
            '{"e":"cancelled","tag":{"x":1},"t":1}',
        ),
    )
    def test_review_lines(self, tmp_path, line):
        run_dir = tmp_path / 'run'
        run_dir.mkdir()
        (run_dir / 'a.jsonl').write_text(f'{_header("p", {})}\n{line}\n')
        watch = RunWatch(run_dir)
        watch.refresh()
        assert watch.journals['a.jsonl'].damaged == 1


class TestDuplicateJournal:
    """A copy of a journal under another name is the same process: it is
    shown as a duplicate naming both files, and counted once."""

    def test_copy_counted_once(self, procpool_run, tmp_path, capsys):
        run_dir = tmp_path / 'run'
        shutil.copytree(procpool_run['run_dir'], run_dir)
        journals = sorted(run_dir.glob('*.jsonl'))
        biggest = max(journals, key=lambda p: p.stat().st_size)
        copy = run_dir / f'zz-copy-{biggest.name}'
        shutil.copy(biggest, copy)
        expected = _expected(procpool_run['run_dir'])
        watch = RunWatch(run_dir)
        watch.refresh()
        assert watch.journals[copy.name].problem is not None
        (gap,) = [g for g in gaps(watch) if g.code == 'journal-duplicate']
        assert biggest.name in gap.message
        assert copy.name in gap.message
        assert main(['watch', str(run_dir), '--once']) == 0
        out = capsys.readouterr().out
        assert _shown(out, list(expected)) == expected
        assert f'processes 0 open, {len(journals)} closed' in out
        assert 'journal-duplicate' in out


_MB = 1024 * 1024


def _hostile_run(run_dir: Path) -> dict[str, str]:
    """A journal whose names are 1 MB each, with markup and emoji codes."""
    names = {
        'host': ':warning: host [bold]' + 'h' * _MB,
        'agent': ':warning: agent [red]x[/] \\' + 'a' * _MB,
        'action': ':warning: action [/]' + 'b' * _MB,
        'type': ':warning: Error' + 'c' * _MB,
        'message': ':warning: message' + 'd' * _MB,
        'reason': ':warning: reason' + 'e' * _MB,
    }
    lines: list[dict[str, Any]] = [
        {
            'e': 'journal',
            'v': 1,
            'run': _RUN,
            'process': 'p',
            'host': names['host'],
            'pid': 1,
            't': 1000.0,
        },
        {'e': 'agent', 'uid': 'u', 'name': names['agent'], 't': 1000.0},
        {
            'e': 'gap',
            't': 1001.0,
            'since': 1000.5,
            'reason': names['reason'],
        },
    ]
    for i in range(3):
        lines += [
            {
                'e': 'execute_start',
                'tag': f't{i}',
                'agent': {'uid': 'u', 'name': names['agent']},
                'action': names['action'],
                't': 1001.0 + i,
            },
            {
                'e': 'execute_exception',
                'tag': f't{i}',
                'error': {'type': names['type'], 'message': names['message']},
                't': 1001.5 + i,
            },
        ]
    (run_dir / 'a.jsonl').write_bytes(
        b''.join(orjson.dumps(line) + b'\n' for line in lines)
    )
    return names


class TestBoundedOutput:
    """Names, actions, errors and hosts of any length are shown cut to a
    fixed length, fast; emoji codes and markup in them print literally."""

    def test_megabyte_names(self, tmp_path, capsys, monkeypatch):
        monkeypatch.setenv('COLUMNS', '400')  # a line is one line
        run_dir = tmp_path / 'run'
        run_dir.mkdir()
        names = _hostile_run(run_dir)
        capsys.readouterr()
        t0 = time.perf_counter()
        assert main(['watch', str(run_dir), '--once']) == 0
        took = time.perf_counter() - t0
        out = capsys.readouterr().out
        assert took < 0.5, took
        assert len(out) < 5000, len(out)
        assert max(len(line.rstrip()) for line in out.splitlines()) < 400
        for key in ('host', 'agent', 'action', 'type', 'reason'):
            assert names[key][:30] in out, key  # as written: no markup
        assert '\u26a0' not in out  # :warning: is not an emoji
        assert '[red]x[/] \\aaa' in out


def _closed_run(tmp_path: Path) -> Path:
    run_dir = tmp_path / 'run'
    run_dir.mkdir()
    (run_dir / 'a.jsonl').write_text(
        f'{_header("p", {})}\n{{"e":"close","t":1001.0}}\n'
    )
    return run_dir


class TestOptions:
    """--interval and --timeout are finite numbers of seconds above 0, or
    one line of error and exit 2; the wait never outlasts --timeout."""

    @pytest.mark.parametrize('option', ('--interval', '--timeout'))
    @pytest.mark.parametrize(
        'value', ('0', '-1', 'nan', 'inf', '-inf', '1e400', 'soon', '1s')
    )
    def test_rejected(self, tmp_path, capsys, option, value):
        run_dir = _closed_run(tmp_path)
        with pytest.raises(SystemExit) as exc:
            main(['watch', str(run_dir), f'{option}={value}'])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert 'Traceback' not in err
        last = err.strip().splitlines()[-1]
        assert last.startswith(f'provlog watch: error: argument {option}: ')
        assert 'above 0' in last

    def test_sleep_ends_at_timeout(self, tmp_path, capsys):
        t0 = time.monotonic()
        code = main(
            ['watch', str(tmp_path), '--interval', '30', '--timeout', '0.3']
        )
        assert code == 1
        assert time.monotonic() - t0 < 5
        assert 'gave up after 0.3 s' in capsys.readouterr().err


def _snapshot(watch: RunWatch, now: float) -> str:
    console = Console(file=io.StringIO(), width=200)
    console.print(view(watch, now))
    out = console.file.getvalue()
    assert isinstance(out, str)
    return out


class TestElapsedAndWaiting:
    """A live run's elapsed time is the wall clock since its first event; a
    run whose journals are all closed took from its first event to its
    last. Requests without an answer are waiting while the run goes, never
    answered once it is over; one request is one request."""

    def test_live_then_closed(self, tmp_path):
        run_dir = tmp_path / 'run'
        run_dir.mkdir()
        journal = run_dir / 'a.jsonl'
        journal.write_text(
            f'{_header("p", {})}\n'
            '{"e":"start","tag":"q","t":1000.5}\n'
            '{"e":"start","tag":"r","t":1001.0}\n'
            '{"e":"success","tag":"r","t":1001.5}\n'
        )
        watch = RunWatch(run_dir)
        watch.refresh()
        live = _snapshot(watch, 1010.0)
        assert 'elapsed 10.0 s' in live
        assert '1 request waiting for an answer' in live
        with journal.open('a') as fh:
            fh.write('{"e":"close","t":1002.0}\n')
        watch.refresh()
        assert watch.closed
        assert not watch.settled(3600.0)  # processes may still join
        closed = _snapshot(watch, 5000.0)
        assert 'elapsed 2.0 s' in closed
        assert '1 request never answered' in closed
        assert 'waiting' not in closed


def _staged(sources: list[Path], run_dir: Path, pause: float) -> None:
    """Two journals in two halves, then, ``pause`` s after both closed,
    the others at once (as /tmp/review/livewrite.py)."""
    datas = [p.read_bytes() for p in sources]
    for half in (0, 1):
        for source, data in zip(sources[:2], datas[:2], strict=True):
            cut = len(data) // 2
            with (run_dir / source.name).open('ab') as fh:
                fh.write(data[cut:] if half else data[:cut])
        time.sleep(1.2 if half == 0 else pause)
    for source, data in zip(sources[2:], datas[2:], strict=True):
        (run_dir / source.name).write_bytes(data)


class TestProcessesJoinLate:
    """Every journal present closed is not the end while processes may
    still join: the live view waits until no journal has appeared for
    a grace period (2 x --interval, at least 1 s)."""

    def test_staged_write(self, procpool_run, tmp_path, capsys):
        import threading

        sources = sorted(procpool_run['run_dir'].glob('*.jsonl'))
        assert len(sources) >= 3
        run_dir = tmp_path / 'run'
        run_dir.mkdir()
        writer = threading.Thread(target=_staged, args=(sources, run_dir, 0.6))
        writer.start()
        try:
            code = main(
                [
                    'watch',
                    str(run_dir),
                    '--interval',
                    '0.25',  # grace: 1 s, the least
                    '--timeout',
                    '60',
                ]
            )
        finally:
            writer.join()
        out = capsys.readouterr().out
        assert code == 0
        expected = _expected(procpool_run['run_dir'])
        assert _shown(out, list(expected)) == expected
        assert f'processes 0 open, {len(sources)} closed' in out
        assert 'every journal is closed' in out
