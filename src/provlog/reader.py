"""Reading journals back: one file in, its header and events out.

The reader accepts nothing but JSON objects: no pickle, no eval. A damaged
line is an error naming the file and line, unless ``lenient`` is set, in
which case it is skipped and counted. An unfinished last line (the writer
was killed mid-write) is not damage and is dropped silently but counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import orjson

from provlog.journal import FORMAT_VERSION

__all__ = ['JournalError', 'ReadResult', 'read_journal']


class JournalError(ValueError):
    """A journal that cannot be read; the message names file and line."""


@dataclass
class ReadResult:
    """What one journal file held."""

    path: Path
    header: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0
    partial_tail: bool = False
    closed: bool = False
    dropped: int = 0


def _lines(path: Path) -> Iterator[tuple[int, bytes, bool]]:
    data = path.read_bytes()
    lines = data.split(b'\n')
    last = len(lines) - 1
    for n, raw in enumerate(lines, start=1):
        if n - 1 == last:
            if raw.strip():
                yield n, raw, False  # no newline: unfinished last write
            return
        yield n, raw, True


def read_journal(  # noqa: C901, PLR0912 - one pass, one branch per case
    path: Path,
    *,
    lenient: bool = False,
) -> ReadResult:
    """Read one journal file.

    Args:
        path: The journal file.
        lenient: Skip and count damaged lines instead of failing.

    Returns:
        The header, the events in file order, and what was skipped.

    Raises:
        JournalError: The file is not a provlog journal, is from a newer
            format version, or (unless ``lenient``) has a damaged line.
    """
    result: ReadResult | None = None
    try:
        lines = list(_lines(path))
    except OSError as exc:
        raise JournalError(f'{path}: cannot read: {exc.strerror}') from exc
    for lineno, raw, complete in lines:
        if not raw.strip():
            continue
        try:
            obj = orjson.loads(raw)
            if not isinstance(obj, dict):
                raise TypeError('not a JSON object')
        except (orjson.JSONDecodeError, TypeError) as exc:
            if not complete and result is not None:
                result.partial_tail = True
                continue
            if result is None or not lenient:
                reason = str(exc).split('\n', 1)[0]
                raise JournalError(f'{path}:{lineno}: {reason}') from exc
            result.skipped += 1
            continue
        if result is None:
            result = ReadResult(path, _check_header(path, lineno, obj))
            continue
        kind = obj.get('e')
        if kind == 'journal':  # the same process initialised again
            result.closed = False
            continue
        if not isinstance(kind, str):
            if not lenient:
                raise JournalError(f'{path}:{lineno}: line has no event kind')
            result.skipped += 1
            continue
        if kind == 'close':
            result.closed = True
        elif kind in {'dropped', 'lost'}:
            count = obj.get('n', 0)
            result.dropped += count if isinstance(count, int) else 0
        obj['_line'] = lineno
        result.events.append(obj)
    if result is None:
        raise JournalError(f'{path}:1: empty file, no journal header')
    return result


def _check_header(
    path: Path, lineno: int, obj: dict[str, Any]
) -> dict[str, Any]:
    if obj.get('e') != 'journal':
        raise JournalError(f'{path}:{lineno}: not a provlog journal header')
    version = obj.get('v')
    if not isinstance(version, int):
        raise JournalError(f'{path}:{lineno}: header has no format version')
    if version > FORMAT_VERSION:
        raise JournalError(
            f'{path}:{lineno}: journal format version {version} is newer '
            f'than this provlog reads ({FORMAT_VERSION}); upgrade provlog',
        )
    for key in ('run', 'process'):
        if not isinstance(obj.get(key), str):
            raise JournalError(f'{path}:{lineno}: header has no {key!r}')
    return obj
