"""``RunGraph``: the merged PROV graph of one run, and what users ask of it."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any
from typing import TYPE_CHECKING

import networkx as nx

from provlog import formats
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
from provlog.validate import validate_run
from provlog.vocab import STATES

if TYPE_CHECKING:
    import pyoxigraph
    import rdflib
    from prov.model import ProvDocument

__all__ = ['FORMATS', 'RunGraph', 'load']

#: Export formats (:mod:`provlog.formats`): PROV-JSON, PROV-N, PROV-XML,
#: PROV-O as Turtle, N-Triples, RDF/XML and JSON-LD, and the views' formats.
FORMATS = tuple(formats.BUILTIN)


class RunGraph:
    """The PROV graph of a run, merged from every process's journal.

    Attributes:
        run: The merged journals the graph was built from.

    The PROV graph (:attr:`nx`), its RDF store and its timeline are built
    when first asked for: a timeline view never pays for the PROV graph.
    """

    __slots__ = ('_nx', '_store', '_timeline', 'run')

    def __init__(self, run: MergedRun) -> None:
        self.run = run
        self._nx: nx.MultiDiGraph | None = None
        self._store: pyoxigraph.Store | None = None
        self._timeline: Timeline | None = None

    @property
    def nx(self) -> nx.MultiDiGraph:
        """The :class:`networkx.MultiDiGraph` (built once, when first used).

        Nodes are compact IRIs with a ``kind`` and PROV attributes; edges
        point from effect to cause and carry the relation name in ``rel``.
        """
        if self._nx is None:
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

    def query_store(
        self, engine: str = 'oxigraph'
    ) -> pyoxigraph.Store | rdflib.Graph:
        """What ``engine`` queries: the Oxigraph store or an rdflib graph."""
        return self.store if engine == 'oxigraph' else self.to_rdflib(engine)

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
        depth: int | None = None,
        engine: str = 'networkx',
        **kwargs: Any,
    ) -> WhyNode:
        """How ``target`` was produced, as a derivation tree.

        ``target`` is an action tag or an IRI; ``why(value=obj)`` finds the
        entity whose content hash equals ``obj``'s.
        """
        has_value = 'value' in kwargs
        tree, _ = why(
            self,
            target,
            value=kwargs.pop('value', None),
            has_value=has_value,
            depth=depth,
            engine=engine,
        )
        if kwargs:
            raise TypeError(f'unexpected arguments: {", ".join(kwargs)}')
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

    def validate(self, *, tolerance: float = 1.0) -> list[Any]:
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
        return (
            f'<RunGraph {self.run_id} actions={len(self.run.actions)} '
            f'nodes={self.nx.number_of_nodes()}>'
        )


def load(path: str | os.PathLike[str], *, lenient: bool = False) -> RunGraph:
    """Merge the journals of a run folder into a :class:`RunGraph`.

    Args:
        path: A run folder, or a folder holding exactly one run.
        lenient: Skip and count damaged journal lines instead of failing.

    Raises:
        provlog.journals.reader.JournalError: A journal cannot be read;
            the message names the file and line.
    """
    with paused_gc():
        return RunGraph(merge_run(Path(path), lenient=lenient))
