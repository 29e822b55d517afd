"""Building a run's store: its N-Triples bulk-loaded in pieces.

See :mod:`provlog.query.store` for the store's layout and life; this is
the build of one database, in ``build-<id>/`` renamed ``db-<id>/`` when
whole, and the manifest that names it.
"""

from __future__ import annotations

import contextlib
import gc
import queue
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from typing import BinaryIO

from provlog.journals.reader import JournalError
from provlog.query.storefiles import StoreWriteError
from provlog.query.storefiles import write_manifest

__all__ = ['build_into']

#: N-Triples handed to the bulk loader at once: its memory follows it
#: (about 1.1 GiB at 128 MiB, measured; 1.8 GiB for a whole 1.5 GB file).
_CHUNK_BYTES = 128 << 20


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


def build_into(
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
    return write_manifest(
        folder,
        {
            'key': key,
            'db': db,
            'run': made['run'],
            'actions': made['actions'],
            'lenient': lenient,
            'seconds': round(time.perf_counter() - t0, 3),
        },
    )
