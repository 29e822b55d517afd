"""One journal as ``provlog watch`` reads it: its lines' shape, its state.

A line that is valid JSON but has a field of the wrong type (an event kind
that is not a string, a tag that is a list, an identity without its uid)
is damage: :func:`misshapen` says so and the watch counts it, never folds
it. Only the fields the watch reads are checked, with the rules of
``provlog validate`` where it has them. :class:`Journal` is what one
journal said so far; :func:`fold_marker` folds the lines that concern it
alone (its close, its gaps).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from provlog import clip
from provlog.actions.gaps import CaptureGap
from provlog.journals.reader import MAX_TIME
from provlog.journals.reader import show
from provlog.journals.tail import Tail
from provlog.vocab import AGENT
from provlog.vocab import CANCELLED
from provlog.vocab import CAPTURE_OFF
from provlog.vocab import CLOSE
from provlog.vocab import DROPPED
from provlog.vocab import ENCODE_ERROR
from provlog.vocab import EXCEPTION
from provlog.vocab import EXEC_AGENT
from provlog.vocab import EXECUTE_CANCELLED
from provlog.vocab import EXECUTE_EXCEPTION
from provlog.vocab import EXECUTE_START
from provlog.vocab import EXECUTE_SUCCESS
from provlog.vocab import GAP
from provlog.vocab import JOURNAL
from provlog.vocab import LAUNCH
from provlog.vocab import LIFECYCLE
from provlog.vocab import LOST
from provlog.vocab import START
from provlog.vocab import SUCCESS

__all__ = [
    'KEEP',
    'KEEP_CHARS',
    'LABEL_CHARS',
    'Journal',
    'as_time',
    'cut',
    'fold_marker',
    'header_label',
    'misshapen',
    'plausible',
]

#: Latest failures kept, and capture gaps kept per journal.
KEEP = 5
#: Characters kept of a name, action, error or reason: memory stays
#: bounded whatever a journal holds (the view shows fewer).
KEEP_CHARS = 500
#: Characters of a name, host or run id shown.
LABEL_CHARS = 60

_MISSING: Any = object()
_Types = frozenset[type]
_STR: _Types = frozenset({str})
_STR_OR_NULL: _Types = frozenset({str, type(None)})
_OBJ_OR_NULL: _Types = frozenset({dict, type(None)})
_COUNT: _Types = frozenset({int})
_NUMBER: _Types = frozenset({int, float})
_TAGGED = (('tag', _STR, True),)
#: Per kind: each field the watch reads, its types, and whether required.
_RULES: dict[str, tuple[tuple[str, _Types, bool], ...]] = {
    EXECUTE_START: (
        *_TAGGED,
        ('action', _STR_OR_NULL, False),
        ('agent', _OBJ_OR_NULL, False),
    ),
    EXECUTE_SUCCESS: _TAGGED,
    EXECUTE_EXCEPTION: (*_TAGGED, ('error', _OBJ_OR_NULL, False)),
    EXECUTE_CANCELLED: _TAGGED,
    START: _TAGGED,
    SUCCESS: _TAGGED,
    EXCEPTION: _TAGGED,
    CANCELLED: _TAGGED,
    AGENT: (('uid', _STR, True), ('name', _STR_OR_NULL, False)),
    LAUNCH: (('agent', _OBJ_OR_NULL, False),),
    DROPPED: (('n', _COUNT, True),),
    GAP: (('reason', _STR_OR_NULL, False),),
}
_RULES[EXEC_AGENT] = _RULES[EXECUTE_START]
_RULES[LIFECYCLE] = _RULES[LAUNCH]
_RULES[LOST] = _RULES[DROPPED]
_RULES[CAPTURE_OFF] = _RULES[GAP]
_IDENTIFIED = frozenset({EXECUTE_START, EXEC_AGENT, LAUNCH, LIFECYCLE})


@dataclass(slots=True)
class Journal:
    """What one journal said so far; in-flight actions only."""

    tail: Tail
    label: str
    header: bool = False
    closed: bool = False
    #: Why the journal is read no further (it then counts for nothing).
    problem: str | None = None
    #: The file of the same process read first, if this one is a copy.
    duplicate_of: str | None = None
    #: Executions started, not ended: tag -> (agent uid, action).
    running: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    #: Requests this process sent that have no answer yet.
    waiting: set[str] = field(default_factory=set)
    damaged: int = 0
    cut: int = 0
    dropped: int = 0
    lost: int = 0
    encode_errors: int = 0
    capture_gaps: int = 0
    gaps: deque[CaptureGap] = field(default_factory=lambda: deque(maxlen=KEEP))
    last_damaged: bool = False


def as_time(value: object) -> float | None:
    """``value`` as seconds since the epoch, if it is a plausible time."""
    return float(value) if plausible(value) else None  # type: ignore[arg-type]


def plausible(value: object) -> bool:
    """Whether ``value`` is a time: seconds since the epoch, 1970 to 9999.

    ``bool`` is no number here; NaN fails the range.
    """
    return value.__class__ in _NUMBER and 0 <= value <= MAX_TIME  # type: ignore[operator]


def _wrong_fields(obj: dict[str, Any], kind: str) -> bool:
    for name, types, required in _RULES[kind]:
        value = obj.get(name, _MISSING)
        if value is _MISSING:
            if required:
                return True
        elif value.__class__ not in types:
            return True
    return False


def _wrong_agent(obj: dict[str, Any]) -> bool:
    ident = obj.get('agent')
    return ident is not None and _wrong_fields(ident, 'agent')


def _wrong_count(obj: dict[str, Any]) -> bool:
    return bool(obj['n'] < 0)


def _wrong_since(obj: dict[str, Any]) -> bool:
    since = obj.get('since')
    return since is not None and not plausible(since)


def _wrong_error(obj: dict[str, Any]) -> bool:
    error = obj.get('error')
    return error is not None and (
        error.get('type').__class__ not in _STR_OR_NULL
        or error.get('message').__class__ not in _STR_OR_NULL
    )


#: Per kind: what more than its fields' types is checked (inside them).
_INSIDE = {
    EXECUTE_START: _wrong_agent,
    EXEC_AGENT: _wrong_agent,
    LAUNCH: _wrong_agent,
    LIFECYCLE: _wrong_agent,
    DROPPED: _wrong_count,
    LOST: _wrong_count,
    GAP: _wrong_since,
    CAPTURE_OFF: _wrong_since,
    EXECUTE_EXCEPTION: _wrong_error,
}


def misshapen(obj: dict[str, Any]) -> bool:
    """Whether a field the watch reads has the wrong type: damage."""
    kind = obj.get('e')
    if kind.__class__ is not str:
        return True
    t = obj.get('t', 0)
    if t.__class__ not in _NUMBER or not 0 <= t <= MAX_TIME:  # type: ignore[operator]
        return True
    rules = _RULES.get(kind)
    if rules is None:
        return False
    for name, types, required in rules:  # _wrong_fields, inline: hot
        value = obj.get(name, _MISSING)
        if value is _MISSING:
            if required:
                return True
        elif value.__class__ not in types:
            return True
    inside = _INSIDE.get(kind)
    return inside is not None and inside(obj)


def cut(text: str, limit: int = LABEL_CHARS) -> str:
    """``text`` on one line (:func:`show`), at most ``limit`` characters.

    Only ``limit + 1`` characters are looked at, whatever the length.
    """
    return clip.cut(show(text[: limit + 1]), limit)


def header_label(header: dict[str, Any]) -> str:
    """``host:pid`` of a journal header; ``?`` for a field of another type.

    Only a string or an integer is formatted: a header field may be any
    JSON, nested too deep to print.
    """
    host = header.get('host')
    pid = header.get('pid')
    return (
        f'{cut(host) if host.__class__ is str else "?"}:'
        f'{pid if pid.__class__ is int else "?"}'
    )


def fold_marker(
    journal: Journal, kind: object, obj: dict[str, Any]
) -> float | None:
    """Fold ``close``, ``journal`` again, what says the record has gaps.

    Returns:
        The time of a ``close``, if it has one.
    """
    n = obj.get('n')
    count = n if n.__class__ is int and n > 0 else 0
    if kind == CLOSE:
        journal.closed = True
        return as_time(obj.get('t'))
    if kind == JOURNAL:  # the same process initialised again
        journal.closed = False
    elif kind == DROPPED:
        journal.dropped += count
    elif kind == LOST:
        journal.lost += count
    elif kind == ENCODE_ERROR:
        journal.encode_errors += 1
    elif kind in {GAP, CAPTURE_OFF}:
        t = as_time(obj.get('t'))
        since = as_time(obj.get('since', t))
        reason = obj.get('reason')
        journal.capture_gaps += 1
        journal.gaps.append(
            CaptureGap(
                str(kind),
                since,
                t,
                reason[:KEEP_CHARS]
                if isinstance(reason, str)
                else 'no reason given',
            )
        )
    elif kind == 'resume' and journal.gaps:
        gap = journal.gaps[-1]
        if gap.kind == 'gap' and gap.resumed is None:
            journal.gaps[-1] = CaptureGap(
                gap.kind,
                gap.since,
                gap.noticed,
                gap.reason,
                as_time(obj.get('t')),
            )
    return None
