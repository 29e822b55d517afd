"""``provlog report``: one self-contained HTML page about a run.

The page needs nothing but itself: its style, its script and the run's data
(:mod:`provlog.views.report.data`) are written into it, so it opens from an
e-mail attachment or a login node's file system with no network. Its
Content-Security-Policy allows only the page's own script and style (by hash)
and no requests at all; every value from the run is put into the page as text
by the script, never as markup.
"""

from __future__ import annotations

import base64
import hashlib
import html
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any
from typing import TYPE_CHECKING

import orjson

from provlog.views.report.data import payload

if TYPE_CHECKING:
    from provlog.graph import RunGraph

__all__ = ['DEFAULT_MAX_BARS', 'page_data', 'render_report', 'write_report']

#: Above this many calls the report samples (see :mod:`.select`).
DEFAULT_MAX_BARS = 5000

_PLACEHOLDER = re.compile(r'(\{\{[A-Z_]+\}\})')
_DATA_OPEN = '<script type="application/json" id="provlog-data">'


def _asset(name: str) -> str:
    return (resources.files(__package__) / name).read_text(encoding='utf-8')


def _csp_hash(text: str) -> str:
    digest = hashlib.sha256(text.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def _json_for_script(data: dict[str, Any]) -> str:
    """JSON that cannot end its ``<script>`` element early.

    Every ``<``, ``>`` and ``&`` is written as a JSON escape, so no
    ``</script>`` or ``<!--`` can appear, whatever the values hold.
    """
    text = orjson.dumps(data).decode()
    return (
        text.replace('<', '\\u003c')
        .replace('>', '\\u003e')
        .replace('&', '\\u0026')
    )


#: The states a sample keeps first, in order, with their nouns.
_KEPT_FIRST = (
    ('failed', 'failure', 'failures'),
    ('not_ended', 'call that never ended', 'calls that never ended'),
    ('cancelled', 'cancellation', 'cancellations'),
)


def _kept(states: dict[str, dict[str, int]]) -> list[str]:
    """What a sample kept of each state it keeps first, from its counts."""
    said = []
    for state, one, many in _KEPT_FIRST:
        counts = states.get(state) or {}
        total, kept = counts.get('total', 0), counts.get('kept', 0)
        if not total:
            continue
        if kept == total:
            said.append(
                f'every {one} ({total:,})' if total > 1 else f'the one {one}'
            )
        else:
            said.append(f'{kept:,} of {total:,} {one if total == 1 else many}')
    return said


def _notice(data: dict[str, Any]) -> str:
    """The sampling notice, as text: it reads the same without the script.

    Said from the sample's counts, so it never claims more than was kept.
    """
    sample = data.get('sample')
    if not sample:
        return ''
    kept = _kept(sample['states'])
    first = ', '.join(kept[:-1]) + (' and ' if len(kept) > 1 else '')
    keeps = f'It keeps {first}{kept[-1]}, then, as' if kept else 'It keeps, as'
    return (
        f'Large run: {sample["total"]:,} actions. This report draws '
        f'{sample["kept"]:,} of them (at most {sample["max_bars"]:,}). '
        f'{keeps} room allows, the lineage of the final results, the '
        'top-level calls and a uniform sample of the rest, each call with '
        'the calls that made it. Counts and the activity overview cover '
        'every action.'
    )


def render_report(
    graph: RunGraph, *, max_bars: int = DEFAULT_MAX_BARS
) -> bytes:
    """The report of ``graph`` as one HTML document (UTF-8 bytes).

    Args:
        graph: The run.
        max_bars: The most calls the page draws; a larger run is sampled
            and the page says so.
    """
    data = payload(graph, max_bars=max_bars)
    css = _asset('report.css')
    script = _asset('report.js')
    for name, text, end in (('css', css, '</style'), ('js', script, '</')):
        if end in text:  # pragma: no cover - a broken asset, not input
            raise RuntimeError(f'report.{name} must not contain {end!r}')
    csp = (
        "default-src 'none'; "
        f'style-src {_csp_hash(css)}; '
        f'script-src {_csp_hash(script)}; '
        "connect-src 'none'; form-action 'none'; "
        "base-uri 'none'"
    )
    sample_note = _notice(data)
    parts = {
        '{{CSP}}': html.escape(csp),
        '{{TITLE}}': html.escape(f'provlog report: run {data["run"]}'),
        '{{RUN}}': html.escape(str(data['run'])),
        '{{NOTICE}}': html.escape(sample_note),
        '{{NOTICE_HIDDEN}}': '' if sample_note else ' hidden',
        '{{CSS}}': css,
        '{{DATA}}': _json_for_script(data),
        '{{JS}}': script,
    }
    # one pass over the template: inserted text is never searched again
    pieces = _PLACEHOLDER.split(_asset('page.html'))
    missing = set(parts) - set(pieces)
    if missing:  # pragma: no cover - a broken template
        raise RuntimeError(f'page.html lacks {sorted(missing)}')
    page = ''.join(parts.get(piece, piece) for piece in pieces)
    return page.encode('utf-8')


def write_report(
    graph: RunGraph,
    path: str | os.PathLike[str],
    *,
    max_bars: int = DEFAULT_MAX_BARS,
) -> Path:
    """Write the report of ``graph`` to ``path``; return the path."""
    target = Path(path)
    target.write_bytes(render_report(graph, max_bars=max_bars))
    return target


def page_data(page: bytes) -> dict[str, Any]:
    """The data a report page embeds (for tests and tools)."""
    text = page.decode('utf-8')
    start = text.index(_DATA_OPEN) + len(_DATA_OPEN)
    end = text.index('</script>', start)
    data: dict[str, Any] = orjson.loads(text[start:end])
    return data
