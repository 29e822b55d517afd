"""Calls on a clock: the timeline every view of a run is drawn from.

A :class:`Call` is one action invocation with its two sides as intervals:
the *request* (the caller's ``start`` to its end event, in the caller's
process) and the *execution* (``execute_start`` to its end, in the agent's
process). ``parent`` is the action whose execution made the request, so
calls nest across processes. The Perfetto and OTLP exports, the HTML report
and its timeline read this module only, never the journals, so they agree
on what ran where and when.

Times are the emitting host's clocks (seconds since the epoch), within
the run's window (:mod:`provlog.actions.runwindow`): a time outside it is drawn
clamped into it and its side is ``clock_suspect``. A side that never ended
has ``end`` set to the latest believable time of any action event of the
run (or its own start, if later), and its call's ``state`` is
``not_ended``; a side whose beginning no journal holds starts where it
ended, with ``started`` false. Every text from the journals is bounded
(:mod:`provlog.clip`), so no view grows with what a workflow logged.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from provlog import clip
from provlog.actions.merge import MergedRun
from provlog.actions.runwindow import Window
from provlog.actions.runwindow import window
from provlog.actions.sides import agent_info
from provlog.actions.sides import bounded_error
from provlog.actions.sides import ident
from provlog.actions.sides import process_label
from provlog.actions.sides import Side
from provlog.actions.sides import side
from provlog.actions.sides import uid
from provlog.gcpause import gc_paused
from provlog.vocab import Action
from provlog.vocab import CALLER_BEGINS
from provlog.vocab import CALLER_ENDS
from provlog.vocab import EXEC_AGENT
from provlog.vocab import EXECUTE_EXCEPTION
from provlog.vocab import EXECUTE_START
from provlog.vocab import EXECUTION_BEGINS
from provlog.vocab import EXECUTION_ENDS
from provlog.vocab import SENDING
from provlog.vocab import START

__all__ = [
    'Call',
    'Side',
    'Timeline',
    'lanes',
    'process_label',
    'timeline',
]

# every action kind begins or ends a side, so every call has a side
# (``sending`` alone is left when a writer dropped the rest)


@dataclass(slots=True)
class Call:
    """One action invocation: who called whom, both sides, and how it ended.

    ``caller`` is the uid of the calling agent or client (None when no
    journal of the caller's side says), ``callee`` the uid of the agent
    that ran it.
    """

    tag: str
    action: str
    state: str
    caller: str | None
    callee: str | None
    parent: str | None
    request: Side | None
    execution: Side | None
    error: dict[str, str] | None = None
    children: list[str] = field(default_factory=list)

    @property
    def start(self) -> float:
        """The earliest time either side shows."""
        return min(s.start for s in self.sides())

    @property
    def end(self) -> float:
        """The latest time either side shows."""
        return max(s.end for s in self.sides())

    def sides(self) -> Iterator[Side]:
        """The sides a journal recorded, request first."""
        if self.request is not None:
            yield self.request
        if self.execution is not None:
            yield self.execution


@dataclass(slots=True)
class Timeline:
    """Every call of a run, by start time, with the agents and processes.

    ``agents`` maps uid to ``{'name', 'role', 'class'}`` (whatever the
    journals said), ``processes`` maps a process key to ``host:pid``.
    ``roots`` are the tags of calls no journalled execution made: the
    top-level calls of clients, calls whose parent was not captured, and
    the earliest call of a cycle of parents (damaged journals), so a walk
    from the roots reaches every call.
    """

    run_id: str
    start: float
    end: float
    calls: dict[str, Call]
    roots: list[str]
    agents: dict[str, dict[str, Any]]
    processes: dict[str, str]

    def agent_name(self, uid: str | None) -> str:
        """A name people know an agent or client by."""
        if uid is None:
            return 'unknown'
        info = self.agents.get(uid, {})
        name = info.get('name')
        if isinstance(name, str) and name:
            return name
        role = info.get('role')
        prefix = 'client' if role == 'user' else 'agent'
        return f'{prefix}-{uid[:8]}'

    def walk(self, tags: Iterable[str] | None = None) -> Iterator[Call]:
        """Calls depth first from ``tags`` (default: the roots).

        Children come in start order; each call once, even if the journals
        form a cycle.
        """
        seen: set[str] = set()
        stack = list(reversed(list(self.roots if tags is None else tags)))
        while stack:
            tag = stack.pop()
            if tag in seen or tag not in self.calls:
                continue
            seen.add(tag)
            call = self.calls[tag]
            yield call
            stack.extend(reversed(call.children))


def _call(action: Action, win: Window) -> Call:
    start = action.get(START) or {}
    sending = action.get(SENDING) or {}
    execute = action.get(EXECUTE_START) or action.get(EXEC_AGENT) or {}
    failure = action.get(EXECUTE_EXCEPTION) or {}
    name = action.name
    return Call(
        tag=action.tag,
        action=clip.cut(name, clip.NAME_CHARS) if name else '?',
        state=action.state,
        caller=uid(start.get('caller')) or uid(sending.get('src')),
        callee=uid(start.get('callee')) or uid(execute.get('agent')),
        parent=ident(start.get('parent')),
        request=side(action, CALLER_BEGINS, CALLER_ENDS, win),
        execution=side(action, EXECUTION_BEGINS, EXECUTION_ENDS, win),
        error=bounded_error(failure.get('error')),
    )


@gc_paused
def timeline(run: MergedRun) -> Timeline:
    """The calls of ``run`` on one clock, nested by the call that made them.

    Built with the cyclic collector paused (a third of the time at 100,000
    actions), like the merge and the PROV graph.
    """
    win = window(run)
    calls = {tag: _call(a, win) for tag, a in run.actions.items()}
    roots: list[str] = []
    ordered = sorted(calls.values(), key=lambda c: (c.start, c.tag))
    for call in ordered:
        parent = calls.get(call.parent) if call.parent else None
        if parent is None or parent.tag == call.tag:
            roots.append(call.tag)
        else:
            parent.children.append(call.tag)
    _break_cycles(calls, ordered, roots)
    starts = [c.start for c in calls.values()]
    agents = {
        clip.cut(who, clip.ID_CHARS): agent_info(info)
        for who, info in run.agents.items()
    }
    for action in run.actions.values():  # clients are named by their calls
        for kind, key in ((SENDING, 'src'), (START, 'caller')):
            found = (action.get(kind) or {}).get(key)
            who = uid(found)
            if isinstance(found, dict) and who and who not in agents:
                agents[who] = agent_info(found)
    return Timeline(
        run_id=clip.text(run.run_id, clip.ID_CHARS),
        start=min(starts, default=0.0),
        end=max((c.end for c in calls.values()), default=0.0),
        calls=calls,
        roots=roots,
        agents=agents,
        processes={k: process_label(p) for k, p in run.processes.items()},
    )


def _break_cycles(
    calls: dict[str, Call], ordered: list[Call], roots: list[str]
) -> None:
    """Make the earliest call no root reaches a root, until all are reached.

    Only a cycle of parents (damaged journals, or tags reused) leaves calls
    unreached; they would otherwise be missing from every walk and view.
    """
    reached: set[str] = set()

    def reach(tag: str) -> None:
        stack = [tag]
        while stack:
            current = stack.pop()
            if current not in reached:
                reached.add(current)
                stack.extend(calls[current].children)

    for tag in roots:
        reach(tag)
    if len(reached) == len(calls):
        return
    for call in ordered:
        if call.tag in reached:
            continue
        if call.parent is not None and call.parent in calls:
            calls[call.parent].children.remove(call.tag)
        roots.append(call.tag)
        reach(call.tag)
    roots.sort(key=lambda t: (calls[t].start, t))


def lanes(intervals: Iterable[tuple[float, float]]) -> list[int]:
    """A row per interval, each row holding only nested or disjoint ones.

    Trace viewers need this to draw overlapping work correctly.
    An interval goes in the lowest row where it nests inside the innermost
    open interval or where every open interval has ended. Intervals must be
    given sorted by start (longer first on ties).
    """
    rows: list[list[float]] = []  # per row: a stack of open end times
    out: list[int] = []
    for start, end in intervals:
        for i, stack in enumerate(rows):
            while stack and stack[-1] <= start:
                stack.pop()
            if not stack or end <= stack[-1]:
                stack.append(end)
                out.append(i)
                break
        else:
            rows.append([end])
            out.append(len(rows) - 1)
    return out
