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
  write N-Triples in pieces of :data:`_CHUNK_BYTES`, which a thread hands
  to Oxigraph's bulk loader as each fills (the loader reads the file
  itself, without the GIL, and its memory follows the piece), so neither
  the run nor its triples are ever held in Python. The folder is renamed
  ``db-<id>`` when whole, and the manifest replaced after it. A build cut
  short leaves a ``build-`` folder the next build removes.
* ``lock``: held (exclusively) while a store is built, so two commands
  never build at once; the second waits, then finds the store built.
  Readers do not take it: each holds a shared lock on ``db-<id>.lock``
  while its database is open (opened read-only when it cannot be
  written), and a build removes only the old databases nobody holds, and
  the lock files of those gone.

Nothing is written or removed outside the run folder: the store's folder
is checked with ``lstat`` (a symlink or a file in its place is refused)
and its lock and manifest files are opened with ``O_NOFOLLOW``.

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
import errno
import fcntl
import gc
import importlib
import os
import queue
import shutil
import stat
import sys
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from typing import BinaryIO
from typing import Final
from typing import TYPE_CHECKING

import orjson

from provlog.actions.merge import find_run
from provlog.actions.merge import journal_key
from provlog.actions.merge import JOURNAL_SUFFIX
from provlog.actions.stored import SETTLED
from provlog.journals.reader import JournalError
from provlog.journals.reader import show
from provlog.mapping.rdf import NAMESPACES
from provlog.query.sparql import load_query
from provlog.query.sparql import QueryResult
from provlog.query.sparql import run_sparql
from provlog.vocab import EXECUTE_START
from provlog.vocab import START

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

#: The store's folder: inside a run folder, or a folder of runs.
STORE_DIR = '.provlog-store'
_MANIFEST = 'manifest.json'
_LOCK = 'lock'
_VERSION = 2
_NO_VALUE: Final = object()
#: N-Triples handed to the bulk loader at once: its memory follows it
#: (about 1.1 GiB at 128 MiB, measured; 1.8 GiB for a whole 1.5 GB file).
_CHUNK_BYTES = 128 << 20
_COUNT_CHUNK = 1 << 24
_RUN_TYPE = NAMESPACES['provlog'] + 'Run'
_RDF_TYPE = 'http://www.w3.org/1999/02/22-rdf-syntax-ns#type'


class StoreWriteError(OSError):
    """The store could not be written (a full disk, a file size limit).

    Raised by the bulk loader's thread for what it failed to write; like
    any other failure to keep the store, it means only that the store is
    not kept (:func:`open_store` answers without it).
    """


def _own_folder(folder: Path) -> None:
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


def _open_lock(path: Path) -> BinaryIO:
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
    _own_folder(folder)
    with _open_lock(folder / _LOCK) as lock:
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


def _provlog_version() -> str:
    """``provlog.__version__``: a store built by another one is rebuilt.

    Looked up, not imported: ``provlog`` names this module for its own
    API, and the two must not import each other (the package is loaded
    before any of its modules anyway).
    """
    return str(importlib.import_module('provlog').__version__)


def _read_manifest(folder: Path) -> dict[str, Any] | None:
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
        or data.get('provlog') != _provlog_version()
        or not isinstance(data.get('db'), str)
        or not data['db'].startswith('db-')
        or '/' in data['db']
        or not isinstance(data.get('actions'), int)
    ):
        return None
    return data


def _fresh(
    manifest: dict[str, Any] | None, key: list[list[Any]], lenient: bool
) -> bool:
    """Whether ``manifest`` describes a store of these journals."""
    return (
        manifest is not None
        and manifest.get('key') == key
        # a strict build serves lenient reads (no line was skipped)
        and (lenient or not manifest.get('lenient'))
    )


def store_is_fresh(path: Path, *, lenient: bool = False) -> bool:
    """Whether the run at ``path`` has a store built from its journals now.

    Reads only the manifest and the journals' sizes and times.
    """
    try:
        run_dir = find_run(path)
        key = journal_key(run_dir)
    except (JournalError, OSError):
        return False
    return _fresh(_read_manifest(run_dir / STORE_DIR), key, lenient)


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
        lock = _open_lock(folder / f'{manifest["db"]}.lock')
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


class _Chunks:
    """A binary file that the bulk loader reads in pieces, as they fill.

    The N-Triples writer hands over whole groups of lines (a blank node's
    lines always in the same write), so a piece that ends between two
    writes is a document of its own. Every :data:`_CHUNK_BYTES` the piece
    is closed and queued for the loader thread, which loads it by path
    (Oxigraph reads and parses it without the GIL, beside the merge) and
    removes it: at most two pieces are on disk, and the loader's memory is
    that of one piece.
    """

    def __init__(self, folder: Path, store: Any) -> None:
        self.folder = folder
        self.store = store
        self.count = 0
        self.size = 0
        self.error: BaseException | None = None
        self.ready: queue.Queue[Path | None] = queue.Queue(maxsize=1)
        self.thread = threading.Thread(
            target=self._load, name='provlog-store-load', daemon=True
        )
        self.thread.start()
        self.fh = self._next()

    def _next(self) -> BinaryIO:
        self.count += 1
        self.size = 0
        return (self.folder / f'part-{self.count}.nt').open('wb')

    def write(self, data: bytes) -> int:
        """Write one group of whole lines; pass on the piece when full."""
        if self.error is not None:
            raise self.error
        self.fh.write(data)
        self.size += len(data)
        if self.size >= _CHUNK_BYTES:
            self._pass()
            self.fh = self._next()
        return len(data)

    def _pass(self) -> None:
        self.fh.close()
        self.ready.put(Path(self.fh.name))

    def finish(self) -> None:
        """Load the last piece; wait for the loader; raise its error."""
        self._pass()
        self.ready.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error

    def abandon(self) -> None:
        """Stop the loader after a failed merge."""
        with contextlib.suppress(OSError):  # a full disk: the data goes
            self.fh.close()
        while True:  # make room, then say stop
            try:
                self.ready.get_nowait()
            except queue.Empty:
                break
        self.ready.put(None)
        self.thread.join()

    def _load(self) -> None:
        import pyoxigraph  # noqa: PLC0415

        while (path := self.ready.get()) is not None:
            try:
                if self.error is None:
                    self.store.bulk_load(
                        path=str(path),
                        format=pyoxigraph.RdfFormat.N_TRIPLES,
                        # provlog's own output, every IRI escaped already
                        lenient=True,
                    )
            except OSError as exc:  # the disk, not the run
                self.error = StoreWriteError(
                    exc.errno, f'loading the store: {exc}', str(path)
                )
            except (SyntaxError, ValueError) as exc:
                self.error = JournalError(f'{path}: loading the store: {exc}')
            finally:
                path.unlink(missing_ok=True)


def _build(run_dir: Path, target: Path, *, lenient: bool) -> dict[str, Any]:
    """Bulk-load the run's N-Triples into a new database at ``target``.

    Returns:
        The run's id and action count.
    """
    import pyoxigraph  # noqa: PLC0415

    from provlog.mapping.streamwrite import export_stream  # noqa: PLC0415

    target.mkdir()
    store = pyoxigraph.Store(str(target / 'data'))
    chunks = _Chunks(target, store)
    try:
        merge = export_stream(
            run_dir,
            'nt',
            chunks,  # type: ignore[arg-type]
            lenient=lenient,
        )
    except BaseException:
        chunks.abandon()
        raise
    chunks.finish()
    if chunks.count > 1:
        # one compaction of the pieces' files: at 1M actions 185 s (a
        # seventh of the build) and 0.1 GiB, for a store 40% smaller and
        # lookups 6x faster
        store.optimize()
    store.flush()
    del store, chunks
    gc.collect()
    return {'actions': merge.actions, 'run': merge.run.run_id}


def _remove_old(folder: Path, keep: str) -> None:
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


def _build_into(
    folder: Path, run_dir: Path, key: list[list[Any]], lenient: bool
) -> dict[str, Any]:
    """Build a database in ``folder`` and make it the manifest's."""
    t0 = time.perf_counter()
    ident = uuid.uuid4().hex[:12]
    work = folder / f'build-{ident}'
    try:
        made = _build(run_dir, work, lenient=lenient)
        db = f'db-{ident}'
        work.rename(folder / db)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    manifest = {
        'v': _VERSION,
        'provlog': _provlog_version(),
        'key': key,
        'db': db,
        'run': made['run'],
        'actions': made['actions'],
        'lenient': lenient,
        'seconds': round(time.perf_counter() - t0, 3),
    }
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f'{_MANIFEST}.')
    try:
        with os.fdopen(fd, 'wb') as fh:
            fh.write(orjson.dumps(manifest))
        os.replace(tmp, folder / _MANIFEST)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return manifest


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
        manifest = _build_into(folder, run_dir, key, lenient)
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


def _unsettled(key: list[list[Any]]) -> bool:
    """Whether a journal changed within :data:`SETTLED` seconds.

    A run still being written is not kept: its store would be stale at
    once, and built again by every command.
    """
    settled = time.time_ns() - int(SETTLED * 1e9)
    return any(mtime >= settled for _, _, mtime in key)


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
        manifest = _read_manifest(folder)  # another command may have built
        if _fresh(manifest, key, lenient):
            assert manifest is not None
            opened = _open_db(folder, manifest, run_dir)
            if opened is not None:
                return opened
        if _unsettled(key):
            return 'the run is still being written'
        try:
            manifest = _build_into(folder, run_dir, key, lenient)
            _remove_old(folder, manifest['db'])
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
    manifest = _read_manifest(folder)
    if _fresh(manifest, key, lenient):
        assert manifest is not None
        opened = _open_db(folder, manifest, run_dir)
        if opened is not None:
            return opened
    kept = _keep(folder, run_dir, lenient)
    if isinstance(kept, RunStore):
        return kept
    return _fall_back(run_dir, kept, lenient, temporary)
