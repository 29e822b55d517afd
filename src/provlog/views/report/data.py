"""The report's data: one compact JSON object the page draws from.

Times are seconds since ``t0`` (the run's first event), rounded to the
microsecond. Agents, processes, rows and calls are lists, and calls point
at them by index. A call is an object with:

``tag``, ``name``, ``state``; ``caller``/``callee`` (agent index);
``parent`` (call index, when the parent is in the report); ``nc`` (how
many calls it made, in the run); ``rq``/``ex`` (the request and execution
sides: ``[start, end, process, ended, row, lane, started, suspect]``,
``started`` false when no journal holds the side's beginning, ``suspect``
true when its clock was outside the run's window, see
:mod:`provlog.actions.runwindow`); ``thread``; ``in``
(``[name, value]`` arguments) and ``out`` (the result), values as
:func:`provlog.views.report.details.value` writes them; ``err``; ``logs`` and
``logs_cut`` (:class:`provlog.views.report.details.LogBudget`); ``cpu``
(:func:`provlog.views.report.details.cpu`); ``der`` (``[input index, source
call index or -1, note]``: the input was derived from that call's result).
Every text from the journals is bounded (:mod:`provlog.clip`, and the caps
of :mod:`provlog.views.report.details`).
"""

from __future__ import annotations

from datetime import datetime
from datetime import UTC
from typing import Any
from typing import TYPE_CHECKING

from provlog import __version__
from provlog import clip
from provlog.actions.spans import Call
from provlog.actions.spans import process_label
from provlog.actions.spans import Side
from provlog.actions.spans import Timeline
from provlog.views.report import details
from provlog.views.report.aggregate import by_name
from provlog.views.report.aggregate import histogram
from provlog.views.report.rows import place
from provlog.views.report.rows import Placement
from provlog.views.report.select import Derivation
from provlog.views.report.select import derivations
from provlog.views.report.select import final_targets
from provlog.views.report.select import lineage_calls
from provlog.views.report.select import select
from provlog.vocab import CANCELLED
from provlog.vocab import EXECUTE_START
from provlog.vocab import FAILED
from provlog.vocab import NOT_ENDED
from provlog.vocab import START
from provlog.vocab import SUCCESS

if TYPE_CHECKING:
    from provlog.graph import RunGraph

__all__ = ['FORMAT', 'payload']

#: The payload's format; the page refuses data it does not know.
FORMAT = 1


def _rel(t: float, t0: float) -> float:
    return round(t - t0, 6)


def _iso(t: float) -> str | None:
    """``t`` as ISO 8601 in UTC; None for a time no calendar holds."""
    try:
        return datetime.fromtimestamp(t, UTC).isoformat(
            timespec='milliseconds'
        )
    except (ValueError, OverflowError, OSError):
        return None


def payload(graph: RunGraph, *, max_bars: int = 5000) -> dict[str, Any]:
    """Everything the page shows of ``graph``, at most ``max_bars`` bars."""
    tl = graph.timeline
    run = graph.run
    stats = graph.stats()
    derived = derivations(graph.nx)
    targets = final_targets(tl)
    chosen = select(tl, max_bars, lineage_calls(tl, derived, targets))
    kept = [tl.calls[t] for t in chosen.kept]
    index = {c.tag: n for n, c in enumerate(kept)}
    labels = {p.process: process_label(p) for p in run.processes.values()}
    procs = sorted(run.processes.values(), key=lambda p: labels[p.process])
    proc_index = {p.process: n for n, p in enumerate(procs)}
    hosts = {p.process: _host(p.host) for p in procs}
    agent_uids = sorted(tl.agents)
    agent_index = {uid: n for n, uid in enumerate(agent_uids)}
    placement = place(kept, hosts)
    entries = _entries(
        graph, kept, placement, derived, agent_index, proc_index
    )
    return {
        'format': FORMAT,
        'provlog': __version__,
        'run': tl.run_id,
        'made': _iso(datetime.now(UTC).timestamp()),
        't0': tl.start,
        't0_iso': _iso(tl.start) if tl.calls else None,
        'span': _rel(tl.end, tl.start),
        'summary': _summary(stats, tl, hosts),
        'sample': _sample(chosen.counts, len(kept), max_bars)
        if chosen.sampled
        else None,
        'agents': [_agent(tl, uid) for uid in agent_uids],
        'procs': [
            {
                'label': labels[p.process],
                'host': hosts[p.process],
                'pid': p.pid if isinstance(p.pid, int) else None,
                'closed': p.closed,
            }
            for p in procs
        ],
        'rows': [
            {
                'proc': proc_index.get(r.process or ''),
                'agent': agent_index.get(r.agent or ''),
                'ne': r.exec_lanes,
                'nr': r.request_lanes,
            }
            for r in placement.rows
        ],
        'calls': entries,
        'final': [index[t] for t in targets if t in index],
        'hist': histogram(tl),
        'by_name': by_name(tl),
    }


def _entries(  # noqa: PLR0917 - the indexes the entries point into
    graph: RunGraph,
    kept: list[Call],
    placement: Placement,
    derived: dict[str, list[Derivation]],
    agent_index: dict[str, int],
    proc_index: dict[str, int],
) -> list[dict[str, Any]]:
    """One entry per kept call, failures first given the log budget."""
    t0 = graph.timeline.start
    index = {c.tag: n for n, c in enumerate(kept)}
    logs = details.LogBudget(t0)
    entries: list[dict[str, Any]] = [{} for _ in kept]
    rank = {FAILED: 0, NOT_ENDED: 1, CANCELLED: 2}
    for n in sorted(
        range(len(kept)), key=lambda n: rank.get(kept[n].state, 3)
    ):
        call = kept[n]
        entry, inputs = _call(call, graph, logs)
        entry.update(_links(call, index, agent_index, derived, inputs))
        for key, side, slots in (
            ('rq', call.request, placement.request),
            ('ex', call.execution, placement.execution),
        ):
            if side is not None and call.tag in slots:
                entry[key] = _side(side, t0, proc_index, slots[call.tag])
        entries[n] = entry
    return entries


def _agent(tl: Timeline, uid: str) -> dict[str, Any]:
    info = tl.agents.get(uid, {})
    out: dict[str, Any] = {
        'uid': uid,
        'name': details.cut(tl.agent_name(uid), details.PREVIEW_CHARS),
        'role': 'client' if info.get('role') == 'user' else 'agent',
    }
    if isinstance(info.get('class'), str):
        out['class'] = details.cut(info['class'], details.PREVIEW_CHARS)
    return out


def _side(
    side: Side, t0: float, procs: dict[str, int], slot: tuple[int, int]
) -> list[Any]:
    return [
        _rel(side.start, t0),
        _rel(side.end, t0),
        procs.get(side.process or ''),
        side.ended,
        slot[0],
        slot[1],
        side.started,
        side.clock_suspect,
    ]


def _call(
    call: Call, graph: RunGraph, logs: details.LogBudget
) -> tuple[dict[str, Any], dict[str, int]]:
    """A call's details, and its inputs' indexes by entity suffix."""
    action = graph.run.actions[call.tag]
    entry: dict[str, Any] = {
        'tag': call.tag,
        'name': details.cut(call.action, details.PREVIEW_CHARS),
        'state': call.state,
    }
    if call.execution is not None and call.execution.thread:
        entry['thread'] = details.cut(
            call.execution.thread, details.PREVIEW_CHARS
        )
    args, slots = details.inputs(action.get(START))
    if args:
        entry['in'] = args
    success = action.get(SUCCESS)
    if success is not None:
        entry['out'] = details.value(success.get('result'))
    err = details.error(call.error)
    if err:
        entry['err'] = err
    end_kind = action.execution_end
    end = action.get(end_kind) if end_kind else None
    if end is not None:
        found, missing = logs.take(end.get('inside'))
        if found:
            entry['logs'] = found
        if missing:
            entry['logs_cut'] = missing
    cost = details.cpu(action.get(EXECUTE_START), end)
    if cost:
        entry['cpu'] = cost
    return entry, slots


def _links(
    call: Call,
    index: dict[str, int],
    agents: dict[str, int],
    derived: dict[str, list[Derivation]],
    slots: dict[str, int],
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, uid in (('caller', call.caller), ('callee', call.callee)):
        if uid is not None and uid in agents:
            out[key] = agents[uid]
    if call.parent is not None and call.parent in index:
        out['parent'] = index[call.parent]
    if call.children:
        out['nc'] = len(call.children)
    der = [
        [slots[slot], index.get(src, -1), note]
        for slot, src, note in derived.get(call.tag, ())
        if slot in slots
    ]
    if der:
        out['der'] = der
    return out


def _host(host: object) -> str | None:
    return None if host is None else clip.text(host, clip.NAME_CHARS)


def _summary(
    stats: dict[str, Any], tl: Timeline, hosts: dict[str, str | None]
) -> dict[str, Any]:
    clients = sum(
        1 for info in tl.agents.values() if info.get('role') == 'user'
    )
    return {
        'actions': stats['actions'],
        'states': stats['states'],
        'agents': stats['agents'],
        'clients': clients,
        'processes': stats['processes'],
        'hosts': sorted({h or 'unknown' for h in hosts.values()}),
        'duration': _rel(tl.end, tl.start),
        'complete': stats['complete'],
        'gaps': [
            {
                'code': clip.text(g['code'], clip.ID_CHARS),
                'message': clip.text(g['message'], clip.MESSAGE_CHARS),
            }
            for g in stats['gaps']
        ],
    }


def _sample(
    counts: dict[str, list[int]], kept: int, max_bars: int
) -> dict[str, Any]:
    return {
        'kept': kept,
        'total': sum(c[0] for c in counts.values()),
        'max_bars': max_bars,
        'states': {
            k: {'total': v[0], 'kept': v[1]} for k, v in counts.items()
        },
    }
