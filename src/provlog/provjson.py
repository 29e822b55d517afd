"""PROV-JSON written straight from the graph (no round trip through ``prov``).

The output follows the W3C PROV-JSON Member Submission and validates
against its schema. Relation records get fresh blank ids (``_:r1``, ...),
unique in the document; element ids are the graph's compact IRIs under the
prefixes declared in ``prefix``. ``prov:type`` values are written as
qualified names.
"""

from __future__ import annotations

from typing import Any

import networkx as nx
import orjson

from provlog.model import PREFIXES

__all__ = ['RELATIONS', 'to_provjson', 'write_provjson']

#: Relation name -> (PROV-JSON key of the edge's source, of its target).
RELATIONS: dict[str, tuple[str, str]] = {
    'used': ('prov:activity', 'prov:entity'),
    'wasGeneratedBy': ('prov:entity', 'prov:activity'),
    'wasAssociatedWith': ('prov:activity', 'prov:agent'),
    'wasInformedBy': ('prov:informed', 'prov:informant'),
    'wasDerivedFrom': ('prov:generatedEntity', 'prov:usedEntity'),
    'hadMember': ('prov:collection', 'prov:entity'),
    'actedOnBehalfOf': ('prov:delegate', 'prov:responsible'),
    'wasAttributedTo': ('prov:entity', 'prov:agent'),
}

_QNAME = 'prov:QUALIFIED_NAME'


_SKIP = frozenset({'kind', 'rel'})


def _types(value: Any, cache: dict[tuple[str, ...], Any]) -> Any:
    key = tuple(value) if isinstance(value, list) else (value,)
    encoded = cache.get(key)
    if encoded is None:
        items = [{'$': t, 'type': _QNAME} for t in key]
        encoded = cache[key] = items[0] if len(items) == 1 else items
    return encoded


def _attrs(data: dict[str, Any], cache: dict[tuple[str, ...], Any]) -> Any:
    out = {k: v for k, v in data.items() if k not in _SKIP}
    if 'prov:type' in out:
        out['prov:type'] = _types(out['prov:type'], cache)
    return out


def to_provjson(graph: nx.MultiDiGraph) -> dict[str, Any]:
    """Return the PROV-JSON document of ``graph`` as a dict."""
    doc: dict[str, Any] = {'prefix': dict(PREFIXES)}
    sections: dict[str, dict[str, Any]] = {
        'entity': {},
        'activity': {},
        'agent': {},
    }
    cache: dict[tuple[str, ...], Any] = {}
    for node, data in graph.nodes(data=True):
        sections[data['kind']][node] = _attrs(data, cache)
    for name, section in sections.items():
        if section:
            doc[name] = section
    for n, (u, v, data) in enumerate(graph.edges(data=True), start=1):
        rel = data['rel']
        src_key, dst_key = RELATIONS[rel]
        record = {src_key: u, dst_key: v}
        record.update(_attrs(data, cache))
        doc.setdefault(rel, {})[f'_:r{n}'] = record
    return doc


def write_provjson(
    graph: nx.MultiDiGraph, path: str | None = None, *, indent: bool = False
) -> bytes:
    """Serialise ``graph`` as PROV-JSON; write it to ``path`` when given."""
    option = orjson.OPT_INDENT_2 if indent else 0
    data = orjson.dumps(to_provjson(graph), option=option)
    if path is not None:
        with open(path, 'wb') as fh:
            fh.write(data)
    return data
