"""A run's merged form, kept on disk next to its journals.

After a merge, :func:`save` writes what it found to
``<run>/.provlog-cache/merged.lines`` (``merged-lenient.lines`` for a
``--lenient`` merge), and :func:`load` gives it back to the next command
while every journal has the name, size and modification time it had, and
the same version of provlog reads it. A journal that grows, appears or
goes, another provlog, a damaged or foreign file, a folder that cannot be
written: the run is merged again, as without it.

The file is JSON (never pickle: a run folder can be hostile, and nothing
read from it is executed), in lines, in the order :func:`save` writes
them: the head (format, provlog's version, ``lenient``, how many actions);
the key (every journal's ``[name, size, mtime_ns]``); one line per
action, its lines by kind and their hosts; the run (its id, processes,
agents, launches and lifetimes, the identities the calls name); an index
of the actions (tag, the kinds of line each has, its first time, the
length of its line); and a trailer of two big-endian 64-bit offsets,
where the run and the index begin. :func:`load` reads the head and the
key, the trailer, then the index and the run where it says (each read
bounded by the journals' size and the count of actions), and the first
line of each journal, whose run id the stored one must be. An action's
line is read and checked, as the journals' lines are checked, only when
that action's lines are first asked for: ``stats`` reads none; ``why``
the actions on its target's lineage.

A journal is taken as settled when its modification time is more than
:data:`SETTLED` seconds old, so that a later write cannot give it the
same time again (file systems keep coarse clocks: FAT's is 2 s): a run
still being written is not stored, and is merged each time.

A writer holds an exclusive ``flock`` on its temporary file until it has
renamed it into place; a temporary file that nobody holds is a killed
writer's, and :func:`save` and :func:`load` remove it.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import stat
import struct
import sys
import tempfile
import time
import weakref
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from typing import BinaryIO
from typing import Protocol

import orjson

from provlog._version import __version__
from provlog.actions.process import Process
from provlog.actions.storedcheck import action_line
from provlog.actions.storedcheck import DamagedError
from provlog.actions.storedcheck import KINDS
from provlog.actions.storedcheck import need
from provlog.actions.storedcheck import run_part
from provlog.actions.storedcheck import Stored
from provlog.vocab import Action

if sys.platform != 'win32':
    import fcntl

__all__ = [
    'CACHE_DIR',
    'FORMAT',
    'SETTLED',
    'Merged',
    'Stored',
    'StoredAction',
    'load',
    'save',
    'transient',
]

#: The folder, inside the run folder, that holds the merged form.
CACHE_DIR = '.provlog-cache'
#: The layout's version: a file of another version is merged again (as
#: is one written by another version of provlog).
FORMAT = 2
#: Seconds since a journal last changed before its run is stored: at
#: least the coarsest clock of a file system it may be on (FAT: 2 s).
SETTLED = 2.0
_BIT = {kind: 1 << n for n, kind in enumerate(KINDS)}
#: The longest head line read (format, version, lenient, count).
_HEAD_BYTES = 4096
#: The longest journal header read for the run id (a header is a line of
#: some 200 bytes; a longer one means the run is merged again).
_HEADER_BYTES = 1 << 16
#: What the journal reader skips before a line.
_BLANKS = b' \t\n\r\x0b\x0c'
#: Bytes of the actions' lines and of the run, at most, per byte of the
#: journals: all of it comes from their lines (stored, they take some
#: 1.3 times as much; more only if they are hostile, and then the run
#: is merged each time).
_GROWTH = 4
#: ... plus this much, and this much per journal (its name, its process).
_SLACK = 1 << 20
_PER_JOURNAL = 1 << 12
#: Bytes of the index per action, at most (a tag, a float, two ints).
_PER_ACTION = 128
#: The most read in one go: an index or a run part above it is damage.
_MOST = 1 << 31
_TMP = '.tmp-'
#: Seconds after which a temporary file is taken as a killed writer's,
#: where the file system has no locks to tell.
_STRAY_AGE = 3600.0
#: The file's last bytes: where the run and the index begin.
_TRAILER = struct.Struct('>QQ')

Key = list[list[Any]]


class Merged(Protocol):
    """What :func:`save` stores: a :class:`~.merge.MergedRun`.

    A protocol, not the class, since :mod:`~.merge` imports this module.
    """

    run_id: str
    actions: dict[str, Action]
    agents: dict[str, dict[str, Any]]
    processes: dict[str, Process]
    forwarded: set[str]
    launches: dict[str, dict[str, Any]]
    lifecycles: dict[str, dict[str, dict[str, Any]]]

    def call_idents(self) -> list[dict[str, Any]]:
        """The identities the calls name, the first of each ``uid``."""


def _file(run_dir: Path, lenient: bool) -> Path:
    name = 'merged-lenient.lines' if lenient else 'merged.lines'
    return run_dir / CACHE_DIR / name


# ------------------------------------------------------------------ write


def save(run_dir: Path, key: Key, lenient: bool, run: Merged) -> bool:
    """Store the merged ``run`` of the journals ``key``.

    ``key`` must be what the journals were before and after the merge
    (:func:`provlog.actions.merge.journal_key`). Only settled journals
    are stored; any failure (a read-only folder, a full disk) only means
    it is not stored.

    Returns:
        Whether it was stored.
    """
    if sys.platform == 'win32':
        return False  # no positional reads: load could not use it
    settled = time.time_ns() - int(SETTLED * 1e9)
    if not key or any(mtime >= settled for _, _, mtime in key):
        return False
    try:
        folder = run_dir / CACHE_DIR
        if not folder.is_dir():
            folder.mkdir()
        if folder.is_symlink():
            return False  # write nowhere a run folder points to
        _drop_strays(folder)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=_TMP)
        try:
            # held until renamed: a temporary file nobody holds is a
            # killed writer's (a sweep between mkstemp and here removes
            # this one, and the rename below fails: not stored, no harm)
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            with open(fd, 'wb', closefd=False) as fh:
                _write(fh, run, key, lenient)
            mode = (run_dir / key[0][0]).stat().st_mode
            os.fchmod(fd, stat.S_IMODE(mode) & 0o666)
            os.replace(tmp, _file(run_dir, lenient))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        finally:
            os.close(fd)
    except (OSError, TypeError, ValueError, MemoryError):
        return False  # read-only, full, or not JSON: merged next time too
    return True


def _drop_strays(folder: Path) -> None:
    """Remove the temporary files no writer holds: killed writers' files.

    Where the file system has no locks, only those an hour old or more.
    Nothing is followed: not a symlinked folder, nor a symlinked file.
    """
    if sys.platform == 'win32':
        return
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        dir_fd = os.open(folder, flags | os.O_DIRECTORY)
    except OSError:
        return  # none yet, a symlink, or not a folder
    try:
        names = [n for n in os.listdir(dir_fd) if n.startswith(_TMP)]
        for name in names:
            with contextlib.suppress(OSError):
                fd = os.open(name, flags | os.O_NONBLOCK, dir_fd=dir_fd)
                try:
                    if _unheld(fd):
                        os.unlink(name, dir_fd=dir_fd)
                finally:
                    os.close(fd)
    except OSError:
        pass  # cannot be listed: nothing removed
    finally:
        os.close(dir_fd)


def _unheld(fd: int) -> bool:
    """Whether the temporary file ``fd`` is a killed writer's."""
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        return False  # not one of ours
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False  # a writer holds it
    except OSError:  # no locks here: only by its age
        return os.fstat(fd).st_mtime < time.time() - _STRAY_AGE
    return True


def _write(fh: BinaryIO, run: Merged, key: Key, lenient: bool) -> None:
    """The head, the key, each action's line, the run, index and trailer."""
    head = {
        'format': FORMAT,
        'provlog': __version__,
        'lenient': lenient,
        'actions': len(run.actions),
    }
    fh.write(orjson.dumps(head) + b'\n' + orjson.dumps(key) + b'\n')
    actions = run.actions.values()
    sizes = []
    for action in actions:
        line = orjson.dumps([action.events, action.hosts]) + b'\n'
        fh.write(line)
        sizes.append(len(line))
    about = fh.tell()
    fh.write(
        orjson.dumps(
            {
                'run': run.run_id,
                'agents': run.agents,
                'processes': list(run.processes.values()),
                'forwarded': sorted(run.forwarded),
                'launches': run.launches,
                'lifecycles': run.lifecycles,
                'idents': run.call_idents(),
            }
        )
        + b'\n'
    )
    index = fh.tell()
    fh.write(
        orjson.dumps(
            {
                'tags': list(run.actions),
                'kinds': [_mask(a.kinds) for a in actions],
                'first': [a.first_time for a in actions],
                'sizes': sizes,
            }
        )
        + b'\n'
    )
    fh.write(_TRAILER.pack(about, index))


def _mask(kinds: Iterable[str]) -> int:
    return sum(_BIT[k] for k in kinds)


# ------------------------------------------------------------------- read


#: Gives every action of the run merged again (the fallback for a line
#: found damaged after the stored form was taken).
Remerge = Callable[[], dict[str, Action]]
#: What a damaged or hostile file can raise as it is read and checked.
_DAMAGE = (
    OSError,
    ValueError,
    TypeError,
    KeyError,
    struct.error,
    MemoryError,
    OverflowError,
)


def load(
    run_dir: Path, key: Key, lenient: bool, remerge: Remerge
) -> Stored | None:
    """The stored form of the run, if it is there for journals ``key``.

    ``None`` when there is none, it is for other journals, another format
    or another provlog, or it is damaged; ``remerge`` answers for an
    action whose line turns out damaged when it is read. Removes what
    killed writers left in the folder.
    """
    _drop_strays(run_dir / CACHE_DIR)
    try:
        fd = _open(_file(run_dir, lenient))
    except OSError:
        return None
    try:
        count, base = _head(fd, key, lenient)
        stored, index = _parts(fd, key, count, base)
        lines = _Lines(fd, base, index['sizes'], remerge)
        need(stored.run_id == _journals_run(run_dir, key))
    except _DAMAGE:
        os.close(fd)
        return None
    weakref.finalize(lines, os.close, fd)
    stored.actions = {
        tag: StoredAction(tag, _unmask(mask), first, lines, n)
        for n, (tag, mask, first) in enumerate(
            zip(index['tags'], index['kinds'], index['first'], strict=True)
        )
    }
    return stored


def _head(fd: int, key: Key, lenient: bool) -> tuple[int, int]:
    """How many actions, and where their lines begin, if it is for ``key``.

    Raises:
        DamagedError: It is not: another format, provlog, or journals.
    """
    with open(fd, 'rb', closefd=False) as fh:
        head = orjson.loads(fh.readline(_HEAD_BYTES))
        need(
            isinstance(head, dict)
            and head.get('format') == FORMAT
            and head.get('provlog') == __version__
            and head.get('lenient') is lenient
        )
        count = head['actions']
        need(type(count) is int and count >= 0)
        want = orjson.dumps(key) + b'\n'
        need(fh.readline(len(want)) == want)  # no more read than it takes
        return count, fh.tell()


def _parts(
    fd: int, key: Key, count: int, base: int
) -> tuple[Stored, dict[str, Any]]:
    """The run and the index, each read only if its size is sane.

    Each is bounded before it is read, whatever the trailer says (a
    sparse file can claim terabytes): the actions' lines and the run by
    the journals' size, the index by the count of actions, both by
    :data:`_MOST`.

    Raises:
        DamagedError: They are not what :func:`save` writes.
    """
    size = os.fstat(fd).st_size
    about, at = _TRAILER.unpack(
        os.pread(fd, _TRAILER.size, size - _TRAILER.size)
    )
    need(base <= about < at < size - _TRAILER.size)
    room = (
        _GROWTH * sum(journal[1] for journal in key)
        + _SLACK
        + _PER_JOURNAL * len(key)
    )
    index_size = size - _TRAILER.size - at
    need(
        2 * count <= about - base <= room  # each line two bytes or more
        and at - about <= min(room, _MOST)
        and index_size <= min(_PER_ACTION * count + _SLACK, _MOST)
    )
    index = orjson.loads(os.pread(fd, index_size, at))
    stored = run_part(orjson.loads(os.pread(fd, at - about, about)), index)
    need(len(index['tags']) == count)
    need(sum(index['sizes']) == about - base)
    return stored, index


def _journals_run(run_dir: Path, key: Key) -> str:
    """The run id the journals' headers give, if they give one.

    Raises:
        DamagedError: Not one run id (the merge would fail, or say why).
    """
    runs = {_header_run(run_dir / name) for name, _, _ in key}
    need(len(runs) == 1)
    return runs.pop()


def _header_run(path: Path) -> str:
    """The ``run`` of a journal's header: its first line that is not blank.

    Raises:
        DamagedError: No header with a run id in its first
            :data:`_HEADER_BYTES`.
        OSError: It cannot be read, or is not a file.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, 'O_CLOEXEC', 0)
    fd = os.open(path, flags)
    try:
        need(stat.S_ISREG(os.fstat(fd).st_mode))
        for most in (_HEAD_BYTES, _HEADER_BYTES):  # most headers: 4 KiB
            first = os.pread(fd, most, 0)
            line, newline, _ = first.lstrip(_BLANKS).partition(b'\n')
            if newline or len(first) < most:
                break  # the whole line was read
        else:
            need(False)
    finally:
        os.close(fd)
    header = orjson.loads(line)
    need(isinstance(header, dict) and isinstance(header.get('run'), str))
    return str(header['run'])


def _open(path: Path) -> int:
    """A descriptor of ``path`` if it is a regular file (no symlink).

    Raises:
        OSError: It is not, or it cannot be read by position here.
    """
    if not hasattr(os, 'pread'):
        raise OSError(f'{path}: no positional reads on this system')
    flags = os.O_RDONLY
    for name in ('O_NONBLOCK', 'O_NOFOLLOW', 'O_CLOEXEC'):
        flags |= getattr(os, name, 0)
    fd = os.open(path, flags)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f'{path}: not a regular file')
    os.set_blocking(fd, True)
    return fd


def _unmask(mask: int) -> frozenset[str]:
    return _MASKS.get(mask) or _MASKS.setdefault(
        mask, frozenset(k for k in KINDS if mask & _BIT[k])
    )


_MASKS: dict[int, frozenset[str]] = {}


class _Lines:
    """The actions' lines of one stored form, read by position."""

    def __init__(
        self, fd: int, base: int, sizes: list[int], remerge: Remerge
    ) -> None:
        self.fd = fd
        self.starts = list(itertools.accumulate(sizes, initial=base))
        self.end = self.starts[-1]
        self.sizes = sizes
        self.remerge = remerge
        self.fresh: dict[str, Action] | None = None

    def read(
        self, n: int, tag: str, kinds: frozenset[str]
    ) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
        """The lines of action ``n`` by kind, and their hosts."""
        if self.fresh is None:
            try:
                return action_line(
                    os.pread(self.fd, self.sizes[n], self.starts[n]),
                    tag,
                    kinds,
                )
            except _DAMAGE:
                self.fresh = self.remerge()  # damaged: as if not stored
        action = self.fresh.get(tag)
        if action is None:
            raise DamagedError(f'action {tag} is gone: its run changed')
        return action.events, action.hosts


class StoredAction(Action):
    """An action of a stored run: its lines are read when first used."""

    def __init__(
        self,
        tag: str,
        kinds: frozenset[str],
        first: float,
        lines: _Lines,
        n: int,
    ) -> None:
        self.tag = tag
        self._kinds = kinds
        self._first = first
        self._lines = lines
        self._n = n
        self._events: dict[str, dict[str, Any]] | None = None
        self._hosts: dict[str, str] = {}

    def _read(self) -> dict[str, dict[str, Any]]:
        if self._events is None:
            self._events, self._hosts = self._lines.read(
                self._n, self.tag, self._kinds
            )
        return self._events

    @property
    def events(self) -> dict[str, dict[str, Any]]:
        """The action's lines by kind (read now if not yet)."""
        return self._read()

    @events.setter
    def events(self, value: dict[str, dict[str, Any]]) -> None:
        self._events = value
        self._kinds = frozenset(value)

    @property
    def hosts(self) -> dict[str, str]:
        """The host that wrote each line (read now if not yet)."""
        self._read()
        return self._hosts

    @hosts.setter
    def hosts(self, value: dict[str, str]) -> None:
        self._read()
        self._hosts = value

    @property
    def kinds(self) -> frozenset[str]:
        """The kinds of line the action has, known without reading them."""
        return self._kinds

    @property
    def first_time(self) -> float:
        """The earliest time of its lines, known without reading them."""
        return self._first

    def transient(self) -> Action:
        """The action with its lines, read without keeping them here."""
        if self._events is not None:
            return self
        events, hosts = self._lines.read(self._n, self.tag, self._kinds)
        return Action(self.tag, events, hosts)


def transient(actions: Iterable[Action]) -> Iterator[Action]:
    """Each action with its lines; a stored one's are not kept after use."""
    for action in actions:
        if isinstance(action, StoredAction):
            yield action.transient()
        else:
            yield action
