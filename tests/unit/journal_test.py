"""Journal files: written whole lines, read back strictly or leniently."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from provlog.capture.journal import FORMAT_VERSION
from provlog.capture.journal import JournalWriter
from provlog.journals.reader import JournalError
from provlog.journals.reader import read_journal

HEADER = {'e': 'journal', 'v': FORMAT_VERSION, 'run': 'r', 'process': 'p'}


def _identity(item: Any) -> dict[str, Any]:
    return dict(item)


def _write(path: Path, *lines: bytes) -> None:
    path.write_bytes(b''.join(lines))


def _line(obj: dict[str, Any]) -> bytes:
    return orjson.dumps(obj) + b'\n'


class TestWriter:
    """The writer appends events and a closing line, off the caller's thread."""

    def test_roundtrip(self, tmp_path):
        path = tmp_path / 'j.jsonl'
        writer = JournalWriter(path, HEADER, _identity, flush_interval=0.01)
        for i in range(100):
            writer.put({'e': 'x', 'i': i})
        assert writer.flush(5)
        assert len(read_journal(path).events) == 100
        writer.close()
        result = read_journal(path)
        assert result.closed
        assert [e['i'] for e in result.events if e['e'] == 'x'] == list(
            range(100)
        )

    def test_drop_when_full_bounded_and_counts_drops(self, tmp_path):
        path = tmp_path / 'j.jsonl'
        writer = JournalWriter(
            path,
            HEADER,
            _identity,
            flush_interval=10,
            max_pending=10,
            drop_when_full=True,
        )
        for i in range(50):
            writer.put({'e': 'x', 'i': i})
        writer.close()
        result = read_journal(path)
        assert result.dropped == 40
        assert sum(e['e'] == 'x' for e in result.events) == 10

    def test_full_queue_waits_for_the_writer_by_default(self, tmp_path):
        path = tmp_path / 'j.jsonl'
        writer = JournalWriter(
            path,
            HEADER,
            _identity,
            flush_interval=10,  # only a full queue wakes the writer early
            max_pending=10,
        )
        for i in range(500):
            writer.put({'e': 'x', 'i': i})
        writer.close()
        result = read_journal(path)
        assert result.dropped == 0
        assert [e['i'] for e in result.events if e['e'] == 'x'] == list(
            range(500)
        )
        assert result.events[-1]['waited'] > 0

    def test_stuck_writer_bounds_the_wait_then_counts(self, tmp_path):
        import threading
        import time

        release = threading.Event()

        def stuck(item):
            release.wait(30)
            return item

        path = tmp_path / 'j.jsonl'
        writer = JournalWriter(
            path,
            HEADER,
            stuck,
            flush_interval=0.01,
            max_pending=5,
            max_wait=0.3,
        )
        began = time.monotonic()
        for i in range(40):
            writer.put({'e': 'x', 'i': i})
        elapsed = time.monotonic() - began
        release.set()
        writer.close()
        # one bounded wait, not one per event
        assert 0.25 < elapsed < 2
        result = read_journal(path)
        kept = sum(e['e'] == 'x' for e in result.events)
        assert kept + result.dropped == 40
        assert result.dropped > 0

    def test_unwritable_reports_once_on_stderr(self, tmp_path, capfd):
        path = tmp_path / 'j.jsonl'
        writer = JournalWriter(path, HEADER, _identity, flush_interval=0.01)
        import os

        os.close(writer._fd)  # the disk goes away under the writer
        writer.put({'e': 'x'})
        writer.put({'e': 'y'})
        writer.flush(2)
        writer.close()
        err = capfd.readouterr().err
        assert err.count('provlog: cannot write journal') == 1


class TestReader:
    """Damage is an error naming file and line, or skipped with --lenient."""

    def test_partial_last_line_is_not_damage(self, tmp_path):
        path = tmp_path / 'j.jsonl'
        _write(path, _line(HEADER), _line({'e': 'x'}), b'{"e": "y", "ta')
        result = read_journal(path)
        assert len(result.events) == 1
        assert result.partial_tail

    def test_damaged_line_names_file_and_line(self, tmp_path):
        path = tmp_path / 'j.jsonl'
        _write(path, _line(HEADER), b'not json\n', _line({'e': 'x'}))
        with pytest.raises(JournalError, match=r'j\.jsonl:2:'):
            read_journal(path)
        result = read_journal(path, lenient=True)
        assert result.skipped == 1
        assert len(result.events) == 1

    def test_invalid_utf8(self, tmp_path):
        path = tmp_path / 'j.jsonl'
        _write(path, _line(HEADER), b'{"e": "\xff"}\n')
        with pytest.raises(JournalError, match=r':2:'):
            read_journal(path)

    def test_newer_version(self, tmp_path):
        path = tmp_path / 'j.jsonl'
        _write(path, _line({**HEADER, 'v': FORMAT_VERSION + 1}))
        with pytest.raises(JournalError, match='newer'):
            read_journal(path)

    def test_not_a_journal(self, tmp_path):
        path = tmp_path / 'j.jsonl'
        _write(path, _line({'hello': 1}))
        with pytest.raises(JournalError, match='not a provlog journal'):
            read_journal(path)

    def test_empty(self, tmp_path):
        path = tmp_path / 'j.jsonl'
        path.write_bytes(b'')
        with pytest.raises(JournalError, match='empty'):
            read_journal(path)
