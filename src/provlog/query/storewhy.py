"""``why`` on a SPARQL store alone: no merge, no NetworkX graph.

:func:`provlog.query.lineage.why` reads the target and what the tree shows
of each node from the run's graph. Here both come from the store, by
lookups over the lineage's nodes (their attributes, the executing agent,
the result, who sent a value, what an execution logged), read by index
lookups on the store, so ``why`` on a store built on disk
(:mod:`provlog.query.store`) costs the lineage's size, not the run's
length (the lookups: :mod:`provlog.query.storeread`). The details are
the graph's, value for value: the tests hold the two trees equal.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import unquote

from provlog.capture.values import hash_value
from provlog.mapping.model import PREFIXES
from provlog.mapping.rdf import expand
from provlog.mapping.rdf import NAMESPACES
from provlog.mapping.rdf import PROV
from provlog.mapping.rdf import RDFS
from provlog.query.execinfo import cost_text
from provlog.query.execinfo import line_text
from provlog.query.lineage import _compact
from provlog.query.lineage import _DETAIL_KEYS
from provlog.query.lineage import _NOTES
from provlog.query.lineage import _UUID
from provlog.query.lineage import build_tree
from provlog.query.lineage import Edge
from provlog.query.lineage import sparql_text
from provlog.query.lineage import TargetError
from provlog.query.lineage import WhyNode
from provlog.query.storeread import exists
from provlog.query.storeread import graph_time
from provlog.query.storeread import StoreReader

__all__ = [
    'lineage_edges_store',
    'resolve_in_store',
    'store_details',
    'why_in_store',
]

_PROVLOG = NAMESPACES['provlog']
_ROLE = PREFIXES['plid'] + 'role/'
_OUTPUT_ROLES = frozenset({'log', 'stdout', 'stderr', 'warning'})
#: The relations the lineage follows out of a node.
_FOLLOW = {
    PROV + rel: rel
    for rel in ('wasGeneratedBy', 'used', 'wasDerivedFrom', 'hadMember')
}
_LABEL = RDFS + 'label'


def resolve_in_store(
    store: Any,
    run_id: str,
    target: str | None = None,
    *,
    value: object = None,
    has_value: bool = False,
) -> str:
    """What :func:`provlog.query.lineage.resolve_target` finds, in a store.

    Raises:
        TargetError: Nothing in the run matches.
    """
    reader = StoreReader(store)
    return _resolve(reader, run_id, target, value, has_value=has_value)


def _resolve(  # noqa: C901 - one branch per kind of target
    reader: StoreReader,
    run_id: str,
    target: str | None,
    value: object,
    *,
    has_value: bool,
) -> str:
    if has_value:
        sha = hash_value(value)
        found = [
            q.subject
            for q in reader.store.quads_for_pattern(
                None,
                reader.ox.NamedNode(_PROVLOG + 'sha256'),
                reader.ox.Literal(sha),
            )
        ]
        if not found:
            raise TargetError(
                f'no value with content hash {sha[:16]}... in run {run_id}',
            )
        generated = [
            n for n in found if reader.one(n, PROV + 'wasGeneratedBy')
        ] or found

        def when(node: Any) -> str:
            time = reader.one(node, PROV + 'generatedAtTime')
            return '' if time is None else graph_time(time.value)

        return _compact(max(generated, key=when).value)
    if not target:
        raise TargetError('give a target: an action tag, an IRI, or a value')
    if _UUID.match(target):
        try:
            tag = str(uuid.UUID(target))
        except ValueError:
            tag = ''
        for node in (f'plid:{tag}/result', f'uuid:{tag}'):
            if tag and exists(reader, expand(node)):
                return node
    node = target.strip('<>')
    for found_iri in (node, _compact(node)):
        if ':' in found_iri and exists(reader, expand(found_iri)):
            return _compact(expand(found_iri))
    raise TargetError(f'{target!r} is not in run {run_id}')


def lineage_edges_store(store: Any, target: str) -> set[Edge]:
    """The lineage relations of ``target``, by index lookups.

    The relations :func:`~provlog.query.lineage.lineage_edges_sparql`
    finds, by the walk of :func:`~provlog.query.lineage.lineage_edges_nx`.
    """
    return _edges(StoreReader(store), target)


def _edges(  # noqa: C901 - the walk of lineage_edges_nx, on triples
    reader: StoreReader, target: str
) -> set[Edge]:
    named = reader.ox.NamedNode
    root = named(expand(target))
    seen = {root}
    todo = [root]
    edges: set[Edge] = set()
    usage, entity, role_of = (
        PROV + 'qualifiedUsage',
        PROV + 'entity',
        PROV + 'hadRole',
    )
    while todo:
        node = todo.pop()
        found: list[tuple[str, Any]] = []
        roles: dict[Any, str] = {}
        for predicate, obj in reader.out(node):
            rel = _FOLLOW.get(predicate)
            if rel is not None and isinstance(obj, named):
                found.append((rel, obj))
            elif predicate == usage:
                used = reader.one(obj, entity)
                role = reader.one(obj, role_of)
                if role is not None and role.value.startswith(_ROLE):
                    roles[used] = unquote(role.value[len(_ROLE) :])
        for rel, obj in found:
            role = roles.get(obj) if rel == 'used' else None
            edges.add((node.value, rel, obj.value, role))
            ahead = [obj]
            if rel == 'wasDerivedFrom':  # a member of an earlier result
                ahead += reader.into('hadMember', obj)
            for nxt in ahead:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        if not reader.is_activity(node):
            continue
        for caused in reader.into('wasInformedBy', node):
            edges.add((caused.value, 'wasInformedBy', node.value, None))
            if caused not in seen:
                seen.add(caused)
                todo.append(caused)
    return edges


def store_details(store: Any, iris: list[str]) -> dict[str, dict[str, str]]:
    """What the tree shows of each node, as ``lineage._details`` reads it."""
    reader = StoreReader(store)
    return {iri: _details(reader, iri) for iri in iris}


def _details(  # noqa: C901 - one branch per detail, as lineage._details
    reader: StoreReader, iri: str
) -> dict[str, str]:
    node = reader.ox.NamedNode(iri)
    data = reader.literals(node)
    out = {
        short: str(data[key])
        for key, short in _DETAIL_KEYS.items()
        if key in data
    }
    for flag in ('redacted', 'capped'):
        if data.get(f'provlog:{flag}'):
            out[flag] = 'true'
    out.update(_NOTES.get(out.get('executionState', ''), {}))
    if 'provlog:actionName' in data and not iri.endswith('/request'):
        lines = _output_lines(reader, node)
        if lines:
            out['output'] = '\n'.join(lines)
        cost = cost_text(data)
        if cost is not None:
            out['cost'] = cost
    if reader.is_activity(node):  # only activities generate
        agent = _executor(reader, node)
        if agent is not None:
            out['agent'] = agent
        for made in reader.into('wasGeneratedBy', node):
            preview = reader.one(made, _PROVLOG + 'preview')
            if preview is not None:
                out['result'] = preview.value
                break
    else:  # only entities are used
        caller = _caller(reader, node)
        if caller is not None:
            out['caller'] = caller
    return out


def _label(reader: StoreReader, node: Any) -> str | None:
    label = reader.one(node, _LABEL)
    return None if label is None else str(label.value)


def _executor(reader: StoreReader, node: Any) -> str | None:
    """The label of the agent that executed ``node`` (an execution)."""
    executor = _ROLE + 'executor'
    for predicate, qualified in reader.out(node):
        if predicate != PROV + 'qualifiedAssociation':
            continue
        role = reader.one(qualified, PROV + 'hadRole')
        agent = reader.one(qualified, PROV + 'agent')
        if role is not None and role.value == executor and agent:
            return _label(reader, agent) or _compact(agent.value)
    return None


def _caller(reader: StoreReader, node: Any) -> str | None:
    """Who sent the value ``node``: the caller of its user's request."""
    found = None
    for user in reader.into('used', node):
        for predicate, request in reader.out(user):
            if (
                predicate != PROV + 'wasInformedBy'
                or not request.value.endswith('/request')
            ):
                continue
            for pred, who in reader.out(request):
                if pred == PROV + 'wasAssociatedWith':
                    found = str(_label(reader, who))
    return found


def _output_lines(reader: StoreReader, node: Any) -> list[str]:
    """What an execution logged, printed and warned, one line each."""
    found: list[tuple[int, str]] = []
    for generation in reader.into('activity', node):
        role = reader.one(generation, PROV + 'hadRole')
        if role is None or not role.value.startswith(_ROLE):
            continue
        name = unquote(role.value[len(_ROLE) :])
        if name not in _OUTPUT_ROLES:
            continue
        for entity in reader.into('qualifiedGeneration', generation):
            order = entity.value.rsplit('/', 1)[-1]
            found.append(
                (
                    int(order) if order.isdigit() else 0,
                    line_text(name, reader.literals(entity)),
                )
            )
    return [text for _, text in sorted(found)]


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

    The lineage is walked by index lookups (the relations the SPARQL
    :func:`~provlog.query.lineage.sparql_text` gives would find, which
    Oxigraph plans slower than the walk runs), and the details read from
    the same lookups.

    Args:
        store: A ``pyoxigraph.Store`` holding the run's PROV-O.
        run_id: The run's id, for messages.
        target: An action tag, or the IRI of an entity or activity.
        value: With ``has_value``, find the entity holding this content.
        has_value: Look the target up by ``value``.
        depth: Expand at most this many action levels (``None``: all).
    """
    reader = StoreReader(store)
    node = _resolve(reader, run_id, target, value, has_value=has_value)
    edges = _edges(reader, node)
    root = expand(node)
    nodes = sorted({root} | {e[0] for e in edges} | {e[2] for e in edges})
    details = {iri: _details(reader, iri) for iri in nodes}
    tree = build_tree(root, edges, details, depth)
    return tree, sparql_text(node, 'oxigraph')
