"""Merge every journal of a run into one record per action invocation.

The merge folds events by action tag. It does not depend on file order
(journals are read in name order and each fold keeps the earliest event of
a kind), and reading a journal twice, or a truncated copy of one, adds
nothing: every event is keyed by ``(tag, kind)``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import orjson

from provlog.actions.gaps import find_gaps
from provlog.actions.gaps import Gap
from provlog.actions.gaps import read_losses
from provlog.actions.process import CaptureGap
from provlog.actions.process import Process
from provlog.journals.reader import JournalError
from provlog.journals.reader import read_journal
from provlog.journals.reader import ReadResult
from provlog.vocab import Action
from provlog.vocab import ACTION_KINDS
from provlog.vocab import AGENT
from provlog.vocab import AGENT_KINDS
from provlog.vocab import CONTEXT
from provlog.vocab import EXEC_AGENT
from provlog.vocab import EXECUTE_START
from provlog.vocab import FORWARDED
from provlog.vocab import LAUNCH
from provlog.vocab import LIFE_SHUTDOWN
from provlog.vocab import LIFE_STOPPING
from provlog.vocab import LIFECYCLE
from provlog.vocab import SENDING
from provlog.vocab import START
from provlog.vocab import SUCCESS

__all__ = [
    'AmbiguousRunError',
    'CaptureGap',
    'Gap',
    'MergedRun',
    'Process',
    'find_run',
    'journal_key',
    'merge_run',
]

JOURNAL_SUFFIX = '.jsonl'
_SHOW_RUNS = 5


@dataclass
class MergedRun:
    """The merged content of a run folder."""

    run_dir: Path
    run_id: str
    actions: dict[str, Action]
    agents: dict[str, dict[str, Any]]
    processes: dict[str, Process]
    forwarded: set[str] = field(default_factory=set)
    #: Agent uid -> its ``launch`` event (the earliest), with ``_host``.
    launches: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Agent uid -> lifecycle state -> its event, with ``_host``: the
    #: earliest ``starting`` and ``running``, the latest ``stopping`` and
    #: ``shutdown`` (an agent restarted by its Manager has several).
    lifecycles: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=dict
    )
    _gaps: list[Gap] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    @property
    def complete(self) -> bool:
        """Whether the record is whole: exactly when :meth:`gaps` is empty."""
        return not self.gaps()

    def gaps(self) -> list[Gap]:
        """Every reason the record of this run is not complete, in one list.

        ``stats``, ``validate`` and the export's ``provlog:Run`` entity all
        read this list, so they agree. Per process (in ``host:pid`` order):
        capture that could not start (``capture-off``) or was interrupted
        (``capture-gap``), events a lagging writer dropped
        (``events-dropped``), events a failed write lost (``events-lost``),
        events that could not be encoded (``encode-error``), damaged lines
        skipped (``lines-skipped``), a journal that ends in a cut line
        (``journal-cut``) and a journal never closed
        (``process-not-closed``). For the run: actions with no end record
        (``actions-not-ended``), executions never observed
        (``execution-not-observed``) and requests never observed
        (``request-not-observed``).

        An execution counts as not observed when no journal has its agent's
        side (no ``execute_*`` or ``exec_agent`` event) although its caller
        got a result (caller state ``success``): the agent certainly ran it,
        in a process that wrote no journal. Calls that failed or were
        cancelled on the caller's side are not counted: Academy ends those
        before delivery too (``reject_on_inactive``, a terminated mailbox,
        a cancel before the agent received it), so a missing execution
        there is not evidence of a gap. A request counts as not observed
        when an execution was journalled but its caller's side (``start``,
        ``sending`` or an end) was not: the caller's process wrote no
        journal, and with it went the arguments and the result.
        """
        if self._gaps is None:
            self._gaps = find_gaps(
                self.processes.values(),
                self.actions.values(),
                self.executions_not_observed(),
                self.requests_not_observed(),
            )
        return list(self._gaps)

    def agent_count(self) -> int:
        """How many Academy agents (not clients) the run's journals name.

        The agents the PROV graph holds as ``prov:SoftwareAgent``, counted
        without building it: every identity in the agents' own lines, the
        calls (caller, sender, executing agent, callee) and the launches,
        once per UUID, by the role its first mention gives.
        """
        roles: dict[str, object] = {}
        for ident in self._agent_idents():
            uid = ident.get('uid')
            if not isinstance(uid, str):
                continue
            try:
                key = str(uuid.UUID(uid))
            except ValueError:
                continue  # the graph mints no agent from a non-UUID either
            if key not in roles:
                known = self.agents.get(uid, {})
                roles[key] = ident.get('role') or known.get('role') or 'agent'
        return sum(1 for role in roles.values() if role != 'user')

    def _agent_idents(self) -> Iterator[dict[str, Any]]:
        """Every identity the journals give, in the graph's order."""
        for uid, info in self.agents.items():
            yield {'uid': uid, **info}
        found = [
            event.get(key)
            for action in self.actions.values()
            for kind, key in _AGENT_FIELDS
            if (event := action.events.get(kind)) is not None
        ]
        for event in self.launches.values():
            found += [event.get('launcher'), event.get('manager')]
        yield from (i for i in found if isinstance(i, dict))
        for uid in self.launches.keys() | self.lifecycles.keys():
            yield {'uid': uid, **self.agents.get(uid, {})}

    def executions_not_observed(self) -> list[Action]:
        """Actions whose caller got a result but no journal has the run."""
        return [
            a
            for a in self.actions.values()
            if a.caller_state == SUCCESS and not a.has_execution_side
        ]

    def requests_not_observed(self) -> list[Action]:
        """Actions journalled by the executing agent only, not the caller."""
        return [
            a
            for a in self.actions.values()
            if a.has_execution_side and not a.has_caller_side
        ]


LATEST = 'latest'
#: Where a call's lines name agents: (line kind, field).
_AGENT_FIELDS = (
    (START, 'caller'),
    (SENDING, 'src'),
    (EXECUTE_START, 'agent'),
    (EXEC_AGENT, 'agent'),
    (START, 'callee'),
)


class AmbiguousRunError(JournalError):
    """A run prefix that names more than one run."""


def run_folders(parent: Path) -> list[Path]:
    """The run folders (folders that hold journals) in ``parent``, by name."""
    return sorted(
        p
        for p in parent.iterdir()
        if p.is_dir() and any(p.glob(f'*{JOURNAL_SUFFIX}'))
    )


def run_start(run_dir: Path) -> float | None:
    """The run's start: the earliest header ``t`` of its journals.

    Reads only each journal's first line; a journal whose first line is
    not a header with a numeric ``t`` is not counted.
    """
    start: float | None = None
    for path in run_dir.glob(f'*{JOURNAL_SUFFIX}'):
        try:
            with path.open('rb') as fh:
                first = fh.readline(1 << 20)
            header = orjson.loads(first)
        except (OSError, orjson.JSONDecodeError):
            continue
        t = header.get('t') if isinstance(header, dict) else None
        if isinstance(t, (int, float)) and not isinstance(t, bool):
            start = t if start is None else min(start, t)
    return start


def newest_first(runs: list[Path]) -> list[Path]:
    """``runs`` newest first by start; runs with no start last, by name."""
    starts = {p: run_start(p) for p in runs}
    dated = sorted(
        (p for p in runs if starts[p] is not None),
        key=lambda p: (-(starts[p] or 0.0), p.name),
    )
    return dated + sorted(p for p in runs if starts[p] is None)


def find_run(path: Path) -> Path:
    """Resolve ``path`` to a run folder.

    A folder that holds journals is a run; a folder that holds exactly one
    run folder resolves to that run. A path that does not exist names a
    run in its parent folder: ``latest`` the newest (by start, the
    earliest journal header), anything else the one run whose folder name
    starts with it (a run id prefix, ``prov-runs/2230f8``).

    Raises:
        AmbiguousRunError: A prefix matches several runs.
        JournalError: Nothing, or more than one run, is there.
    """
    if not path.is_dir():
        return _named_run(path)
    if any(path.glob(f'*{JOURNAL_SUFFIX}')):
        return path
    runs = run_folders(path)
    if len(runs) == 1:
        return runs[0]
    if not runs:
        raise JournalError(f'{path}: no provlog journals here')
    raise JournalError(
        f'{path}: holds {len(runs)} runs ({_some(runs)}); name one',
    )


def _named_run(path: Path) -> Path:
    """The run that ``path.name`` (``latest``, an id prefix) names."""
    parent, name = path.parent, path.name
    if not name or not parent.is_dir() or path.exists():
        raise JournalError(f'{path}: no such run folder')
    try:
        runs = run_folders(parent)
    except OSError as exc:
        raise JournalError(f'{parent}: {exc.strerror or exc}') from None
    if name == LATEST:
        if not runs:
            raise JournalError(f'{parent}: no runs here ({LATEST})')
        return newest_first(runs)[0]
    found = [p for p in runs if p.name.startswith(name)]
    if len(found) == 1:
        return found[0]
    if not found:
        raise JournalError(f'{parent}: no run folder starts with {name!r}')
    raise AmbiguousRunError(
        f'{parent}: {name!r} matches {len(found)} runs ({_some(found)})',
    )


def _some(runs: list[Path]) -> str:
    """The first few run names, for a one-line message."""
    more = ', ...' if len(runs) > _SHOW_RUNS else ''
    return ', '.join(p.name for p in runs[:_SHOW_RUNS]) + more


def _check_uuid(value: object, where: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except (ValueError, TypeError, AttributeError):
        raise JournalError(f'{where}: {value!r} is not a UUID') from None


def journal_key(run_dir: Path) -> list[list[Any]]:
    """Name, size and mtime (ns) of every journal: changes when one does.

    What the caches of a run are keyed by (``provlog runs``' summary, the
    catalogue, the run's store): a journal that appears, grows or is
    rewritten changes it.

    Raises:
        OSError: A journal cannot be listed or stat'ed.
    """
    key = []
    for path in sorted(run_dir.glob(f'*{JOURNAL_SUFFIX}')):
        st = path.stat()
        key.append([path.name, st.st_size, st.st_mtime_ns])
    return key


def merge_run(path: Path, *, lenient: bool = False) -> MergedRun:
    """Read and merge every journal in the run folder ``path``.

    Raises:
        JournalError: A journal is damaged (unless ``lenient``), from a
            newer format, or from another run.
    """
    run_dir = find_run(path)
    files = sorted(run_dir.glob(f'*{JOURNAL_SUFFIX}'))
    results = [read_journal(f, lenient=lenient) for f in files]
    run_ids = {r.header['run'] for r in results}
    if len(run_ids) > 1:
        raise JournalError(
            f'{run_dir}: journals from {len(run_ids)} runs mixed in one '
            'folder: ' + ', '.join(sorted(run_ids)),
        )
    run_id = run_ids.pop() if run_ids else run_dir.name
    actions: dict[str, Action] = {}
    agents: dict[str, dict[str, Any]] = {}
    processes: dict[str, Process] = {}
    forwarded: set[str] = set()
    tags: dict[str, str] = {}
    lives = _Lives()
    for result in results:
        _add_process(processes, result)
        rejected = _fold(
            result, actions, agents, lenient=lenient, tags=tags, lives=lives
        )
        # an event --lenient skipped is a damaged line: the gap says so
        processes[result.header['process']].skipped += rejected
        for event in result.events:
            if event['e'] == FORWARDED and isinstance(event.get('tags'), list):
                forwarded.update(
                    t for t in event['tags'] if isinstance(t, str)
                )
    return MergedRun(
        run_dir,
        run_id,
        actions,
        agents,
        processes,
        forwarded,
        launches=lives.launches,
        lifecycles=lives.lifecycles,
    )


def _add_process(processes: dict[str, Process], result: ReadResult) -> None:
    header = result.header
    key = header['process']
    losses = read_losses(result)
    known = processes.get(key)
    if known is None:
        processes[key] = Process(
            key,
            header.get('host'),
            header.get('pid'),
            [result.path.name],
            result.closed,
            losses.dropped,
            result.skipped,
            result.partial_tail,
            header,
            losses.lost,
            losses.lost_since,
            losses.encode_errors,
            losses.capture_gaps,
            _context(result),
        )
        return
    # the same process's journal again (a copy, or a truncated copy):
    # counts are not added twice, capture gaps are merged by content
    known.files.append(result.path.name)
    known.closed = known.closed or result.closed
    known.dropped = max(known.dropped, losses.dropped)
    known.skipped += result.skipped
    known.partial_tail = known.partial_tail and result.partial_tail
    known.lost = max(known.lost, losses.lost)
    if losses.lost_since is not None and (
        known.lost_since is None or losses.lost_since < known.lost_since
    ):
        known.lost_since = losses.lost_since
    known.encode_errors = max(known.encode_errors, losses.encode_errors)
    known.context = known.context or _context(result)
    seen = {(g.kind, g.since, g.noticed, g.reason) for g in known.capture_gaps}
    for gap in losses.capture_gaps:
        if (gap.kind, gap.since, gap.noticed, gap.reason) not in seen:
            known.capture_gaps.append(gap)


def _context(result: ReadResult) -> dict[str, Any]:
    """The ``context`` line, which the writer puts right after the header."""
    events = result.events
    if events and events[0].get('e') == CONTEXT:
        return events[0]
    return {}


def _earlier(new: dict[str, Any], old: dict[str, Any] | None) -> bool:
    if old is None:
        return True
    return (new.get('t', 0.0), new.get('_line', 0)) < (
        old.get('t', 0.0),
        old.get('_line', 0),
    )


def _fold(  # noqa: C901 - one pass, one branch per case
    result: ReadResult,
    actions: dict[str, Action],
    agents: dict[str, dict[str, Any]],
    *,
    lenient: bool,
    tags: dict[str, str],
    lives: _Lives | None = None,
) -> int:
    """Fold one journal's events into ``actions`` and ``agents``.

    ``tags`` maps each tag as journalled to its canonical form, so a tag
    is parsed once per run and every event of an action shares one string.
    Returns how many events were skipped as malformed (only ``lenient``).
    """
    rejected = 0
    raw_host = result.header.get('host')
    host = None if raw_host is None else str(raw_host)
    process = result.header['process']
    for event in result.events:
        kind = event['e']
        try:
            if not isinstance(event.get('t', 0.0), (int, float)):
                raise JournalError(
                    f'{_where(result, event)}: time {event.get("t")!r} '
                    'is not a number'
                )
            if kind == AGENT:
                uid = _check_uuid(event.get('uid'), _where(result, event))
                agents.setdefault(uid, {}).update(
                    {k: v for k, v in event.items() if not k.startswith('_')},
                )
                continue
            if kind in AGENT_KINDS:
                if lives is not None:
                    lives.fold(event, agents, host, _where(result, event))
                continue
            if kind not in ACTION_KINDS:
                continue  # close, dropped, lost, gap, ... and future kinds
            raw = event.get('tag')
            tag = tags.get(raw) if isinstance(raw, str) else None
            if tag is None:
                tag = _check_uuid(raw, _where(result, event))
                tags[str(raw)] = tag
        except JournalError:
            if not lenient:
                raise
            rejected += 1
            continue
        event['tag'] = tag
        action = actions.get(tag)
        if action is None:
            action = actions[tag] = Action(tag)
        if _earlier(event, action.events.get(kind)):
            event['_process'] = process
            action.events[kind] = event
            if host is not None:
                action.hosts[kind] = host
    return rejected


_LATEST = frozenset({LIFE_STOPPING, LIFE_SHUTDOWN})


@dataclass
class _Lives:
    """The ``launch`` and ``lifecycle`` events of a run, by agent uid."""

    launches: dict[str, dict[str, Any]] = field(default_factory=dict)
    lifecycles: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=dict
    )

    def fold(
        self,
        event: dict[str, Any],
        agents: dict[str, dict[str, Any]],
        host: str | None,
        where: str,
    ) -> None:
        """Fold one event; its agent's name and class fill ``agents``.

        Raises:
            JournalError: The event names no agent, or no state.
        """
        kind = event['e']
        ident = event.get('agent')
        if not isinstance(ident, dict):
            raise JournalError(f'{where}: {kind} event names no agent')
        uid = _check_uuid(ident.get('uid'), where)
        state = event.get('state')
        if kind == LIFECYCLE and not isinstance(state, str):
            raise JournalError(f'{where}: lifecycle event has no state')
        info = agents.setdefault(uid, {'uid': uid})
        for key, value in (
            ('role', ident.get('role')),
            ('name', ident.get('name')),
            ('class', event.get('class')),
        ):
            if isinstance(value, str):
                info.setdefault(key, value)
        event['_host'] = host
        if kind == LAUNCH:
            if _earlier(event, self.launches.get(uid)):
                self.launches[uid] = event
            return
        states = self.lifecycles.setdefault(uid, {})
        known = states.get(str(state))
        if known is None or (
            _earlier(known, event)
            if state in _LATEST
            else _earlier(event, known)
        ):
            states[str(state)] = event


def _where(result: ReadResult, event: dict[str, Any]) -> str:
    return f'{result.path}:{event["_line"]}'
