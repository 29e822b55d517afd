"""Per-process append-only journals: the background writer.

A journal is a JSON-lines file, one event per line, owned by exactly one
process. Its first line is a header (format version, run id, host, pid,
versions). The writer appends whole lines with single ``os.write`` calls on
an ``O_APPEND`` descriptor at least every ``flush_interval`` seconds, so a
process killed with SIGKILL loses at most the events of its last interval
and leaves a file that reads cleanly up to its last complete line.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

__all__ = ['FORMAT_VERSION', 'JournalWriter', 'warn_stderr']

#: Version of the journal line format this package writes and reads.
FORMAT_VERSION = 1

_MAX_PENDING = 200_000


def warn_stderr(message: str) -> None:
    """Report a problem on stderr, never through ``logging`` (no recursion)."""
    try:
        sys.stderr.write(f'provlog: {message}\n')
        sys.stderr.flush()
    except Exception:  # noqa: BLE001, S110 - stderr itself may be gone
        pass


class JournalWriter:
    """Owns one journal file and the thread that appends to it.

    ``put`` is called on the host's threads and only enqueues; ``encode``
    (which may hash and describe values) and file writes run on the writer
    thread. Pending events are bounded: past ``max_pending`` new events are
    dropped and the count is written to the journal, never silently lost.
    """

    __slots__ = (
        '_closed',
        '_dropped',
        '_encode',
        '_enqueued',
        '_failed',
        '_fd',
        '_flush_interval',
        '_idle',
        '_lost',
        '_lost_since',
        '_max_pending',
        '_queue',
        '_thread',
        '_wake',
        '_written',
        'max_backlog',
        'observer',
        'path',
    )

    def __init__(
        self,
        path: Path,
        header: dict[str, Any],
        encode: Callable[[Any], dict[str, Any] | None],
        *,
        flush_interval: float = 0.2,
        max_pending: int = _MAX_PENDING,
    ) -> None:
        self.observer: Callable[[list[dict[str, Any]]], None] | None = None
        self.path = path
        self._encode = encode
        self._flush_interval = flush_interval
        self._max_pending = max_pending
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._enqueued = 0
        self._written = 0
        self.max_backlog = 0
        self._dropped = 0
        self._failed = False
        self._lost = 0
        self._lost_since = 0.0
        self._closed = False
        self._wake = threading.Event()
        self._idle = threading.Condition()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(
            path,
            os.O_WRONLY | os.O_APPEND | os.O_CREAT,
            0o644,
        )
        self._write([header])
        self._thread = threading.Thread(
            target=self._run,
            name=f'provlog-writer-{path.name}',
            daemon=True,
        )
        self._thread.start()

    @property
    def thread_ident(self) -> int | None:
        """Identifier of the writer thread (its records are never captured)."""
        return self._thread.ident

    def put(self, item: Any) -> None:
        """Enqueue one raw event; never blocks, never raises."""
        if self._closed:
            return
        backlog = self._enqueued - self._written
        if backlog >= self._max_pending:
            self._dropped += 1
            return
        self.max_backlog = max(self.max_backlog, backlog)
        self._enqueued += 1
        self._queue.put(item)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until all that was enqueued is on disk, or ``timeout``."""
        target = self._enqueued
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._written < target and self._thread.is_alive():
                self._wake.set()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(min(remaining, 0.05))
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Drain, write the closing line, and release the file."""
        if self._closed:
            return
        self.flush(timeout)
        self._closed = True
        self._queue.put(None)
        self._wake.set()
        self._thread.join(timeout)
        if not self._thread.is_alive():
            with contextlib.suppress(OSError):
                os.close(self._fd)

    # ------------------------------------------------------------ thread

    def _run(self) -> None:
        stop = False
        while not stop:
            self._wake.wait(self._flush_interval)
            self._wake.clear()
            batch: list[dict[str, Any]] = []
            taken = 0
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                taken += 1
                try:
                    line = self._encode(item)
                except Exception as exc:  # noqa: BLE001 - never die silently
                    line = {'e': 'encode_error', 'error': repr(exc)[:500]}
                if line is not None:
                    batch.append(line)
            if self._dropped:
                dropped, self._dropped = self._dropped, 0
                batch.append({'e': 'dropped', 'n': dropped, 't': time.time()})
            if stop:
                batch.append(
                    {
                        'e': 'close',
                        't': time.time(),
                        'events': self._enqueued,
                        'max_backlog': self.max_backlog,
                    },
                )
            if batch:
                self._write(batch)
                self._notify(batch)
            with self._idle:
                self._written += taken
                self._idle.notify_all()

    def _write(self, lines: list[dict[str, Any]]) -> None:
        if self._failed:
            self._lost += sum(1 for line in lines if line.get('e') != 'close')
            if lines and lines[-1].get('e') == 'close':
                self._write_lost_marker()
            return
        data = b''.join(_dump_line(line) for line in lines)
        try:
            view = memoryview(data)
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
        except OSError as exc:
            self._failed = True
            self._lost_since = time.time()
            self._lost += len(lines)
            warn_stderr(
                f'cannot write journal {self.path}: {exc}; '
                'provenance from this process is lost from here on',
            )

    def _notify(self, batch: list[dict[str, Any]]) -> None:
        """Hand written lines to the observer (a forwarder); never fails."""
        observer = self.observer
        if observer is None:
            return
        try:
            observer(batch)
        except Exception as exc:  # noqa: BLE001 - a sink must not stop us
            self.observer = None
            warn_stderr(f'forwarding stopped: {exc!r}')

    def _write_lost_marker(self) -> None:
        """Best effort, at close: say from when and how many events were lost.

        A full disk may refuse this too; the reader then sees the journal
        end in a cut line (or with no ``close``), which it also reports.
        """
        marker = {'e': 'lost', 'since': self._lost_since, 'n': self._lost}
        with contextlib.suppress(OSError):
            os.write(self._fd, b'\n' + _dump_line(marker))


def _dump_line(line: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError as exc:  # e.g. an int beyond 64 bits from a hostile value
        fallback = {
            'e': 'encode_error',
            'kind': str(line.get('e')),
            'tag': str(line.get('tag')),
            'error': str(exc)[:500],
        }
        return orjson.dumps(fallback, option=orjson.OPT_APPEND_NEWLINE)
