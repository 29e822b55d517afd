"""Where capture meets the host's logging, without changing what it shows.

Academy logs its action lifecycle at DEBUG. For those records to exist the
emitting loggers must be enabled for DEBUG, but every other handler must
receive exactly what it received without provlog. So provlog adds no
handler anywhere. On each logger in :data:`CAPTURE_LOGGERS` it sets a
private level just below DEBUG and puts a *tap* first among the logger's
filters. The tap hands each record to the capture handlers, then lets the
record go on only if the host's own configuration would have let it through
(the level the logger had, or inherits, without provlog). A host with no
logging set-up keeps Python's last-resort handler; a host with
``basicConfig(level=WARNING)`` sees no DEBUG line; levels come back on the
last removal, in any nesting order.

The host stays in charge: if it disables a logger, raises its level, calls
``logging.disable`` or removes the tap, capture stops, and
:func:`capture_problems` says why so the journal can record the gap.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

__all__ = [
    'CAPTURE_LOGGERS',
    'TAP_LEVEL',
    'capture_problems',
    'install_handler',
    'installed_handlers',
]

#: Loggers whose records provlog captures: the action lifecycle
#: (``academy.handle``, ``academy.runtime``) and agent launches
#: (``academy.manager``).
CAPTURE_LOGGERS = ('academy.handle', 'academy.runtime', 'academy.manager')

#: The level provlog gives a capture logger: just below DEBUG, so that a
#: host setting the logger to DEBUG itself is told apart from provlog.
TAP_LEVEL = logging.DEBUG - 1

_lock = threading.Lock()
_taps: dict[str, _Tap] = {}


class _Tap:
    """A logger filter that captures every record and passes on the host's."""

    __slots__ = ('handlers', 'logger', 'saved')

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self.saved = logger.level
        self.handlers: tuple[logging.Handler, ...] = ()

    def filter(self, record: logging.LogRecord) -> bool:
        """Capture ``record``; pass it on if the host would have seen it."""
        for handler in self.handlers:
            handler.handle(record)
        return record.levelno >= self.host_level()

    def host_level(self) -> int:
        """The logger's effective level as the host configured it."""
        logger = self.logger
        level = self.saved if logger.level == TAP_LEVEL else logger.level
        if level:
            return level
        parent = logger.parent
        return parent.getEffectiveLevel() if parent else logging.WARNING


def install_handler(handler: logging.Handler) -> Callable[[], None]:
    """Feed ``handler`` every record of :data:`CAPTURE_LOGGERS`.

    The handler is called from a filter on each logger, not attached as a
    handler, so no other handler sees more than before. Never touches the
    root logger.

    Returns:
        A callback that stops feeding ``handler``; the last one removes the
        taps and gives back the levels the loggers had (unless the host set
        another level meanwhile).
    """
    with _lock:
        for name in CAPTURE_LOGGERS:
            tap = _taps.get(name)
            if tap is None:
                logger = logging.getLogger(name)
                tap = _taps[name] = _Tap(logger)
                logger.filters.insert(0, tap)
                logger.setLevel(TAP_LEVEL)
            tap.handlers = (*tap.handlers, handler)
    done = threading.Event()

    def remove() -> None:
        if done.is_set():
            return
        done.set()
        with _lock:
            for name in CAPTURE_LOGGERS:
                tap = _taps.get(name)
                if tap is None:
                    continue
                tap.handlers = tuple(
                    h for h in tap.handlers if h is not handler
                )
                if tap.handlers:
                    continue
                del _taps[name]
                logger = tap.logger
                if tap in logger.filters:
                    logger.removeFilter(tap)
                if logger.level == TAP_LEVEL:
                    logger.setLevel(tap.saved)

    return remove


def installed_handlers() -> tuple[logging.Handler, ...]:
    """The handlers the taps feed now, in the order they were installed."""
    with _lock:
        tap = _taps.get(CAPTURE_LOGGERS[0])
        return () if tap is None else tap.handlers


def capture_problems() -> list[str]:
    """Why capture cannot see the records it needs right now (empty: fine).

    Read on the writer thread at every flush: the host may reconfigure
    logging at any time (``dictConfig`` disables existing loggers by
    default, ``logging.disable`` silences a level everywhere). It never
    takes logging's module lock, which ``dictConfig`` holds while it calls
    every handler's ``flush``.
    """
    problems: list[str] = []
    with _lock:
        taps = list(_taps.items())
    disabled = logging.root.manager.disable
    if disabled >= logging.DEBUG:
        problems.append(
            f'logging.disable({logging.getLevelName(disabled)}) is in force',
        )
    for name, tap in taps:
        logger = tap.logger
        if logger.disabled:
            problems.append(
                f'logger {name} was disabled (logging.config.dictConfig or '
                'fileConfig with disable_existing_loggers?)',
            )
        elif tap not in logger.filters:
            problems.append(f'the provlog tap was removed from logger {name}')
        elif logger.getEffectiveLevel() > logging.DEBUG:
            level = logging.getLevelName(logger.getEffectiveLevel())
            problems.append(f'logger {name} level was set to {level}')
    return problems
