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

from provlog.capture.values import json_safe
from provlog.vocab import CLOSE
from provlog.vocab import DROPPED
from provlog.vocab import ENCODE_ERROR
from provlog.vocab import GAP
from provlog.vocab import LOST
from provlog.vocab import RESUME

__all__ = [
    'FORMAT_VERSION',
    'MAX_PENDING',
    'MAX_WAIT',
    'WRITER_THREADS',
    'JournalWriter',
    'warn_stderr',
]

#: Version of the journal line format this package writes and reads.
FORMAT_VERSION = 1

#: Events waiting for the writer, at most; then ``put`` waits (or drops).
MAX_PENDING = 50_000

#: Longest time one ``put`` waits for the writer to catch up.
MAX_WAIT = 5.0

#: Threads of journal writers: records they emit are never captured.
WRITER_THREADS: set[int | None] = set()

_CHUNK_EVENTS = 2_000
_CHUNK_SECONDS = 0.05
#: Events waiting that wake the writer before its interval is up: the
#: host's garbage collector then sees few of them (events that wait long
#: survive into its older generations, which it scans again and again).
_WAKE_BACKLOG = 256
_NEWLINE = orjson.OPT_APPEND_NEWLINE


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
    thread, which writes what it has encoded at least every
    ``_CHUNK_SECONDS`` so one slow value never holds back the events around
    it. The writer wakes every ``flush_interval``, and as soon as
    ``_WAKE_BACKLOG`` events wait. Pending events are bounded by
    ``max_pending``. When the writer falls that far behind, ``put`` waits
    for it (at most ``max_wait`` seconds, and only until the writer makes
    progress) rather than drop; with ``drop_when_full`` it drops instead.
    Whatever is dropped is counted in the journal, never lost silently.

    A ``lazy`` writer creates its file and thread on the first event: a
    forked child that execs or exits without capturing leaves nothing.
    ``preamble``, if given, makes the second line of the journal; it is
    called once on the writer thread, before any event is written.
    """

    __slots__ = (
        '_at_exit',
        '_closed',
        '_drop_when_full',
        '_dropped',
        '_encode',
        '_enqueued',
        '_failed',
        '_fd',
        '_flush_interval',
        '_gap',
        '_header',
        '_idle',
        '_last_ok',
        '_lost',
        '_lost_since',
        '_max_pending',
        '_max_wait',
        '_queue',
        '_stalled_at',
        '_start_lock',
        '_thread',
        '_wake',
        '_written',
        'check',
        'max_backlog',
        'observer',
        'path',
        'preamble',
        'waited',
    )

    def __init__(
        self,
        path: Path,
        header: dict[str, Any],
        encode: Callable[[Any], dict[str, Any] | None],
        *,
        flush_interval: float = 0.2,
        max_pending: int = MAX_PENDING,
        max_wait: float = MAX_WAIT,
        drop_when_full: bool = False,
        check: Callable[[], list[str]] | None = None,
        lazy: bool = False,
        preamble: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.observer: Callable[[list[dict[str, Any]]], None] | None = None
        self.check = check
        self.preamble = preamble
        self.path = path
        self._header = header
        self._encode = encode
        self._flush_interval = flush_interval
        self._max_pending = max_pending
        self._max_wait = max_wait
        self._drop_when_full = drop_when_full
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._enqueued = 0
        self._written = 0
        self.max_backlog = 0
        self.waited = 0.0
        self._stalled_at = -1
        self._dropped = 0
        self._failed = False
        self._lost = 0
        self._lost_since = 0.0
        self._closed = False
        self._at_exit = False
        self._gap: tuple[str, ...] = ()
        self._last_ok = time.time()
        self._wake = threading.Event()
        self._idle = threading.Condition()
        self._start_lock = threading.Lock()
        self._fd = -1
        self._thread: threading.Thread | None = None
        if not lazy:
            self._start()

    def _start(self) -> None:
        """Create the file (owner-only), write the header, start the thread.

        Raises:
            OSError: The file cannot be created.
        """
        with self._start_lock:
            if self._thread is not None:
                return
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._fd = os.open(
                self.path,
                os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                0o600,
            )
            self._header['t'] = time.time()
            self._write([self._header])
            thread = threading.Thread(
                target=self._run,
                name=f'provlog-writer-{self.path.name}',
                daemon=True,
            )
            thread.start()
            WRITER_THREADS.add(thread.ident)
            self._thread = thread

    @property
    def thread_ident(self) -> int | None:
        """Identifier of the writer thread (its records are never captured)."""
        return None if self._thread is None else self._thread.ident

    @property
    def started(self) -> bool:
        """Whether the journal file exists (a lazy writer: after an event)."""
        return self._thread is not None

    def put(self, item: Any) -> None:
        """Enqueue one raw event; never raises, waits only when full."""
        if self._closed:
            return
        if self._thread is None:
            try:
                self._start()
            except OSError as exc:
                self._closed = True
                warn_stderr(
                    f'capture is off in process {os.getpid()}: cannot '
                    f'create journal {self.path}: {exc.strerror or exc}',
                )
                return
        backlog = self._enqueued - self._written
        if backlog >= self._max_pending:
            if not self._drop_when_full:
                self._wait_for_room()
            if self._enqueued - self._written >= self._max_pending:
                self._dropped += 1
                return
        elif backlog > self.max_backlog:
            self.max_backlog = backlog
        self._enqueued += 1
        self._queue.put(item)
        if backlog == _WAKE_BACKLOG:
            self._wake.set()

    def _wait_for_room(self) -> None:
        """Slow the host down until the writer has caught up by half.

        Waits at most ``max_wait``; a writer that made no progress since the
        last wait timed out is not waited for again (events are dropped and
        counted until it moves).
        """
        thread = self._thread
        if (
            thread is None
            or not thread.is_alive()
            or thread.ident == threading.get_ident()
            or self._stalled_at == self._written
        ):
            return
        began = time.monotonic()
        deadline = began + self._max_wait
        low = self._max_pending // 2
        with self._idle:
            while self._enqueued - self._written > low:
                self._wake.set()
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not thread.is_alive():
                    self._stalled_at = self._written
                    break
                self._idle.wait(min(remaining, 0.05))
        self.waited += time.monotonic() - began

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until all that was enqueued is on disk, or ``timeout``."""
        thread = self._thread
        if thread is None:
            return True
        target = self._enqueued
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._written < target and thread.is_alive():
                self._wake.set()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(min(remaining, 0.05))
        return True

    def close(self, timeout: float = 5.0, *, at_exit: bool = False) -> None:
        """Drain, write the closing line, and release the file.

        Args:
            timeout: Longest wait for the writer, in seconds.
            at_exit: The process is exiting without its uninit callback;
                the closing line says so.
        """
        if self._closed:
            return
        self._at_exit = at_exit
        thread = self._thread
        if thread is None:
            self._closed = True
            return
        self.flush(timeout)
        self._closed = True
        self._queue.put(None)
        self._wake.set()
        thread.join(timeout)
        if not thread.is_alive():
            WRITER_THREADS.discard(thread.ident)
            with contextlib.suppress(OSError):
                os.close(self._fd)

    # ------------------------------------------------------------ thread

    def _run(self) -> None:
        self._write_preamble()
        stop = False
        while not stop:
            self._wake.wait(self._flush_interval)
            self._wake.clear()
            gap = self._watch()
            stop = self._drain(gap)

    def _write_preamble(self) -> None:
        """The line ``preamble`` computes, right after the header.

        It is computed here, on the writer thread, because it may be slow
        (the process's context: packages, ``git``); events wait meanwhile.
        """
        if self.preamble is None:
            return
        try:
            line = self.preamble()
        except Exception as exc:  # noqa: BLE001 - never die silently
            line = {
                'e': ENCODE_ERROR,
                'kind': 'preamble',
                't': time.time(),
                'error': repr(exc)[:500],
            }
        self._write([line])
        self._notify([line])

    def _watch(self) -> list[dict[str, Any]]:
        """A ``gap`` line when capture broke, ``resume`` when it came back."""
        if self.check is None:
            return []
        try:
            problems = tuple(self.check())
        except Exception as exc:  # noqa: BLE001 - never die silently
            problems = (f'cannot check capture: {exc!r}',)
        now = time.time()
        if bool(problems) == bool(self._gap):
            if not problems:
                self._last_ok = now
            return []
        self._gap = problems
        if not problems:
            self._last_ok = now
            return [{'e': RESUME, 't': now}]
        reason = '; '.join(problems)
        warn_stderr(f'capture interrupted in process {os.getpid()}: {reason}')
        return [
            {'e': GAP, 't': now, 'since': self._last_ok, 'reason': reason},
        ]

    def _drain(self, batch: list[dict[str, Any]]) -> bool:
        """Encode and write everything queued, in timed chunks; stop?"""
        while True:
            taken, stop = self._take(batch)
            if self._dropped:
                dropped, self._dropped = self._dropped, 0
                batch.append({'e': DROPPED, 'n': dropped, 't': time.time()})
            if stop:
                batch.append(
                    {
                        'e': CLOSE,
                        't': time.time(),
                        'events': self._enqueued,
                        'max_backlog': self.max_backlog,
                        'waited': round(self.waited, 6),
                        **({'at_exit': True} if self._at_exit else {}),
                    },
                )
            if batch:
                self._write(batch)
                self._notify(batch)
                batch = []
            with self._idle:
                self._written += taken
                self._idle.notify_all()
            if stop or taken == 0:
                return stop

    def _take(self, batch: list[dict[str, Any]]) -> tuple[int, bool]:
        """Encode one chunk into ``batch``: how many taken, and stop?"""
        taken = 0
        get = self._queue.get_nowait
        encode = self._encode
        append = batch.append
        clock = time.monotonic
        began = clock()
        while taken < _CHUNK_EVENTS:
            try:
                item = get()
            except queue.Empty:
                return taken, False
            if item is None:
                return taken, True
            taken += 1
            try:
                line = encode(item)
            except Exception as exc:  # noqa: BLE001 - never die silently
                line = _encode_error(item, exc)
            if line is not None:
                append(line)
            if clock() - began > _CHUNK_SECONDS:
                break
        return taken, False

    def _write(self, lines: list[dict[str, Any]]) -> None:
        if self._failed:
            self._lost += sum(1 for line in lines if line.get('e') != CLOSE)
            if lines and lines[-1].get('e') == CLOSE:
                self._write_lost_marker()
            return
        try:
            data = b''.join([_dumps(line, option=_NEWLINE) for line in lines])
        except TypeError:  # a line orjson refuses: each on its own
            data = b''.join([_dump_line(line) for line in lines])
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
        marker = {'e': LOST, 'since': self._lost_since, 'n': self._lost}
        with contextlib.suppress(OSError):
            os.write(self._fd, b'\n' + _dump_line(marker))


_dumps = orjson.dumps


def _encode_error(item: Any, exc: Exception) -> dict[str, Any]:
    """The line of an event the encoder failed on: what is known of it."""
    line: dict[str, Any] = {'e': ENCODE_ERROR, 'error': repr(exc)[:500]}
    with contextlib.suppress(Exception):
        kind, tag, created, _ = item
        line.update(
            kind=str(kind),
            tag=None if tag is None else str(tag),
            t=float(created),
        )
    return line


def _dump_line(line: dict[str, Any]) -> bytes:
    """One JSON line; a line orjson refuses is made JSON-safe, never lost."""
    try:
        return orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:
        pass
    try:
        safe = _sanitize(line, 0)
        safe['sanitized'] = True
        return orjson.dumps(safe, option=orjson.OPT_APPEND_NEWLINE)
    except Exception as exc:  # noqa: BLE001 - keep the kind and tag at least
        fallback = {
            'e': ENCODE_ERROR,
            'kind': str(line.get('e')),
            'tag': str(line.get('tag')),
            'error': repr(exc)[:500],
        }
        return orjson.dumps(fallback, option=orjson.OPT_APPEND_NEWLINE)


_INT64 = 2**63
_MAX_DEPTH = 64


def _sanitize(value: Any, depth: int) -> Any:  # noqa: PLR0911
    """``value`` with lone surrogates escaped and huge integers as text.

    Strings become exact ``str`` (orjson refuses a subclass as a key).
    """
    if isinstance(value, str):
        return json_safe(str.__str__(value))
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        if -_INT64 <= value < _INT64:
            return value
        return f'{value:#x}'
    if depth >= _MAX_DEPTH:
        return '<nested too deep>'
    if isinstance(value, dict):
        return {
            _sanitize(str(k), depth + 1): _sanitize(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_sanitize(v, depth + 1) for v in value]
    return f'<{type(value).__name__}>'
