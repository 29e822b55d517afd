"""The files of a run's store: its folder, locks and manifest.

The layout is :mod:`provlog.query.store`'s (``manifest.json``,
``db-<id>/``, ``lock`` and ``db-<id>.lock``); the catalogue of a folder of
runs (:mod:`provlog.catalog`) takes the same lock. Nothing here writes or
removes outside the store's folder: the folder is checked with ``lstat``
(a symlink or a file in its place is refused) and its files are opened
with ``O_NOFOLLOW``. Also here: how many actions a run has, counted in
its journals' bytes, and whether its journals have settled.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from typing import BinaryIO

import orjson

from provlog._version import __version__
from provlog.actions.merge import JOURNAL_SUFFIX
from provlog.actions.stored import SETTLED
from provlog.journals.reader import show
from provlog.vocab import EXECUTE_START
from provlog.vocab import START

__all__ = [
    'STORE_DIR',
    'StoreWriteError',
    'count_actions',
    'fresh',
    'hold_lock',
    'open_lock',
    'own_folder',
    'read_manifest',
    'remove_old',
    'replace_file',
    'unsettled',
    'write_manifest',
]

#: The store's folder: inside a run folder, or a folder of runs.
STORE_DIR = '.provlog-store'
_MANIFEST = 'manifest.json'
_LOCK = 'lock'
_VERSION = 2
_COUNT_CHUNK = 1 << 24


class StoreWriteError(OSError):
    """The store could not be written (a full disk, a file size limit).

    Raised by the bulk loader's thread for what it failed to write; like
    any other failure to keep the store, it means only that the store is
    not kept (:func:`open_store` answers without it).
    """


def own_folder(folder: Path) -> None:
    """Create ``folder`` when missing; refuse a link or a non-folder.

    ``lstat``, so a link named as the store (to anywhere) is never
    followed: nothing is written or removed outside the run folder.

    Raises:
        OSError: ``folder`` cannot be created, or is not a real folder.
    """
    with contextlib.suppress(FileExistsError):
        folder.mkdir()
    if not stat.S_ISDIR(os.lstat(folder).st_mode):
        raise NotADirectoryError(
            errno.ENOTDIR, 'not a folder (a link or a file)', str(folder)
        )


def _open_nofollow(path: Path, *, write: bool) -> BinaryIO:
    """Open ``path`` as binary, never through a link (``O_NOFOLLOW``).

    With ``write``, created when missing (and opened for appending).

    Raises:
        OSError: It cannot be opened, or is a link.
    """
    flags = os.O_NOFOLLOW | os.O_CLOEXEC
    flags |= os.O_WRONLY | os.O_APPEND | os.O_CREAT if write else os.O_RDONLY
    fd = os.open(path, flags, 0o666)
    return os.fdopen(fd, 'ab' if write else 'rb')


def open_lock(path: Path) -> BinaryIO:
    """The lock file ``path``: created if it can be, else read-only.

    ``flock`` works on either, so a reader without write permission still
    takes its shared lock.

    Raises:
        OSError: It neither exists nor can be created, or is a link.
    """
    try:
        return _open_nofollow(path, write=True)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise
        return _open_nofollow(path, write=False)


@contextlib.contextmanager
def hold_lock(folder: Path) -> Iterator[None]:
    """Hold the exclusive lock of ``folder`` (created when missing).

    Waits while another command holds it, and says so on stderr. A
    ``folder`` that is a link or not a folder is refused, and the lock file
    is never opened through a link.

    Raises:
        OSError: ``folder`` or its lock file cannot be created, or
            ``folder`` is not a real folder.
    """
    own_folder(folder)
    with open_lock(folder / _LOCK) as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(
                'provlog: waiting for another command using '
                + show(str(folder)),
                file=sys.stderr,
            )
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def count_actions(run_dir: Path) -> int:
    """About how many actions the run has, from its journals' start lines.

    The larger of the callers' ``start`` and the agents' ``execute_start``
    lines (an action has one or both), counted in the bytes without
    parsing them: a second or so per GB of journals, in memory of two
    reads whatever the lines' lengths.

    The journals are written by provlog's encoder
    (:mod:`provlog.capture.encoder`), whose lines are ``orjson`` objects
    with the kind first and no spaces: ``{"e":"start",...``. A journal
    written otherwise (spaces, another key first) counts as fewer
    actions, which only chooses the graph for a run the store would
    answer too.

    Raises:
        OSError: A journal cannot be read.
    """
    starts = executions = 0
    start = b'{"e":"' + START.encode() + b'"'
    execute = b'{"e":"' + EXECUTE_START.encode() + b'"'
    # a pattern cut between two reads is found in the overlap; one that
    # lies wholly in it was counted already (neither can overlap itself:
    # each holds one '{')
    overlap = max(len(start), len(execute)) - 1
    for path in sorted(run_dir.glob(f'*{JOURNAL_SUFFIX}')):
        tail = b''
        with path.open('rb') as fh:
            while chunk := fh.read(_COUNT_CHUNK):
                data = tail + chunk
                starts += data.count(start) - tail.count(start)
                executions += data.count(execute) - tail.count(execute)
                tail = data[-overlap:]
                del data
    return max(starts, executions)


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest, if it is one this provlog wrote; never via a link."""
    try:
        if not stat.S_ISDIR(os.lstat(folder).st_mode):
            return None
        with _open_nofollow(folder / _MANIFEST, write=False) as fh:
            data = orjson.loads(fh.read(1 << 24))
    except (OSError, orjson.JSONDecodeError):
        return None
    if (
        not isinstance(data, dict)
        or data.get('v') != _VERSION
        # another provlog may map the journals otherwise: built again
        or data.get('provlog') != __version__
        or not isinstance(data.get('db'), str)
        or not data['db'].startswith('db-')
        or '/' in data['db']
        or not isinstance(data.get('actions'), int)
    ):
        return None
    return data


def fresh(
    manifest: dict[str, Any] | None, key: list[list[Any]], lenient: bool
) -> bool:
    """Whether ``manifest`` describes a store of these journals."""
    return (
        manifest is not None
        and manifest.get('key') == key
        # a strict build serves lenient reads (no line was skipped)
        and (lenient or not manifest.get('lenient'))
    )


def remove_old(folder: Path, keep: str) -> None:
    """Remove build leftovers and the databases no reader holds.

    Only real folders and files are removed (a link is never followed),
    and the lock files of databases that are gone too.
    """
    for entry in folder.iterdir():
        name = entry.name
        try:
            mode = entry.lstat().st_mode
        except OSError:
            continue
        if name.startswith('build-') and stat.S_ISDIR(mode):
            shutil.rmtree(entry, ignore_errors=True)
        elif name.startswith('db-') and stat.S_ISDIR(mode) and name != keep:
            lock_path = folder / f'{name}.lock'
            try:
                lock = _open_nofollow(lock_path, write=True)
            except OSError:
                continue
            with lock:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # open elsewhere: a later build removes it
                shutil.rmtree(entry, ignore_errors=True)
                lock_path.unlink(missing_ok=True)
        elif (
            name.startswith('db-')
            and name.endswith('.lock')
            and name != f'{keep}.lock'
            and stat.S_ISREG(mode)
            and not (folder / name.removesuffix('.lock')).exists()
        ):
            with contextlib.suppress(OSError):
                entry.unlink()  # an orphan: its database is gone


def unsettled(key: list[list[Any]]) -> bool:
    """Whether a journal changed within :data:`SETTLED` seconds.

    A run still being written is not kept: its store would be stale at
    once, and built again by every command.
    """
    settled = time.time_ns() - int(SETTLED * 1e9)
    return any(mtime >= settled for _, _, mtime in key)


def write_manifest(folder: Path, fields: dict[str, Any]) -> dict[str, Any]:
    """Replace the manifest of ``folder`` with ``fields`` (and versions).

    Written to a temporary file in ``folder``, then renamed over it: a
    reader sees the old manifest or the new one, never half of one.

    Returns:
        The manifest written.
    """
    manifest = {'v': _VERSION, 'provlog': __version__, **fields}
    replace_file(folder / _MANIFEST, orjson.dumps(manifest))
    return manifest


def replace_file(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``, through a new file beside it.

    The temporary file is made by :func:`tempfile.mkstemp` (a new name,
    ``O_EXCL``: never a link planted there), then renamed over ``path``
    (a link at ``path`` is replaced, not followed).

    Raises:
        OSError: It cannot be written.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'{path.name}.')
    try:
        with os.fdopen(fd, 'wb') as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
