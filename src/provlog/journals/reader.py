"""Reading journals back: one file in, its header and events out.

The reader accepts nothing but JSON objects: no pickle, no eval. A damaged
line is an error naming the file and line, unless ``lenient`` is set, in
which case it is skipped and counted. An unfinished last line (the writer
was killed mid-write) is not damage and is dropped silently but counted.

Reading is bounded: only regular files are opened (a FIFO, a device or a
symlink to one is refused before anything blocks), the file is read in
blocks with runs of blank lines skipped without building a line for each,
and a line longer than :data:`MAX_LINE_BYTES` is damage. Memory is the
events kept plus one line, never the size of the file.

Each event of a known kind is checked against the line format of
:mod:`provlog.capture.encoder`: ``t`` is a finite number of seconds between
1970 and 9999, and each known field has its type (a list for ``args``, an
object for ``kwargs``, ``result``, ``callee``...). A line that breaks the
format is damage like any other.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any
from typing import BinaryIO

import orjson

from provlog.capture.journal import FORMAT_VERSION
from provlog.vocab import ACTION_KINDS
from provlog.vocab import AGENT
from provlog.vocab import CLOSE
from provlog.vocab import DROPPED
from provlog.vocab import EXEC_AGENT
from provlog.vocab import EXECUTE_EXCEPTION
from provlog.vocab import EXECUTE_START
from provlog.vocab import JOURNAL
from provlog.vocab import LOST
from provlog.vocab import SENDING
from provlog.vocab import START
from provlog.vocab import SUCCESS

__all__ = [
    'MAX_LINE_BYTES',
    'MAX_TIME',
    'JournalError',
    'JournalStream',
    'ReadResult',
    'read_journal',
    'show',
]

#: The longest journal line read (64 MiB); a longer one is damage.
MAX_LINE_BYTES = 64 * 1024 * 1024
#: The latest time accepted: 9999-12-31T23:59:59Z, in seconds.
MAX_TIME = 253_402_300_799.0
_BLOCK = 1024 * 1024
_NOT_BLANK = re.compile(rb'[^ \t\n\r\x0b\x0c]')
_TOO_LONG = object()


class JournalError(ValueError):
    """A journal that cannot be read; the message names file and line."""


def show(name: object) -> str:
    """``name`` for a one-line message: control characters escaped.

    A file name may hold a newline or a terminal escape; the message that
    names it must still be one line, and say exactly which file.
    """
    text = str(name)
    if text.isprintable():
        return text
    return ''.join(c if c.isprintable() else repr(c)[1:-1] for c in text)


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


def _open(path: Path) -> BinaryIO:
    """Open ``path`` for reading if it is a regular file; never block."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, 'O_CLOEXEC', 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise JournalError(
            f'{show(path)}: cannot read: {exc.strerror}'
        ) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = 'a directory' if stat.S_ISDIR(mode) else 'not a file'
            if stat.S_ISFIFO(mode):
                kind = 'a FIFO'
            elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                kind = 'a device'
            elif stat.S_ISSOCK(mode):
                kind = 'a socket'
            raise JournalError(
                f'{show(path)}: {kind}, not a regular file; refused',
            )
        os.set_blocking(fd, True)
        return os.fdopen(fd, 'rb', buffering=0)
    except BaseException:
        os.close(fd)
        raise


def _lines(  # noqa: C901 - one loop over blocks, one branch per case
    fh: BinaryIO,
    max_line: int = MAX_LINE_BYTES,
) -> Iterator[tuple[int, bytes | object, bool]]:
    """``(line number, line, ends with a newline)`` of each line.

    Blank lines, and the blanks that start a line, are skipped a block at
    a time; a line longer than ``max_line`` (from its first character that
    is not blank) comes as ``_TOO_LONG`` and is never held whole.
    """
    buf = bytearray()  # grows in place: a long line costs its length
    pos = 0
    lineno = 0  # lines before ``buf[pos]``
    skipping = False  # inside a line that is too long: drop to its end
    eof = False
    while not eof:
        block = fh.read(_BLOCK)
        if not block:
            eof = True
        del buf[:pos]
        buf += block
        pos = 0
        while True:
            if skipping:
                end = buf.find(b'\n', pos)
                if end < 0:
                    buf, pos = bytearray(), 0
                    break
                skipping = False
                lineno += 1
                pos = end + 1
                continue
            found = _NOT_BLANK.search(buf, pos)
            if found is None:  # blank to the end of what was read
                lineno += buf.count(b'\n', pos)
                buf, pos = bytearray(), 0
                break
            start = found.start()
            lineno += buf.count(b'\n', pos, start)
            pos = start  # leading blanks are no part of a line
            end = buf.find(b'\n', start)
            if end < 0:
                if len(buf) - pos > max_line:
                    yield lineno + 1, _TOO_LONG, True
                    skipping = True
                    buf, pos = bytearray(), 0
                    break
                if eof:  # no newline: the unfinished last write
                    yield lineno + 1, bytes(buf[pos:]), False
                    return
                break
            if end - pos > max_line:
                yield lineno + 1, _TOO_LONG, True
            else:
                yield lineno + 1, bytes(buf[pos:end]), True
            lineno += 1
            pos = end + 1


def read_journal(path: Path, *, lenient: bool = False) -> ReadResult:
    """Read one journal file.

    Args:
        path: The journal file.
        lenient: Skip and count damaged lines instead of failing.

    Returns:
        The header, the events in file order, and what was skipped.

    Raises:
        JournalError: The file is not a regular file, not a provlog
            journal, is from a newer format version, or (unless
            ``lenient``) has a damaged line.
    """
    stream = JournalStream(path, lenient=lenient)
    stream.result.events = list(stream)
    return stream.result


class JournalStream:
    """One journal read as a stream: the header at once, then each event.

    ``result`` holds the header from the start; its counts (``skipped``,
    ``closed``, ``dropped``, ``partial_tail``) are final once the events
    have been iterated to the end. Its ``events`` stay empty: memory is
    one line, whatever the length of the journal.

    Raises:
        JournalError: As :func:`read_journal`, when the header is read
            (on construction) or when a damaged line is reached.
    """

    def __init__(self, path: Path, *, lenient: bool = False) -> None:
        self._box: list[ReadResult] = []
        self._events = _read(path, lenient, self._box)
        first = next(self._events, None)
        if not self._box:
            raise JournalError(
                f'{show(path)}:1: empty file, no journal header'
            )
        self.result = self._box[0]
        self._first = first

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self._first is not None:
            first, self._first = self._first, None
            yield first
        yield from self._events


def _read(  # noqa: C901, PLR0912, PLR0915 - one pass, a branch per case
    path: Path,
    lenient: bool,
    box: list[ReadResult],
) -> Iterator[dict[str, Any]]:
    """The events of one journal; its ``ReadResult`` goes into ``box``.

    The generator stops just after the header when the header is the only
    line; the result is in ``box`` as soon as the header is read.
    """
    result: ReadResult | None = None
    where = show(path)
    # a damaged line is judged by the line after it: the writer's ``lost``
    # marker says the line was cut by a failed write (disk full), not damage
    damaged: tuple[int, str] | None = None

    def judge(next_kind: object) -> None:
        nonlocal damaged
        if damaged is None or result is None:
            return
        lineno, reason = damaged
        damaged = None
        if next_kind == LOST:
            result.partial_tail = True
        elif lenient:
            result.skipped += 1
        else:
            raise JournalError(f'{where}:{lineno}: {reason}')

    with _open(path) as fh:
        try:
            for lineno, raw, complete in _lines(fh):
                try:
                    if raw is _TOO_LONG:
                        raise TypeError(
                            f'line longer than {MAX_LINE_BYTES} bytes'
                        )
                    obj = orjson.loads(raw)  # type: ignore[arg-type]
                    if not isinstance(obj, dict):
                        raise TypeError('not a JSON object')
                except (orjson.JSONDecodeError, TypeError) as exc:
                    judge(None)
                    if not complete and result is not None:
                        result.partial_tail = True
                        continue
                    reason = show(str(exc).split('\n', 1)[0])
                    if result is None:
                        raise JournalError(
                            f'{where}:{lineno}: {reason}'
                        ) from None
                    damaged = (lineno, reason)
                    continue
                judge(obj.get('e'))
                if result is None:
                    result = ReadResult(
                        path, _check_header(where, lineno, obj)
                    )
                    box.append(result)
                    continue
                kind = obj.get('e')
                if kind == JOURNAL:  # the same process initialised again
                    result.closed = False
                    continue
                problem = _check_event(kind, obj)
                if problem is not None:
                    if not lenient:
                        raise JournalError(f'{where}:{lineno}: {problem}')
                    result.skipped += 1
                    continue
                if kind == CLOSE:
                    result.closed = True
                elif kind in _COUNTED:
                    result.dropped += obj.get('n', 0)
                obj['_line'] = lineno
                yield obj
            judge(None)
        except OSError as exc:
            raise JournalError(
                f'{where}: cannot read: {exc.strerror}'
            ) from None


def _check_header(
    where: str, lineno: int, obj: dict[str, Any]
) -> dict[str, Any]:
    if obj.get('e') != JOURNAL:
        raise JournalError(f'{where}:{lineno}: not a provlog journal header')
    version = obj.get('v')
    if not isinstance(version, int):
        raise JournalError(f'{where}:{lineno}: header has no format version')
    if version > FORMAT_VERSION:
        raise JournalError(
            f'{where}:{lineno}: journal format version {version} is newer '
            f'than this provlog reads ({FORMAT_VERSION}); upgrade provlog',
        )
    for key in ('run', 'process'):
        if not isinstance(obj.get(key), str):
            raise JournalError(f'{where}:{lineno}: header has no {key!r}')
    # every view names a process host:pid: they must be what they say
    host, pid = obj.get('host'), obj.get('pid')
    if host is not None and not isinstance(host, str):
        raise JournalError(f'{where}:{lineno}: header host is not a string')
    if pid is not None and (not isinstance(pid, int) or isinstance(pid, bool)):
        raise JournalError(f'{where}:{lineno}: header pid is not an integer')
    problem = _check_time(obj, required=False)
    if problem is not None:
        raise JournalError(f'{where}:{lineno}: {problem}')
    return obj


# ------------------------------------------------------------- line format

_NONE = type(None)
_OBJ = ((dict,), 'an object')
_OBJ_OR_NULL = ((dict, _NONE), 'an object or null')
_STR_OR_NULL = ((str, _NONE), 'a string or null')
_LIST = ((list,), 'a list')
_Rule = tuple[str, tuple[tuple[type, ...], str]]

#: Per kind: each field it may have, and what that field must be.
_FIELDS: dict[str, tuple[_Rule, ...]] = {
    AGENT: (
        ('role', _STR_OR_NULL),
        ('name', _STR_OR_NULL),
        ('class', _STR_OR_NULL),
    ),
    START: (
        ('action', _STR_OR_NULL),
        ('callee', _OBJ_OR_NULL),
        ('parent', _STR_OR_NULL),
        ('caller', _OBJ_OR_NULL),
        ('args', _LIST),
        ('kwargs', _OBJ),
    ),
    SENDING: (('src', _OBJ_OR_NULL),),
    SUCCESS: (('result', _OBJ),),
    EXECUTE_START: (('action', _STR_OR_NULL), ('agent', _OBJ_OR_NULL)),
    EXEC_AGENT: (('action', _STR_OR_NULL), ('agent', _OBJ_OR_NULL)),
    EXECUTE_EXCEPTION: (('error', _OBJ_OR_NULL),),
}
_IDENT_FIELDS = frozenset({'callee', 'caller', 'src', 'agent'})
_ERROR_FIELDS = ('type', 'message', 'traceback')
_COUNTED = frozenset({DROPPED, LOST})


def _check_time(obj: dict[str, Any], *, required: bool) -> str | None:
    if 't' not in obj:
        return 'event has no time "t"' if required else None
    t = obj['t']
    if t.__class__ is not float and (
        isinstance(t, bool) or not isinstance(t, (int, float))
    ):
        return f'time "t" {_short(t)} is not a number'
    if not 0 <= t <= MAX_TIME:  # NaN fails this too
        return (
            f'time "t" {_short(t)} is not between 1970 and 9999 '
            '(seconds since the epoch)'
        )
    return None


def _short(value: object) -> str:
    text = show(repr(value)) if isinstance(value, str) else show(value)
    return text if len(text) <= 60 else text[:59] + '\u2026'  # noqa: PLR2004


def _check_event(  # noqa: C901, PLR0911, PLR0912 - one check per field
    kind: object, obj: dict[str, Any]
) -> str | None:
    """What is wrong with one event line, or ``None``."""
    if not isinstance(kind, str):
        return 'line has no event kind'
    action = kind in ACTION_KINDS
    problem = _check_time(obj, required=action)
    if problem is not None:
        return problem
    if action and 'tag' not in obj:
        return f'{kind} event has no "tag"'
    if kind in _COUNTED:
        n = obj.get('n')
        if n.__class__ is not int or n < 0:
            return f'{kind} event count "n" {_short(n)} is not a count'
        return None
    for name, (types, want) in _FIELDS.get(kind, ()):
        if name not in obj:
            continue
        value = obj[name]
        if not isinstance(value, types):
            return f'{kind} field {name!r} is {_short(value)}, not {want}'
        if (
            name in _IDENT_FIELDS
            and isinstance(value, dict)
            and value.get('uid').__class__ is not str
        ):
            return f'{kind} field {name!r} has no "uid" string'
    if kind == START:
        for n, desc in enumerate(obj.get('args', ())):
            problem = _check_value(desc)
            if problem is not None:
                return f'start field "args"[{n}] {problem}'
        for key, desc in obj.get('kwargs', {}).items():
            problem = _check_value(desc)
            if problem is not None:
                return f'start field "kwargs"[{_short(key)}] {problem}'
    elif kind == SUCCESS and 'result' in obj:
        problem = _check_value(obj['result'])
        if problem is not None:
            return f'success field "result" {problem}'
    elif kind == EXECUTE_EXCEPTION and isinstance(obj.get('error'), dict):
        for key in _ERROR_FIELDS:
            got = obj['error'].get(key)
            if got is not None and not isinstance(got, str):
                return f'execute_exception error {key!r} is not a string'
    return None


def _check_value(desc: object) -> str | None:
    """What is wrong with a value description, or ``None``.

    Members are walked with a stack: no recursion, at any depth.
    """
    if isinstance(desc, dict) and 'members' not in desc:
        return None  # the common case, at once
    stack = [desc]
    while stack:
        item = stack.pop()
        if not isinstance(item, dict):
            return f'is {_short(item)}, not a value description (an object)'
        members = item.get('members')
        if members is None:
            continue
        if not isinstance(members, list):
            return 'has "members" that is not a list'
        for member in members:
            if not (isinstance(member, list) and len(member) == 2):  # noqa: PLR2004
                return 'has a member that is not a [key, value] pair'
            stack.append(member[1])
    return None
