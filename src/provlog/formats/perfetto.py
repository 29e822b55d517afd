"""Chrome trace-event JSON: a run as a trace for ui.perfetto.dev.

Each agent or client is a trace process named ``name (host:pid)``; its
requests and executions are complete slices (``ph: X``) in microseconds from
the run's first call. Work that overlaps without nesting goes on separate
thread tracks (:func:`provlog.actions.spans.lanes`), because trace viewers draw
only nested slices on one track. A flow arrow joins each request to its
execution, across processes. Read from :attr:`provlog.RunGraph.timeline`
only, so it never builds the PROV graph.
"""

from __future__ import annotations

from typing import Any
from typing import ClassVar
from typing import TYPE_CHECKING

import orjson

from provlog.actions.spans import Call
from provlog.actions.spans import lanes
from provlog.actions.spans import Side
from provlog.actions.spans import Timeline
from provlog.gcpause import gc_paused
from provlog.vocab import NOT_ENDED

if TYPE_CHECKING:
    from provlog.mapping.runview import RunView

__all__ = ['Perfetto', 'trace_events']

# one slice to draw: start and end (µs), the call, and which side
_Slice = tuple[int, int, Call, Side, bool]


class Perfetto:
    """Chrome trace-event JSON, for ui.perfetto.dev and chrome://tracing."""

    name: ClassVar[str] = 'perfetto'
    suffix: ClassVar[str] = 'json'
    summary: ClassVar[str] = (
        'Chrome trace-event JSON (ui.perfetto.dev, chrome://tracing)'
    )

    @gc_paused
    def serialize(self, graph: RunView, *, indent: bool = False) -> bytes:
        """The trace, compact: it is read by viewers, and large."""
        del indent
        return orjson.dumps(trace_events(graph.timeline))


def _track_key(uid: str | None, side: Side) -> str:
    """The trace process a side is drawn on: its agent, else its process."""
    return uid if uid is not None else f'process:{side.process}'


def _slices(tl: Timeline) -> dict[str, list[_Slice]]:
    """Every side of every call, by the agent or client it ran on."""
    origin = tl.start
    tracks: dict[str, list[_Slice]] = {}
    for call in tl.calls.values():
        for side, is_request, uid in (
            (call.request, True, call.caller),
            (call.execution, False, call.callee),
        ):
            if side is None:
                continue
            start = round((side.start - origin) * 1e6)
            # at least 1 µs, so a slice that took no time can be clicked
            end = max(start + 1, round((side.end - origin) * 1e6))
            key = _track_key(uid, side)
            tracks.setdefault(key, []).append(
                (start, end, call, side, is_request)
            )
    for found in tracks.values():
        found.sort(key=lambda s: (s[0], -s[1], s[2].tag))
    return tracks


def _args(call: Call, side: Side, tl: Timeline) -> dict[str, Any]:
    """What the viewer shows for a selected slice."""
    args: dict[str, Any] = {
        'tag': call.tag,
        'action': call.action,
        'state': call.state if side.ended else NOT_ENDED,
        'caller': tl.agent_name(call.caller),
        'callee': tl.agent_name(call.callee),
        'process': tl.processes.get(side.process or '', '?'),
    }
    if side.thread is not None:
        args['thread'] = side.thread
    if not side.started:
        args['started'] = False
    if side.clock_suspect:
        args['clock_suspect'] = True
    error = call.error
    if error is not None:
        args['error_type'] = error.get('type')
        args['error_message'] = error.get('message')
    return args


def _process_name(key: str, tl: Timeline, labels: list[str]) -> str:
    who = 'unknown' if key.startswith('process:') else tl.agent_name(key)
    return f'{who} ({", ".join(labels)})'


def trace_events(tl: Timeline) -> dict[str, Any]:
    """The trace-event document of a timeline (Chrome JSON object format).

    ``pid`` is a small number per agent or client, in order of first work;
    ``tid`` a number per lane, unique across the trace (Perfetto names
    threads by ``tid`` alone) and never equal to a pid.
    """
    tracks = _slices(tl)
    order = sorted(tracks, key=lambda k: (tracks[k][0][0], k))
    meta: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    flows: dict[str, int] = {}
    next_tid = len(order) + 1
    for index, key in enumerate(order):
        pid = index + 1
        found = tracks[key]
        labels = {tl.processes.get(s[3].process or '', '?') for s in found}
        name = _process_name(key, tl, sorted(labels))
        meta.append(_meta('process_name', pid, 0, name=name))
        meta.append(_meta('process_sort_index', pid, 0, sort_index=index))
        rows = lanes((s[0], s[1]) for s in found)
        width = max(rows) + 1
        for row in range(width):
            tid = next_tid + row
            meta.append(_meta('thread_name', pid, tid, name=f'lane {row + 1}'))
            meta.append(_meta('thread_sort_index', pid, tid, sort_index=row))
        for item, row in zip(found, rows, strict=True):
            _draw(events, item, pid, next_tid + row, tl, flows)
        next_tid += width
    return {
        'displayTimeUnit': 'ms',
        'metadata': {
            'provlog-run': tl.run_id,
            'clock': 'µs since the first call of the run',
            'origin-unix-s': tl.start,
        },
        'traceEvents': meta + events,
    }


def _draw(  # noqa: PLR0917 - one slice's coordinates
    events: list[dict[str, Any]],
    item: _Slice,
    pid: int,
    tid: int,
    tl: Timeline,
    flows: dict[str, int],
) -> None:
    """Append a side's slice, and its flow event if the call has both.

    The flow event comes right after its slice and at the slice's start,
    so viewers bind it to that slice: ``s`` to the request, ``f`` with
    ``bp: e`` (the enclosing slice) to the execution.
    """
    start, end, call, side, is_request = item
    callee = tl.agent_name(call.callee)
    events.append(
        {
            'ph': 'X',
            'name': f'→ {callee}.{call.action}' if is_request else call.action,
            'cat': 'request' if is_request else 'execution',
            'pid': pid,
            'tid': tid,
            'ts': start,
            'dur': end - start,
            'args': _args(call, side, tl),
        }
    )
    if call.request is None or call.execution is None:
        return
    flow: dict[str, Any] = {
        'ph': 's' if is_request else 'f',
        'name': 'call',
        'cat': 'flow',
        'id': flows.setdefault(call.tag, len(flows) + 1),
        'pid': pid,
        'tid': tid,
        'ts': start,
    }
    if not is_request:
        flow['bp'] = 'e'
    events.append(flow)


def _meta(kind: str, pid: int, tid: int, **args: Any) -> dict[str, Any]:
    return {'ph': 'M', 'name': kind, 'pid': pid, 'tid': tid, 'args': args}
