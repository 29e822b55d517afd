"""A run's merged form, kept on disk next to its journals.

After a merge, :func:`save` writes what it found to
``<run>/.provlog-cache/merged.lines`` (``merged-lenient.lines`` for a
``--lenient`` merge), and :func:`load` gives it back to the next command
while every journal has the name, size and modification time it had.
A journal that grows, appears or goes, a damaged or foreign file, a
folder that cannot be written: the run is merged again, as without it.

The file is JSON (never pickle: a run folder can be hostile, and nothing
read from it is executed), in lines: the key (format, ``lenient`` and
every journal's ``[name, size, mtime_ns]``); the run (processes, agents,
launches and lifetimes, the identities the calls name); an index of the
actions (tag, the kinds of line each has, the length of its line); then
one line per action, its lines by kind and their hosts. An action's line
is read and checked, as the journals' lines are checked, only when that
action's lines are first asked for: ``stats`` reads the first three
lines; ``why`` the actions on its target's lineage.

A journal is taken as settled when its modification time is more than
:data:`SETTLED` seconds old, so that a later write cannot give it the
same time again (file systems keep coarse clocks): a run still being
written is not stored, and is merged each time.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import stat
import struct
import tempfile
import time
import weakref
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from typing import BinaryIO

import orjson

from provlog.actions.storedcheck import action_line
from provlog.actions.storedcheck import DamagedError
from provlog.actions.storedcheck import KINDS
from provlog.actions.storedcheck import need
from provlog.actions.storedcheck import run_part
from provlog.actions.storedcheck import Stored
from provlog.vocab import Action

__all__ = [
    'CACHE_DIR',
    'FORMAT',
    'SETTLED',
    'Stored',
    'StoredAction',
    'load',
    'save',
    'transient',
]

#: The folder, inside the run folder, that holds the merged form.
CACHE_DIR = '.provlog-cache'
#: The layout's version: a file of another version is merged again.
FORMAT = 1
#: Seconds since a journal last changed before its run is stored.
SETTLED = 1.0
_BIT = {kind: 1 << n for n, kind in enumerate(KINDS)}
#: The longest key line read (some 100 bytes a journal).
_HEAD_BYTES = 1 << 26
_TMP = '.tmp-'
#: Seconds after which a temporary file is taken as a killed writer's.
_STRAY_AGE = 3600.0
#: The file's last bytes: where the run and the index begin.
_TRAILER = struct.Struct('>QQ')

Key = list[list[Any]]


def _file(run_dir: Path, lenient: bool) -> Path:
    name = 'merged-lenient.lines' if lenient else 'merged.lines'
    return run_dir / CACHE_DIR / name


# ------------------------------------------------------------------ write


def save(run_dir: Path, key: Key, lenient: bool, run: Any) -> bool:
    """Store the merged ``run`` (a ``MergedRun``) of the journals ``key``.

    ``key`` must be what the journals were before and after the merge
    (:func:`provlog.actions.merge.journal_key`). Only settled journals
    are stored; any failure
    (a read-only folder, a full disk) only means it is not stored.

    Returns:
        Whether it was stored.
    """
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
            with os.fdopen(fd, 'wb') as fh:
                _write(fh, run, key, lenient)
            mode = (run_dir / key[0][0]).stat().st_mode
            os.chmod(tmp, stat.S_IMODE(mode) & 0o666)
            os.replace(tmp, _file(run_dir, lenient))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except (OSError, TypeError, ValueError):
        return False  # read-only, full, or not JSON: merged next time too
    return True


def _drop_strays(folder: Path) -> None:
    """Remove what writers killed mid-write left (an hour old or more)."""
    old = time.time() - _STRAY_AGE
    for path in folder.glob(f'{_TMP}*'):
        with contextlib.suppress(OSError):
            if path.lstat().st_mtime < old:
                path.unlink()


def _write(fh: BinaryIO, run: Any, key: Key, lenient: bool) -> None:
    """The key, each action's line, the run, the index, and the trailer."""
    fh.write(orjson.dumps({'format': FORMAT, 'lenient': lenient}))
    fh.write(b'\n' + orjson.dumps(key) + b'\n')
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


def _mask(kinds: Any) -> int:
    return sum(_BIT[k] for k in kinds)


# ------------------------------------------------------------------- read


#: Gives every action of the run merged again (the fallback for a line
#: found damaged after the stored form was taken).
Remerge = Callable[[], dict[str, Action]]


def load(
    run_dir: Path, key: Key, lenient: bool, remerge: Remerge
) -> Stored | None:
    """The stored form of the run, if it is there for journals ``key``.

    ``None`` when there is none, it is for other journals or another
    format, or it is damaged; ``remerge`` answers for an action whose line
    turns out damaged when it is read.
    """
    try:
        fd = _open(_file(run_dir, lenient))
    except OSError:
        return None
    try:
        with open(fd, 'rb', closefd=False) as fh:
            head = orjson.loads(fh.readline(_HEAD_BYTES))
            if not (
                isinstance(head, dict)
                and head.get('format') == FORMAT
                and head.get('lenient') is lenient
                and orjson.loads(fh.readline(_HEAD_BYTES)) == key
            ):
                os.close(fd)
                return None
            base = fh.tell()
        size = os.fstat(fd).st_size
        about, at = _TRAILER.unpack(
            os.pread(fd, _TRAILER.size, size - _TRAILER.size)
        )
        need(base <= about < at < size)
        index = orjson.loads(os.pread(fd, size - _TRAILER.size - at, at))
        stored = run_part(orjson.loads(os.pread(fd, at - about, about)), index)
        lines = _Lines(fd, base, index['sizes'], remerge)
        need(lines.end == about)
    except (OSError, ValueError, TypeError, KeyError, struct.error):
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
            except (OSError, ValueError, TypeError):
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
