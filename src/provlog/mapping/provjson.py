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

from provlog.gcpause import gc_paused
from provlog.gcpause import paused_gc
from provlog.mapping.model import PREFIXES

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


def _types(value: Any, cache: dict[tuple[str, ...], Any]) -> Any:
    key = tuple(value) if isinstance(value, (list, tuple)) else (value,)
    encoded = cache.get(key)
    if encoded is None:
        items = [{'$': t, 'type': _QNAME} for t in key]
        encoded = cache[key] = items[0] if len(items) == 1 else items
    return encoded


def _record(
    data: dict[str, Any], drop: str, cache: dict[tuple[str, ...], Any]
) -> dict[str, Any]:
    """A PROV-JSON record of graph attributes, without the ``drop`` key.

    ``dict.copy()`` and ``del`` run in C: several times faster than a
    filtering comprehension over every record's attributes.
    """
    record = data.copy()
    del record[drop]
    types = record.get('prov:type')
    if types is not None:
        record['prov:type'] = _types(types, cache)
    return record


@gc_paused
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
        sections[data['kind']][node] = _record(data, 'kind', cache)
    for name, section in sections.items():
        if section:
            doc[name] = section
    relations: dict[str, dict[str, Any]] = {}
    for n, (u, v, data) in enumerate(graph.edges(data=True), start=1):
        rel = data['rel']
        record = _record(data, 'rel', cache)
        src_key, dst_key = RELATIONS[rel]
        record[src_key] = u
        record[dst_key] = v
        records = relations.get(rel)
        if records is None:
            records = relations[rel] = doc[rel] = {}
        records[f'_:r{n}'] = record
    return doc


def write_provjson(
    graph: nx.MultiDiGraph, path: str | None = None, *, indent: bool = False
) -> bytes:
    """Serialise ``graph`` as PROV-JSON; write it to ``path`` when given."""
    option = orjson.OPT_INDENT_2 if indent else 0
    with paused_gc():
        data = orjson.dumps(to_provjson(graph), option=option)
    if path is not None:
        with open(path, 'wb') as fh:
            fh.write(data)
    return data
