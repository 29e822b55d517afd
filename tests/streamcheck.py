"""Compare a streamed export with the in-memory one, as graphs."""

from __future__ import annotations

import io
import re
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pyoxigraph
import rdflib
from rdflib.compare import to_isomorphic

import provlog
from provlog.actions.stream import StreamMerge
from provlog.mapping.streamwrite import export_stream

ELEMENTS = ('entity', 'activity', 'agent')


def streamed(run: Path, fmt: str, **kwargs: Any) -> tuple[bytes, StreamMerge]:
    """The streamed export of ``run`` in ``fmt``, and the finished merge."""
    out = io.BytesIO()
    merge = export_stream(run, fmt, out, **kwargs)
    return out.getvalue(), merge


def provjson_sections(data: bytes) -> dict[str, Any]:
    """A PROV-JSON document as comparable sections.

    Elements by id; relations as a multiset of records (their blank ids
    are fresh in each document, so they are left out).
    """
    doc = orjson.loads(data)
    out: dict[str, Any] = {'prefix': doc.pop('prefix')}
    for name, records in doc.items():
        if name in ELEMENTS:
            out[name] = {
                k: orjson.dumps(v, option=orjson.OPT_SORT_KEYS)
                for k, v in records.items()
            }
        else:
            out[name] = Counter(
                orjson.dumps(v, option=orjson.OPT_SORT_KEYS)
                for v in records.values()
            )
    return out


def rdf_graph(data: bytes, fmt: str) -> rdflib.Graph:
    """Parse N-Triples or Turtle with rdflib."""
    graph = rdflib.Graph()
    graph.parse(data=data, format=fmt)
    return graph


def isomorphic(a: rdflib.Graph, b: rdflib.Graph) -> bool:
    """Whether two graphs are the same up to blank-node labels."""
    return to_isomorphic(a) == to_isomorphic(b)


def same_provjson(
    run: Path, *, lenient: bool = False, **kwargs: Any
) -> StreamMerge:
    """Assert the streamed PROV-JSON of ``run`` equals the in-memory one."""
    memory = provlog.load(run, lenient=lenient).serialize(
        'provjson', indent=True
    )
    data, merge = streamed(
        run, 'provjson', indent=True, lenient=lenient, **kwargs
    )
    want, got = provjson_sections(memory), provjson_sections(data)
    assert sorted(got) == sorted(want)
    for name in want:
        assert got[name] == want[name], name
    return merge


def canonical(graph: rdflib.Graph) -> set[tuple[Any, Any, Any]]:
    """The triples with each blank node named by what it says.

    A blank node of this mapping is a qualified relation: the object of
    one triple and the subject of its own; naming it by those triples
    (which differ between any two relations) relabels both graphs alike,
    so equal sets mean isomorphic graphs, in linear time.
    """
    into: dict[Any, list[tuple[Any, Any]]] = {}
    out: dict[Any, list[tuple[Any, Any]]] = {}
    for s, p, o in graph:
        if isinstance(o, rdflib.BNode):
            into.setdefault(o, []).append((s, p))
        if isinstance(s, rdflib.BNode):
            out.setdefault(s, []).append((p, o))
    names = {
        b: 'bnode ' + repr((sorted(into.get(b, [])), sorted(out.get(b, []))))
        for b in into.keys() | out.keys()
    }
    return {(names.get(s, s), p, names.get(o, o)) for s, p, o in graph}


def as_written(data: bytes, fmt: str) -> tuple[set[str], Counter[str]]:
    """The triples without blank nodes, and every literal, as written.

    rdflib parses a typed literal to its value and writes it back in its
    own form (``+00:00`` as ``Z``, ``0.0`` as ``0``), so two documents
    whose literals differ in their text still compare equal there; RDF
    terms are equal only when their text is, so this reads with Oxigraph's
    parser, which keeps the text.
    """
    syntax = {'nt': pyoxigraph.RdfFormat.N_TRIPLES}.get(
        fmt, pyoxigraph.RdfFormat.TURTLE
    )
    ground: set[str] = set()
    literals: Counter[str] = Counter()
    for triple in pyoxigraph.parse(data, format=syntax):
        if isinstance(triple.object, pyoxigraph.Literal):
            literals[str(triple.object)] += 1
        if not isinstance(
            triple.subject, pyoxigraph.BlankNode
        ) and not isinstance(triple.object, pyoxigraph.BlankNode):
            ground.add(str(triple))
    return ground, literals


def same_rdf(
    run: Path, fmt: str, *, exact: bool = False, lenient: bool = False
) -> None:
    """Assert the streamed ``nt``/``turtle`` of ``run`` is the in-memory one.

    The literals must be the same text, not only the same values.
    ``exact`` also checks with rdflib's isomorphism (slow: small runs).
    """
    memory = provlog.load(run, lenient=lenient).serialize('nt')
    data, _ = streamed(run, fmt, lenient=lenient)
    want = rdf_graph(memory, 'nt')
    got = rdf_graph(data, 'nt' if fmt == 'nt' else 'turtle')
    assert len(got) == len(want)
    assert canonical(got) == canonical(want)
    got_ground, got_literals = as_written(data, fmt)
    want_ground, want_literals = as_written(memory, 'nt')
    assert got_ground == want_ground
    assert got_literals == want_literals
    if exact:
        assert isomorphic(got, want)


def provn_lines(text: bytes) -> list[str]:
    """PROV-N lines, sorted, with relation ids ``_:rN`` blanked."""
    return sorted(
        re.sub(r'_:r\d+', '_:r', line) for line in text.decode().splitlines()
    )


def same_provn(run: Path, *, lenient: bool = False) -> None:
    """Assert the streamed PROV-N of ``run`` has the in-memory lines."""
    memory = provlog.load(run, lenient=lenient).serialize('provn')
    data, _ = streamed(run, 'provn', lenient=lenient)
    assert provn_lines(data) == provn_lines(memory)
