"""A call's two sides from its journal events, and the fields views show.

:mod:`provlog.actions.spans` builds its calls from these: each side's interval
in the run's window (:mod:`provlog.actions.runwindow`), and every text a
journal gave (names, ids, threads, errors, hosts) bounded by
:mod:`provlog.clip`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from provlog import clip
from provlog.actions.process import Process
from provlog.actions.runwindow import Window
from provlog.vocab import Action

__all__ = [
    'Side',
    'agent_info',
    'bounded_error',
    'ident',
    'process_label',
    'side',
    'uid',
]


@dataclass(slots=True)
class Side:
    """One side of a call: where it ran and for how long.

    ``ended`` and ``started`` say whether a journal holds the side's end
    and its beginning; ``clock_suspect`` that a time of the side lay
    outside the run's window and was clamped into it.
    """

    start: float
    end: float
    ended: bool
    process: str | None
    thread: str | None = None
    started: bool = True
    clock_suspect: bool = False

    @property
    def duration(self) -> float:
        """Seconds from start to end (0 for a side that ran no time)."""
        return max(0.0, self.end - self.start)


def _time(event: dict[str, Any] | None) -> float | None:
    if event is None:
        return None
    t = event.get('t')
    if isinstance(t, (int, float)) and not isinstance(t, bool):
        return float(t)
    return None


def ident(value: object) -> str | None:
    """A tag or uid from a journal: a string, bounded; else None."""
    return clip.cut(value, clip.ID_CHARS) if isinstance(value, str) else None


def uid(value: object) -> str | None:
    """The ``uid`` of an identity object (``callee``, ``src``...)."""
    return ident(value.get('uid')) if isinstance(value, dict) else None


def side(
    action: Action,
    firsts: tuple[str, ...],
    ends: tuple[str, ...],
    win: Window,
) -> Side | None:
    """The side of ``action`` from the first of ``firsts`` to ``ends``.

    None when the journals hold neither. Without an end the side is drawn
    to the window's ``last``; without a beginning it starts at its end.
    """
    begin = next((action.get(k) for k in firsts if k in action.events), None)
    end_event = next((action.get(k) for k in ends if k in action.events), None)
    start = _time(begin)
    end = _time(end_event)
    if start is None and end is None:
        return None
    anchor = begin if begin is not None else end_event
    process = anchor.get('_process') if anchor is not None else None
    res = anchor.get('res') if anchor is not None else None
    thread = res.get('thread') if isinstance(res, dict) else None
    first = start if start is not None else end
    if first is None:  # pragma: no cover - typing only
        return None
    suspect = not win.believable(first) or (
        end is not None and not win.believable(end)
    )
    s = win.clamp(first)
    e = win.clamp(end) if end is not None else max(win.last, s)
    return Side(
        start=s,
        end=max(s, e),
        ended=end is not None,
        process=process if isinstance(process, str) else None,
        thread=clip.cut(thread, clip.NAME_CHARS)
        if isinstance(thread, str)
        else None,
        started=start is not None,
        clock_suspect=suspect,
    )


def bounded_error(err: object) -> dict[str, str] | None:
    """An execution's error, its texts bounded (only the strings kept)."""
    if not isinstance(err, dict):
        return None
    out: dict[str, str] = {}
    for key, limit in (
        ('type', clip.NAME_CHARS),
        ('message', clip.MESSAGE_CHARS),
        ('traceback', clip.TRACEBACK_CHARS),
    ):
        found = err.get(key)
        if isinstance(found, str):
            out[key] = clip.cut(found, limit, tail=key == 'traceback')
    return out


def process_label(process: Process) -> str:
    """``host:pid`` of a journal, bounded (``None`` for a missing part)."""
    host = clip.text(process.host, clip.NAME_CHARS, default='None')
    return f'{host}:{clip.text(process.pid, clip.ID_CHARS, default="None")}'


def agent_info(info: dict[str, Any]) -> dict[str, str]:
    """What the views show of an agent: its text fields, bounded."""
    return {
        clip.cut(k, clip.ID_CHARS): clip.cut(v, clip.NAME_CHARS)
        for k, v in info.items()
        if isinstance(v, str) and not k.startswith('_')
    }
