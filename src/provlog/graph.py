"""``RunGraph``: the merged PROV graph of one run, and what users ask of it."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any
from typing import Final
from typing import Literal
from typing import TYPE_CHECKING

import networkx as nx

from provlog import formats
from provlog.actions.merge import find_run
from provlog.actions.merge import merge_run
from provlog.actions.merge import MergedRun
from provlog.actions.spans import Timeline
from provlog.actions.spans import timeline
from provlog.flowcept import forwarded_tags
from provlog.gcpause import paused_gc
from provlog.mapping.model import build_graph
from provlog.mapping.provjson import to_provjson
from provlog.mapping.provjson import write_provjson
from provlog.mapping.rdf import load_store
from provlog.mapping.rdf import to_rdflib
from provlog.query.lineage import why
from provlog.query.lineage import WhyNode
from provlog.query.sparql import load_query
from provlog.query.sparql import QueryResult
from provlog.query.sparql import run_sparql
from provlog.query.store import count_actions
from provlog.query.store import open_store
from provlog.query.store import RunStore
from provlog.query.store import store_is_fresh
from provlog.query.storewhy import why_in_store
from provlog.validate import Problem
from provlog.validate import validate_run
from provlog.vocab import STATES

if TYPE_CHECKING:
    import pyoxigraph
    import rdflib
    from prov.model import ProvDocument

__all__ = [
    'FORMATS',
    'LIMIT_VARIABLE',
    'MAX_GRAPH_ACTIONS',
    'RunGraph',
    'RunTooLargeError',
    'WhyEngine',
    'choose_engine',
    'graph_limit',
    'load',
    'open_store',
]

#: Export formats (:mod:`provlog.formats`): PROV-JSON, PROV-N, PROV-XML,
#: PROV-O as Turtle, N-Triples, RDF/XML and JSON-LD, and the views' formats.
FORMATS = tuple(formats.BUILTIN)
#: What answers ``why``: the graph's walk, or SPARQL on one of two engines.
WhyEngine = Literal['networkx', 'oxigraph', 'rdflib']
_NO_VALUE: Final = object()

#: The most actions :attr:`RunGraph.nx` builds into memory: the graph
#: takes about 15 KiB per action (a 100,000-action run, merged and built,
#: peaks near 1.5 GiB), so larger runs are answered from the on-disk store
#: (:mod:`provlog.query.store`) and exported as streams. The environment
#: variable :data:`LIMIT_VARIABLE`, or ``load(..., max_graph_actions=N)``,
#: sets another limit.
MAX_GRAPH_ACTIONS = 100_000
#: The environment variable that overrides :data:`MAX_GRAPH_ACTIONS`.
LIMIT_VARIABLE = 'PROVLOG_MAX_GRAPH_ACTIONS'


def graph_limit() -> int:
    """:data:`MAX_GRAPH_ACTIONS`, or the number :data:`LIMIT_VARIABLE` says.

    Raises:
        ValueError: The variable is set to something else than a number
            of actions (a negative one too).
    """
    text = os.environ.get(LIMIT_VARIABLE, '').strip()
    if not text:
        return MAX_GRAPH_ACTIONS
    try:
        limit = int(text.replace('_', ''))
    except ValueError:
        limit = -1
    if limit < 0:
        raise ValueError(
            f'{LIMIT_VARIABLE}={text[:40]!r} is not a number of actions'
        )
    return limit


class RunTooLargeError(ValueError):
    """The run has more actions than the in-memory graph takes.

    Attributes:
        actions: The run's actions.
        limit: The most the graph takes (:func:`graph_limit`).
    """

    def __init__(
        self, run_dir: Path, actions: int, limit: int, *, picture: bool = False
    ) -> None:
        head = (
            f'{run_dir}: {actions:,} actions, more than the {limit:,} the '
            'in-memory graph (RunGraph.nx) takes. '
        )
        if picture:
            hint = (
                'The picture of why needs the graph: use why without '
                '--format dot/svg (it reads the on-disk store), or raise '
            )
        else:
            hint = (
                'Ask the on-disk store instead (provlog why/query RUN use '
                'it, or provlog.open_store(RUN) from Python), export it as '
                'a stream (provlog export RUN --format nt|turtle|provjson), '
                'or raise '
            )
        super().__init__(
            head + hint + f'the limit ({LIMIT_VARIABLE}=N, or '
            'provlog.load(RUN, max_graph_actions=N))'
        )
        self.actions = actions
        self.limit = limit


def choose_engine(
    path: str | os.PathLike[str],
    engine: str | None = None,
    *,
    lenient: bool = False,
) -> str:
    """What answers ``why`` on the run at ``path``, when not told.

    The one place the choice is made: ``engine`` when given, else
    ``'oxigraph'`` (the on-disk store) when the run has a store built from
    its journals as they are, or more actions than :func:`graph_limit`;
    else ``'networkx'`` (the walk of the in-memory graph).
    """
    if engine is not None:
        return engine
    if store_is_fresh(Path(path), lenient=lenient):
        return 'oxigraph'
    if count_actions(find_run(Path(path))) > graph_limit():
        return 'oxigraph'
    return 'networkx'


class RunGraph:
    """The PROV graph of a run, merged from every process's journal.

    Attributes:
        run: The merged journals the graph was built from.

    The PROV graph (:attr:`nx`), its RDF store and its timeline are built
    when first asked for: a timeline view never pays for the PROV graph.
    """

    __slots__ = (
        '_disk',
        '_nx',
        '_store',
        '_timeline',
        'lenient',
        'max_graph_actions',
        'run',
    )

    def __init__(
        self,
        run: MergedRun,
        *,
        lenient: bool = False,
        max_graph_actions: int | None = None,
    ) -> None:
        self.run = run
        #: Damaged journal lines were skipped (the store is read so too).
        self.lenient = lenient
        #: The most actions :attr:`nx` builds (``None``: graph_limit()).
        self.max_graph_actions = max_graph_actions
        self._nx: nx.MultiDiGraph | None = None
        self._store: pyoxigraph.Store | None = None
        self._disk: RunStore | None = None
        self._timeline: Timeline | None = None

    @property
    def too_large(self) -> bool:
        """Whether the run has more actions than :attr:`nx` builds."""
        limit = self.max_graph_actions
        return len(self.run.actions) > (
            graph_limit() if limit is None else limit
        )

    @property
    def nx(self) -> nx.MultiDiGraph:
        """The :class:`networkx.MultiDiGraph` (built once, when first used).

        Nodes are compact IRIs with a ``kind`` and PROV attributes; edges
        point from effect to cause and carry the relation name in ``rel``.

        Raises:
            RunTooLargeError: The run has more actions than the limit
                (:data:`MAX_GRAPH_ACTIONS`); the message says what to use.
        """
        if self._nx is None:
            if self.too_large:
                limit = self.max_graph_actions
                raise RunTooLargeError(
                    self.run.run_dir,
                    len(self.run.actions),
                    graph_limit() if limit is None else limit,
                )
            with paused_gc():
                self._nx = build_graph(self.run)
        return self._nx

    @property
    def timeline(self) -> Timeline:
        """Every call with both sides on one clock (:mod:`~.actions.spans`)."""
        if self._timeline is None:
            self._timeline = timeline(self.run)
        return self._timeline

    @property
    def store(self) -> pyoxigraph.Store:
        """The run's PROV-O in an in-memory ``pyoxigraph.Store`` (cached)."""
        if self._store is None:
            self._store = load_store(self.nx)
        return self._store

    def to_rdflib(self, engine: str = 'oxigraph') -> rdflib.Graph:
        """The PROV-O as an ``rdflib.Graph``.

        Args:
            engine: ``'oxigraph'`` (default) keeps the triples in Oxigraph
                through ``oxrdflib``, so ``Graph.query`` is fast;
                ``'rdflib'`` uses rdflib's own store and SPARQL engine.
        """
        return to_rdflib(self.nx, engine=engine)

    def disk_store(self) -> RunStore:
        """The run's store on disk (:func:`provlog.query.store.open_store`).

        Built when missing or stale, in a temporary folder when the run
        folder cannot keep it; kept open until :meth:`close`.

        Raises:
            provlog.journals.reader.JournalError: The run cannot be read.
            OSError: Not even a temporary folder can hold the store.
        """
        if self._disk is None:
            opened = open_store(self.run.run_dir, lenient=self.lenient)
            assert opened is not None  # temporary=True: never None
            self._disk = opened
        return self._disk

    def query_store(
        self, engine: str = 'oxigraph'
    ) -> pyoxigraph.Store | rdflib.Graph:
        """What ``engine`` queries: the Oxigraph store or an rdflib graph.

        On Oxigraph, the in-memory store of the graph held (:attr:`store`),
        so the answers are those of :attr:`run`; for a run too large for
        the graph (:attr:`too_large`), the run's store on disk
        (:meth:`disk_store`), released by :meth:`close`.
        """
        if engine != 'oxigraph':
            return self.to_rdflib(engine)
        if self.too_large:
            return self.disk_store().store
        return self.store

    def close(self) -> None:
        """Release the on-disk store, if one was opened.

        A temporary one is removed. The graph stays usable (and opens the
        store again when asked).
        """
        if self._disk is not None:
            self._disk.close()
            self._disk = None

    def __enter__(self) -> RunGraph:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def sparql(
        self,
        query: str,
        *,
        bindings: dict[str, str] | None = None,
        engine: str = 'oxigraph',
        timeout: float | None = None,
    ) -> QueryResult:
        """Run a read-only SPARQL query over the run's PROV-O."""
        return run_sparql(
            self.query_store(engine),
            load_query(query),
            bindings=bindings,
            engine=engine,
            timeout=timeout,
        )

    def why(
        self,
        target: str | None = None,
        *,
        value: object = _NO_VALUE,
        depth: int | None = None,
        engine: WhyEngine = 'networkx',
    ) -> WhyNode:
        """How ``target`` was produced, as a derivation tree.

        ``target`` is an action tag or an IRI; ``why(value=obj)`` finds the
        entity whose content hash equals ``obj``'s. ``engine='oxigraph'``
        answers from the run's store alone (:meth:`query_store`), which a
        run too large for :attr:`nx` needs.
        """
        has_value = value is not _NO_VALUE
        found = None if value is _NO_VALUE else value
        if engine == 'oxigraph':
            tree, _ = why_in_store(
                self.query_store('oxigraph'),
                self.run_id,
                target,
                value=found,
                has_value=has_value,
                depth=depth,
            )
            return tree
        tree, _ = why(
            self,
            target,
            value=found,
            has_value=has_value,
            depth=depth,
            engine=engine,
        )
        return tree

    @property
    def run_id(self) -> str:
        """The run's id (the LogConfig's ``uuid``)."""
        return self.run.run_id

    def stats(self) -> dict[str, Any]:
        """Counts for people and scripts: actions by state, agents, ...

        ``complete`` is false exactly when ``gaps`` (one record per reason,
        from :meth:`provlog.actions.merge.MergedRun.gaps`) is not empty.
        """
        gaps = self.run.gaps()
        states = Counter(a.state for a in self.run.actions.values())
        processes = self.run.processes.values()
        return {
            'actions': len(self.run.actions),
            'states': {k: states.get(k, 0) for k in STATES},
            'agents': self.run.agent_count(),
            'processes': len(self.run.processes),
            'run': self.run_id,
            'processes_not_closed': sorted(
                p.label for p in processes if not p.closed
            ),
            'events_dropped': sum(p.dropped for p in processes),
            'events_lost': sum(p.lost for p in processes),
            'encode_errors': sum(p.encode_errors for p in processes),
            'capture_gaps': sum(len(p.capture_gaps) for p in processes),
            'executions_not_observed': len(self.run.executions_not_observed()),
            'requests_not_observed': len(self.run.requests_not_observed()),
            'lines_skipped': sum(p.skipped for p in processes),
            'journals_cut': sorted(
                p.label for p in processes if p.partial_tail
            ),
            'complete': not gaps,
            'gaps': [gap.to_json() for gap in gaps],
            'flowcept': self._flowcept_counts(),
        }

    def validate(self, *, tolerance: float = 1.0) -> list[Problem]:
        """Schema, ordering and completeness problems; empty means valid."""
        return validate_run(self, tolerance=tolerance)

    def _flowcept_counts(self) -> dict[str, int]:
        sent = (forwarded_tags(self.run.run_dir) | self.run.forwarded) & set(
            self.run.actions,
        )
        return {
            'forwarded': len(sent),
            'pending': len(self.run.actions) - len(sent),
        }

    def to_provjson(self) -> dict[str, Any]:
        """The PROV-JSON document as a dict."""
        return to_provjson(self.nx)

    def to_prov(self) -> ProvDocument:
        """The graph as a ``prov`` ``ProvDocument`` (slow; for interop)."""
        from prov.model import ProvDocument  # noqa: PLC0415

        return ProvDocument.deserialize(
            content=write_provjson(self.nx).decode(),
            format='json',
        )

    def serialize(
        self, fmt: str = 'provjson', *, indent: bool = False
    ) -> bytes:
        """The run in ``fmt``: any name :func:`provlog.formats.names` lists."""
        return formats.get(fmt).serialize(self, indent=indent)

    def write(
        self, path: str | os.PathLike[str], fmt: str = 'provjson'
    ) -> Path:
        """Write the graph to ``path`` in ``fmt``; return the path."""
        target = Path(path)
        target.write_bytes(self.serialize(fmt, indent=fmt == 'provjson'))
        return target

    def __repr__(self) -> str:
        nodes = '' if self._nx is None else f' nodes={len(self._nx)}'
        actions = len(self.run.actions)
        return f'<RunGraph {self.run_id} actions={actions}{nodes}>'


def load(
    path: str | os.PathLike[str],
    *,
    lenient: bool = False,
    max_graph_actions: int | None = None,
) -> RunGraph:
    """Merge the journals of a run folder into a :class:`RunGraph`.

    Args:
        path: A run folder, or a folder holding exactly one run.
        lenient: Skip and count damaged journal lines instead of failing.
        max_graph_actions: The most actions :attr:`RunGraph.nx` builds
            (default :func:`graph_limit`).

    Raises:
        provlog.journals.reader.JournalError: A journal cannot be read;
            the message names the file and line.
    """
    with paused_gc():
        return RunGraph(
            merge_run(Path(path), lenient=lenient),
            lenient=lenient,
            max_graph_actions=max_graph_actions,
        )
