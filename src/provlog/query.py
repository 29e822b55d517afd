"""Read-only SPARQL over a run's PROV-O, on Oxigraph or rdflib's engine.

Oxigraph answers lineage queries one to two orders of magnitude faster than
rdflib's in-memory engine (``docs/benchmarks.md``); rdflib's engine stays
available as ``engine='rdflib'``. Queries never change the data: SPARQL
Update and ``SERVICE`` (federation over the network) are refused before
anything runs.
"""

from __future__ import annotations

import importlib.resources
import re
import threading
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import orjson

from provlog.rdf import NAMESPACES

__all__ = [
    'QueryError',
    'QueryResult',
    'canned_queries',
    'check_read_only',
    'load_query',
    'run_sparql',
]

_PREFIX_HEADER = ''.join(f'PREFIX {k}: <{v}>\n' for k, v in NAMESPACES.items())
_STRIP = re.compile(
    r'"""(?:[^"\\]|\\.|"(?!""))*"""'
    r"|'''(?:[^'\\]|\\.|'(?!''))*'''"
    r'|"(?:[^"\\\n]|\\.)*"'
    r"|'(?:[^'\\\n]|\\.)*'"
    r'|<[^<>"{}|^`\\\s]*>'
    r'|#[^\n]*',
)
_UPDATE = re.compile(
    r'(?<![\w?$:])(INSERT|DELETE|LOAD|CLEAR|CREATE|DROP|COPY|MOVE|ADD)\b(?!:)',
    re.IGNORECASE,
)
_SERVICE = re.compile(r'(?<![\w?$:])SERVICE\b(?!:)', re.IGNORECASE)


class QueryError(ValueError):
    """A query that cannot run: a syntax error, an update, a bad binding."""


@dataclass
class QueryResult:
    """SELECT rows, an ASK answer, or CONSTRUCT triples, as plain terms.

    A term is a dict in the W3C SPARQL 1.1 Query Results JSON form:
    ``{"type": "uri"|"literal"|"bnode", "value": ..., "datatype"?: ...}``.
    """

    variables: list[str] = field(default_factory=list)
    rows: list[dict[str, dict[str, str]]] = field(default_factory=list)
    boolean: bool | None = None

    def to_json(self) -> dict[str, Any]:
        """The W3C SPARQL 1.1 Query Results JSON document."""
        if self.boolean is not None:
            return {'head': {}, 'boolean': self.boolean}
        return {
            'head': {'vars': self.variables},
            'results': {'bindings': self.rows},
        }

    def column(self, name: str) -> list[str | None]:
        """The values of one variable, row by row (``None`` when unbound)."""
        return [
            row[name]['value'] if name in row else None for row in self.rows
        ]


def check_read_only(text: str) -> None:
    """Refuse SPARQL Update and ``SERVICE``; a clear one-line error."""
    bare = _STRIP.sub(' ', text)
    match = _UPDATE.search(bare)
    if match:
        raise QueryError(
            f'SPARQL Update ({match.group(1).upper()}) is refused: provlog '
            'queries are read-only',
        )
    if _SERVICE.search(bare):
        raise QueryError(
            'SERVICE is refused: provlog queries do not reach the network',
        )


def _prefixed(text: str) -> str:
    return _PREFIX_HEADER + text


def _ox_term(term: Any) -> dict[str, str]:
    import pyoxigraph  # noqa: PLC0415

    if isinstance(term, pyoxigraph.NamedNode):
        return {'type': 'uri', 'value': term.value}
    if isinstance(term, pyoxigraph.BlankNode):
        return {'type': 'bnode', 'value': term.value}
    out = {'type': 'literal', 'value': term.value}
    if term.language:
        out['xml:lang'] = term.language
    elif term.datatype.value != 'http://www.w3.org/2001/XMLSchema#string':
        out['datatype'] = term.datatype.value
    return out


def _rdflib_term(term: Any) -> dict[str, str]:
    import rdflib  # noqa: PLC0415

    if isinstance(term, rdflib.URIRef):
        return {'type': 'uri', 'value': str(term)}
    if isinstance(term, rdflib.BNode):
        return {'type': 'bnode', 'value': str(term)}
    out = {'type': 'literal', 'value': str(term)}
    if term.language:
        out['xml:lang'] = term.language
    elif term.datatype is not None and str(term.datatype) != (
        'http://www.w3.org/2001/XMLSchema#string'
    ):
        out['datatype'] = str(term.datatype)
    return out


def run_sparql(
    store: Any,
    text: str,
    *,
    bindings: Mapping[str, str] | None = None,
    engine: str = 'oxigraph',
    timeout: float | None = None,
) -> QueryResult:
    """Run a read-only query.

    Args:
        store: A ``pyoxigraph.Store`` (``engine='oxigraph'``) or an
            ``rdflib.Graph`` (``engine='rdflib'``).
        text: The query; the prefixes ``prov``, ``provlog``, ``plid``,
            ``uuid``, ``rdfs`` and ``xsd`` are predeclared.
        bindings: Variable name -> IRI, substituted before evaluation.
        engine: ``'oxigraph'`` or ``'rdflib'``.
        timeout: Seconds before giving up (``None``: no limit). The query
            is abandoned, not stopped: it finishes in a daemon thread.

    Raises:
        QueryError: Update, ``SERVICE``, a syntax error (with position), or
            the time limit.
    """
    check_read_only(text)
    query = _prefixed(text)
    runner: Callable[[Any, str, Mapping[str, str]], QueryResult]
    if engine == 'oxigraph':
        runner = _run_oxigraph
    elif engine == 'rdflib':
        runner = _run_rdflib
    else:
        raise QueryError(f'unknown engine {engine!r}: oxigraph or rdflib')
    if timeout is None:
        return runner(store, query, bindings or {})
    return _with_timeout(lambda: runner(store, query, bindings or {}), timeout)


def _with_timeout(
    job: Callable[[], QueryResult],
    timeout: float,
) -> QueryResult:
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box['result'] = job()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            box['error'] = exc

    thread = threading.Thread(target=work, name='provlog-query', daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise QueryError(f'query exceeded the time limit of {timeout:g} s')
    if 'error' in box:
        raise box['error']
    return box['result']  # type: ignore[no-any-return]


def _run_oxigraph(
    store: Any,
    query: str,
    bindings: Mapping[str, str],
) -> QueryResult:
    import pyoxigraph  # noqa: PLC0415

    subs = {
        pyoxigraph.Variable(k): pyoxigraph.NamedNode(v)
        for k, v in bindings.items()
    }
    try:
        answer = store.query(query, substitutions=subs or None)
    except SyntaxError as exc:
        raise QueryError(_syntax_message(str(exc))) from None
    if isinstance(answer, pyoxigraph.QueryBoolean):
        return QueryResult(boolean=bool(answer))
    if isinstance(answer, pyoxigraph.QueryTriples):
        rows = [
            {
                'subject': _ox_term(t.subject),
                'predicate': _ox_term(t.predicate),
                'object': _ox_term(t.object),
            }
            for t in answer
        ]
        return QueryResult(['subject', 'predicate', 'object'], rows)
    # Oxigraph writes SPARQL Results JSON in Rust: faster than converting
    # each term in Python, and the W3C form is what QueryResult holds
    results = orjson.loads(
        answer.serialize(format=pyoxigraph.QueryResultsFormat.JSON),
    )
    return QueryResult(
        list(results['head']['vars']),
        list(results['results']['bindings']),
    )


def _run_rdflib(
    graph: Any,
    query: str,
    bindings: Mapping[str, str],
) -> QueryResult:
    import rdflib  # noqa: PLC0415

    init = {k: rdflib.URIRef(v) for k, v in bindings.items()}
    try:
        answer = graph.query(query, initBindings=init or None)
    except Exception as exc:  # noqa: BLE001 - pyparsing raises its own types
        raise QueryError(_syntax_message(str(exc))) from None
    if answer.type == 'ASK':
        return QueryResult(boolean=bool(answer.askAnswer))
    if answer.type in {'CONSTRUCT', 'DESCRIBE'}:
        rows = [
            {
                'subject': _rdflib_term(s),
                'predicate': _rdflib_term(p),
                'object': _rdflib_term(o),
            }
            for s, p, o in answer
        ]
        return QueryResult(['subject', 'predicate', 'object'], rows)
    names = [str(v) for v in answer.vars or []]
    rows = []
    for solution in answer:
        row = {}
        for name, term in zip(names, solution, strict=True):
            if term is not None:
                row[name] = _rdflib_term(term)
        rows.append(row)
    return QueryResult(names, rows)


def _syntax_message(message: str) -> str:
    first = message.strip().splitlines()[0] if message.strip() else message
    # positions count the predeclared PREFIX lines; report the user's lines
    header_lines = _PREFIX_HEADER.count('\n')

    def shift(m: re.Match[str]) -> str:
        line = int(m.group(1)) - header_lines
        return f'at {max(line, 1)}:{m.group(2)}'

    def shift_rdflib(m: re.Match[str]) -> str:
        line = int(m.group(1)) - header_lines
        return f'at {max(line, 1)}:{m.group(2)}'

    first = re.sub(r'^(syntax )?error\s*', '', first, flags=re.IGNORECASE)
    first = re.sub(r'\s*\(at char \d+\),?', '', first)
    first = re.sub(r'at (\d+):(\d+)', shift, first)
    first = re.sub(r'\(line:(\d+), col:(\d+)\)', shift_rdflib, first)
    return 'SPARQL syntax error ' + first


# ---------------------------------------------------------------- canned


def canned_queries() -> dict[str, str]:
    """The shipped questions: name -> SPARQL text."""
    folder = importlib.resources.files('provlog') / 'queries'
    return {
        entry.name.removesuffix('.rq'): entry.read_text(encoding='utf-8')
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith('.rq')
    }


def load_query(spec: str) -> str:
    """Query text from ``spec``: literal SPARQL, ``@name`` or ``@file.rq``.

    Raises:
        QueryError: The named query or file does not exist.
    """
    if not spec.startswith('@'):
        return spec
    name = spec[1:]
    canned = canned_queries()
    if name in canned:
        return canned[name]
    from pathlib import Path  # noqa: PLC0415

    path = Path(name)
    if path.is_file():
        return path.read_text(encoding='utf-8')
    raise QueryError(
        f'no query {spec!r}: not a file, and not one of '
        + ', '.join(f'@{n}' for n in canned),
    )
