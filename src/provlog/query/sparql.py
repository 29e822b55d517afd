r"""Read-only SPARQL over a run's PROV-O, on Oxigraph or rdflib's engine.

Oxigraph answers lineage queries one to two orders of magnitude faster than
rdflib's in-memory engine (``docs/benchmarks.md``); rdflib's engine stays
available as ``engine='rdflib'``. Queries never change the data: SPARQL
Update and ``SERVICE`` (federation over the network) are refused before
anything runs.

The decision is taken on the parsed query, not on its text: the query is
parsed with rdflib's SPARQL 1.1 parser (which applies ``\u`` escapes
first, as the standard says), and the parse is walked for ``SERVICE``,
``FROM``/``FROM NAMED`` (rdflib loads those from the network) and updates.
Oxigraph runs the same text the parser saw, escapes already applied, so
both parsers read the same characters; the lexical check of the text stays
as a second layer. A query rdflib's parser does not accept is refused on
both engines.
"""

from __future__ import annotations

import functools
import importlib.resources
import re
import threading
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import orjson

from provlog.journals.reader import show
from provlog.mapping.rdf import NAMESPACES

__all__ = [
    'BindingError',
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
_NOT_IN_IRI = frozenset('<>"{}|^`\\ \t\n\r')
_SERVICE = re.compile(r'(?<![\w?$:])SERVICE\b(?!:)', re.IGNORECASE)


class QueryError(ValueError):
    """A query that cannot run: a syntax error, an update, a bad binding."""


class BindingError(QueryError):
    """A binding the query cannot take: no such variable, not an IRI."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f'binding {name}: {reason}')
        #: The variable, as given (shown safely).
        self.name = name
        #: What is wrong with it.
        self.reason = reason


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


_UPDATE_NAMES = {
    'InsertData': 'INSERT',
    'DeleteData': 'DELETE',
    'DeleteWhere': 'DELETE',
    'Modify': 'DELETE/INSERT',
}


@dataclass(frozen=True)
class Parsed:
    """A query that passed :func:`check_parsed`.

    ``text`` is what Oxigraph runs (escapes applied), ``algebra`` what
    rdflib's engine runs, ``bindable`` the variables ``--bind`` may set.
    """

    text: str
    algebra: Any
    bindable: frozenset[str]


@functools.lru_cache(maxsize=32)
def check_parsed(text: str) -> Parsed:
    r"""Parse ``text`` (prefixes declared) and refuse what is not read-only.

    Refused: SPARQL Update, ``LOAD``; ``SERVICE`` anywhere (subqueries,
    ``EXISTS``, ``OPTIONAL``...); ``FROM`` and ``FROM NAMED``, which name
    graphs outside the run. Spelling does not matter: case, comments,
    whitespace and ``\u`` escapes are gone once the query is parsed.

    Raises:
        QueryError: Refused, or not SPARQL 1.1 that rdflib's parser reads.
    """
    from pyparsing import ParseBaseException  # noqa: PLC0415
    from rdflib.plugins.sparql import parser  # noqa: PLC0415
    from rdflib.plugins.sparql.algebra import translateQuery  # noqa: PLC0415

    expanded = parser.expandUnicodeEscapes(text)
    try:
        tree = parser.parseQuery(expanded)
    except ParseBaseException as exc:
        _refuse_update(expanded)
        raise QueryError(_parse_message(exc)) from None
    except RecursionError:
        raise QueryError('SPARQL query nested too deeply to parse') from None
    _refuse_parts(tree)
    try:
        query = translateQuery(tree)
    except RecursionError:
        raise QueryError('SPARQL query nested too deeply to parse') from None
    except Exception as exc:  # noqa: BLE001 - rdflib raises bare Exception
        raise QueryError(
            'SPARQL error ' + _one_line(str(exc)),
        ) from None
    algebra = query.algebra
    names = algebra.get('PV') if algebra.name == 'SelectQuery' else None
    if names is None:
        names = algebra.get('_vars') or ()
    return Parsed(expanded, query, frozenset(str(v) for v in names))


def _refuse_update(text: str) -> None:
    from pyparsing import ParseBaseException  # noqa: PLC0415
    from rdflib.plugins.sparql import parser  # noqa: PLC0415

    try:
        update = parser.parseUpdate(text)
    except (ParseBaseException, RecursionError):
        return
    names = [getattr(r, 'name', '') for r in update.request or ()]
    if not names:
        return  # an empty update is no query either: a syntax error
    keyword = _UPDATE_NAMES.get(names[0], names[0].upper())
    raise QueryError(
        f'SPARQL Update ({keyword}) is refused: provlog queries are read-only',
    )


def _refuse_parts(tree: Any) -> None:
    """Walk the parse (no recursion) for what reaches outside the run."""
    from rdflib.plugins.sparql.parserutils import CompValue  # noqa: PLC0415

    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, CompValue):
            if item.name == 'ServiceGraphPattern':
                raise QueryError(
                    'SERVICE is refused: provlog queries do not reach the '
                    'network',
                )
            if item.name == 'DatasetClause':
                raise QueryError(
                    'FROM and FROM NAMED are refused: a provlog query reads '
                    "the run's own graph only",
                )
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)) or type(item).__name__ == (
            'ParseResults'
        ):
            stack.extend(item)


def _parse_message(exc: Any) -> str:
    header_lines = _PREFIX_HEADER.count('\n')
    line = max(int(exc.lineno) - header_lines, 1)
    what = _one_line(str(exc.msg))
    found = _one_line(str(getattr(exc, 'found', '') or ''))
    tail = f', found {found}' if found else ''
    return f'SPARQL syntax error at {line}:{exc.col}: {what}{tail}'


def _one_line(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else text
    return show(first)


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
    trusted: bool = False,
) -> QueryResult:
    """Run a read-only query.

    Args:
        store: A ``pyoxigraph.Store`` (``engine='oxigraph'``) or an
            ``rdflib.Graph`` (``engine='rdflib'``).
        text: The query; the prefixes ``prov``, ``provlog``, ``plid``,
            ``uuid``, ``rdfs`` and ``xsd`` are predeclared.
        bindings: Variable name -> IRI, substituted before evaluation;
            a value in double quotes (``'"loss"'``) is a string literal.
        engine: ``'oxigraph'`` or ``'rdflib'``.
        timeout: Seconds before giving up (``None``: no limit). The query
            is abandoned, not stopped: it finishes in a daemon thread.
        trusted: The text is provlog's own (``why``'s queries, IRIs from
            the run written in): only the lexical check, not the parse,
            which costs more than the query.

    Raises:
        QueryError: Update, ``SERVICE``, ``FROM``, a syntax error (with
            position), an error of the engine, or the time limit.
        BindingError: A binding names a variable the query does not
            select, or is not an IRI.
    """
    bindings = dict(bindings or {})
    query: Any
    if trusted:
        query = _prefixed(text)
        check_read_only(query)
    else:
        query = _checked(text, bindings, engine=engine)
    runner: Callable[[Any, Any, Mapping[str, str]], QueryResult]
    if engine == 'oxigraph':
        runner = _run_oxigraph
    elif engine == 'rdflib':
        runner = _run_rdflib
    else:
        raise QueryError(f'unknown engine {engine!r}: oxigraph or rdflib')
    if timeout is None:
        return runner(store, query, bindings)
    return _with_timeout(lambda: runner(store, query, bindings), timeout)


def _checked(text: str, bindings: Mapping[str, str], *, engine: str) -> Any:
    """What the engine runs for a user's query, once it passed the checks."""
    parsed = check_parsed(_prefixed(text))
    check_read_only(parsed.text)  # a second layer, on what the engine reads
    for name, iri in bindings.items():
        if name not in parsed.bindable:
            raise BindingError(
                show(name),
                f'the query has no variable ?{show(name)} to bind'
                + (
                    ' in its SELECT'
                    if parsed.algebra.algebra.name == 'SelectQuery'
                    else ''
                ),
            )
        if _is_literal(iri):
            continue
        if not iri or any(c in _NOT_IN_IRI for c in iri) or ':' not in iri:
            raise BindingError(
                show(name),
                f'{show(iri)}: not an absolute IRI (or a "quoted" string)',
            )
    # rdflib's engine runs the very parse that was checked
    return parsed.algebra if engine == 'rdflib' else parsed.text


def _is_literal(value: str) -> bool:
    """A binding in double quotes (``"loss"``) is a string literal.

    An IRI never holds ``"``, so the two forms cannot be confused.
    """
    return len(value) >= 2 and value[0] == value[-1] == '"'  # noqa: PLR2004


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
        pyoxigraph.Variable(k): pyoxigraph.Literal(v[1:-1])
        if _is_literal(v)
        else pyoxigraph.NamedNode(v)
        for k, v in bindings.items()
    }
    try:
        answer = store.query(query, substitutions=subs or None)
    except SyntaxError as exc:
        raise QueryError(_syntax_message(str(exc))) from None
    except (RuntimeError, ValueError, OSError) as exc:
        raise QueryError(f'Oxigraph: {_one_line(str(exc))}') from None
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
    query: Any,
    bindings: Mapping[str, str],
) -> QueryResult:
    try:
        return _rdflib_answer(graph, query, bindings)
    except QueryError:
        raise
    except RecursionError:
        raise QueryError(
            "rdflib's engine recursed too deeply on this query (a long "
            'property path?); --engine oxigraph runs it',
        ) from None
    except Exception as exc:  # noqa: BLE001 - rdflib raises bare Exception
        raise QueryError(f'rdflib: {_one_line(str(exc))}') from None


def _rdflib_answer(
    graph: Any,
    query: Any,
    bindings: Mapping[str, str],
) -> QueryResult:
    import rdflib  # noqa: PLC0415

    init = {
        k: rdflib.Literal(v[1:-1]) if _is_literal(v) else rdflib.URIRef(v)
        for k, v in bindings.items()
    }
    answer = graph.query(query, initBindings=init or None)
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


def canned_queries(*, across: bool = False) -> dict[str, str]:
    """The shipped questions: name -> SPARQL text.

    Args:
        across: The questions across the runs of a folder
            (``queries/across/``, :mod:`provlog.catalog`) instead of the
            questions about one run.
    """
    folder = importlib.resources.files('provlog.query') / 'queries'
    if across:
        folder = folder / 'across'
    return {
        entry.name.removesuffix('.rq'): entry.read_text(encoding='utf-8')
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith('.rq')
    }


def load_query(spec: str) -> str:
    """Query text from ``spec``: literal SPARQL, ``@name`` or ``@file.rq``.

    ``@name`` is a question about one run or across runs (both run on a
    folder of runs; those across runs find nothing in a single run).

    Raises:
        QueryError: The named query or file does not exist.
    """
    if not spec.startswith('@'):
        return spec
    name = spec[1:]
    one = canned_queries()
    across = canned_queries(across=True)
    if name in one:
        return one[name]
    if name in across:
        return across[name]
    from pathlib import Path  # noqa: PLC0415

    path = Path(name)
    if path.is_file():
        return path.read_text(encoding='utf-8')
    raise QueryError(
        f'no query {spec!r}: not a file, and not one of '
        + ', '.join(f'@{n}' for n in one)
        + '; across runs: '
        + ', '.join(f'@{n}' for n in across),
    )
