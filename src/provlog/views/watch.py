"""The live state of a run while it goes: what ``provlog watch`` shows.

Each journal is tailed (:class:`provlog.journals.tail.Tail`): a refresh reads
only the bytes it gained since the last one and folds its complete lines into
:class:`RunWatch`, which keeps counts, not actions: per agent the executions
running, completed, failed and cancelled; throughput; the latest failures;
capture gaps. An action is held only while it is in flight, so memory stays
bounded however long the run.
"""

from __future__ import annotations

import bisect
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from provlog.actions.merge import AmbiguousRunError
from provlog.actions.merge import find_run
from provlog.actions.merge import JOURNAL_SUFFIX
from provlog.capture.journal import FORMAT_VERSION
from provlog.journals.reader import JournalError
from provlog.journals.reader import show
from provlog.journals.tail import Tail
from provlog.views.watchlines import as_time
from provlog.views.watchlines import cut
from provlog.views.watchlines import fold_marker
from provlog.views.watchlines import header_label
from provlog.views.watchlines import Journal
from provlog.views.watchlines import KEEP
from provlog.views.watchlines import KEEP_CHARS
from provlog.views.watchlines import misshapen
from provlog.vocab import AGENT
from provlog.vocab import AGENT_KINDS
from provlog.vocab import CALLER_ENDS
from provlog.vocab import EXECUTE_START
from provlog.vocab import EXECUTION_BEGINS
from provlog.vocab import EXECUTION_ENDS
from provlog.vocab import FAILED
from provlog.vocab import JOURNAL
from provlog.vocab import LOST
from provlog.vocab import START
from provlog.vocab import STATE_OF_END

__all__ = ['AgentCounts', 'Failure', 'Journal', 'RunWatch']

#: Seconds of the recent-throughput window.
WINDOW = 10.0
_ENDS = {kind: STATE_OF_END[kind] for kind in EXECUTION_ENDS}
_STARTS = frozenset(EXECUTION_BEGINS)
_CALLER_ENDS = frozenset(CALLER_ENDS)
_MAX_BUCKETS = 64


@dataclass(slots=True)
class AgentCounts:
    """Executions of one agent, by state."""

    name: str | None
    running: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0


@dataclass(slots=True, frozen=True)
class Failure:
    """One failed execution: when, on which agent, which action, why."""

    t: float | None
    agent: str
    action: str | None
    error: str


class RunWatch:
    """The state of one run folder, refreshed from what its journals gain.

    ``path`` is a run folder, or a folder that holds exactly one run (its
    run folder may appear later, as the run starts). A process is counted
    once: a second journal file with the same ``process`` id in its header
    (a copy) is read no further.
    """

    __slots__ = (
        '_buckets',
        'agents',
        'closed_since',
        'ended',
        'error',
        'failures',
        'journals',
        'path',
        'processes',
        'run_dir',
        'run_id',
        't_first',
        't_last',
    )

    def __init__(self, path: Path) -> None:
        self.path = path
        self.run_dir: Path | None = None
        self.run_id: str | None = None
        #: Why the folder cannot be watched (several runs in it), if so.
        self.error: str | None = None
        #: Every journal file by name, copies and unreadable ones too.
        self.journals: dict[str, Journal] = {}
        #: Process id (the header's ``process``) -> the file counted for it.
        self.processes: dict[str, str] = {}
        self.agents: dict[str, AgentCounts] = {}
        #: The latest :data:`KEEP` failures by their time, oldest first.
        self.failures: list[Failure] = []
        self.ended = 0
        self.t_first: float | None = None
        self.t_last: float | None = None
        #: Since when (``time.monotonic()``) every journal has been closed
        #: and none appeared; ``None`` while one is open.
        self.closed_since: float | None = None
        self._buckets: dict[int, int] = {}  # second -> executions ended

    @property
    def closed(self) -> bool:
        """Whether there is a journal and every journal read is closed."""
        read = [j for j in self.journals.values() if j.problem is None]
        return bool(read) and all(j.closed for j in read)

    def settled(self, grace: float) -> bool:
        """Whether every journal was closed, none joining, for ``grace`` s.

        The run is then over, not between two processes: one may close its
        journal before the next one starts.
        """
        since = self.closed_since
        return since is not None and time.monotonic() - since >= grace

    def refresh(self) -> int:
        """Find journals that joined, read what each gained; bytes read."""
        if self.run_dir is None and not self._resolve():
            return 0
        assert self.run_dir is not None
        try:
            names = sorted(
                e.name
                for e in os.scandir(self.run_dir)
                if e.name.endswith(JOURNAL_SUFFIX)
                and e.name not in self.journals
            )
        except OSError:
            names = []
        for name in names:
            self.journals[name] = Journal(Tail(self.run_dir / name), name)
        total = 0
        for journal in self.journals.values():
            if journal.problem is None:
                total += self._read(journal)
        if not self.closed:
            self.closed_since = None
        elif names or self.closed_since is None:
            self.closed_since = time.monotonic()
        return total

    def rates(self, now: float) -> tuple[float, float]:
        """Executions ended per second: the last :data:`WINDOW`, overall.

        Times are the journals' own; ``now`` (the watcher's clock) ends the
        window unless the journals are later (a run with clocks ahead).
        """
        if self.t_first is None or self.t_last is None:
            return 0.0, 0.0
        ref = max(now, self.t_last)
        self._prune(ref)
        recent = sum(n for s, n in self._buckets.items() if s >= ref - WINDOW)
        span = self.t_last - self.t_first
        window = min(WINDOW, max(ref - self.t_first, 1.0))
        return recent / window, self.ended / span if span > 0 else 0.0

    def _prune(self, ref: float) -> None:
        """Forget the seconds before the window that ends at ``ref``."""
        for second in [s for s in self._buckets if s + 1 < ref - WINDOW]:
            del self._buckets[second]

    def _resolve(self) -> bool:
        """Find the run folder: ``path``, or the one run folder in it."""
        path = self.path
        if not path.exists():  # ``latest`` or an id prefix, once it is there
            try:
                self.run_dir = find_run(path)
            except AmbiguousRunError as exc:
                self.error = show(str(exc))
            except (JournalError, OSError):
                pass
            return self.run_dir is not None
        try:
            if any(path.glob(f'*{JOURNAL_SUFFIX}')):
                self.run_dir = path
                return True
            runs = sorted(
                p
                for p in path.iterdir()
                if p.is_dir() and any(p.glob(f'*{JOURNAL_SUFFIX}'))
            )
        except OSError:
            return False
        if len(runs) > 1:
            self.error = f'{show(path)}: holds {len(runs)} runs; name one'
        elif runs:
            self.run_dir = runs[0]
        return self.run_dir is not None

    def _read(self, journal: Journal) -> int:
        tail = journal.tail
        before = tail.bytes_read
        try:
            for line in tail.read():
                self._fold(journal, line)
                if journal.problem is not None:
                    break
        except OSError as exc:
            journal.problem = exc.strerror or str(exc)
        return tail.bytes_read - before

    def _header(self, journal: Journal, obj: dict[str, Any]) -> None:
        version = obj.get('v')
        run = obj.get('run')
        if obj.get('e') != JOURNAL or run.__class__ is not str:
            journal.problem = 'not a provlog journal'
        elif version.__class__ is not int:
            journal.problem = 'header has no format version'
        elif version > FORMAT_VERSION:
            journal.problem = f'journal format {version} not readable'
        elif obj.get('process').__class__ is not str:
            journal.problem = 'header has no process id'
        elif self.run_id is not None and run != self.run_id:
            journal.problem = f'from another run ({cut(run)}); not counted'
        elif obj['process'] in self.processes:  # a copy: the process again
            journal.duplicate_of = self.processes[obj['process']]
            journal.problem = f'the same process as {journal.duplicate_of}'
        else:
            self.processes[obj['process']] = journal.tail.path.name
            self.run_id = run
            journal.header = True
            journal.label = header_label(obj)
            t = as_time(obj.get('t'))
            if t:  # synthetic and old headers may say 0
                self._seen(t)

    def _seen(self, t: float) -> None:
        if self.t_first is None or t < self.t_first:
            self.t_first = t
        if self.t_last is None or t > self.t_last:
            self.t_last = t

    def _agent(self, ident: object) -> str:
        """The uid of an identity object, its name remembered ('' unknown)."""
        if not isinstance(ident, dict):
            return ''
        uid = ident.get('uid')
        if not isinstance(uid, str):
            return ''
        counts = self.agents.get(uid)
        if counts is None:
            name = ident.get('name')
            counts = self.agents[uid] = AgentCounts(
                name[:KEEP_CHARS] if isinstance(name, str) else None
            )
        elif counts.name is None and isinstance(ident.get('name'), str):
            counts.name = ident['name'][:KEEP_CHARS]
        return uid

    def _counts(self, uid: str) -> AgentCounts:
        counts = self.agents.get(uid)
        if counts is None:
            counts = self.agents[uid] = AgentCounts(None)
        return counts

    def _parse(
        self, journal: Journal, line: bytes | None
    ) -> dict[str, Any] | None:
        """The event on ``line``; ``None`` for damage and for the header."""
        try:
            obj = orjson.loads(line) if line is not None else None
        except orjson.JSONDecodeError:
            obj = None
        if obj.__class__ is not dict:
            journal.damaged += 1
            journal.last_damaged = True
            return None
        assert isinstance(obj, dict)
        if not journal.header:
            self._header(journal, obj)
            return None
        if journal.last_damaged:  # a cut write, not damage, if 'lost' next
            journal.last_damaged = False
            if obj.get('e') == LOST:
                journal.damaged -= 1
                journal.cut += 1
        return obj

    def _fold(self, journal: Journal, line: bytes | None) -> None:
        """Fold one line: the hot path, one branch per kind."""
        obj = self._parse(journal, line)
        if obj is None:
            return
        if misshapen(obj):  # valid JSON, a field of the wrong type
            journal.damaged += 1
            return
        kind = obj['e']
        if kind in _ENDS:
            self._end(journal, obj['tag'], obj)
        elif kind in _STARTS:
            self._start(journal, obj['tag'], obj)
        elif kind == START:
            journal.waiting.add(obj['tag'])
        elif kind in _CALLER_ENDS:
            journal.waiting.discard(obj['tag'])
        elif kind == AGENT:
            self._agent(obj)
        elif kind in AGENT_KINDS:
            self._agent(obj.get('agent'))
        else:
            t = fold_marker(journal, kind, obj)
            if t:  # a close's time
                self._seen(t)

    def _start(self, journal: Journal, tag: str, obj: dict[str, Any]) -> None:
        """``execute_start``, or ``exec_agent`` naming its agent late."""
        uid = self._agent(obj.get('agent'))
        known = journal.running.get(tag)
        if known is None and obj['e'] == EXECUTE_START:
            action = obj.get('action')
            journal.running[tag] = (
                uid,
                action[:KEEP_CHARS] if isinstance(action, str) else None,
            )
            self._counts(uid).running += 1
            t = obj.get('t')
            if t is not None:  # a plausible time, or none (misshapen)
                self._seen(t)
        elif known is not None and not known[0] and uid:
            journal.running[tag] = (uid, known[1])
            self._counts('').running -= 1
            self._counts(uid).running += 1

    def _end(self, journal: Journal, tag: str, obj: dict[str, Any]) -> None:
        """An execution ended: counted, its in-flight entry forgotten."""
        entry = journal.running.pop(tag, None)
        counts = self._counts(entry[0] if entry is not None else '')
        if entry is not None:
            counts.running -= 1
        state = _ENDS[obj['e']]
        setattr(counts, state, getattr(counts, state) + 1)
        self.ended += 1
        t = obj.get('t')
        if t is not None:  # a plausible time, or none (misshapen)
            self._seen(t)
            second = int(t)
            self._buckets[second] = self._buckets.get(second, 0) + 1
            if len(self._buckets) > _MAX_BUCKETS and self.t_last is not None:
                self._prune(self.t_last)  # bounded on a long first read
        if state == FAILED:
            self._failure(obj, entry)

    def _failure(
        self, obj: dict[str, Any], entry: tuple[str, str | None] | None
    ) -> None:
        error = obj.get('error')
        kind = message = None
        if isinstance(error, dict):
            kind, message = error.get('type'), error.get('message')
        text = kind[:KEEP_CHARS] if isinstance(kind, str) else 'unknown error'
        if isinstance(message, str) and message:
            text += ': ' + message[:KEEP_CHARS].split('\n', 1)[0]
        failure = Failure(
            as_time(obj.get('t')),
            entry[0] if entry is not None else '',
            entry[1] if entry is not None else None,
            text,
        )
        kept = self.failures
        if len(kept) < KEEP or _when(failure) > _when(kept[0]):
            bisect.insort(kept, failure, key=_when)
            del kept[:-KEEP]


def _when(failure: Failure) -> float:
    return -1.0 if failure.t is None else failure.t
