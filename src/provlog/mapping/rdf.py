"""PROV-O: the graph as RDF, loaded in bulk into Oxigraph.

The mapping writes the direct PROV-O relations always (so simple property
paths such as ``prov:used/prov:wasGeneratedBy`` work) and the qualified form
(``prov:qualifiedUsage`` with ``prov:hadRole`` and ``prov:atTime``, ...) in
addition wherever a relation has a role, a time or other attributes.
PROV-DM attributes follow the PROV-O rules: ``prov:label`` becomes
``rdfs:label``, ``prov:type`` becomes ``rdf:type``, activity times
``prov:startedAtTime``/``prov:endedAtTime``, relation times ``prov:atTime``,
an association's ``prov:plan`` ``prov:hadPlan``. An attribute whose value is
a PROV-JSON qualified name (``{'$': 'plid:…', 'type':
'prov:QUALIFIED_NAME'}``) becomes a link to that IRI.

The graph is written as N-Triples text in one pass and bulk-loaded by
Oxigraph's parser; nothing goes triple by triple through rdflib.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from typing import TYPE_CHECKING

import networkx as nx

from provlog.gcpause import gc_paused
from provlog.mapping.model import iri_segment
from provlog.mapping.model import PREFIXES

if TYPE_CHECKING:
    import pyoxigraph
    import rdflib

__all__ = [
    'PROV',
    'RDF_FORMATS',
    'expand',
    'load_store',
    'ntriples',
    'serialize_store',
    'to_rdflib',
]

PROV = 'http://www.w3.org/ns/prov#'
RDF = 'http://www.w3.org/1999/02/22-rdf-syntax-ns#'
RDFS = 'http://www.w3.org/2000/01/rdf-schema#'
XSD = 'http://www.w3.org/2001/XMLSchema#'

#: Namespaces for compact IRIs, PROV's own included.
NAMESPACES = {**PREFIXES, 'prov': PROV, 'xsd': XSD, 'rdfs': RDFS}

#: RDF export formats and their file extensions.
RDF_FORMATS = {'turtle': 'ttl', 'nt': 'nt', 'xml': 'rdf', 'jsonld': 'jsonld'}

_KIND_CLASS = {
    'entity': f'<{PROV}Entity>',
    'activity': f'<{PROV}Activity>',
    'agent': f'<{PROV}Agent>',
}
_TYPE = f'<{RDF}type>'
_ESCAPES = str.maketrans({'\\': '\\\\', '"': '\\"', '\n': '\\n', '\r': '\\r'})

# relation -> (direct predicate, qualified predicate, class, object property)
_RELATIONS = {
    'used': ('used', 'qualifiedUsage', 'Usage', 'entity'),
    'wasGeneratedBy': (
        'wasGeneratedBy',
        'qualifiedGeneration',
        'Generation',
        'activity',
    ),
    'wasAssociatedWith': (
        'wasAssociatedWith',
        'qualifiedAssociation',
        'Association',
        'agent',
    ),
    'wasInformedBy': (
        'wasInformedBy',
        'qualifiedCommunication',
        'Communication',
        'activity',
    ),
    'wasDerivedFrom': (
        'wasDerivedFrom',
        'qualifiedDerivation',
        'Derivation',
        'entity',
    ),
    'hadMember': ('hadMember', None, None, None),
    'actedOnBehalfOf': (
        'actedOnBehalfOf',
        'qualifiedDelegation',
        'Delegation',
        'agent',
    ),
    'wasAttributedTo': (
        'wasAttributedTo',
        'qualifiedAttribution',
        'Attribution',
        'agent',
    ),
}
# relation -> the same four as IRI terms (None: no qualified form)
_RELATION_TERMS = {
    rel: (
        f'<{PROV}{direct}>',
        f'<{PROV}{qualified}>' if qualified else None,
        f'<{PROV}{cls}>',
        f'<{PROV}{obj}>',
    )
    for rel, (direct, qualified, cls, obj) in _RELATIONS.items()
}
# PROV-DM attribute -> PROV-O predicate (times are typed separately)
_ATTRIBUTES = {
    'prov:label': f'<{RDFS}label>',
    'prov:value': f'<{PROV}value>',
    'prov:startTime': f'<{PROV}startedAtTime>',
    'prov:endTime': f'<{PROV}endedAtTime>',
    'prov:time': f'<{PROV}atTime>',
    'prov:plan': f'<{PROV}hadPlan>',
}
_TIMES = frozenset({'prov:startTime', 'prov:endTime', 'prov:time'})
#: Attributes whose value is the compact IRI of another element.
_REFERENCES = frozenset({'prov:plan'})
_QNAME = 'prov:QUALIFIED_NAME'


def expand(qname: str) -> str:
    """Expand a compact IRI (``uuid:…``, ``plid:…``, ``provlog:…``)."""
    prefix, _, local = qname.partition(':')
    base = NAMESPACES.get(prefix)
    return qname if base is None else base + local


def _iri(qname: str) -> str:
    return f'<{expand(qname)}>'


def _literal(value: Any, *, time: bool = False) -> str:
    if time:
        return f'"{value}"^^<{XSD}dateTime>'
    if isinstance(value, bool):
        return f'"{"true" if value else "false"}"^^<{XSD}boolean>'
    if isinstance(value, int):
        return f'"{value}"^^<{XSD}integer>'
    if isinstance(value, float):
        return f'"{value!r}"^^<{XSD}double>'
    return '"' + str(value).translate(_ESCAPES) + '"'


def _role(role: str) -> str:
    return f'<{PREFIXES["plid"]}role/{iri_segment(role)}>'


def _attribute_lines(
    subject: str, key: str, value: Any, terms: dict[str, str]
) -> list[str]:
    """The triples of one PROV-DM attribute; ``terms`` caches its IRIs."""
    if key == 'prov:type':
        types = value if isinstance(value, (list, tuple)) else (value,)
        return [
            f'{subject} {_TYPE} {terms.get(t) or _term(terms, t)} .\n'
            for t in types
        ]
    predicate = terms.get(key) or _term(terms, key)
    if key in _REFERENCES:
        obj = _iri(str(value))
    elif isinstance(value, dict) and value.get('type') == _QNAME:
        obj = _iri(str(value.get('$')))  # PROV-JSON's typed QName value
    else:
        obj = _literal(value, time=key in _TIMES)
    return [f'{subject} {predicate} {obj} .\n']


def _term(terms: dict[str, str], qname: str) -> str:
    iri = terms[qname] = _ATTRIBUTES.get(qname) or _iri(qname)
    return iri


def _relation_lines(
    q: str,
    s: str,
    o: str,
    data: dict[str, Any],
    *,
    terms: dict[str, str],
    roles: set[str],
) -> str:
    """The triples of one relation: direct, and qualified (node ``q``)."""
    rel = data['rel']
    direct, qualified, cls, obj = _RELATION_TERMS[rel]
    line = f'{s} {direct} {o} .\n'
    if len(data) == 1 or qualified is None:  # no attributes but 'rel'
        return line
    lines = [line]
    if rel == 'wasGeneratedBy' and 'prov:time' in data:
        when = _literal(data['prov:time'], time=True)
        lines.append(f'{s} <{PROV}generatedAtTime> {when} .\n')
    lines += (
        f'{s} {qualified} {q} .\n',
        f'{q} {_TYPE} {cls} .\n',
        f'{q} {obj} {o} .\n',
    )
    for key, value in data.items():
        if key == 'rel':
            continue
        if key == 'prov:role':
            role = str(value)
            lines.append(f'{q} <{PROV}hadRole> {_role(role)} .\n')
            roles.add(role)
        else:
            lines += _attribute_lines(q, key, value, terms)
    return ''.join(lines)


def ntriples(graph: nx.MultiDiGraph) -> Iterator[str]:
    """Yield the PROV-O of ``graph`` as N-Triples text, in chunks of lines.

    One chunk per node and per relation; IRIs are expanded once per node
    and once per vocabulary term.
    """
    terms: dict[str, str] = {}
    subjects: dict[str, str] = {}
    roles: set[str] = set()
    for node, data in graph.nodes(data=True):
        subject = subjects[node] = _iri(node)
        lines = [f'{subject} {_TYPE} {_KIND_CLASS[data["kind"]]} .\n']
        for key, value in data.items():
            if key != 'kind':
                lines += _attribute_lines(subject, key, value, terms)
        yield ''.join(lines)
    for n, (u, v, data) in enumerate(graph.edges(data=True)):
        s = subjects.get(u) or _iri(u)
        o = subjects.get(v) or _iri(v)
        yield _relation_lines(f'_:q{n}', s, o, data, terms=terms, roles=roles)
    for role in sorted(roles):
        yield f'{_role(role)} {_TYPE} <{PROV}Role> .\n'
        yield f'{_role(role)} <{RDFS}label> {_literal(role)} .\n'


def _ntriples_data(graph: nx.MultiDiGraph) -> bytes:
    """The whole N-Triples document of ``graph``, for a bulk load."""
    return ''.join(ntriples(graph)).encode()


@gc_paused
def load_store(graph: nx.MultiDiGraph) -> pyoxigraph.Store:
    """A fresh in-memory Oxigraph store holding the PROV-O of ``graph``."""
    import pyoxigraph  # noqa: PLC0415 - only the RDF path needs it

    store = pyoxigraph.Store()
    store.bulk_load(
        _ntriples_data(graph), format=pyoxigraph.RdfFormat.N_TRIPLES
    )
    return store


def serialize_store(store: pyoxigraph.Store, fmt: str) -> bytes:
    """Serialise the default graph: ``turtle``, ``nt``, ``xml``, ``jsonld``."""
    import pyoxigraph  # noqa: PLC0415

    formats = {
        'turtle': pyoxigraph.RdfFormat.TURTLE,
        'nt': pyoxigraph.RdfFormat.N_TRIPLES,
        'xml': pyoxigraph.RdfFormat.RDF_XML,
        'jsonld': pyoxigraph.RdfFormat.JSON_LD,
    }
    prefixes = {k: v for k, v in NAMESPACES.items() if k != 'xsd'}
    kwargs: dict[str, Any] = {'from_graph': pyoxigraph.DefaultGraph()}
    if fmt in {'turtle', 'xml', 'jsonld'}:
        kwargs['prefixes'] = prefixes
    out = store.dump(format=formats[fmt], **kwargs)
    return bytes(out) if out is not None else b''


def _rdflib_triples(data: bytes, graph: rdflib.Graph) -> Iterator[Any]:
    """N-Triples parsed by Oxigraph, as rdflib quads for ``graph.addN``.

    Twice as fast as rdflib's own N-Triples parser; each distinct term is
    converted once.
    """
    import pyoxigraph  # noqa: PLC0415
    from rdflib import BNode  # noqa: PLC0415
    from rdflib import Literal  # noqa: PLC0415
    from rdflib import URIRef  # noqa: PLC0415

    plain = {f'{XSD}string', f'{RDF}langString'}
    terms: dict[Any, Any] = {}

    def term(t: Any) -> Any:
        found = terms.get(t)
        if found is None:
            if isinstance(t, pyoxigraph.NamedNode):
                found = URIRef(t.value)
            elif isinstance(t, pyoxigraph.BlankNode):
                found = BNode()
            else:
                dtype = t.datatype.value
                found = Literal(
                    t.value,
                    lang=t.language,
                    datatype=None if dtype in plain else URIRef(dtype),
                )
            terms[t] = found
        return found

    for triple in pyoxigraph.parse(
        data, format=pyoxigraph.RdfFormat.N_TRIPLES
    ):
        yield (
            term(triple.subject),
            term(triple.predicate),
            term(triple.object),
            graph,
        )


@gc_paused
def to_rdflib(
    graph: nx.MultiDiGraph, *, engine: str = 'oxigraph'
) -> rdflib.Graph:
    """The PROV-O of ``graph`` as an :class:`rdflib.Graph`.

    Args:
        graph: The PROV graph.
        engine: ``'oxigraph'`` keeps the triples in Oxigraph (through
            ``oxrdflib``), so ``Graph.query`` runs on Oxigraph's engine;
            ``'rdflib'`` uses rdflib's own in-memory store and engine.
    """
    import rdflib  # noqa: PLC0415

    if engine not in {'oxigraph', 'rdflib'}:
        raise ValueError(f'unknown engine {engine!r}: oxigraph or rdflib')
    data = _ntriples_data(graph)
    if engine == 'oxigraph':
        import pyoxigraph  # noqa: PLC0415
        from rdflib.graph import DATASET_DEFAULT_GRAPH_ID  # noqa: PLC0415

        g = rdflib.Graph(store='Oxigraph', identifier=DATASET_DEFAULT_GRAPH_ID)
        # oxrdflib keeps a pyoxigraph.Store inside; fill it in bulk
        inner: Any = getattr(g.store, '_inner')  # noqa: B009
        inner.bulk_load(
            data,
            format=pyoxigraph.RdfFormat.N_TRIPLES,
            to_graph=pyoxigraph.DefaultGraph(),
        )
    else:
        g = rdflib.Graph()
        g.addN(_rdflib_triples(data, g))
    for prefix, iri in NAMESPACES.items():
        g.bind(prefix, iri)
    return g
