"""Exports written as the graph is produced: NT, Turtle, PROV-JSON, PROV-N.

Each writer is a :class:`provlog.mapping.emit.Sink`: it gets every node and
edge once, from :func:`provlog.mapping.emit.stream_graph`, and writes them out
at once (N-Triples and Turtle) or spools them (PROV-JSON), so peak memory does
not depend on the length of the run. The text of each node and relation is made
by the same functions as the in-memory exports (:mod:`provlog.mapping.rdf`,
:mod:`provlog.mapping.provjson`), so a streamed export is the in-memory one as
a graph; only the order of records and the blank-node labels differ.

Turtle is written as N-Triples after ``@prefix`` lines: every N-Triples
document is a Turtle document. PROV-JSON's sections (``entity``,
``activity``, ``agent``, ``used``, ...) are spooled to temporary files in
one pass and concatenated into one document. PROV-N is formatted by the
``prov`` package, as in memory, a batch of records at a time.
"""

from __future__ import annotations

import io
import math
import re
import shutil
import tempfile
from decimal import Decimal
from decimal import ROUND_HALF_UP
from pathlib import Path
from typing import Any
from typing import BinaryIO

import orjson

from provlog.actions.stream import StreamMerge
from provlog.actions.stream import WINDOW
from provlog.gcpause import paused_gc
from provlog.mapping.emit import stream_graph
from provlog.mapping.model import PREFIXES
from provlog.mapping.provjson import _types
from provlog.mapping.provjson import RELATIONS
from provlog.mapping.rdf import _attribute_lines
from provlog.mapping.rdf import _iri
from provlog.mapping.rdf import _KIND_CLASS
from provlog.mapping.rdf import _literal
from provlog.mapping.rdf import _relation_lines
from provlog.mapping.rdf import _role
from provlog.mapping.rdf import _TYPE
from provlog.mapping.rdf import NAMESPACES
from provlog.mapping.rdf import PROV
from provlog.mapping.rdf import RDFS
from provlog.mapping.rdf import XSD

__all__ = [
    'NTriplesSink',
    'ProvJsonSink',
    'ProvNSink',
    'export_stream',
]

_CHUNK = 1 << 20
#: Attribute texts the N-Triples writer keeps before starting afresh.
_TAILS = 100_000
#: Attributes whose values are times: each is new, none is kept.
_TIMES = frozenset({'prov:startTime', 'prov:endTime', 'prov:time'})
#: Value types whose attribute text is kept (hashable, and common).
_CACHED = frozenset({str, int, float, bool, tuple})
#: PROV-N records formatted at once by ``prov``.
_PROVN_BATCH = 20_000
#: A time or a double in object position (after a space: inside a string
#: literal every quote is escaped), with its text.
_TYPED = re.compile(
    r' "([-+.:0-9A-Za-z]+)"\^\^<' + re.escape(XSD) + r'(dateTime|double)>'
)
_DOUBLE = '#double>'

# The in-memory N-Triples and Turtle are dumped from an Oxigraph store,
# which keeps a time or a double as its value and writes it back in its
# canonical text (``…:17.7635Z``, ``0``, ``INF``). A literal is the same
# RDF term only when its text is the same, so the streamed export writes
# that text too.


def _time(value: Any) -> Any:
    """A time (``…+00:00``) in its canonical text."""
    if value.__class__ is str and value.endswith('+00:00'):
        text = value[:-6]
        if '.' in text:
            text = text.rstrip('0').rstrip('.')
        return text + 'Z'
    return value


def _shortest(value: float) -> Decimal:
    """The shortest decimal that reads back as ``value``, ties away from 0.

    As Python's ``repr``, except that when two are as near (the value is
    exactly half-way), Rust (Oxigraph) gives the one away from zero.
    """
    short = Decimal(repr(value))
    exact = Decimal(value)
    if exact != short:
        away = exact.quantize(short, rounding=ROUND_HALF_UP)
        if away != short and float(away) == value:
            return away
    return short


def _canonical(match: re.Match[str]) -> str:
    """A time or double literal in its canonical text."""
    text, kind = match.group(1), match.group(2)
    if kind == 'dateTime':
        text = _time(text)
    else:
        try:
            value = float(text)
        except ValueError:
            return match.group(0)  # kept as written, as Oxigraph keeps it
        if math.isnan(value):
            text = 'NaN'
        elif math.isinf(value):
            text = 'INF' if value > 0 else '-INF'
        else:
            text = f'{_shortest(value):f}'
            if '.' in text:
                text = text.rstrip('0').rstrip('.')
    return f' "{text}"^^<{XSD}{kind}>'


def canonical_literals(text: str) -> str:
    """``text`` (N-Triples) with its times and doubles in canonical text."""
    return _TYPED.sub(_canonical, text)


class NTriplesSink:
    """Writes N-Triples lines to ``out`` as nodes and edges come."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.terms: dict[str, str] = {}
        self.roles: set[str] = set()
        self.pending: list[str] = []
        self.size = 0
        self.relations = 0
        #: (attribute, value, type) -> its triples' text after the subject
        self.tails: dict[tuple[str, Any, type], tuple[str, ...]] = {}

    def add(
        self,
        nodes: dict[str, dict[str, Any]],
        edges: list[tuple[str, str, dict[str, Any]]],
    ) -> None:
        """The triples of some nodes and relations (direct and qualified)."""
        terms = self.terms
        tails = self.tails
        if len(tails) > _TAILS:
            tails.clear()
        lines: list[str] = []
        for node, attrs in nodes.items():
            subject = _iri(node)
            lines.append(f'{subject} {_TYPE} {_KIND_CLASS[attrs["kind"]]} .\n')
            for key, value in attrs.items():
                if key == 'kind':
                    continue
                if key in _TIMES:
                    lines += _attribute_lines(
                        subject, key, _time(value), terms
                    )
                    continue
                # -0.0 == 0.0 as keys, but "-0" is not "0"
                if value.__class__ not in _CACHED or (
                    value.__class__ is float and not value
                ):
                    lines += [
                        canonical_literals(line)
                        for line in _attribute_lines(
                            subject, key, value, terms
                        )
                    ]
                    continue
                # most attribute values repeat (types, labels, states):
                # their text after the subject is made once
                cached = (key, value, value.__class__)
                tail = tails.get(cached)
                if tail is None:
                    tail = tails[cached] = tuple(
                        canonical_literals(line)
                        for line in _attribute_lines('', key, value, terms)
                    )
                lines += [subject + t for t in tail]
        n = self.relations
        roles = self.roles
        for u, v, attrs in edges:
            n += 1
            when = attrs.get('prov:time')
            text = _relation_lines(
                f'_:q{n}',
                _iri(u),
                _iri(v),
                attrs if when is None else {**attrs, 'prov:time': _time(when)},
                terms=terms,
                roles=roles,
            )
            if _DOUBLE in text:
                text = canonical_literals(text)
            lines.append(text)
        self.relations = n
        self._put(''.join(lines))

    def _put(self, text: str) -> None:
        self.pending.append(text)
        self.size += len(text)
        if self.size > _CHUNK:
            self.out.write(''.join(self.pending).encode())
            self.pending = []
            self.size = 0

    def close(self) -> None:
        """The roles, then everything still pending."""
        for role in sorted(self.roles):
            self._put(f'{_role(role)} {_TYPE} <{PROV}Role> .\n')
            self._put(f'{_role(role)} <{RDFS}label> {_literal(role)} .\n')
        self.out.write(''.join(self.pending).encode())
        self.pending = []


_SECTIONS = ('entity', 'activity', 'agent')


def _own_record(
    attrs: dict[str, Any], drop: str, cache: dict[tuple[str, ...], Any]
) -> dict[str, Any]:
    """``attrs`` made a PROV-JSON record in place (the sink owns them).

    As :func:`provlog.mapping.provjson._record`, without the copy.
    """
    del attrs[drop]
    types = attrs.get('prov:type')
    if types is not None:
        attrs['prov:type'] = _types(types, cache)
    return attrs


class ProvJsonSink:
    """Spools PROV-JSON records by section; :meth:`close` writes it whole."""

    def __init__(
        self, out: BinaryIO, *, indent: bool = False, relations: int = 0
    ) -> None:
        self.out = out
        self.indent = indent
        self.folder = tempfile.TemporaryDirectory(prefix='provlog-json-')
        self.spools: dict[str, BinaryIO] = {}
        self.cache: dict[tuple[str, ...], Any] = {}
        #: Relations numbered so far (blank ids ``_:r1``, ...).
        self.relations = relations
        self._option = orjson.OPT_INDENT_2 if indent else 0
        self._lead = b'\n    ' if indent else b''
        self._colon = b': ' if indent else b':'

    def _spool(self, section: str) -> BinaryIO:
        spool = self.spools.get(section)
        if spool is None:
            path = Path(self.folder.name) / section
            spool = self.spools[section] = path.open('w+b', buffering=_CHUNK)
        return spool

    def add(
        self,
        nodes: dict[str, dict[str, Any]],
        edges: list[tuple[str, str, dict[str, Any]]],
    ) -> None:
        """Element records, and relation records with fresh blank ids."""
        spools = self.spools
        cache = self.cache
        dumps = orjson.dumps
        option = self._option
        lead = self._lead
        colon = self._colon
        indent = self.indent
        for node, attrs in nodes.items():
            kind = attrs['kind']
            spool = spools.get(kind) or self._spool(kind)
            text = dumps(_own_record(attrs, 'kind', cache), option=option)
            if indent:
                text = text.replace(b'\n', b'\n    ')
            spool.write(b',' + lead + dumps(node) + colon + text)
        n = self.relations
        for u, v, attrs in edges:
            rel = attrs['rel']
            record = _own_record(attrs, 'rel', cache)
            src_key, dst_key = RELATIONS[rel]
            record[src_key] = u
            record[dst_key] = v
            n += 1
            spool = spools.get(rel) or self._spool(rel)
            text = dumps(record, option=option)
            if indent:
                text = text.replace(b'\n', b'\n    ')
            spool.write(b',' + lead + b'"_:r%d"' % n + colon + text)
        self.relations = n

    def close(self) -> None:
        """Write the one document: prefixes, then each section in turn."""
        out = self.out
        nl = b'\n' if self.indent else b''
        pad = b'\n  ' if self.indent else b''
        prefix = orjson.dumps(PREFIXES, option=self._option)
        out.write(b'{' + pad + b'"prefix"' + self._colon)
        out.write(prefix.replace(b'\n', b'\n  ') if self.indent else prefix)
        order = [s for s in _SECTIONS if s in self.spools]
        order += [s for s in self.spools if s not in _SECTIONS]
        for section in order:
            spool = self.spools[section]
            spool.flush()
            spool.seek(1)  # past the first record's leading comma
            out.write(b',' + pad + orjson.dumps(section) + self._colon + b'{')
            shutil.copyfileobj(spool, out, _CHUNK)
            out.write(pad + b'}')
            spool.close()
        out.write(nl + b'}')
        self.folder.cleanup()


class ProvNSink:
    """PROV-N, each record formatted by the ``prov`` package, in batches.

    Every :data:`_PROVN_BATCH` records, the batch is read into a
    ``ProvDocument`` as PROV-JSON and its records written as PROV-N
    lines: the text of each record is ``prov``'s own, as in the
    in-memory export, and only a batch is held at once.
    """

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.json = ProvJsonSink(io.BytesIO())
        self.count = 0
        header = ['document'] + [
            f'prefix {k} <{v}>' for k, v in PREFIXES.items()
        ]
        out.write(('\n  '.join([*header, '']) + '\n').encode())

    def add(
        self,
        nodes: dict[str, dict[str, Any]],
        edges: list[tuple[str, str, dict[str, Any]]],
    ) -> None:
        """Gather the records; write a batch when it is full."""
        self.json.add(nodes, edges)
        self.count += len(nodes) + len(edges)
        if self.count >= _PROVN_BATCH:
            self.spill()

    def spill(self) -> None:
        """Write the gathered records as PROV-N lines."""
        from prov.model import ProvDocument  # noqa: PLC0415 - slow import

        batch = self.json
        self.json = ProvJsonSink(io.BytesIO(), relations=batch.relations)
        self.count = 0
        batch.close()
        document = ProvDocument.deserialize(
            content=batch.out.getvalue().decode(),  # type: ignore[attr-defined]
            format='json',
        )
        self.out.write(
            ''.join(
                f'  {record.get_provn()}\n'
                for record in document.get_records()
            ).encode()
        )

    def close(self) -> None:
        """The last batch and the document's end."""
        self.spill()
        self.json.folder.cleanup()
        self.out.write(b'endDocument')


def export_stream(
    path: Path,
    fmt: str,
    out: BinaryIO,
    *,
    indent: bool = False,
    lenient: bool = False,
    window: float = WINDOW,
) -> StreamMerge:
    """Merge the run at ``path`` and write it in ``fmt`` to ``out``.

    Args:
        path: The run folder.
        fmt: ``nt``, ``turtle``, ``provjson`` or ``provn``.
        out: A binary file open for writing.
        indent: Indent PROV-JSON for people.
        lenient: Skip and count damaged journal lines instead of failing.
        window: The merge's tolerance for clock skew, in seconds.

    Returns:
        The finished merge (its run, and the most actions open at once).
    """
    sink: NTriplesSink | ProvJsonSink | ProvNSink
    if fmt == 'provjson':
        sink = ProvJsonSink(out, indent=indent)
    elif fmt == 'provn':
        sink = ProvNSink(out)
    elif fmt in {'nt', 'turtle'}:
        if fmt == 'turtle':
            out.write(
                ''.join(
                    f'@prefix {k}: <{v}> .\n' for k, v in NAMESPACES.items()
                ).encode()
            )
        sink = NTriplesSink(out)
    else:
        raise ValueError(f'no streaming writer for {fmt!r}')
    try:
        with paused_gc():
            merge = stream_graph(path, sink, lenient=lenient, window=window)
        sink.close()
    finally:
        if isinstance(sink, ProvJsonSink):
            sink.folder.cleanup()
        elif isinstance(sink, ProvNSink):
            sink.json.folder.cleanup()
    return merge
