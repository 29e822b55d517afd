"""The block reader: the same lines and numbers as a whole-file split."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from provlog.journals import reader
from provlog.journals.reader import _lines
from provlog.journals.reader import _TOO_LONG
from provlog.journals.reader import show


def _naive(data: bytes, max_line: int) -> list[tuple[int, object, bool]]:
    """What the reader did before: split the whole file at once.

    Blanks that start a line are no part of it (JSON ignores them).
    """
    parts = data.split(b'\n')
    out: list[tuple[int, object, bool]] = []
    for n, whole in enumerate(parts, start=1):
        last = n == len(parts)
        raw = whole.lstrip(b' \t\r\x0b\x0c')
        if not raw:
            continue
        if len(raw) > max_line:
            out.append((n, _TOO_LONG, True))
            if last:
                break
            continue
        out.append((n, raw, not last))
    return out


_PIECES = st.sampled_from(
    [b'\n', b'\n\n\n', b' ', b'\t \r\n', b'{"e":1}', b'x' * 9, b'ab\n', b'']
)


class TestBlocks:
    """Block edges, blank runs and long lines never shift a line number."""

    @settings(max_examples=300, deadline=None)
    @given(
        pieces=st.lists(_PIECES, max_size=40),
        block=st.integers(min_value=1, max_value=16),
        max_line=st.integers(min_value=4, max_value=30),
    )
    def test_same_as_split(self, pieces, block, max_line):
        data = b''.join(pieces)
        old = reader._BLOCK
        reader._BLOCK = block
        try:
            got = list(_lines(io.BytesIO(data), max_line))
        finally:
            reader._BLOCK = old
        assert got == _naive(data, max_line)

    @pytest.mark.parametrize('block', (1, 3, 1024 * 1024))
    def test_blank_runs_counted(self, monkeypatch, block):
        monkeypatch.setattr(reader, '_BLOCK', block)
        data = b'\n' * 100_000 + b'{"e":1}\n' + b'  \n' * 5 + b'{"e":2}'
        got = list(_lines(io.BytesIO(data)))
        assert got == [
            (100_001, b'{"e":1}', True),
            (100_007, b'{"e":2}', False),
        ]


class TestShow:
    """Names in messages stay on one line and say which file exactly."""

    def test_plain_name_unchanged(self):
        assert show('runs/a b/é.jsonl') == 'runs/a b/é.jsonl'

    def test_control_characters_escaped(self):
        assert show('a\nb\x1b[2J\udcff') == 'a\\nb\\x1b[2J\\udcff'
