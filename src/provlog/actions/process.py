"""One process that journalled into a run, and the spans its capture was off.

Below :mod:`provlog.actions.gaps` (which reads these to say what a run lacks)
and :mod:`provlog.actions.merge` (which builds them); imports nothing of
provlog.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from typing import Any

__all__ = ['CaptureGap', 'Process']


@dataclass(frozen=True)
class CaptureGap:
    """A span in which a process's capture was off, as its writer said.

    ``kind`` is ``gap`` (capture was interrupted, e.g. logging was disabled
    or reconfigured; ``resumed`` is when it worked again, ``None`` if it
    never did) or ``capture_off`` (capture could not start properly).
    """

    kind: str
    since: float | None
    noticed: float | None
    reason: str
    resumed: float | None = None


@dataclass
class Process:
    """One process that journalled into the run.

    ``dropped`` counts events a lagging writer dropped (``dropped`` lines);
    ``lost`` counts events a failed write lost (``lost`` lines, e.g. a
    full disk), from ``lost_since``. ``context`` is the journal's
    ``context`` line (packages, code; empty when the process wrote none).
    """

    process: str
    host: str | None
    pid: int | None
    files: list[str]
    closed: bool
    dropped: int
    skipped: int
    partial_tail: bool
    header: dict[str, Any]
    lost: int = 0
    lost_since: float | None = None
    encode_errors: int = 0
    capture_gaps: list[CaptureGap] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """``host:pid``, as reports name the process."""
        return f'{self.host}:{self.pid}'
