"""Helpers for tests: capture provenance events in memory.

>>> with capture_events() as events:
...     ...  # run agents on the local exchange
>>> [e['e'] for e in events]

Events are journal lines (dicts), encoded on the caller's thread so a test
sees them as soon as the record is logged.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from provlog.capture import RawEvent
from provlog.events import Encoder
from provlog.handler import ProvenanceHandler
from provlog.session import CAPTURE_LOGGERS
from provlog.session import HANDLER_LOGGER
from provlog.values import ValuePolicy

__all__ = ['ListSink', 'capture_events']


class ListSink:
    """A sink that encodes events at once and keeps them in a list."""

    __slots__ = ('encoder', 'events')

    def __init__(self, policy: ValuePolicy | None = None) -> None:
        self.encoder = Encoder(policy or ValuePolicy())
        self.events: list[dict[str, Any]] = []

    def put(self, item: RawEvent) -> None:
        """Encode and keep ``item``."""
        line = self.encoder(item)
        if line is not None:
            self.events.append(line)

    def flush(self, timeout: float = 5.0) -> bool:
        """Nothing to flush."""
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Nothing to close."""


@contextlib.contextmanager
def capture_events(
    policy: ValuePolicy | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """Capture Academy provenance events of this process into a list."""
    sink = ListSink(policy)
    handler = ProvenanceHandler(sink)
    saved = {name: logging.getLogger(name).level for name in CAPTURE_LOGGERS}
    for name in CAPTURE_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    logging.getLogger(HANDLER_LOGGER).addHandler(handler)
    try:
        yield sink.events
    finally:
        logging.getLogger(HANDLER_LOGGER).removeHandler(handler)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
