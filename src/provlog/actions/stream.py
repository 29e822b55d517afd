"""The streaming merge: journals read as time-ordered streams, one pass.

:func:`provlog.actions.merge.merge_run` holds every action of a run; this merge
holds only the actions still open. Each journal is read as a stream (one writer
thread writes it, so it is in time order) and the streams are merged by time
with :func:`heapq.merge`. Events are folded by action tag exactly as
:func:`provlog.actions.merge.merge_run` folds them (the earliest event of each
kind is kept); an action leaves the open table once both its sides (the
caller's and the executing agent's, possibly in different journals) have ended
and the merged stream has moved ``window`` seconds past its last event, or at
the end of input. Memory follows how many actions are open at once, not how
long the run is.

The ``window`` (:data:`WINDOW`, 5 s) is the stated tolerance for clock skew
between hosts and for lines a journal holds slightly out of time order: an
event that comes later than that for an action already emitted is not
merged into it (it is counted in :attr:`StreamMerge.late`). A call's parent
is recognised when the parent is open or among the last
:data:`RECENT` actions emitted. Within these bounds the actions, and what
the run says about its processes, agents and gaps, are those of
:func:`~provlog.actions.merge.merge_run`.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from provlog.actions.gaps import callee_name
from provlog.actions.gaps import callees
from provlog.actions.gaps import Gap
from provlog.actions.gaps import run_gaps
from provlog.actions.merge import _add_process
from provlog.actions.merge import _check_uuid
from provlog.actions.merge import _Lives
from provlog.actions.merge import find_run
from provlog.actions.merge import fold_other
from provlog.actions.merge import JOURNAL_SUFFIX
from provlog.actions.merge import keep_earliest
from provlog.actions.merge import MergedRun
from provlog.journals.reader import JournalError
from provlog.journals.reader import JournalStream
from provlog.journals.reader import ReadResult
from provlog.vocab import Action
from provlog.vocab import CALLER_ENDS
from provlog.vocab import CONTEXT
from provlog.vocab import EXEC_AGENT
from provlog.vocab import EXECUTE_START
from provlog.vocab import EXECUTION_ENDS
from provlog.vocab import LAUNCH
from provlog.vocab import NOT_ENDED
from provlog.vocab import START
from provlog.vocab import SUCCESS

__all__ = ['PARENT', 'RECENT', 'WINDOW', 'StreamMerge', 'StreamRun']

#: Seconds of clock skew (and of disorder within a journal) tolerated.
WINDOW = 5.0
#: Emitted actions remembered as possible parents of later calls.
RECENT = 1 << 16
#: The key a streamed ``start`` (or ``launch``) event gets when its parent
#: is an action of the run: the parent's executor candidates.
PARENT = '_parent_exec'
#: The key a ``success`` event gets once its result is indexed.
INDEXED = '_indexed'
_CALLER_ENDS = frozenset(CALLER_ENDS)
_EXEC_ENDS = frozenset(EXECUTION_ENDS)
_SHOW = 4  # one more than the gap messages show: they add ', ...'
_LOSS_KINDS = frozenset(
    {'dropped', 'lost', 'encode_error', 'gap', 'capture_off', 'resume'}
)


def _first_seen(action: Action) -> tuple[float, str]:
    times = [e.get('t', 0.0) for e in action.events.values()]
    return (float(min(times)) if times else 0.0, action.tag)


@dataclass
class _Few:
    """The first few actions by first-seen time, and how many in all."""

    shown: list[tuple[tuple[float, str], Action]] = field(default_factory=list)
    count: int = 0

    def add(self, action: Action) -> None:
        self.count += 1
        key = _first_seen(action)
        if len(self.shown) < _SHOW or key < self.shown[-1][0]:
            self.shown.append((key, action))
            self.shown.sort(key=lambda pair: pair[0])
            del self.shown[_SHOW:]

    def actions(self) -> list[Action]:
        return [a for _, a in self.shown]


@dataclass
class StreamRun(MergedRun):
    """A run merged by :class:`StreamMerge`: ``actions`` stays empty.

    What :meth:`gaps` needs is counted as actions are emitted; the
    processes' counts are final once the merge has read every journal.
    """

    #: How many actions were emitted.
    total: int = 0
    not_ended: int = 0
    unseen: _Few = field(default_factory=_Few)
    orphans: _Few = field(default_factory=_Few)
    #: Callee name -> the earliest first-seen of its unseen executions.
    unseen_callees: dict[str, tuple[float, str]] = field(default_factory=dict)
    #: Events that came after their action was emitted (not merged), and
    #: the window they missed.
    late: int = 0
    window: float = 0.0

    def count(self, action: Action) -> None:
        """Count ``action`` (emitted) towards the run's gaps."""
        self.total += 1
        if action.state == NOT_ENDED:
            self.not_ended += 1
        if action.caller_state == SUCCESS and not action.has_execution_side:
            self.unseen.add(action)
            name = callee_name(action)
            if name is not None:
                key = _first_seen(action)
                known = self.unseen_callees.get(name)
                if known is None or key < known:
                    self.unseen_callees[name] = key
        if action.has_execution_side and not action.has_caller_side:
            self.orphans.add(action)

    def gaps(self) -> list[Gap]:
        """The gaps, as :meth:`MergedRun.gaps` words them."""
        names = sorted(
            self.unseen_callees, key=self.unseen_callees.__getitem__
        )
        gaps = run_gaps(
            list(self.processes.values()),
            self.not_ended,
            (self.unseen.actions(), self.unseen.count, callees(names)),
            (self.orphans.actions(), self.orphans.count),
        )
        if self.late:  # never lost silently: the export says so
            gaps.append(
                Gap(
                    'events-late',
                    f'{self.late} events came more than {self.window:g} s '
                    'after the rest of their action (clock skew or lines '
                    'out of order) and are not in this streamed export; '
                    'the in-memory merge (provlog.load) keeps them',
                    count=self.late,
                ),
            )
        return gaps


class _Journal:
    """One journal being read: its stream and what it says about itself."""

    def __init__(self, path: Path, *, lenient: bool) -> None:
        self.stream = JournalStream(path, lenient=lenient)
        self.header = self.stream.result.header
        host = self.header.get('host')
        self.host = None if host is None else str(host)
        self.events = iter(self.stream)
        first = next(self.events, None)
        self.first = first
        #: The context line and loss markers: what ``read_losses`` reads.
        self.markers: list[dict[str, Any]] = []
        if first is not None and first.get('e') == CONTEXT:
            self.markers.append(first)
        self.rejected = 0

    def result(self, *, final: bool) -> ReadResult:
        """The journal's ``ReadResult`` with only the marker events."""
        got = self.stream.result
        if not final:
            return ReadResult(got.path, got.header, list(self.markers[:1]))
        return ReadResult(
            got.path,
            got.header,
            self.markers,
            got.skipped + self.rejected,
            got.partial_tail,
            got.closed,
            got.dropped,
        )

    def timed(
        self, n: int
    ) -> Iterator[tuple[float, int, int, dict[str, Any]]]:
        """``(t, journal, line, event)``; no time: the last time read."""
        t = 0.0
        if self.first is not None:
            t = float(self.first.get('t', t))
            yield t, n, self.first['_line'], self.first
        for event in self.events:
            got = event.get('t')
            if got.__class__ is float or (
                isinstance(got, (int, float)) and not isinstance(got, bool)
            ):
                t = float(got)
            yield t, n, event['_line'], event


class StreamMerge:
    """Merge a run's journals in one pass; iterate to get its actions.

    Attributes:
        run: The run (``actions`` empty); its processes' counts and gaps
            are final once iteration has ended.
        high_water: The most actions open at once.
        late: Events that came more than ``window`` after their action
            was emitted, and were not merged.
        on_result: Called with an action that has a ``success`` line
            when a line is folded into it (before the action is emitted),
            until it returns true (its result is indexed).
    """

    def __init__(
        self, path: Path, *, lenient: bool = False, window: float = WINDOW
    ) -> None:
        run_dir = find_run(path)
        self.lenient = lenient
        self.window = window
        files = sorted(run_dir.glob(f'*{JOURNAL_SUFFIX}'))
        self.journals = [_Journal(f, lenient=lenient) for f in files]
        run_ids = {j.header['run'] for j in self.journals}
        if len(run_ids) > 1:
            raise JournalError(
                f'{run_dir}: journals from {len(run_ids)} runs mixed in one '
                'folder: ' + ', '.join(sorted(run_ids)),
            )
        run_id = run_ids.pop() if run_ids else run_dir.name
        self.lives = _Lives()
        self.run = StreamRun(run_dir, run_id, {}, {}, {})
        self.run.launches = self.lives.launches
        self.run.lifecycles = self.lives.lifecycles
        for journal in self.journals:  # headers and contexts: known now
            _add_process(self.run.processes, journal.result(final=False))
        self.open: dict[str, list[Any]] = {}  # tag -> [action, last t]
        self.ready: list[tuple[float, int, str]] = []
        self.recent: OrderedDict[str, tuple[object, ...]] = OrderedDict()
        self.high_water = 0
        self.late = 0
        self.now = 0.0
        self.on_result: Callable[[Action], bool] | None = None
        self._seq = 0

    @property
    def actions(self) -> int:
        """How many actions have been emitted (all, once iterated)."""
        return self.run.total

    def earliest_open_start(self) -> float:
        """The earliest start time of an open action (else now)."""
        earliest = self.now
        for action, _ in self.open.values():
            start = action.events.get(START)
            if start is not None and start['t'] < earliest:
                earliest = float(start['t'])
        return earliest

    def __iter__(self) -> Iterator[Action]:
        """The actions, each once both its sides have ended, then the rest."""
        streams = [j.timed(n) for n, j in enumerate(self.journals)]
        journals = self.journals
        window = self.window
        ready = self.ready
        now = 0.0
        for t, n, _, event in heapq.merge(*streams):
            if t > now:
                now = self.now = t
            self._fold(journals[n], event)
            while ready and ready[0][0] + window < now:
                action = self._take(heapq.heappop(ready))
                if action is not None:
                    yield action
        while ready:
            action = self._take(heapq.heappop(ready))
            if action is not None:
                yield action
        rest = sorted(
            (entry[0] for entry in self.open.values()), key=_first_seen
        )
        self.open.clear()
        for action in rest:
            self.run.count(action)
            yield action
        self._finish()

    def _take(self, item: tuple[float, int, str]) -> Action | None:
        """The ready action ``item`` names, unless it changed since."""
        last, _, tag = item
        entry = self.open.get(tag)
        if entry is None or entry[1] != last:
            return None  # emitted already, or pushed again with a later t
        del self.open[tag]
        action: Action = entry[0]
        self._remember(action)
        self.run.count(action)
        return action

    def _remember(self, action: Action) -> None:
        """Keep what a later call needs of ``action`` as its parent."""
        idents: list[object] = []
        for kind, key in ((EXECUTE_START, 'agent'), (EXEC_AGENT, 'agent')):
            event = action.events.get(kind)
            if event is not None:
                idents.append(event.get(key))
        start = action.events.get(START)
        if start is not None:
            idents.append(start.get('callee'))
        self.recent[action.tag] = tuple(idents)
        if len(self.recent) > RECENT:
            self.recent.popitem(last=False)

    def _parent(self, parent: object) -> tuple[object, ...] | None:
        """The executor candidates of the action ``parent``, if it is one."""
        if not isinstance(parent, str):
            return None
        entry = self.open.get(parent)
        if entry is None:
            return self.recent.get(parent)
        action: Action = entry[0]
        idents: list[object] = []
        for kind in (EXECUTE_START, EXEC_AGENT):
            event = action.events.get(kind)
            if event is not None:
                idents.append(event.get('agent'))
        start = action.events.get(START)
        if start is not None:
            idents.append(start.get('callee'))
        return tuple(idents)

    def _fold(  # noqa: C901, PLR0912 - one pass, a branch per case
        self, journal: _Journal, event: dict[str, Any]
    ) -> None:
        """Fold one event, as :func:`provlog.actions.merge._fold` does."""
        kind = event['e']
        result = journal.stream.result
        try:
            if not fold_other(
                result,
                event,
                kind,
                self.run.agents,
                self.lives,
                host=journal.host,
            ):
                if kind == LAUNCH:
                    found = self._parent(event.get('parent'))
                    if found is not None:
                        event[PARENT] = found
                elif kind in _LOSS_KINDS:
                    journal.markers.append(event)
                return
            raw = event.get('tag')
            entry = self.open.get(raw) if isinstance(raw, str) else None
            tag = raw if entry is not None else None
            if tag is None:
                tag = _check_uuid(raw, _where(result, event))
                entry = self.open.get(tag)
        except JournalError:
            if not self.lenient:
                raise
            journal.rejected += 1
            return
        event['tag'] = tag
        if entry is None:
            if tag in self.recent:
                self.late += 1
                return
            entry = self.open[tag] = [Action(tag), event['t']]
            self.high_water = max(self.high_water, len(self.open))
        action: Action = entry[0]
        if not keep_earliest(
            action, kind, event, journal.header['process'], journal.host
        ):
            return
        if kind == START:
            found = self._parent(event.get('parent'))
            if found is not None:
                event[PARENT] = found
        success = action.events.get(SUCCESS)
        if (
            success is not None
            and INDEXED not in success
            and self.on_result is not None
            and self.on_result(action)
        ):
            success[INDEXED] = True  # a later line may name the caller
        entry[1] = max(entry[1], event['t'])
        events = action.events
        if not _CALLER_ENDS.isdisjoint(events) and not _EXEC_ENDS.isdisjoint(
            events
        ):
            self._seq += 1
            heapq.heappush(self.ready, (entry[1], self._seq, tag))

    def _finish(self) -> None:
        """Every journal read: the processes' final counts."""
        processes: dict[str, Any] = {}
        for journal in self.journals:
            _add_process(processes, journal.result(final=True))
        self.run.processes = processes
        self.run.late = self.late
        self.run.window = self.window


def _where(result: ReadResult, event: dict[str, Any]) -> str:
    return f'{result.path}:{event["_line"]}'
