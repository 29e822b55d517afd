"""``RunView``: what the later stages of the read side read of a run.

:class:`provlog.graph.RunGraph` (``provlog.load``) is the public façade and
satisfies this protocol structurally; the modules it delegates to
(:mod:`provlog.query.lineage`, :mod:`provlog.validate`,
:mod:`provlog.flowcept`, :mod:`provlog.formats`) take a ``RunView``, so none of
them imports :mod:`provlog.graph` back. Each member is one some of them use.
"""

from __future__ import annotations

from typing import Any
from typing import Protocol
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import networkx as nx
    import pyoxigraph
    import rdflib
    from prov.model import ProvDocument

    from provlog.actions.merge import MergedRun
    from provlog.actions.spans import Timeline

__all__ = ['RunView']


class RunView(Protocol):
    """A merged run, its PROV graph and the views built from it."""

    @property
    def run(self) -> MergedRun:
        """The merged journals."""
        ...

    @property
    def run_id(self) -> str:
        """The run's id (the LogConfig's ``uuid``)."""
        ...

    @property
    def nx(self) -> nx.MultiDiGraph:
        """The PROV graph: compact IRIs as nodes, edges effect to cause."""
        ...

    @property
    def store(self) -> pyoxigraph.Store:
        """The run's PROV-O in an Oxigraph store."""
        ...

    @property
    def timeline(self) -> Timeline:
        """Every call with both sides on one clock (:mod:`~.actions.spans`)."""
        ...

    def query_store(
        self, engine: str = 'oxigraph'
    ) -> pyoxigraph.Store | rdflib.Graph:
        """What ``engine`` queries: the Oxigraph store or an rdflib graph."""
        ...

    def to_provjson(self) -> dict[str, Any]:
        """The PROV-JSON document as a dict."""
        ...

    def to_prov(self) -> ProvDocument:
        """The graph as a ``prov`` ``ProvDocument``."""
        ...
