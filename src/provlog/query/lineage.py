"""``why``: how was a result produced, as a derivation tree.

The relations on the paths back from the target come from SPARQL over the
PROV-O graph (the shipped ``lineage`` query, and a second query for the
roles of inputs); the labels, states and previews shown for each node are
read from the graph's attributes. :func:`lineage_edges_nx` computes the
same edge set with a breadth-first walk of the NetworkX graph, and the
tests hold the two equal. The walk needs only the actions the lineage
reaches: :func:`lineage_graph` builds those alone
(:mod:`provlog.mapping.subgraph`).
"""

from __future__ import annotations

import re
import uuid
from collections import deque
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import TYPE_CHECKING
from urllib.parse import unquote

import networkx as nx

from provlog.actions.stored import transient
from provlog.capture.values import hash_value
from provlog.mapping.model import PREFIXES
from provlog.mapping.rdf import expand
from provlog.mapping.rdf import NAMESPACES
from provlog.mapping.rdf import PROV
from provlog.mapping.subgraph import LineageBuilder
from provlog.query.execinfo import execution_details
from provlog.query.sparql import canned_queries
from provlog.query.sparql import QueryError
from provlog.query.sparql import run_sparql
from provlog.vocab import Action
from provlog.vocab import START
from provlog.vocab import SUCCESS

if TYPE_CHECKING:
    from provlog.mapping.runview import RunView

__all__ = [
    'MAX_NESTING',
    'NOT_OBSERVED',
    'Edge',
    'TargetError',
    'WhyNode',
    'build_tree',
    'lineage_edges_nx',
    'lineage_edges_sparql',
    'lineage_graph',
    'resolve_target',
    'sparql_text',
    'why',
]

#: ``(subject IRI, relation, object IRI, role or None)``
Edge = tuple[str, str, str, str | None]

_ORDER = {'wasGeneratedBy': 0, 'wasDerivedFrom': 1, 'used': 2, 'hadMember': 3}
_FOLLOW = frozenset({'wasGeneratedBy', 'used', 'wasDerivedFrom', 'hadMember'})
_ROLE = PREFIXES['plid'] + 'role/'
_USED = PROV + 'used'
_UUID = re.compile(r'^[0-9a-fA-F-]{32,36}$')

#: What ``why`` says of an execution its agent's process did not journal
#: (``provlog:executionState "not_observed"``): no times, no agent side.
NOT_OBSERVED = "execution not observed: the agent's process wrote no journal"

#: The deepest a derivation tree nests. A node at this depth that has
#: lineage of its own is marked ``too_deep`` (``nesting_limit`` in JSON):
#: ``why`` on that node continues from there. It keeps the text tree
#: within a terminal's width and the JSON within any parser's nesting.
MAX_NESTING = 64


class TargetError(QueryError):
    """The target is not in the run."""


@dataclass
class WhyNode:
    """One node of the derivation tree."""

    iri: str
    kind: str
    details: dict[str, str]
    children: list[tuple[str, WhyNode]] = field(default_factory=list)
    seen_above: bool = False
    cut: bool = False
    too_deep: bool = False

    def to_json(self) -> dict[str, Any]:
        """The tree as plain data."""
        out: dict[str, Any] = {'id': self.iri, 'kind': self.kind}
        out.update(self.details)
        if self.seen_above:
            out['seen_above'] = True
        if self.cut:
            out['depth_limit'] = True
        if self.too_deep:
            out['nesting_limit'] = MAX_NESTING
        if self.children:
            out['children'] = [
                {'relation': rel, 'node': child.to_json()}
                for rel, child in self.children
            ]
        return out


# ---------------------------------------------------------------- target


def _compact(iri: str) -> str:
    for prefix, base in PREFIXES.items():
        if iri.startswith(base):
            return f'{prefix}:{iri[len(base) :]}'
    return iri


def resolve_target(
    run: RunView,
    target: str | None = None,
    *,
    value: object = None,
    has_value: bool = False,
) -> str:
    """The graph node ``target`` names, as a compact IRI.

    ``target`` may be an action tag (the action's result, or the execution
    when it has none), a full or compact IRI of any node; with
    ``has_value``, ``value`` is hashed as provlog hashes values and the
    latest generated entity with that content is chosen.

    Raises:
        TargetError: Nothing in the run matches.
    """
    return _resolve(run.nx, run.run_id, target, value, has_value)


def _resolve(
    g: nx.MultiDiGraph,
    run_id: str,
    target: str | None,
    value: object,
    has_value: bool,
) -> str:
    """:func:`resolve_target` in the graph ``g``."""
    if has_value:
        sha = hash_value(value)
        found = [
            (data.get('prov:label', ''), node)
            for node, data in g.nodes(data=True)
            if data.get('provlog:sha256') == sha
        ]
        if not found:
            raise TargetError(
                f'no value with content hash {sha[:16]}... in run {run_id}',
            )
        generated = [n for _, n in found if _out(g, n, 'wasGeneratedBy')]
        pool = generated or [n for _, n in found]
        return str(max(pool, key=lambda n: _generation_time(g, n)))
    if not target:
        raise TargetError('give a target: an action tag, an IRI, or a value')
    if _UUID.match(target):
        try:
            tag = str(uuid.UUID(target))
        except ValueError:
            tag = ''
        if f'plid:{tag}/result' in g:
            return f'plid:{tag}/result'
        if f'uuid:{tag}' in g:
            return f'uuid:{tag}'
    node = target.strip('<>')
    if node in g:
        return node
    compact = _compact(node)
    if compact in g:
        return compact
    raise TargetError(f'{target!r} is not in run {run_id}')


def lineage_graph(
    run: RunView,
    target: str | None = None,
    *,
    value: object = None,
    has_value: bool = False,
) -> tuple[nx.MultiDiGraph, str]:
    """A graph holding the lineage of the target, and the target's node.

    For a target in an action (its execution, request or values, by tag,
    IRI or content) only the actions its lineage reaches are built
    (:mod:`provlog.mapping.subgraph`); for any other node, the whole
    graph. Walking either from the node gives the same relations.

    Raises:
        TargetError: Nothing in the run matches.
    """
    merged = run.run
    tags: list[str] = []
    if has_value:
        sha = hash_value(value)
        tags = [
            a.tag
            for a in transient(merged.actions.values())
            if sha in _digests(a)
        ]
        if not tags:
            raise TargetError(
                f'no value with content hash {sha[:16]}... in run '
                f'{run.run_id}',
            )
    elif target:
        tags = [
            tag
            for tag in (_tag_of(target.strip('<>')), _tag_of(target))
            if tag in merged.actions
        ][:1]
    if tags:
        builder = LineageBuilder(merged)
        builder.add(tags)
        g = builder.graph_nx
        try:
            return g, _resolve(g, run.run_id, target, value, has_value)
        except TargetError:
            pass  # a node of the run's own (an agent, a process, ...)
    return run.nx, resolve_target(
        run, target, value=value, has_value=has_value
    )


def _tag_of(target: str) -> str:
    """The action tag ``target`` (a tag, or a node of one) names, if any."""
    if _UUID.match(target):
        try:
            return str(uuid.UUID(target))
        except ValueError:
            return ''
    node = _compact(target)
    if node.startswith(('uuid:', 'plid:')):
        return node[5:41]
    return ''


def _digests(action: Action) -> set[str]:
    """Every content hash in the values ``action`` was given and gave."""
    found: set[str] = set()
    start = action.get(START)
    success = action.get(SUCCESS)
    stack: list[Any] = []
    if start is not None:
        stack += start.get('args') or []
        stack += (start.get('kwargs') or {}).values()
    if success is not None:
        stack.append(success.get('result'))
    while stack:
        desc = stack.pop()
        if not isinstance(desc, dict):
            continue
        sha = desc.get('sha256')
        if isinstance(sha, str):
            found.add(sha)
        members = desc.get('members')
        if isinstance(members, list):
            stack += [
                m[1]
                for m in members
                if isinstance(m, list) and len(m) == 2  # noqa: PLR2004
            ]
    return found


def _out(g: nx.MultiDiGraph, node: str, rel: str) -> list[str]:
    return [v for _, v, d in g.out_edges(node, data=True) if d['rel'] == rel]


def _generation_time(g: nx.MultiDiGraph, node: str) -> str:
    for _, _, d in g.out_edges(node, data=True):
        if d['rel'] == 'wasGeneratedBy':
            return str(d.get('prov:time', ''))
    return ''


# ---------------------------------------------------------------- edges


#: What ``why`` runs: the lineage of one target and the roles of its
#: inputs in one query. The inner query walks the paths once; each branch
#: then reads one relation, which both engines plan well. (The ``lineage``
#: query's shape, or asking for the roles with its bindings, plans 2-5x
#: slower on Oxigraph, and the walk cannot be bound from outside a
#: subquery, so the target is written in.)
_EDGES = """SELECT ?s ?p ?o WHERE {
  {
    SELECT DISTINCT ?n WHERE {
      <%s> (prov:wasGeneratedBy|prov:used|prov:wasDerivedFrom
            |prov:hadMember|^prov:wasInformedBy
            |prov:wasDerivedFrom/^prov:hadMember)* ?n .
    }
  }
  { ?n prov:wasGeneratedBy ?o .
    BIND(prov:wasGeneratedBy AS ?p) BIND(?n AS ?s) }
  UNION
  { ?n prov:used ?o .
    BIND(prov:used AS ?p) BIND(?n AS ?s) }
  UNION
  { ?n prov:wasDerivedFrom ?o .
    BIND(prov:wasDerivedFrom AS ?p) BIND(?n AS ?s) }
  UNION
  { ?n prov:hadMember ?o .
    BIND(prov:hadMember AS ?p) BIND(?n AS ?s) }
  UNION
  { ?s prov:wasInformedBy ?n .
    BIND(prov:wasInformedBy AS ?p) BIND(?n AS ?o) }
  UNION
  { ?n prov:qualifiedUsage ?u . ?u prov:entity ?o ; prov:hadRole ?p .
    BIND(?n AS ?s) }
}
"""


def edges_query(target: str) -> str:
    """The SPARQL ``why`` runs for ``target`` (a compact IRI)."""
    iri = expand(target)
    if any(c in iri for c in '<>"{}|^`\\ '):
        raise TargetError(f'{target!r} cannot be written as an IRI')
    return _EDGES % iri


_ROLES = """
SELECT ?s ?o ?role WHERE {
  VALUES ?s { %s }
  ?s prov:qualifiedUsage ?usage .
  ?usage prov:entity ?o .
  ?usage prov:hadRole ?role .
}
"""


def lineage_edges_sparql(
    store: Any,
    target: str,
    *,
    engine: str = 'oxigraph',
) -> set[Edge]:
    """The lineage relations of ``target`` (compact IRI), by SPARQL.

    Each engine gets the query shape it plans best (measured; both give
    the same edges, and the tests hold them to the NetworkX walk): on
    Oxigraph :func:`edges_query`, one query with the roles; on rdflib's
    engine, which runs that shape 20x slower, the shipped ``lineage``
    query and a second query for the roles of the ``used`` relations.
    Roles are read from their IRIs (``plid:role/<percent-encoded name>``).
    """
    if engine == 'oxigraph':
        rows = run_sparql(
            store, edges_query(target), engine=engine, trusted=True
        ).rows
    else:
        rows = run_sparql(
            store,
            canned_queries()['lineage'],
            bindings={'target': expand(target)},
            engine=engine,
            trusted=True,
        ).rows
        users = sorted(
            {r['s']['value'] for r in rows if r['p']['value'] == _USED}
        )
        if users:
            values = ' '.join(f'<{s}>' for s in users)
            rows += [
                {'s': r['s'], 'p': r['role'], 'o': r['o']}
                for r in run_sparql(
                    store, _ROLES % values, engine=engine, trusted=True
                ).rows
            ]
    found: list[tuple[str, str, str]] = []
    roles: dict[tuple[str, str], str] = {}
    for row in rows:
        s, p, o = row['s']['value'], row['p']['value'], row['o']['value']
        if p.startswith(_ROLE):
            roles[(s, o)] = unquote(p[len(_ROLE) :])
        else:
            found.append((s, p.removeprefix(PROV), o))
    return {
        (s, rel, o, roles.get((s, o)) if rel == 'used' else None)
        for s, rel, o in found
    }


def lineage_edges_nx(graph: nx.MultiDiGraph, target: str) -> set[Edge]:
    """The same relations as :func:`lineage_edges_sparql`, by a BFS walk."""
    edges: set[Edge] = set()
    seen = {target}
    queue = deque([target])
    while queue:
        node = queue.popleft()
        for _, v, d in graph.out_edges(node, data=True):
            rel = d['rel']
            if rel not in _FOLLOW:
                continue
            role = d.get('prov:role') if rel == 'used' else None
            edges.add((expand(node), rel, expand(v), role))
            # derived from a member of a result: the result holding it,
            # and so the action that generated it, is lineage too
            ahead = [v]
            if rel == 'wasDerivedFrom':
                ahead += [
                    c
                    for c, _, e in graph.in_edges(v, data=True)
                    if e['rel'] == 'hadMember'
                ]
            for w in ahead:
                if w not in seen:
                    seen.add(w)
                    queue.append(w)
        for u, _, d in graph.in_edges(node, data=True):
            if d['rel'] != 'wasInformedBy':
                continue
            edges.add((expand(u), 'wasInformedBy', expand(node), None))
            if u not in seen:
                seen.add(u)
                queue.append(u)
    return edges


# ---------------------------------------------------------------- details

_DETAIL_KEYS = {
    'prov:label': 'label',
    'provlog:actionName': 'name',
    'provlog:state': 'state',
    'provlog:executionState': 'executionState',
    'prov:startTime': 'start',
    'prov:endTime': 'end',
    'provlog:errorType': 'errorType',
    'provlog:errorMessage': 'errorMessage',
    'provlog:preview': 'preview',
    'provlog:pythonType': 'type',
    'provlog:sha256': 'sha256',
}


#: What the tree says in plain words for an execution state.
_NOTES = {'not_observed': {'note': NOT_OBSERVED}}


def _details(  # noqa: C901, PLR0912 - one branch per relation
    g: nx.MultiDiGraph, iri: str
) -> dict[str, str]:
    """What the tree shows of one node, read from the graph's attributes."""
    node = _compact(iri)
    data = g.nodes.get(node, {})
    out = {
        short: str(data[key])
        for key, short in _DETAIL_KEYS.items()
        if key in data
    }
    for flag in ('redacted', 'capped'):
        if data.get(f'provlog:{flag}'):
            out[flag] = 'true'
    out.update(_NOTES.get(out.get('executionState', ''), {}))
    if 'provlog:actionName' in data and not node.endswith('/request'):
        out.update(execution_details(g, node, data))
    for _, v, d in g.out_edges(node, data=True):
        if (
            d['rel'] == 'wasAssociatedWith'
            and d.get('prov:role') == 'executor'
        ):
            out['agent'] = str(g.nodes[v].get('prov:label', v))
    for u, _, d in g.in_edges(node, data=True):
        rel = d['rel']
        if rel == 'wasGeneratedBy' and 'result' not in out:
            preview = g.nodes[u].get('provlog:preview')
            if preview is not None:
                out['result'] = str(preview)
        elif rel == 'used':  # who sent the value: the request's caller
            for _, request, e in g.out_edges(u, data=True):
                if e['rel'] != 'wasInformedBy' or not request.endswith(
                    '/request',
                ):
                    continue
                for _, who, a in g.out_edges(request, data=True):
                    if a['rel'] == 'wasAssociatedWith':
                        out['caller'] = str(g.nodes[who].get('prov:label'))
    return out


# ---------------------------------------------------------------- tree


def _kind(details: dict[str, str], iri: str) -> str:
    if 'name' in details:
        return 'request' if iri.endswith('/request') else 'action'
    return 'value'


def why(
    run: RunView,
    target: str | None = None,
    *,
    value: object = None,
    has_value: bool = False,
    depth: int | None = None,
    engine: str = 'networkx',
) -> tuple[WhyNode, str]:
    """The derivation tree of a target, and the SPARQL used to find it.

    Args:
        run: The run.
        target: An action tag, or the IRI of an entity or activity.
        value: With ``has_value``, find the entity holding this content.
        has_value: Look the target up by ``value``.
        depth: Expand at most this many action levels (``None``: all).
        engine: ``'networkx'`` (the default) walks a graph of only the
            actions the lineage reaches (:func:`lineage_graph`), which
            the details are read from too; ``'oxigraph'`` or
            ``'rdflib'`` run the SPARQL :func:`sparql_text` gives (the
            same edges; on 40,000 actions, loading the store takes 5x the
            rest of ``why``).
    """
    if engine == 'networkx':
        g, node = lineage_graph(run, target, value=value, has_value=has_value)
        edges = lineage_edges_nx(g, node)
    else:
        g = run.nx
        node = resolve_target(run, target, value=value, has_value=has_value)
        store = run.query_store(engine)
        edges = lineage_edges_sparql(store, node, engine=engine)
    root = expand(node)
    nodes = {root} | {e[0] for e in edges} | {e[2] for e in edges}
    details = {iri: _details(g, iri) for iri in nodes}
    return build_tree(root, edges, details, depth), sparql_text(node, engine)


def build_tree(
    root: str,
    edges: set[Edge],
    details: dict[str, dict[str, str]],
    depth: int | None = None,
) -> WhyNode:
    """The derivation tree from ``root``'s lineage and its nodes' details.

    What :func:`why` builds once it has the relations and what to show of
    each node, whichever engine found them.
    """
    index = _Index(edges)
    built: set[str] = set()
    root_node = WhyNode(root, '', {})
    # (iri, action levels above, nesting, parent, relation): a stack walked
    # in the order the tree is read, so "shown above" marks the same nodes
    # as a recursive walk would, at any depth, without recursion
    stack: list[tuple[str, int, int, WhyNode | None, str]] = [
        (root, 0, 0, None, ''),
    ]
    while stack:
        iri, level, nesting, parent, relation = stack.pop()
        info = details.get(iri, {})
        kind = _kind(info, iri)
        tree = WhyNode(iri, kind, dict(info))
        if parent is None:
            root_node = tree
        else:
            parent.children.append((relation, tree))
        if iri in built:
            tree.seen_above = True
            continue
        built.add(iri)
        if kind == 'action':
            if depth is not None and level >= depth:
                tree.cut = bool(
                    index.out_edges.get(iri) or index.informed.get(iri)
                )
                continue
            level += 1
        children = _children(iri, kind, relation, index, details)
        if not children:
            continue
        if nesting >= MAX_NESTING:
            tree.too_deep = True
            continue
        stack.extend(
            (child, level, nesting + 1, tree, label)
            for label, child in reversed(children)
        )
    return root_node


class _Index:
    """The lineage relations by the node the tree shows them under."""

    def __init__(self, edges: set[Edge]) -> None:
        self.out_edges: dict[str, list[Edge]] = {}
        self.informed: dict[str, list[str]] = {}
        self.member_of: dict[str, list[str]] = {}
        for edge in sorted(edges):
            s, rel, o, _ = edge
            if rel == 'wasInformedBy':
                self.informed.setdefault(o, []).append(s)
            else:
                self.out_edges.setdefault(s, []).append(edge)
                if rel == 'hadMember':
                    self.member_of.setdefault(o, []).append(s)


def _children(
    iri: str,
    kind: str,
    relation: str,
    index: _Index,
    details: dict[str, dict[str, str]],
) -> list[tuple[str, str]]:
    """``(relation label, child IRI)`` under one node, in the tree's order.

    A value reached by ``derived from`` that is a member of an earlier
    result leads first to that result (``member of``), whose action
    generated it.
    """
    out_edges = index.out_edges
    found: list[tuple[str, str]] = []
    if relation == 'derived from':
        found += [('member of', c) for c in index.member_of.get(iri, ())]
    if kind != 'request':  # a request's execution shows the same inputs
        ordered = sorted(
            out_edges.get(iri, []),
            key=lambda e: (_ORDER[e[1]], e[3] or '', e[2]),
        )
        for _, rel, child, role in ordered:
            if rel == 'hadMember' and not out_edges.get(child):
                continue  # a plain element; the preview already shows it
            label = {
                'wasGeneratedBy': 'generated by',
                'used': f'used {role}' if role else 'used',
                'hadMember': 'member',
                'wasDerivedFrom': 'derived from',
            }[rel]
            found.append((label, child))
    calls = [
        execution
        for request in index.informed.get(iri, [])
        for execution in index.informed.get(request, [])
    ]
    calls.sort(key=lambda e: (details.get(e, {}).get('start', ''), e))
    found += [('called', execution) for execution in calls]
    return found


def sparql_text(node: str, engine: str) -> str:
    """The SPARQL ``why`` shows for ``node`` (``--show-sparql``)."""
    header = ''.join(f'PREFIX {k}: <{v}>\n' for k, v in NAMESPACES.items())
    if engine != 'rdflib':  # the walk answers what this query does
        return header + edges_query(node)
    body = canned_queries()['lineage']
    return f'{header}# ?target = <{expand(node)}>\n{body}'
