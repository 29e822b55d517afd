"""Which calls a report draws, and how values flowed between them.

A browser draws a few thousand bars comfortably, not a hundred thousand.
Above ``max_bars`` calls the report keeps what people look for first
(failures, calls that never ended, cancellations, the lineage of the final
results, the top-level calls, each with the calls that made it), as many
as fit, and fills the rest with a uniform sample; the counts per state say
exactly what it kept and what it left out.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from dataclasses import field

import networkx as nx

from provlog import clip
from provlog.actions.spans import Timeline
from provlog.vocab import CANCELLED
from provlog.vocab import COMPLETED
from provlog.vocab import FAILED
from provlog.vocab import NOT_ENDED
from provlog.vocab import STATES

__all__ = [
    'LINEAGE_CALLS',
    'Derivation',
    'Selection',
    'derivations',
    'final_targets',
    'lineage_calls',
    'select',
]

#: Calls the lineage of the final results may bring into a sample.
LINEAGE_CALLS = 150
#: Final results whose lineage the page draws at first.
FINAL_TARGETS = 3

#: ``(input suffix, source tag, note)``: the input of an action whose
#: entity (``plid:<tag>/arg/0``, or a member of it) was derived from the
#: result of the source call; ``note`` names the members when either side
#: is a member (``summarize arg0[1] = square result``), else ``''``.
Derivation = tuple[str, str, str]


def derivations(g: nx.MultiDiGraph) -> dict[str, list[Derivation]]:
    """Every ``wasDerivedFrom`` between values, by the deriving call's tag.

    The graph's derivations (inferred from content hashes) are the ones
    ``provlog why`` shows; the report draws the same.
    """
    found: dict[str, list[Derivation]] = {}
    seen: set[tuple[str, str, str]] = set()
    for u, v, key in g.edges(keys=True):
        if key != 'wasDerivedFrom':
            continue
        user = _value_iri(u)
        source = _value_iri(v)
        if user is None or source is None or source[1] != 'result':
            continue
        tag, kind, rest = user
        if kind not in {'arg', 'kwarg'}:
            continue
        slot = f'{kind}/{rest[0]}'
        if (tag, slot, source[0]) in seen:
            continue
        seen.add((tag, slot, source[0]))
        note = ''
        if len(rest) > 1 or source[2]:
            note = f'{_label(g, u)} = {_label(g, v)}'
        found.setdefault(tag, []).append((slot, source[0], note))
    return found


def _label(g: nx.MultiDiGraph, node: str) -> str:
    """A value's ``prov:label`` (names from the journals), bounded."""
    return clip.text(
        g.nodes[node].get('prov:label', node), clip.NAME_CHARS, default='?'
    )


def _value_iri(iri: str) -> tuple[str, str, list[str]] | None:
    """``plid:<tag>/<kind>/<rest...>`` as ``(tag, kind, rest)``."""
    if not iri.startswith('plid:'):
        return None
    parts = iri[5:].split('/')
    if len(parts) < 2:  # noqa: PLR2004
        return None
    return parts[0], parts[1], parts[2:]


def final_targets(tl: Timeline) -> list[str]:
    """The results a run ends with: the last completed top-level calls."""
    roots = [tl.calls[t] for t in tl.roots]
    done = [c for c in roots if c.state == COMPLETED] or roots
    done.sort(key=lambda c: (c.end, c.tag), reverse=True)
    return [c.tag for c in done[:FINAL_TARGETS]]


def lineage_calls(
    tl: Timeline,
    derived: dict[str, list[Derivation]],
    targets: list[str],
    cap: int = LINEAGE_CALLS,
) -> list[str]:
    """The calls in the lineage of ``targets``, nearest first, at most cap.

    A call's lineage holds the calls it made and the calls whose results
    its inputs were derived from, as in :func:`provlog.query.lineage.why`.
    """
    seen: dict[str, None] = {}
    queue = deque(t for t in targets if t in tl.calls)
    while queue and len(seen) < cap:
        tag = queue.popleft()
        if tag in seen:
            continue
        seen[tag] = None
        queue.extend(src for _, src, _ in derived.get(tag, ()))
        queue.extend(tl.calls[tag].children)
    return [t for t in seen if t in tl.calls]


@dataclass
class Selection:
    """The calls a report shows, and what it says it left out.

    ``kept`` is in start order. ``sampled`` is false when every call is
    kept. ``counts`` says, per state, how many calls the run has and how
    many the report kept.
    """

    kept: list[str]
    sampled: bool
    counts: dict[str, list[int]] = field(default_factory=dict)


def select(
    tl: Timeline, max_bars: int, lineage: list[str] | None = None
) -> Selection:
    """At most ``max_bars`` calls of ``tl`` to draw (all when they fit).

    Kept first, in this order, each with the calls above it: failures,
    calls not ended, cancellations, the ``lineage`` calls, the top-level
    calls; then a uniform sample (in tag order: tags are random UUIDs, so
    the sample is the same every time the report is made).
    """
    calls = tl.calls
    ordered = sorted(calls.values(), key=lambda c: (c.start, c.tag))
    counts: dict[str, list[int]] = {s: [0, 0] for s in STATES}
    by_state: dict[str, list[str]] = {}
    for call in ordered:
        counts.setdefault(call.state, [0, 0])[0] += 1
        by_state.setdefault(call.state, []).append(call.tag)
    if len(calls) <= max_bars:
        for c in counts.values():
            c[1] = c[0]
        return Selection([c.tag for c in ordered], False, counts)
    kept: dict[str, None] = {}
    groups = [
        by_state.get(FAILED, []),
        by_state.get(NOT_ENDED, []),
        by_state.get(CANCELLED, []),
        lineage or [],
        tl.roots,
        sorted(calls),
    ]
    for group in groups:
        for tag in group:
            if len(kept) >= max_bars:
                break
            _keep(tl, tag, kept, max_bars)
    for tag in kept:
        counts[calls[tag].state][1] += 1
    return Selection([c.tag for c in ordered if c.tag in kept], True, counts)


def _keep(tl: Timeline, tag: str, kept: dict[str, None], limit: int) -> None:
    """Keep ``tag`` and the calls above it, if all of them fit."""
    calls = tl.calls
    chain: list[str] = []
    while tag and tag not in kept and len(chain) <= len(calls):
        chain.append(tag)
        parent = calls[tag].parent
        tag = parent if parent is not None and parent in calls else ''
    if len(kept) + len(chain) <= limit:
        kept.update(dict.fromkeys(reversed(chain)))
