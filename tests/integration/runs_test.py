"""``provlog runs`` and naming a run by ``latest`` or an id prefix.

Both session runs (the process pool and the local one) are copied into one
folder; the catalogue must list them newest first with the counts
``stats`` gives, show a damaged run as a row, and reuse its cached summary
until a journal changes. Every command resolves ``DIR/latest`` and
``DIR/<prefix>`` through ``merge.find_run``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest

import provlog
import provlog.runs
from provlog.cli import main
from provlog.runs import SUMMARY_FILE


@pytest.fixture
def folder(
    procpool_run: dict[str, Any], local_run: dict[str, Any], tmp_path: Path
) -> Path:
    """Both runs, copied into one folder."""
    out = tmp_path / 'prov-runs'
    for run in (procpool_run, local_run):
        shutil.copytree(run['run_dir'], out / run['run_dir'].name)
    return out


def _start(run_dir: Path) -> float:
    """The earliest header time, read here independently of provlog."""
    return min(
        orjson.loads(p.read_bytes().split(b'\n', 1)[0])['t']
        for p in run_dir.glob('*.jsonl')
    )


def _script(run_dir: Path) -> str:
    """The earliest header's script (or argv0), read independently."""
    headers = [
        orjson.loads(p.read_bytes().split(b'\n', 1)[0])
        for p in run_dir.glob('*.jsonl')
    ]
    first = min(headers, key=lambda h: h['t'])
    return str(first.get('script') or first.get('argv0'))


def _newest_first(folder: Path) -> list[Path]:
    runs = [p for p in folder.iterdir() if p.is_dir()]
    return sorted(runs, key=_start, reverse=True)


def _prefix(folder: Path, run: Path) -> str:
    """The shortest prefix of ``run``'s name that no other run shares."""
    others = [p.name for p in folder.iterdir() if p != run]
    for n in range(1, len(run.name) + 1):
        if not any(o.startswith(run.name[:n]) for o in others):
            return run.name[:n]
    raise AssertionError(run)


def _runs_json(folder: Path, capsys: pytest.CaptureFixture[str]) -> Any:
    assert main(['runs', str(folder), '--json']) == 0
    return orjson.loads(capsys.readouterr().out)


class TestListsBoth:
    """The catalogue's counts are exactly what ``stats`` says, newest first."""

    def test_rows(
        self, folder: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        rows = _runs_json(folder, capsys)
        expected = _newest_first(folder)
        assert [r['dir'] for r in rows] == [str(p) for p in expected]
        for row, run in zip(rows, expected, strict=True):
            stats = provlog.load(run).stats()
            assert row['error'] is None
            assert row['run'] == stats['run']
            assert row['actions'] == stats['actions']
            assert row['states'] == stats['states']
            assert row['agents'] == stats['agents']
            assert row['processes'] == stats['processes']
            assert row['complete'] == stats['complete']
            assert row['hosts']
            assert row['script'] == _script(run)
            assert row['start'] == _start(run)
            assert row['duration'] > 0

    def test_table(
        self, folder: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert main(['runs', str(folder)]) == 0
        out = capsys.readouterr().out
        lines = [ln for ln in out.splitlines() if ln.strip()]
        assert len(lines) == 3  # the header and one row per run
        for line, run in zip(lines[1:], _newest_first(folder), strict=True):
            assert line.startswith(run.name[:8])


class TestDamagedRun:
    """A run that cannot be read is a row with its error, not a crash."""

    def test_error_row(
        self, folder: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        bad = folder / 'damaged'
        bad.mkdir()
        (bad / 'x.jsonl').write_bytes(b'{"e":"nonsense"}\n')
        rows = _runs_json(folder, capsys)
        assert len(rows) == 3
        (row,) = [r for r in rows if r['run'] == 'damaged']
        assert row['error']
        assert '\n' not in row['error']
        assert 'x.jsonl' in row['error']
        assert row['actions'] is None
        assert sum(r['error'] is None for r in rows) == 2


class TestPrefix:
    """A unique id prefix names a run in every command."""

    def test_commands(
        self,
        folder: Path,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        for run in folder.iterdir():
            named = str(folder / _prefix(folder, run))
            assert main(['stats', named, '--json']) == 0
            stats = orjson.loads(capsys.readouterr().out)
            assert stats == provlog.load(run).stats()
            page = tmp_path / f'{run.name}.html'
            assert main(['report', named, '-o', str(page)]) == 0
            assert page.stat().st_size > 0
            doc = tmp_path / f'{run.name}.json'
            assert main(['export', named, '-o', str(doc)]) == 0
            assert run.name in doc.read_text()
            capsys.readouterr()


class TestBadNames:
    """An ambiguous or unknown prefix is one line and exit 2."""

    def test_ambiguous(
        self, folder: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        run = _newest_first(folder)[0]
        shutil.copytree(run, folder / f'{run.name[:4]}-again')
        assert main(['stats', str(folder / run.name[:4])]) == 2
        err = capsys.readouterr().err
        assert err.count('\n') == 1
        assert 'matches 2 runs' in err
        assert run.name in err
        assert f'{run.name[:4]}-again' in err

    def test_missing(
        self, folder: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert main(['report', str(folder / 'zzzz')]) == 2
        err = capsys.readouterr().err
        assert err.count('\n') == 1
        assert str(folder) in err
        assert "'zzzz'" in err


class TestLatest:
    """``latest`` is the run that started last, in commands and watch."""

    def test_stats(
        self, folder: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        newest = _newest_first(folder)[0]
        assert main(['stats', str(folder / 'latest'), '--json']) == 0
        stats = orjson.loads(capsys.readouterr().out)
        assert stats['run'] == newest.name

    def test_watch(
        self, folder: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        newest = _newest_first(folder)[0]
        assert main(['watch', str(folder / 'latest'), '--once']) == 0
        assert newest.name in capsys.readouterr().out


class TestSummaryCache:
    """Each run is merged once, and again only when a journal changes."""

    def test_cache(
        self,
        folder: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        merged: list[Path] = []
        real = provlog.runs.load

        def spy(path: Path, **kwargs: Any) -> provlog.RunGraph:
            merged.append(Path(path))
            return real(path, **kwargs)

        monkeypatch.setattr(provlog.runs, 'load', spy)
        first = _runs_json(folder, capsys)
        assert len(merged) == 2
        assert all((p / SUMMARY_FILE).is_file() for p in folder.iterdir())
        assert _runs_json(folder, capsys) == first
        assert len(merged) == 2  # unchanged journals: the cache answers
        run = _newest_first(folder)[0]
        journal = sorted(run.glob('*.jsonl'))[0]
        with journal.open('ab') as fh:
            fh.write(b'{"e":"future-kind","t":1.0}\n')
        _runs_json(folder, capsys)
        assert merged[2:] == [run]  # only the grown run is merged again
        # the read side ignores the cache file
        assert provlog.load(run).stats()['run'] == run.name


class TestDamagedRunTable:
    """People see a damaged run's error whole, on a line of its own."""

    def test_error_line(
        self, folder: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        bad = folder / 'damaged'
        bad.mkdir()
        (bad / 'x.jsonl').write_bytes(b'{"e":"nonsense"}\n')
        assert main(['runs', str(folder)]) == 0
        lines = capsys.readouterr().out.splitlines()
        (line,) = [ln for ln in lines if ln.startswith('damaged: ')]
        assert line.endswith('x.jsonl:1: not a provlog journal header')
