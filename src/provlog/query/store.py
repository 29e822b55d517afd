"""A run's PROV-O in an Oxigraph store on disk, built once and reused.

``provlog query RUN`` and ``provlog why RUN`` (on Oxigraph, and on runs
too large for the graph) read ``RUN/.provlog-store/``, named as the
catalogue of a folder of runs (:mod:`provlog.catalog`) names its own:

* ``manifest.json``: what is built (the key of the journals, by name,
  size and mtime, as :func:`provlog.actions.merge.journal_key` gives it;
  the provlog version; the database's folder; the run, its action count,
  whether it was read ``lenient``). A store whose key or version is not
  the journals' and this provlog's is stale and built again; the database
  of a manifest that cannot be read is rebuilt. It is replaced through a
  temporary file in the folder.
* ``db-<id>/data/``: the Oxigraph database. It is built in ``build-<id>/``:
  the streaming merge and mapping (:mod:`provlog.mapping.streamwrite`)
  write N-Triples in pieces of 128 MiB (:mod:`provlog.query.storebuild`),
  which a thread hands to Oxigraph's bulk loader as each fills (the
  loader reads the file itself, without the GIL, and its memory follows
  the piece), so neither the run nor its triples are ever held in Python.
  The folder is renamed ``db-<id>`` when whole, and the manifest replaced
  after it. A build cut short leaves a ``build-`` folder the next build
  removes.
* ``lock``: held (exclusively) while a store is built, so two commands
  never build at once; the second waits, then finds the store built.
  Readers do not take it: each holds a shared lock on ``db-<id>.lock``
  while its database is open (opened read-only when it cannot be
  written), and a build removes only the old databases nobody holds, and
  the lock files of those gone.

Nothing is written or removed outside the run folder: the store's folder
is checked with ``lstat`` (a symlink or a file in its place is refused)
and its lock and manifest files are opened with ``O_NOFOLLOW``
(:mod:`provlog.query.storefiles`).

When the run folder cannot keep the store (read-only, a link in its
place, a full disk while building, or a run still being written: a
journal changed within :data:`provlog.actions.stored.SETTLED`), the
store is built in a temporary folder, removed when the store is closed
or dropped, and a line on stderr says so; :func:`open_store` with
``temporary=False`` returns ``None`` instead (the line says the answer
comes from memory), for callers that keep small runs in memory. Only a
damaged journal is an error. Nothing in a store is executed: the
manifest is JSON, the database data.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import os
import shutil
import sys
import tempfile
import weakref
from collections.abc import Callable
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from typing import BinaryIO
from typing import Final
from typing import TYPE_CHECKING

from provlog.actions.merge import find_run
from provlog.actions.merge import journal_key
from provlog.journals.reader import JournalError
from provlog.journals.reader import show
from provlog.mapping.rdf import NAMESPACES
from provlog.query.sparql import load_query
from provlog.query.sparql import QueryResult
from provlog.query.sparql import run_sparql
from provlog.query.storebuild import build_into
from provlog.query.storefiles import count_actions
from provlog.query.storefiles import fresh
from provlog.query.storefiles import hold_lock
from provlog.query.storefiles import open_lock
from provlog.query.storefiles import read_manifest
from provlog.query.storefiles import remove_old
from provlog.query.storefiles import STORE_DIR
from provlog.query.storefiles import StoreWriteError
from provlog.query.storefiles import unsettled

if TYPE_CHECKING:
    import pyoxigraph

    from provlog.query.lineage import WhyNode

__all__ = [
    'STORE_DIR',
    'RunStore',
    'StoreWriteError',
    'count_actions',
    'hold_lock',
    'open_store',
    'store_is_fresh',
]

_NO_VALUE: Final = object()
_RUN_TYPE = NAMESPACES['provlog'] + 'Run'
_RDF_TYPE = 'http://www.w3.org/1999/02/22-rdf-syntax-ns#type'


def store_is_fresh(path: Path, *, lenient: bool = False) -> bool:
    """Whether the run at ``path`` has a store built from its journals now.

    Reads only the manifest and the journals' sizes and times.
    """
    try:
        run_dir = find_run(path)
        key = journal_key(run_dir)
    except (JournalError, OSError):
        return False
    return fresh(read_manifest(run_dir / STORE_DIR), key, lenient)


class RunStore:
    """A run's PROV-O in an Oxigraph store on disk; see :func:`open_store`.

    Attributes:
        run_dir: The run folder.
        run_id: The run's id.
        actions: How many actions the run has.
        store: The ``pyoxigraph.Store``, opened read-only.
        path: The database's folder.
        built: Whether opening it built it (it was missing or stale).
        seconds: Seconds the build took (``0.0`` when not built now).
        temporary: Whether it lives in a temporary folder (removed by
            :meth:`close`) because the run folder cannot hold it.
    """

    def __init__(
        self,
        run_dir: Path,
        manifest: dict[str, Any],
        store: pyoxigraph.Store,
        path: Path,
        lock: BinaryIO | None,
    ) -> None:
        self.run_dir = run_dir
        self.run_id = str(manifest.get('run', run_dir.name))
        self.actions = int(manifest['actions'])
        self.store: pyoxigraph.Store = store
        self.path = path
        self.built = False
        self.seconds = 0.0
        self.temporary = False
        self._lock = lock
        self._cleanup: weakref.finalize[Any, Any] | None = None

    def _make_temporary(self, folder: Path) -> None:
        """Mark the store temporary: ``folder`` goes on close, or at exit.

        A :class:`weakref.finalize` removes it too when the store is
        dropped unclosed (or the interpreter exits first).
        """
        self.temporary = True
        self._cleanup = weakref.finalize(
            self, shutil.rmtree, str(folder), ignore_errors=True
        )

    def sparql(
        self,
        query: str,
        *,
        bindings: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> QueryResult:
        """Run a read-only SPARQL query (as ``RunGraph.sparql``)."""
        return run_sparql(
            self.store,
            load_query(query),
            bindings=bindings,
            engine='oxigraph',
            timeout=timeout,
        )

    def why(
        self,
        target: str | None = None,
        *,
        value: object = _NO_VALUE,
        depth: int | None = None,
    ) -> WhyNode:
        """How ``target`` was produced (as ``RunGraph.why``), from the store.

        ``why(value=obj)`` finds the entity whose content hash is ``obj``'s.

        Returns:
            The :class:`provlog.query.lineage.WhyNode` tree.
        """
        from provlog.query.storewhy import why_in_store  # noqa: PLC0415

        tree, _ = why_in_store(
            self.store,
            self.run_id,
            target,
            value=None if value is _NO_VALUE else value,
            has_value=value is not _NO_VALUE,
            depth=depth,
        )
        return tree

    def close(self) -> None:
        """Close the database (and remove it, when temporary)."""
        self.store = None  # type: ignore[assignment]
        gc.collect()  # the database closes when its last reference goes
        if self._lock is not None:
            self._lock.close()
            self._lock = None
        if self._cleanup is not None:
            self._cleanup()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f'<RunStore {self.run_id} actions={self.actions} '
            f'path={str(self.path)!r}>'
        )


def _open_db(
    folder: Path, manifest: dict[str, Any], run_dir: Path
) -> RunStore | None:
    """Open the manifest's database read-only; ``None`` when it cannot be.

    A shared lock on ``db-<id>.lock`` keeps builds from removing it while
    it is open (the file opened read-only where it cannot be written; none
    only where it is missing and cannot be made: nothing can build there).
    """
    import pyoxigraph  # noqa: PLC0415

    db = folder / manifest['db'] / 'data'
    lock: BinaryIO | None
    try:
        lock = open_lock(folder / f'{manifest["db"]}.lock')
    except OSError:
        lock = None
    else:
        fcntl.flock(lock, fcntl.LOCK_SH)
    try:
        store = pyoxigraph.Store.read_only(str(db))
        # a database that opens but lost its data is damaged too
        probe = store.quads_for_pattern(
            None,
            pyoxigraph.NamedNode(_RDF_TYPE),
            pyoxigraph.NamedNode(_RUN_TYPE),
        )
        next(iter(probe))
    except (OSError, StopIteration, ValueError, RuntimeError):
        if lock is not None:
            lock.close()
        return None
    return RunStore(run_dir, manifest, store, db, lock)


def _note(folder: Path, why: str, then: str) -> None:
    """Say on stderr, in one line, why the store is not kept in the run."""
    print(
        f'provlog: cannot keep a store in {show(str(folder))} ({why}): '
        + then,
        file=sys.stderr,
    )


def _reason(exc: BaseException) -> str:
    """A short reason for ``exc``, for :func:`_note`."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


def _temporary(run_dir: Path, why: str, lenient: bool) -> RunStore:
    """Build the store in a temporary folder, for a run that cannot keep it.

    Raises:
        JournalError: The run cannot be read.
        OSError: Not even the temporary folder can hold the store.
    """
    folder = Path(tempfile.mkdtemp(prefix='provlog-store-'))
    _note(
        run_dir / STORE_DIR,
        why,
        f'building it in {show(str(folder))}, removed after this command',
    )
    try:
        key = journal_key(run_dir)
        manifest = build_into(folder, run_dir, key, lenient)
        opened = _open_db(folder, manifest, run_dir)
        if opened is None:
            raise JournalError(f'{folder}: the store built cannot be opened')
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    opened.built = True
    opened.seconds = float(manifest['seconds'])
    opened._make_temporary(folder)
    return opened


def _fall_back(
    run_dir: Path,
    why: str,
    lenient: bool,
    temporary: bool | Callable[[], bool],
) -> RunStore | None:
    """The store elsewhere than the run folder, or ``None`` (memory)."""
    if temporary if isinstance(temporary, bool) else temporary():
        return _temporary(run_dir, why, lenient)
    _note(run_dir / STORE_DIR, why, 'answering from memory')
    return None


def _keep(folder: Path, run_dir: Path, lenient: bool) -> RunStore | str:
    """Open, or build and open, the store kept in ``folder``.

    Returns:
        The store, or why it cannot be kept there (any failure to write
        it: a link or a file in its place, a read-only folder, a full
        disk, a run still being written).

    Raises:
        JournalError: The run cannot be read.
    """
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(hold_lock(folder))
            key = journal_key(run_dir)
        except OSError as exc:  # a read-only run folder, a link
            return _reason(exc)
        manifest = read_manifest(folder)  # another command may have built
        if fresh(manifest, key, lenient):
            assert manifest is not None
            opened = _open_db(folder, manifest, run_dir)
            if opened is not None:
                return opened
        if unsettled(key):
            return 'the run is still being written'
        try:
            manifest = build_into(folder, run_dir, key, lenient)
            remove_old(folder, manifest['db'])
        except OSError as exc:  # the disk, not the journals
            return _reason(exc)
        opened = _open_db(folder, manifest, run_dir)
        if opened is None:
            return 'the store built cannot be opened'
        opened.built = True
        opened.seconds = float(manifest['seconds'])
        return opened
    raise AssertionError  # pragma: no cover - the with returns


def open_store(
    path: str | os.PathLike[str],
    *,
    lenient: bool = False,
    temporary: bool | Callable[[], bool] = True,
) -> RunStore | None:
    """The run's store, built first when it is missing, stale or damaged.

    Args:
        path: A run folder (or what ``provlog.load`` accepts).
        lenient: Skip and count damaged journal lines instead of failing.
        temporary: When the run folder cannot keep the store (read-only,
            a link or a file in its place, a full disk, a run still being
            written), build it in a temporary folder; with ``False``,
            return ``None`` then (answer from memory). A callable is asked
            only then. Either is said in one line on stderr.

    Returns:
        The open :class:`RunStore` (close it, or use it in ``with``).

    Raises:
        JournalError: The run cannot be read (the message names the file
            and line).
    """
    run_dir = find_run(Path(path))
    key = journal_key(run_dir)
    folder = run_dir / STORE_DIR
    manifest = read_manifest(folder)
    if fresh(manifest, key, lenient):
        assert manifest is not None
        opened = _open_db(folder, manifest, run_dir)
        if opened is not None:
            return opened
    kept = _keep(folder, run_dir, lenient)
    if isinstance(kept, RunStore):
        return kept
    return _fall_back(run_dir, kept, lenient, temporary)
