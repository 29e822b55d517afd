"""When a run happened, so that one stray clock cannot stretch it.

Every view draws a run from its first time to its last. One event with a
broken time (``"t": 0`` from a clock reset, a year 9999) would make that
1970 to now, and every real call a sliver. So the window is taken from
the times that can be believed:

* not earlier than :data:`CLOCK_TOLERANCE` before the earliest journal
  header (a process writes its header before any of its events, on the
  same clock);
* not later than :data:`CLOCK_TOLERANCE` after the latest of the journal
  headers and the moment the journals are read (no event comes from the
  future). The merged run keeps no close times, so this is the bound.

A time outside is *clock-suspect*: the call is kept, its side is drawn
clamped into the window (:meth:`Window.clamp`), and the views say so.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from provlog.actions.merge import MergedRun

__all__ = ['CLOCK_TOLERANCE', 'Window', 'window']

#: Seconds a time may lie outside the journals' own times (host clocks of
#: one run may disagree, by far less than this).
CLOCK_TOLERANCE = 86_400.0


@dataclass(frozen=True, slots=True)
class Window:
    """The believable times (``floor`` to ``ceiling``) and the run in them.

    ``first`` and ``last`` are the earliest and latest believable action
    event times (the raw extremes when none is believable).
    """

    floor: float
    ceiling: float
    first: float
    last: float

    def believable(self, t: float) -> bool:
        """Whether ``t`` lies where the run's journals say it ran."""
        return self.floor <= t <= self.ceiling

    def clamp(self, t: float) -> float:
        """``t`` moved into ``first``..``last`` (believable times stay)."""
        return min(max(t, self.first), self.last)


_NUMBERS = (int, float)  # exactly: a bool is not a time


def _number(value: object) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        found = float(value)
        return found if math.isfinite(found) else None
    return None


def window(run: MergedRun, now: float | None = None) -> Window:
    """The window of ``run``; ``now`` is when it is read (default: now)."""
    headers = [
        t
        for p in run.processes.values()
        if (t := _number(p.header.get('t'))) is not None
    ]
    floor = min(headers) - CLOCK_TOLERANCE if headers else -math.inf
    read_at = time.time() if now is None else now
    ceiling = max([read_at, *headers]) + CLOCK_TOLERANCE
    times = [
        float(t)
        for action in run.actions.values()
        for event in action.events.values()
        if (t := event.get('t')).__class__ in _NUMBERS and math.isfinite(t)
    ]
    believed = [t for t in times if floor <= t <= ceiling] or times
    if not believed:  # no time at all
        return Window(floor, ceiling, 0.0, 0.0)
    return Window(floor, ceiling, min(believed), max(believed))
