"""The PROV formats: PROV-JSON, PROV-N, PROV-XML, and PROV-O as RDF."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import BinaryIO
from typing import cast
from typing import ClassVar
from typing import TYPE_CHECKING

from provlog.mapping.provjson import write_provjson
from provlog.mapping.rdf import serialize_store

if TYPE_CHECKING:
    from provlog.mapping.runview import RunView

__all__ = [
    'JsonLd',
    'NTriples',
    'ProvJson',
    'ProvN',
    'ProvXml',
    'RdfXml',
    'Turtle',
]


class _Streams:
    """A format also written as the run is merged (bounded memory)."""

    name: ClassVar[str]

    def stream(
        self,
        run: Path,
        out: BinaryIO,
        *,
        indent: bool = False,
        lenient: bool = False,
    ) -> int:
        """Merge ``run`` and write the document to ``out`` as it goes.

        Returns:
            How many actions the run has.
        """
        from provlog.mapping.streamwrite import export_stream  # noqa: PLC0415

        merge = export_stream(
            run, self.name, out, indent=indent, lenient=lenient
        )
        return merge.actions


class ProvJson(_Streams):
    """PROV-JSON, written directly from the graph."""

    name: ClassVar[str] = 'provjson'
    suffix: ClassVar[str] = 'provjson'
    summary: ClassVar[str] = 'W3C PROV-JSON'

    def serialize(self, graph: RunView, *, indent: bool = False) -> bytes:
        """The document; ``indent`` for people."""
        return write_provjson(graph.nx, indent=indent)


class ProvN(_Streams):
    """PROV-N, through the ``prov`` package (slow; for interchange)."""

    name: ClassVar[str] = 'provn'
    suffix: ClassVar[str] = 'provn'
    summary: ClassVar[str] = 'W3C PROV-N'

    def serialize(self, graph: RunView, *, indent: bool = False) -> bytes:
        """The document as PROV-N text."""
        del indent
        return str(graph.to_prov().get_provn()).encode()


class ProvXml:
    """PROV-XML, through the ``prov`` package and ``lxml``."""

    name: ClassVar[str] = 'provxml'
    suffix: ClassVar[str] = 'provx'
    summary: ClassVar[str] = 'W3C PROV-XML (needs provlog[xml])'

    def serialize(self, graph: RunView, *, indent: bool = False) -> bytes:
        """The document as PROV-XML."""
        del indent
        if importlib.util.find_spec('lxml') is None:
            raise ValueError(
                "the provxml format needs lxml: pip install 'provlog[xml]'",
            )
        out = graph.to_prov().serialize(format='xml')
        if isinstance(out, str):
            return out.encode()
        return bytes(cast('bytes', out))  # as an older ``prov`` may give


class _Rdf:
    """PROV-O, dumped from the run's Oxigraph store."""

    name: ClassVar[str]
    suffix: ClassVar[str]
    summary: ClassVar[str]

    def serialize(self, graph: RunView, *, indent: bool = False) -> bytes:
        """The PROV-O triples in this RDF syntax."""
        del indent
        return serialize_store(graph.store, self.name)


class _StreamedRdf(_Rdf, _Streams):
    """PROV-O in a line-based syntax, also written as the run is merged."""


class Turtle(_StreamedRdf):
    """PROV-O as Turtle."""

    name: ClassVar[str] = 'turtle'
    suffix: ClassVar[str] = 'ttl'
    summary: ClassVar[str] = 'PROV-O in Turtle'


class NTriples(_StreamedRdf):
    """PROV-O as N-Triples."""

    name: ClassVar[str] = 'nt'
    suffix: ClassVar[str] = 'nt'
    summary: ClassVar[str] = 'PROV-O in N-Triples'


class RdfXml(_Rdf):
    """PROV-O as RDF/XML."""

    name: ClassVar[str] = 'xml'
    suffix: ClassVar[str] = 'rdf'
    summary: ClassVar[str] = 'PROV-O in RDF/XML'


class JsonLd(_Rdf):
    """PROV-O as JSON-LD."""

    name: ClassVar[str] = 'jsonld'
    suffix: ClassVar[str] = 'jsonld'
    summary: ClassVar[str] = 'PROV-O in JSON-LD'
