"""What a run's record is missing, and why: completeness as gaps.

Each journal says what it lost in marker lines (``dropped``, ``lost``,
``encode_error``, ``gap``, ``capture_off``, ``resume``); :func:`read_losses`
counts them. :func:`find_gaps` turns those counts, damaged or cut journals,
processes never closed and actions seen from one side only into one list
of :class:`Gap`, which ``stats``, ``validate`` and the exports all read.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import UTC
from typing import Any
from typing import TYPE_CHECKING

from provlog.actions.process import CaptureGap
from provlog.journals.reader import ReadResult
from provlog.vocab import CAPTURE_OFF
from provlog.vocab import DROPPED
from provlog.vocab import ENCODE_ERROR
from provlog.vocab import GAP
from provlog.vocab import LOST
from provlog.vocab import NOT_ENDED
from provlog.vocab import RESUME
from provlog.vocab import START

if TYPE_CHECKING:
    from collections.abc import Iterable

    from provlog.actions.process import Process
    from provlog.vocab import Action

__all__ = [
    'CaptureGap',
    'Gap',
    'Losses',
    'callee_name',
    'callees',
    'find_gaps',
    'read_losses',
    'run_gaps',
]

_SHOW_ACTIONS = 3
_GAP_KINDS = frozenset({GAP, CAPTURE_OFF})
_REASON_CHARS = 300


@dataclass(frozen=True)
class Gap:
    """One reason the record of a run is not complete.

    Attributes:
        code: What kind of gap (``capture-gap``, ``events-dropped``, ...);
            the code ``provlog validate`` reports.
        message: One line for people, naming the process and the reason.
        process: ``host:pid`` of the process concerned, ``None`` for gaps
            of the run as a whole.
        count: How many events, lines or actions the gap covers (1 for a
            capture gap, a cut journal or a process not closed).
    """

    code: str
    message: str
    process: str | None = None
    count: int = 1

    def to_json(self) -> dict[str, Any]:
        """As a plain dict."""
        return {
            'code': self.code,
            'message': self.message,
            'process': self.process,
            'count': self.count,
        }


def _iso(t: float | None) -> str:
    if t is None:
        return 'an unknown time'
    try:
        return datetime.fromtimestamp(t, UTC).isoformat(timespec='seconds')
    except (OverflowError, OSError, ValueError):
        return repr(t)


def _some(actions: list[Action], count: int) -> str:
    shown = ', '.join(
        f'{a.name or "unknown"} {a.tag}' for a in actions[:_SHOW_ACTIONS]
    )
    more = ', ...' if count > _SHOW_ACTIONS else ''
    return f'{shown}{more}'


def callee_name(action: Action) -> str | None:
    """The name (or short id) of the agent ``action`` was sent to."""
    start = action.get(START)
    callee = start.get('callee') if start is not None else None
    if not isinstance(callee, dict):
        return None
    return str(callee.get('name') or str(callee.get('uid'))[:8])


def callees(names: list[str]) -> str:
    """Distinct callee names, in order, as the gap message lists them."""
    if not names:
        return 'unknown'
    more = ', ...' if len(names) > _SHOW_ACTIONS else ''
    return ', '.join(names[:_SHOW_ACTIONS]) + more


def _callees(actions: list[Action]) -> str:
    """Names (or short ids) of the agents ``actions`` were sent to."""
    names: list[str] = []
    for action in actions:
        name = callee_name(action)
        if name is not None and name not in names:
            names.append(name)
    return callees(names)


def _process_gaps(p: Process) -> list[Gap]:
    where = p.label
    gaps = []
    for gap in p.capture_gaps:
        if gap.kind == CAPTURE_OFF:
            gaps.append(
                Gap(
                    'capture-off',
                    f'capture was off in process {where} from '
                    f'{_iso(gap.since)}: {gap.reason}',
                    where,
                ),
            )
            continue
        until = (
            _iso(gap.resumed)
            if gap.resumed is not None
            else 'the end of its journal'
        )
        gaps.append(
            Gap(
                'capture-gap',
                f'capture was interrupted in process {where} from '
                f'{_iso(gap.since)} to {until}: {gap.reason}; actions of '
                'that time are missing or partial',
                where,
            ),
        )
    if p.dropped:
        gaps.append(
            Gap(
                'events-dropped',
                f'{p.dropped} events dropped (writer lagged) in process '
                f'{where}',
                where,
                p.dropped,
            ),
        )
    if p.lost:
        gaps.append(
            Gap(
                'events-lost',
                f'{p.lost} events lost (write failed, e.g. disk full) in '
                f'process {where} from {_iso(p.lost_since)}',
                where,
                p.lost,
            ),
        )
    if p.encode_errors:
        gaps.append(
            Gap(
                'encode-error',
                f'{p.encode_errors} events of process {where} could not be '
                'encoded (encode_error lines); their actions lack them',
                where,
                p.encode_errors,
            ),
        )
    if p.skipped:
        gaps.append(
            Gap(
                'lines-skipped',
                f'{p.skipped} damaged journal lines of process {where} '
                'were skipped',
                where,
                p.skipped,
            ),
        )
    if p.partial_tail:
        gaps.append(
            Gap(
                'journal-cut',
                f'the journal of process {where} ends in a cut line (disk '
                'full or size limit); later events of that process were lost',
                where,
            ),
        )
    if not p.closed:
        gaps.append(
            Gap(
                'process-not-closed',
                f'process {where} did not close its journal (killed, '
                'crashed, or still running)',
                where,
            ),
        )
    return gaps


def find_gaps(
    processes: Iterable[Process],
    actions: Iterable[Action],
    unseen: Iterable[Action],
    orphans: Iterable[Action],
) -> list[Gap]:
    """Every gap of a merged run (see :meth:`.MergedRun.gaps`).

    Args:
        processes: Every process of the run.
        actions: Every action of the run.
        unseen: The executions not observed, in any order.
        orphans: The requests not observed, in any order.
    """
    first_unseen = sorted(unseen, key=_first_seen)
    first_orphans = sorted(orphans, key=_first_seen)
    return run_gaps(
        list(processes),
        sum(1 for a in actions if a.state == NOT_ENDED),
        (first_unseen, len(first_unseen), _callees(first_unseen)),
        (first_orphans, len(first_orphans)),
    )


def run_gaps(
    processes: list[Process],
    not_ended: int,
    unseen: tuple[list[Action], int, str],
    orphans: tuple[list[Action], int],
) -> list[Gap]:
    """The gaps from what a merge counted, in :meth:`MergedRun.gaps` order.

    Args:
        processes: Every process of the run.
        not_ended: How many actions have no end record.
        unseen: The executions not observed, first seen first (at least
            the first few), how many there are, and the agents they were
            sent to as :func:`callees` names them.
        orphans: The requests not observed, first seen first (at least
            the first few), and how many there are.
    """
    gaps: list[Gap] = []
    for p in sorted(processes, key=lambda p: (p.label, p.process)):
        gaps += _process_gaps(p) + _import_gaps(p)
    imported = [
        p for p in processes if isinstance(p.header.get(IMPORTED), dict)
    ]
    if imported:
        gaps.append(
            Gap(
                'imported',
                f'imported from Academy JSONPoolLogging logs ({len(imported)} '
                'journals), not captured live: values only as their str() '
                'text, hashed as text (not the originals); no host, resource '
                'use, software context or what actions logged and printed; '
                'callers, parents and executing agents inferred',
                count=len(imported),
            ),
        )
    if not_ended:
        gaps.append(
            Gap(
                'actions-not-ended',
                f'{not_ended} actions have no end record',
                count=not_ended,
            ),
        )
    shown, count, callees = unseen
    if count:
        gaps.append(
            Gap(
                'execution-not-observed',
                f"{count} executions not observed (their agents' "
                'processes wrote no journal: started without the config?): '
                f'{_some(shown, count)}; agents: {callees}',
                count=count,
            ),
        )
    shown, count = orphans
    if count:
        gaps.append(
            Gap(
                'request-not-observed',
                f"{count} requests not observed (their callers' "
                'processes wrote no journal: started without the config?); '
                f'their arguments and results are not recorded: '
                f'{_some(shown, count)}',
                count=count,
            ),
        )
    return gaps


#: The header field of a journal that ``provlog import`` wrote.
IMPORTED = 'imported'
#: Counts an import notes per journal -> gap code and what they mean.
_IMPORT_COUNTS = (
    ('lines_skipped', 'import-lines-skipped', 'damaged log lines skipped'),
    ('lines_cut', 'import-lines-cut', 'log lines cut (unfinished last write)'),
    (
        'parents_ambiguous',
        'import-parent-unknown',
        'calls whose parent is unknown (caller had several open)',
    ),
    (
        'callers_unknown',
        'import-caller-unknown',
        'calls with no sending record: caller and parent unknown',
    ),
    (
        'records_unusable',
        'import-records-unusable',
        'Academy records without a usable time or action tag, left out',
    ),
)


def _import_gaps(p: Process) -> list[Gap]:
    """What the import of one journal could not carry, from its header."""
    note = p.header.get(IMPORTED)
    if not isinstance(note, dict):
        return []
    gaps: list[Gap] = []
    source = _reason(note.get('file'))
    for key, code, what in _IMPORT_COUNTS:
        n = note.get(key)
        if isinstance(n, int) and not isinstance(n, bool) and n > 0:
            gaps.append(
                Gap(code, f'{n} {what} in {source} ({p.label})', p.label, n)
            )
    unresolved = note.get('identities_unresolved')
    if isinstance(unresolved, list) and unresolved:
        names = ', '.join(_reason(u) for u in unresolved[:_SHOW_ACTIONS])
        gaps.append(
            Gap(
                'import-identity-unresolved',
                f'{len(unresolved)} identifiers in {source} ({p.label}) '
                f'name no known uid: {names}',
                p.label,
                len(unresolved),
            ),
        )
    return gaps


def _first_seen(action: Action) -> tuple[float, str]:
    times = [
        t
        for e in action.events.values()
        if isinstance(t := e.get('t', 0.0), (int, float))
    ]
    return (float(min(times)) if times else 0.0, action.tag)


@dataclass
class Losses:
    """What one journal says it is missing (read from its marker lines)."""

    dropped: int = 0
    lost: int = 0
    lost_since: float | None = None
    encode_errors: int = 0
    capture_gaps: list[CaptureGap] = field(default_factory=list)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _reason(value: object) -> str:
    """A writer's reason as one short printable line."""
    if not isinstance(value, str):
        return 'no reason given'
    text = ' '.join(
        ''.join(
            c if c.isprintable() else ' ' for c in value[:_REASON_CHARS]
        ).split()
    )
    return text or 'no reason given'


def _count(value: object) -> int:
    return value if isinstance(value, int) and value > 0 else 0


def read_losses(result: ReadResult) -> Losses:
    """Count ``dropped``, ``lost`` and ``encode_error`` lines; list gaps.

    Counted here from the events rather than taken from the reader's
    totals, so events a lagging writer dropped and events a failed write
    lost stay apart. A ``resume`` line ends the ``gap`` before it.
    """
    out = Losses()
    open_gap: int | None = None
    for event in result.events:
        kind = event.get('e')
        if kind == DROPPED:
            out.dropped += _count(event.get('n', 0))
        elif kind == LOST:
            out.lost += _count(event.get('n', 0))
            since = _number(event.get('since'))
            if since is not None and (
                out.lost_since is None or since < out.lost_since
            ):
                out.lost_since = since
        elif kind == ENCODE_ERROR:
            out.encode_errors += 1
        elif kind in _GAP_KINDS:
            out.capture_gaps.append(
                CaptureGap(
                    kind,
                    _number(event.get('since', event.get('t'))),
                    _number(event.get('t')),
                    _reason(event.get('reason')),
                ),
            )
            open_gap = len(out.capture_gaps) - 1 if kind == GAP else None
        elif kind == RESUME and open_gap is not None:
            gap = out.capture_gaps[open_gap]
            out.capture_gaps[open_gap] = CaptureGap(
                gap.kind,
                gap.since,
                gap.noticed,
                gap.reason,
                _number(event.get('t')),
            )
            open_gap = None
    return out
