"""One registry of export formats, each a small class found by name.

``provlog export --format NAME`` and :meth:`provlog.RunGraph.serialize`
look formats up here. A format is imported only when asked for, so the
registry costs nothing to import and a format's dependencies (rdflib,
``prov``, Graphviz) are needed only by the people who use it. Third
parties add formats through the ``provlog.formats`` entry-point group, each
entry naming a :class:`Format` class (``package.module:Class``).
"""

from __future__ import annotations

import importlib
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import BinaryIO
from typing import ClassVar
from typing import Protocol
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from provlog.mapping.runview import RunView

__all__ = [
    'BUILTIN',
    'Format',
    'Streamed',
    'export_to',
    'get',
    'names',
    'register',
    'streamed',
]

#: Built-in formats: name -> ``module:Class``.
BUILTIN: dict[str, str] = {
    'provjson': 'provlog.formats.prov:ProvJson',
    'provn': 'provlog.formats.prov:ProvN',
    'provxml': 'provlog.formats.prov:ProvXml',
    'turtle': 'provlog.formats.prov:Turtle',
    'nt': 'provlog.formats.prov:NTriples',
    'xml': 'provlog.formats.prov:RdfXml',
    'jsonld': 'provlog.formats.prov:JsonLd',
    'perfetto': 'provlog.formats.perfetto:Perfetto',
    'otlp': 'provlog.formats.otlp:Otlp',
    'dot': 'provlog.formats.dot:Dot',
    'svg': 'provlog.formats.dot:Svg',
}

_extra: dict[str, str] = {}
_loaded: dict[str, Format] = {}


class Format(Protocol):
    """What a format is: a name, a file suffix, and bytes from a run."""

    name: ClassVar[str]
    #: File suffix without the dot, for default output names.
    suffix: ClassVar[str]
    #: One line for ``--help``.
    summary: ClassVar[str]

    def serialize(self, graph: RunView, *, indent: bool = False) -> bytes:
        """The run in this format."""
        ...


class Streamed(Format, Protocol):
    """A format that can also be written while the run is merged.

    ``provlog export`` writes these from :mod:`provlog.mapping.streamwrite`:
    memory does not grow with the run, and the document is the one
    :meth:`Format.serialize` makes, as a graph.
    """

    def stream(
        self,
        run: Path,
        out: BinaryIO,
        *,
        indent: bool = False,
        lenient: bool = False,
    ) -> int:
        """Merge the run folder ``run``, writing the document to ``out``.

        Returns:
            How many actions the run has.
        """
        ...


def streamed(name: str) -> Streamed | None:
    """The format called ``name`` if it can be streamed, else ``None``."""
    fmt = get(name)
    return fmt if callable(getattr(fmt, 'stream', None)) else None  # type: ignore[return-value]


def register(name: str, target: str) -> None:
    """Make ``target`` (``module:Class``) the format called ``name``."""
    _extra[name] = target
    _loaded.pop(name, None)


def _targets() -> dict[str, str]:
    found = {ep.name: ep.value for ep in entry_points(group='provlog.formats')}
    return {**found, **BUILTIN, **_extra}


def names() -> tuple[str, ...]:
    """Every format name, built-in first."""
    targets = _targets()
    return tuple(BUILTIN) + tuple(sorted(set(targets) - set(BUILTIN)))


def get(name: str) -> Format:
    """The format called ``name``.

    Raises:
        ValueError: No format has that name (the message lists them).
    """
    fmt = _loaded.get(name)
    if fmt is not None:
        return fmt
    target = _targets().get(name)
    if target is None:
        raise ValueError(
            f'unknown format {name!r}; choose from {", ".join(names())}',
        )
    module, _, cls = target.partition(':')
    made: Format = getattr(importlib.import_module(module), cls)()
    _loaded[name] = made
    return made


def export_to(
    run: Path, fmt: str, output: Path | None, *, lenient: bool = False
) -> int:
    """``provlog export``: the run in ``fmt`` to ``output`` (or stdout).

    A regular file is written under a temporary name beside ``output``
    and renamed when whole, so a failed merge leaves no half document;
    anything else (a device, a FIFO) is written in place.
    PROV-JSON is indented, as the in-memory export writes it.

    Returns:
        How many actions the run has.

    Raises:
        OSError: ``output`` cannot be written; the error names it.
    """
    found = streamed(fmt)
    if found is None:
        raise ValueError(f'format {fmt!r} is not written as a stream')
    indent = fmt == 'provjson'
    if output is None:
        out = sys.stdout.buffer
        try:
            count = found.stream(run, out, indent=indent, lenient=lenient)
            out.write(b'\n')
            out.flush()
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, '<stdout>') from None
        return count
    if output.exists() and not output.is_file():  # a device, a FIFO, ...
        try:
            with output.open('wb') as fh:
                return found.stream(run, fh, indent=indent, lenient=lenient)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(output)) from None
    part = output.with_name(f'.{output.name}.part')
    try:
        with part.open('wb') as fh:
            count = found.stream(run, fh, indent=indent, lenient=lenient)
        os.replace(part, output)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror, str(output)) from None
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return count
