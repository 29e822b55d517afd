"""The logging handler: cheap filter, snapshot, hand-off.

On the host's thread :class:`ProvenanceHandler` only asks the adapter
(:func:`provlog.capture.records.extract`) whether a record carries provenance
and, if it does, passes the snapshot to its sink. A record without provenance
extras costs a few dict lookups (:func:`provlog.capture.records.wanted`).
Encoding, hashing and disk writes happen on the sink's own thread. The
handler never raises into the host, never takes the handler lock, and
ignores records emitted while it is already handling one on the same thread
(a sink or filter that logs cannot recurse).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

from provlog.capture.journal import WRITER_THREADS
from provlog.capture.records import extract as academy_extract
from provlog.capture.records import RawEvent
from provlog.capture.records import wanted as academy_wanted

__all__ = ['ProvenanceHandler', 'Sink']


class Sink(Protocol):
    """Where captured events go (a journal writer, a test capture, ...)."""

    def put(self, item: RawEvent) -> None:
        """Accept one event; must not block or raise."""

    def flush(self, timeout: float = 5.0) -> bool:
        """Persist what was accepted so far."""

    def close(self, timeout: float = 5.0) -> None:
        """Persist and release resources."""


class ProvenanceHandler(logging.Handler):
    """A :class:`logging.Handler` that captures provenance events.

    Records emitted on a journal writer's thread are never captured.

    Args:
        sink: Receives each event extracted from a record.
        extract: Maps a record to an event or ``None`` (the host adapter).
        accept: Asked first, on the emitting task: ``False`` leaves the
            record to another handler (the session of another run).
        close_sink: Close the sink in :meth:`close` (else only flush it).
    """

    def __init__(
        self,
        sink: Sink,
        extract: Callable[
            [logging.LogRecord], RawEvent | None
        ] = academy_extract,
        *,
        accept: Callable[[], bool] | None = None,
        close_sink: bool = True,
    ) -> None:
        super().__init__(logging.NOTSET)
        self.sink = sink
        self._close_sink = close_sink
        self._extract = extract
        #: Asked before anything else: records the adapter surely ignores
        #: are dropped for a few dict lookups.
        self._wanted = academy_wanted if extract is academy_extract else None
        self._accept = accept
        self._local = threading.local()
        self.errors = 0

    def handle(self, record: logging.LogRecord) -> bool:  # noqa: PLR0911
        """Capture ``record`` if it carries provenance; never raises."""
        wanted = self._wanted
        if wanted is not None and not self.filters and not wanted(record):
            return False
        local = self._local
        if getattr(local, 'busy', False):
            return False
        local.busy = True
        try:
            if self.filters and not self.filter(record):
                return False
            if threading.get_ident() in WRITER_THREADS:
                return False
            if self._accept is not None and not self._accept():
                return False
            event = self._extract(record)
            if event is not None:
                self.sink.put(event)
                return True
        except KeyboardInterrupt:
            raise  # the user's Ctrl-C, not an error of a captured value
        except BaseException:  # noqa: BLE001 - never raise into the host
            self.errors += 1
        finally:
            local.busy = False
        return False

    def emit(self, record: logging.LogRecord) -> None:
        """Capture ``record``; ``handle`` is the fast path."""
        self.handle(record)

    def flush(self) -> None:
        """Wait (bounded) until captured events are persisted.

        A handler whose sink a capture session owns does not wait: logging
        calls ``flush`` on every handler while it holds its module lock
        (``dictConfig``, ``logging.shutdown``), and the session drains its
        journal itself, at its end or at exit.
        """
        try:
            self.sink.flush(5.0 if self._close_sink else 0.0)
        except Exception:  # noqa: BLE001
            self.errors += 1

    def close(self) -> None:
        """Persist everything; release the sink if this handler owns it.

        ``logging.shutdown`` and ``logging.config.dictConfig`` close every
        handler; a handler whose sink is owned by a capture session only
        wakes its writer here, so the session decides when its journal ends.
        """
        try:
            if self._close_sink:
                self.sink.close()
            else:
                self.sink.flush(0.0)
        except Exception:  # noqa: BLE001
            self.errors += 1
        super().close()

    def __repr__(self) -> str:
        return f'<{type(self).__name__} sink={self.sink!r}>'
