"""``why`` on a SPARQL store alone: no merge, no NetworkX graph.

:func:`provlog.query.lineage.why` reads the target and what the tree shows
of each node from the run's graph. Here both come from the store, by a few
queries over the lineage's nodes (their attributes, the executing agent,
the result, who sent a value, what an execution logged), so ``why`` on a
store built on disk (:mod:`provlog.query.store`) costs the queries, not
the run's length. The details are the graph's, value for value: the
tests hold the two trees equal.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from provlog.capture.values import hash_value
from provlog.mapping.model import PREFIXES
from provlog.mapping.rdf import expand
from provlog.mapping.rdf import NAMESPACES
from provlog.mapping.rdf import PROV
from provlog.mapping.rdf import RDFS
from provlog.mapping.rdf import XSD
from provlog.query.execinfo import cost_text
from provlog.query.execinfo import line_text
from provlog.query.lineage import _compact
from provlog.query.lineage import _DETAIL_KEYS
from provlog.query.lineage import _NOTES
from provlog.query.lineage import _UUID
from provlog.query.lineage import build_tree
from provlog.query.lineage import lineage_edges_sparql
from provlog.query.lineage import sparql_text
from provlog.query.lineage import TargetError
from provlog.query.lineage import WhyNode
from provlog.query.sparql import QueryResult
from provlog.query.sparql import run_sparql

__all__ = ['resolve_in_store', 'store_details', 'why_in_store']

_PROVLOG = NAMESPACES['provlog']
_ROLE = PREFIXES['plid'] + 'role/'
_OUTPUT_ROLES = ('log', 'stdout', 'stderr', 'warning')
#: PROV-O predicates whose graph attribute is not ``provlog:<name>``.
_PREDICATES = {
    RDFS + 'label': 'prov:label',
    PROV + 'startedAtTime': 'prov:startTime',
    PROV + 'endedAtTime': 'prov:endTime',
}


def _ask(store: Any, query: str) -> QueryResult:
    return run_sparql(store, query, engine='oxigraph', trusted=True)


def _exists(store: Any, iri: str) -> bool:
    if any(c in iri for c in '<>"{}|^`\\ \n'):
        return False
    return bool(_ask(store, f'ASK {{ <{iri}> a ?type }}').boolean)


def resolve_in_store(
    store: Any,
    run_id: str,
    target: str | None = None,
    *,
    value: object = None,
    has_value: bool = False,
) -> str:
    """What :func:`provlog.query.lineage.resolve_target` finds, by SPARQL.

    Raises:
        TargetError: Nothing in the run matches.
    """
    if has_value:
        sha = hash_value(value)
        rows = _ask(
            store,
            'SELECT ?n ?t ?g WHERE { ?n provlog:sha256 "%s" . '
            'OPTIONAL { ?n prov:wasGeneratedBy ?g } '
            'OPTIONAL { ?n prov:qualifiedGeneration/prov:atTime ?t } }'
            % sha,
        ).rows
        if not rows:
            raise TargetError(
                f'no value with content hash {sha[:16]}... in run {run_id}',
            )
        generated = [r for r in rows if 'g' in r] or rows
        best = max(
            generated,
            key=lambda r: (_time(r['t']['value']) if 't' in r else ''),
        )
        return _compact(best['n']['value'])
    if not target:
        raise TargetError('give a target: an action tag, an IRI, or a value')
    if _UUID.match(target):
        try:
            tag = str(uuid.UUID(target))
        except ValueError:
            tag = ''
        for node in (f'plid:{tag}/result', f'uuid:{tag}'):
            if tag and _exists(store, expand(node)):
                return node
    node = target.strip('<>')
    for found in (node, _compact(node)):
        if ':' in found and _exists(store, expand(found)):
            return _compact(expand(found))
    raise TargetError(f'{target!r} is not in run {run_id}')


def _time(text: str) -> str:
    """An ``xsd:dateTime`` as the graph writes it (``…000000+00:00``)."""
    try:
        when = datetime.fromisoformat(text.replace('Z', '+00:00'))
    except ValueError:
        return text
    return when.isoformat(timespec='microseconds')


def _python(term: dict[str, str]) -> Any:
    """A literal as the graph holds it: ``int``, ``float``, ``bool``, text."""
    kind = term.get('datatype', '').removeprefix(XSD)
    text = term['value']
    if kind == 'integer':
        return int(text)
    if kind == 'double':
        return float(text)
    if kind == 'boolean':
        return text == 'true'
    if kind == 'dateTime':
        return _time(text)
    return text


def _attribute(predicate: str) -> str | None:
    found = _PREDICATES.get(predicate)
    if found is None and predicate.startswith(_PROVLOG):
        found = 'provlog:' + predicate[len(_PROVLOG) :]
    return found


def _values(iris: list[str]) -> str:
    return ' '.join(f'<{iri}>' for iri in iris)


def store_details(store: Any, iris: list[str]) -> dict[str, dict[str, str]]:
    """What the tree shows of each node, as ``lineage._details`` reads it."""
    if not iris:
        return {}
    values = _values(iris)
    attrs: dict[str, dict[str, Any]] = {iri: {} for iri in iris}
    for row in _ask(
        store,
        f'SELECT ?n ?p ?o WHERE {{ VALUES ?n {{ {values} }} ?n ?p ?o . '
        'FILTER(isLiteral(?o)) }',
    ).rows:
        key = _attribute(row['p']['value'])
        if key is not None:
            attrs[row['n']['value']][key] = _python(row['o'])
    agents = _first(
        store,
        f'SELECT ?n ?a ?label WHERE {{ VALUES ?n {{ {values} }} '
        '?n prov:qualifiedAssociation ?q . '
        f'?q prov:hadRole <{_ROLE}executor> ; prov:agent ?a . '
        'OPTIONAL { ?a rdfs:label ?label } }',
        lambda r: r['label']['value'] if 'label' in r else _compact(
            r['a']['value']
        ),
    )
    results = _first(
        store,
        f'SELECT ?n ?preview WHERE {{ VALUES ?n {{ {values} }} '
        '?u prov:wasGeneratedBy ?n . ?u provlog:preview ?preview }',
        lambda r: r['preview']['value'],
    )
    callers = _first(
        store,
        f'SELECT ?n ?label WHERE {{ VALUES ?n {{ {values} }} '
        '?x prov:used ?n . ?x prov:wasInformedBy ?request . '
        'FILTER(STRENDS(STR(?request), "/request")) '
        '?request prov:wasAssociatedWith ?who . '
        'OPTIONAL { ?who rdfs:label ?label } }',
        lambda r: r['label']['value'] if 'label' in r else 'None',
    )
    outputs = _outputs(store, values)
    out: dict[str, dict[str, str]] = {}
    for iri in iris:
        data = attrs[iri]
        shown = {
            short: str(data[key])
            for key, short in _DETAIL_KEYS.items()
            if key in data
        }
        for flag in ('redacted', 'capped'):
            if data.get(f'provlog:{flag}'):
                shown[flag] = 'true'
        shown.update(_NOTES.get(shown.get('executionState', ''), {}))
        if 'provlog:actionName' in data and not iri.endswith('/request'):
            lines = outputs.get(iri)
            if lines:
                shown['output'] = '\n'.join(text for _, text in sorted(lines))
            cost = cost_text(data)
            if cost is not None:
                shown['cost'] = cost
        for name, found in (
            ('agent', agents),
            ('result', results),
            ('caller', callers),
        ):
            if iri in found:
                shown[name] = found[iri]
        out[iri] = shown
    return out


def _first(store: Any, query: str, pick: Any) -> dict[str, str]:
    """Node -> one text from the query's rows (the same for every row)."""
    found: dict[str, str] = {}
    for row in _ask(store, query).rows:
        found.setdefault(row['n']['value'], str(pick(row)))
    return found


def _outputs(store: Any, values: str) -> dict[str, list[tuple[int, str]]]:
    """Execution -> (order, line) of what it logged, printed and warned."""
    roles = _values([_ROLE + role for role in _OUTPUT_ROLES])
    entities: dict[tuple[str, str], dict[str, Any]] = {}
    for row in _ask(
        store,
        f'SELECT ?n ?u ?r ?p ?o WHERE {{ VALUES ?n {{ {values} }} '
        f'VALUES ?r {{ {roles} }} '
        '?u prov:qualifiedGeneration ?g . '
        '?g prov:activity ?n ; prov:hadRole ?r . '
        '?u ?p ?o . FILTER(isLiteral(?o)) }',
    ).rows:
        role = row['r']['value'][len(_ROLE) :]
        data = entities.setdefault(
            (row['n']['value'], row['u']['value'] + '\0' + role), {}
        )
        key = _attribute(row['p']['value'])
        if key is not None:
            data[key] = _python(row['o'])
    out: dict[str, list[tuple[int, str]]] = {}
    for (execution, entity), data in entities.items():
        iri, role = entity.split('\0')
        order = iri.rsplit('/', 1)[-1]
        out.setdefault(execution, []).append(
            (int(order) if order.isdigit() else 0, line_text(role, data))
        )
    return out


def why_in_store(
    store: Any,
    run_id: str,
    target: str | None = None,
    *,
    value: object = None,
    has_value: bool = False,
    depth: int | None = None,
) -> tuple[WhyNode, str]:
    """The derivation tree of a target, and its SPARQL, from ``store``.

    Args:
        store: A ``pyoxigraph.Store`` holding the run's PROV-O.
        run_id: The run's id, for messages.
        target: An action tag, or the IRI of an entity or activity.
        value: With ``has_value``, find the entity holding this content.
        has_value: Look the target up by ``value``.
        depth: Expand at most this many action levels (``None``: all).
    """
    node = resolve_in_store(
        store, run_id, target, value=value, has_value=has_value
    )
    edges = lineage_edges_sparql(store, node, engine='oxigraph')
    root = expand(node)
    nodes = sorted({root} | {e[0] for e in edges} | {e[2] for e in edges})
    details = store_details(store, nodes)
    tree = build_tree(root, edges, details, depth)
    return tree, sparql_text(node, 'oxigraph')
