"""What the report says of every call, sampled or not: counts over time.

A sampled report draws some calls; these aggregates cover all of them, so
the overview and the table stay true for the whole run.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from provlog.actions.spans import Timeline
from provlog.views.report.details import cut
from provlog.views.report.details import PREVIEW_CHARS
from provlog.vocab import STATES

__all__ = ['HISTOGRAM_BINS', 'by_name', 'histogram']

#: Bins of the activity overview.
HISTOGRAM_BINS = 240


def histogram(tl: Timeline) -> dict[str, Any]:
    """Executions running per time bin and state, over every call."""
    span = tl.end - tl.start
    bins = HISTOGRAM_BINS
    steps = {s: [0] * (bins + 1) for s in STATES}
    if span > 0:
        for call in tl.calls.values():
            side = call.execution or call.request
            if side is None or call.state not in steps:
                continue
            a = min(bins - 1, int((side.start - tl.start) / span * bins))
            b = min(bins - 1, int((side.end - tl.start) / span * bins))
            steps[call.state][a] += 1
            steps[call.state][b + 1] -= 1
    out: dict[str, list[int]] = {}
    for state, diff in steps.items():
        running, series = 0, []
        for d in diff[:bins]:
            running += d
            series.append(running)
        out[state] = series
    return {'bins': bins, 'series': out}


def by_name(tl: Timeline) -> list[list[Any]]:
    """Per action name, over every call: counts by state and durations.

    ``[name, calls, completed, failed, cancelled, not_ended, total seconds,
    mean seconds, max seconds]``, most total time first; durations are the
    execution side's where it ended, else the request's.
    """
    count: Counter[str] = Counter()
    states: dict[str, Counter[str]] = {}
    took: dict[str, list[float]] = {}
    for call in tl.calls.values():
        count[call.action] += 1
        states.setdefault(call.action, Counter())[call.state] += 1
        side = call.execution if call.execution is not None else call.request
        if side is not None and side.ended:
            took.setdefault(call.action, []).append(side.duration)
    rows = []
    for name, n in count.items():
        times = took.get(name, [])
        row: list[Any] = [
            cut(name, PREVIEW_CHARS),
            n,
            *(states[name][s] for s in STATES),
            round(sum(times), 6),
            round(sum(times) / len(times), 6) if times else None,
            round(max(times), 6) if times else None,
        ]
        rows.append(row)
    rows.sort(key=lambda r: (-(r[6] or 0), r[0]))
    return rows
