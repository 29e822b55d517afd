"""Questions across runs: every run of a folder in one on-disk store.

``provlog query DIR`` on a folder of runs (run folders, no journals of its
own) queries the catalogue: an Oxigraph store on disk in
``DIR/.provlog-store/``, one named graph per run, named by the IRI of the
run's ``provlog:Run`` node (``plid:run/<run id>``). Each graph holds
exactly the PROV-O that ``provlog query RUN`` queries
(:mod:`provlog.mapping.rdf`).

The store is brought up to date before each query: a manifest keeps, per
run folder, the name, size and mtime of each journal (the key of
:func:`provlog.runs.journal_key`), so a run that is loaded and unchanged is
not read again, a changed run is dropped and loaded again, and a deleted
run is dropped. A run that cannot be read whole is skipped and reported
(one line naming the file and line), as ``provlog runs`` reports it; it is
tried again when its journals change. Loading a run also writes its
``provlog runs`` summary, so listing the folder afterwards merges nothing.

Two commands on the same folder do not run together: an exclusive lock
(``DIR/.provlog-store/lock``, :func:`provlog.query.store.hold_lock`, as
for one run's store) is held while the store is updated and queried; the
second command waits.
"""

from __future__ import annotations

import contextlib
import gc
import sys
import time
from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import orjson

from provlog.actions.merge import JOURNAL_SUFFIX
from provlog.actions.merge import run_folders
from provlog.gcpause import paused_gc
from provlog.graph import load
from provlog.graph import RunGraph
from provlog.journals.reader import JournalError
from provlog.journals.reader import show
from provlog.mapping.rdf import expand
from provlog.mapping.rdf import ntriples
from provlog.query.sparql import QueryResult
from provlog.query.sparql import run_sparql
from provlog.query.store import hold_lock
from provlog.query.store import STORE_DIR
from provlog.query.storefiles import replace_file
from provlog.runs import journal_key
from provlog.runs import remember_summary

__all__ = [
    'STORE_DIR',
    'Catalogue',
    'Update',
    'is_catalogue',
    'open_catalogue',
]

_DB = 'oxigraph'
_MANIFEST = 'manifest.json'
_VERSION = 1
#: An update that loads this many runs compacts the store at its end (the
#: database compacts itself in the background too, but lags bulk loads).
_COMPACT_AFTER = 50


def is_catalogue(path: Path) -> bool:
    """Whether ``path`` is a folder of runs (run folders, no journals)."""
    if not path.is_dir() or any(path.glob(f'*{JOURNAL_SUFFIX}')):
        return False
    try:
        return bool(run_folders(path))
    except OSError:
        return False


@dataclass
class Update:
    """What one update of the catalogue did, by run folder name."""

    #: Runs read and loaded now (new, or changed since they were loaded).
    loaded: list[str] = field(default_factory=list)
    #: Runs whose graph was dropped: deleted, changed, or now unreadable.
    removed: list[str] = field(default_factory=list)
    #: Runs already loaded whose journals did not change: not read.
    unchanged: list[str] = field(default_factory=list)
    #: Runs not in the store: folder name -> one-line error.
    failed: dict[str, str] = field(default_factory=dict)
    #: Seconds the update took.
    seconds: float = 0.0


class Catalogue:
    """The on-disk store of a folder of runs; use :func:`open_catalogue`.

    Attributes:
        folder: The folder of runs.
        store: The ``pyoxigraph.Store`` (on disk, opened read-write).
    """

    def __init__(self, folder: Path, store: Any) -> None:
        self.folder = folder
        self.store = store
        self._path = folder / STORE_DIR
        self._manifest = _read_manifest(self._path / _MANIFEST)
        #: Graph IRI -> run folder name, for the runs in the store.
        self._iris = {
            e['graph']: n
            for n, e in self._manifest['runs'].items()
            if 'graph' in e
        }

    @property
    def graphs(self) -> dict[str, str]:
        """Run folder name -> the IRI of its named graph, for loaded runs."""
        return {
            name: entry['graph']
            for name, entry in sorted(self._manifest['runs'].items())
            if 'graph' in entry
        }

    def update(self, *, progress: bool = False) -> Update:
        """Load new and changed runs, drop deleted ones; see the module.

        Args:
            progress: Say on stderr when many runs are about to be loaded.
        """
        t0 = time.perf_counter()
        out = Update()
        entries: dict[str, dict[str, Any]] = self._manifest['runs']
        keys: dict[str, Any] = {}
        dirty = False  # the manifest changed
        for run_dir in run_folders(self.folder):
            try:
                keys[run_dir.name] = journal_key(run_dir)
            except OSError as exc:
                keys[run_dir.name] = None
                out.failed[run_dir.name] = f'{run_dir}: {exc.strerror or exc}'
        for name in sorted(entries):
            entry = entries[name]
            if name in keys and entry['key'] == keys[name]:
                if 'graph' in entry:
                    out.unchanged.append(name)
                else:
                    out.failed[name] = entry['error']
                continue
            del entries[name]
            dirty = True
            if 'graph' in entry:
                self._iris.pop(entry['graph'], None)
                self._drop(entry['graph'])
                out.removed.append(name)
        self._drop_strays()
        todo = [n for n in sorted(keys) if n not in entries and keys[n]]
        if progress and len(todo) > _COMPACT_AFTER:
            print(
                f'provlog: loading {len(todo)} runs into '
                f'{show(str(self._path))} (later queries load only new and '
                'changed runs)',
                file=sys.stderr,
            )
        self._load_all(todo, keys, out)
        if len(out.loaded) >= _COMPACT_AFTER:
            self.store.optimize()  # once, after a big load: a smaller store
        if dirty or todo:
            self._save()
        out.seconds = time.perf_counter() - t0
        return out

    def sparql(
        self,
        query: str,
        *,
        bindings: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> QueryResult:
        """Run a read-only query over every run (as :func:`run_sparql`).

        The default graph is the union of the runs' graphs, so a question
        about one run asks it of all of them together; ``GRAPH ?run {…}``
        binds ``?run`` to the run's IRI.
        """
        return run_sparql(
            _UnionView(self.store),
            query,
            bindings=bindings,
            engine='oxigraph',
            timeout=timeout,
        )

    def _load_all(
        self, names: list[str], keys: dict[str, Any], out: Update
    ) -> None:
        """Read each run and bulk-load it into its graph.

        The manifest is saved every few runs, so a crash keeps what was
        done (graphs the manifest does not know are dropped next time).
        """
        for n, name in enumerate(names):
            read = self._read(name, keys, out)
            if read is not None:
                self._ingest(read)
                remember_summary(read.run_dir, read.key, read.graph)
                self._manifest['runs'][name] = {
                    'key': read.key,
                    'run': read.graph.run_id,
                    'graph': read.iri,
                }
                out.loaded.append(name)
            if n % _COMPACT_AFTER == _COMPACT_AFTER - 1:
                self._save()

    def _read(
        self, name: str, keys: dict[str, Any], out: Update
    ) -> _Read | None:
        """Merge one run and write its PROV-O; ``None`` when it failed."""
        run_dir, key = self.folder / name, keys[name]
        try:
            with paused_gc():
                graph = load(run_dir)
                nx = graph.nx
                data = ''.join(ntriples(nx)).encode()
        except (JournalError, ValueError) as exc:
            error = str(exc)
        except OSError as exc:
            where = exc.filename if exc.filename is not None else run_dir
            error = f'{where}: {exc.strerror or exc}'
        except RecursionError:
            error = f'{run_dir}: input nested too deeply'
        else:
            error = ''
        if error:
            self._failed(name, key, error, out)
            return None
        iri = next(
            expand(node)
            for node, d in nx.nodes(data=True)
            if 'provlog:Run' in d.get('prov:type', ())
        )
        twin = self._iris.get(iri)
        if twin is not None:
            message = f'{run_dir}: the same run as {twin} (run {graph.run_id})'
            self._failed(name, key, message, out)
            return None
        self._iris[iri] = name
        return _Read(name, run_dir, key, graph, iri, data)

    def _ingest(self, read: _Read) -> None:
        import pyoxigraph  # noqa: PLC0415

        self._drop(read.iri)  # a load a crash cut short
        self.store.bulk_load(
            read.data,
            format=pyoxigraph.RdfFormat.N_TRIPLES,
            to_graph=pyoxigraph.NamedNode(read.iri),
        )

    def _failed(self, name: str, key: Any, error: str, out: Update) -> None:
        self._manifest['runs'][name] = {'key': key, 'error': show(error)}
        out.failed[name] = show(error)

    def _drop(self, iri: str) -> None:
        import pyoxigraph  # noqa: PLC0415

        graph = pyoxigraph.NamedNode(iri)
        if self.store.contains_named_graph(graph):
            self.store.remove_graph(graph)

    def _drop_strays(self) -> None:
        """Drop graphs the manifest does not know (a crash before saving)."""
        known = {e.get('graph') for e in self._manifest['runs'].values()}
        for graph in list(self.store.named_graphs()):
            if graph.value not in known:
                self.store.remove_graph(graph)

    def _save(self) -> None:
        replace_file(self._path / _MANIFEST, orjson.dumps(self._manifest))


@dataclass
class _Read:
    """A run read and mapped, ready to load."""

    name: str
    run_dir: Path
    key: Any
    graph: RunGraph
    iri: str
    data: bytes


class _UnionView:
    """A store whose queries read the union of its graphs by default."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def query(self, query: str, **kwargs: Any) -> Any:
        return self._store.query(
            query, use_default_graph_as_union=True, **kwargs
        )


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        data = None
    if not isinstance(data, dict) or data.get('v') != _VERSION:
        # no manifest, or another version's: every graph is a stray
        return {'v': _VERSION, 'runs': {}}
    return data


@contextlib.contextmanager
def open_catalogue(folder: Path) -> Iterator[Catalogue]:
    """The catalogue of ``folder``, locked against other commands.

    Creates ``folder/.provlog-store/`` when it is missing. Waits while
    another command holds the catalogue (and says so on stderr).

    Raises:
        JournalError: ``folder`` is not a folder, or the store cannot be
            created or opened there.
    """
    import pyoxigraph  # noqa: PLC0415 - the read side's RDF only

    if not folder.is_dir():
        raise JournalError(f'{folder}: no such folder')
    path = folder / STORE_DIR
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(hold_lock(path))
        except OSError as exc:
            raise JournalError(f'{path}: {exc.strerror or exc}') from None
        try:
            store = pyoxigraph.Store(str(path / _DB))
        except OSError as exc:
            raise JournalError(f'{path / _DB}: {exc}') from None
        catalogue = Catalogue(folder, store)
        try:
            yield catalogue
        finally:
            store.flush()
            # the database must close before the lock goes: drop every
            # reference, those in cycles (a query's frames) too
            catalogue.store = None
            del store, catalogue
            gc.collect()
