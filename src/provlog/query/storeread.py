"""Index lookups on a run's store: the triples of a node, as the graph.

What :mod:`provlog.query.storewhy` reads of each node of a lineage, one
lookup per node (cached): its triples, its literal attributes in the
graph's names and types, whether it is an activity.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from provlog.mapping.rdf import NAMESPACES
from provlog.mapping.rdf import PROV
from provlog.mapping.rdf import RDFS
from provlog.mapping.rdf import XSD

__all__ = ['StoreReader', 'exists', 'graph_time']

_PROVLOG = NAMESPACES['provlog']
#: PROV-O predicates whose graph attribute is not ``provlog:<name>``.
_PREDICATES = {
    RDFS + 'label': 'prov:label',
    PROV + 'startedAtTime': 'prov:startTime',
    PROV + 'endedAtTime': 'prov:endTime',
}
_TYPE = 'http://www.w3.org/1999/02/22-rdf-syntax-ns#type'
_ACTIVITY = PROV + 'Activity'


class StoreReader:
    """Index lookups on a store, each asked once: the triples of a node."""

    def __init__(self, store: Any) -> None:
        import pyoxigraph  # noqa: PLC0415

        self.ox = pyoxigraph
        self.store = store
        self._out: dict[Any, list[tuple[str, Any]]] = {}
        self.iri = {
            name: pyoxigraph.NamedNode(PROV + name)
            for name in (
                'wasGeneratedBy',
                'used',
                'wasInformedBy',
                'hadMember',
                'activity',
                'qualifiedGeneration',
            )
        }

    def out(self, node: Any) -> list[tuple[str, Any]]:
        """``(predicate IRI, object)`` of every triple about ``node``."""
        found = self._out.get(node)
        if found is None:
            found = self._out[node] = [
                (q.predicate.value, q.object)
                for q in self.store.quads_for_pattern(node, None, None)
            ]
        return found

    def into(self, relation: str, node: Any) -> list[Any]:
        """The subjects of ``relation`` (a PROV name) to ``node``."""
        return [
            q.subject
            for q in self.store.quads_for_pattern(
                None, self.iri[relation], node
            )
        ]

    def one(self, node: Any, predicate: str) -> Any:
        """The first object of ``predicate`` about ``node``, or ``None``."""
        return next((o for p, o in self.out(node) if p == predicate), None)

    def is_activity(self, node: Any) -> bool:
        """Whether ``node`` is a ``prov:Activity``.

        Only activities are informed and generate; only entities are used.
        """
        return any(
            p == _TYPE and o.value == _ACTIVITY for p, o in self.out(node)
        )

    def literals(self, node: Any) -> dict[str, Any]:
        """The node's literal attributes, as the graph holds them."""
        data: dict[str, Any] = {}
        for predicate, obj in self.out(node):
            if isinstance(obj, self.ox.Literal):
                key = _attribute(predicate)
                if key is not None:
                    data[key] = _python(obj.value, obj.datatype.value)
        return data


def exists(reader: StoreReader, iri: str) -> bool:
    """Whether ``iri`` is a node of the store (it has a type)."""
    try:
        node = reader.ox.NamedNode(iri)
    except ValueError:
        return False
    return any(p == _TYPE for p, _ in reader.out(node))


def graph_time(text: str) -> str:
    """An ``xsd:dateTime`` as the graph writes it (``…000000+00:00``)."""
    try:
        when = datetime.fromisoformat(text.replace('Z', '+00:00'))
    except ValueError:
        return text
    return when.isoformat(timespec='microseconds')


def _python(text: str, datatype: str) -> Any:
    """A literal as the graph holds it: ``int``, ``float``, ``bool``, text."""
    kind = datatype.removeprefix(XSD)
    if kind == 'integer':
        return int(text)
    if kind == 'double':
        return float(text)
    if kind == 'boolean':
        return text == 'true'
    if kind == 'dateTime':
        return graph_time(text)
    return text


def _attribute(predicate: str) -> str | None:
    found = _PREDICATES.get(predicate)
    if found is None and predicate.startswith(_PROVLOG):
        found = 'provlog:' + predicate[len(_PROVLOG) :]
    return found
