"""The timeline's rows: one per agent (or client) in each process.

An agent's executions go on its row; the requests it makes (the caller's
side of its calls) go on the same row, under its executions, so a nested
call is drawn from its caller's row to its callee's. Rows are grouped by
host, then process, in order of first activity. Overlapping intervals on
one row get sub-rows (:func:`provlog.actions.spans.lanes`), executions and
requests separately.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field

from provlog.actions.spans import Call
from provlog.actions.spans import lanes
from provlog.actions.spans import Side

__all__ = ['Placement', 'Row', 'place']

#: Where a side is drawn: its row index and its sub-row (lane).
Slot = tuple[int, int]


@dataclass
class Row:
    """One row: an agent or client in one process, and its sub-rows."""

    process: str | None
    agent: str | None
    first: float
    executions: list[tuple[float, float, str]] = field(default_factory=list)
    requests: list[tuple[float, float, str]] = field(default_factory=list)
    exec_lanes: int = 0
    request_lanes: int = 0


@dataclass
class Placement:
    """Rows in drawing order, and each drawn side's row and lane by tag."""

    rows: list[Row]
    execution: dict[str, Slot]
    request: dict[str, Slot]


def _add(
    rows: dict[tuple[str | None, str | None], Row],
    process: str | None,
    agent: str | None,
    side: Side,
) -> Row:
    key = (process, agent)
    row = rows.get(key)
    if row is None:
        row = rows[key] = Row(process, agent, side.start)
    row.first = min(row.first, side.start)
    return row


def _lanes(
    items: list[tuple[float, float, str]],
) -> tuple[dict[str, int], int]:
    items.sort(key=lambda i: (i[0], -i[1], i[2]))
    found = lanes((s, e) for s, e, _ in items)
    return (
        {tag: lane for (_, _, tag), lane in zip(items, found, strict=True)},
        max(found, default=-1) + 1,
    )


def place(calls: list[Call], hosts: dict[str, str | None]) -> Placement:
    """Rows for ``calls``; ``hosts`` maps a process key to its host."""
    rows: dict[tuple[str | None, str | None], Row] = {}
    for call in calls:
        if call.execution is not None:
            side = call.execution
            _add(rows, side.process, call.callee, side).executions.append(
                (side.start, side.end, call.tag)
            )
        if call.request is not None:
            side = call.request
            _add(rows, side.process, call.caller, side).requests.append(
                (side.start, side.end, call.tag)
            )
    first_of_process: dict[str | None, float] = {}
    first_of_host: dict[str | None, float] = {}
    for row in rows.values():
        host = hosts.get(row.process or '')
        first_of_process[row.process] = min(
            first_of_process.get(row.process, row.first), row.first
        )
        first_of_host[host] = min(
            first_of_host.get(host, row.first), row.first
        )
    ordered = sorted(
        rows.values(),
        key=lambda r: (
            first_of_host[hosts.get(r.process or '')],
            str(hosts.get(r.process or '')),
            first_of_process[r.process],
            str(r.process),
            r.first,
            str(r.agent),
        ),
    )
    execution: dict[str, Slot] = {}
    request: dict[str, Slot] = {}
    for n, row in enumerate(ordered):
        found, row.exec_lanes = _lanes(row.executions)
        execution.update((tag, (n, lane)) for tag, lane in found.items())
        found, row.request_lanes = _lanes(row.requests)
        request.update((tag, (n, lane)) for tag, lane in found.items())
    return Placement(ordered, execution, request)
