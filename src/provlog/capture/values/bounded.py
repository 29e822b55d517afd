"""User code (``repr``, ``str``) run on helper threads, bounded in time.

The caller's thread waits at most :data:`REPR_TIMEOUT` for a helper; a
stuck helper is left behind and a fresh one takes the next call, up to
:data:`MAX_REPR_THREADS` helpers. When all of them are stuck in user code,
further calls are skipped at once (``<repr skipped: helpers busy>``)
until one returns.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from typing import Any

from provlog.capture.values.text import json_safe

__all__ = [
    'MAX_REPR_THREADS',
    'REPR_TIMEOUT',
    'bounded_call',
    'bounded_text',
    'repr_text',
]

#: Seconds the caller's thread waits for a user-defined ``repr`` (or
#: ``str`` of an exception) computed on a helper thread.
REPR_TIMEOUT = 0.02

#: Helper threads that may be busy with user code at once; when all are
#: stuck, further ``repr`` calls are skipped at once.
MAX_REPR_THREADS = 4

_MAX_REPR = 1000


class _Helper:
    """A daemon thread that runs user code for the caller, one at a time."""

    __slots__ = ('_jobs', '_pool')

    def __init__(self, pool: _Helpers) -> None:
        self._pool = pool
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        thread = threading.Thread(
            target=self._run,
            name='provlog-repr',
            daemon=True,
        )
        thread.start()

    def submit(self, job: _Job) -> None:
        self._jobs.put(job)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                job.result = job.func(job.arg)
            except BaseException as exc:  # noqa: BLE001 - user code
                job.error = type(exc).__name__
            job.done.set()
            self._pool.release(self)


class _Job:
    __slots__ = ('arg', 'done', 'error', 'func', 'result')

    def __init__(self, func: Callable[[Any], Any], arg: object) -> None:
        self.func = func
        self.arg = arg
        self.result: Any = None
        self.error: str | None = None
        self.done = threading.Event()


class _Helpers:
    """The helper threads; a busy (maybe stuck) one is never waited for."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[_Helper] = []
        self._count = 0

    def acquire(self) -> _Helper | None:
        with self._lock:
            if self._idle:
                return self._idle.pop()
            if self._count >= MAX_REPR_THREADS:
                return None
            self._count += 1
        try:
            return _Helper(self)
        except BaseException:  # noqa: BLE001 - e.g. no more threads
            with self._lock:
                self._count -= 1
            return None

    def release(self, helper: _Helper) -> None:
        with self._lock:
            self._idle.append(helper)

    def reset(self) -> None:
        """After ``fork``: the child has none of the parent's threads."""
        self._lock = threading.Lock()
        self._idle = []
        self._count = 0


_HELPERS = _Helpers()
if hasattr(os, 'register_at_fork'):
    os.register_at_fork(after_in_child=_HELPERS.reset)


def bounded_call(
    func: Callable[[Any], Any],
    arg: object,
    timeout: float = REPR_TIMEOUT,
) -> tuple[str, Any]:
    """Run ``func(arg)`` on a helper thread, waiting at most ``timeout``.

    Returns:
        ``('ok', result)``, ``('error', exception class name)``,
        ``('timeout', None)`` or ``('busy', None)`` when every helper is
        stuck. Never raises, whatever ``func`` raises.
    """
    helper = _HELPERS.acquire()
    if helper is None:
        return 'busy', None
    job = _Job(func, arg)
    helper.submit(job)
    if not job.done.wait(timeout):
        return 'timeout', None
    if job.error is not None:
        return 'error', job.error
    return 'ok', job.result


def bounded_text(text: object) -> str:
    """``text`` if a ``str``, JSON-safe and cut to 1,000 characters."""
    if not isinstance(text, str):
        return '<not a str>'
    text = str.__str__(str.__getitem__(text, slice(0, _MAX_REPR + 1)))
    text = json_safe(text)
    return text if len(text) <= _MAX_REPR else text[:_MAX_REPR] + '\u2026'


def repr_text(value: object, name: str, *, helper: bool) -> str:
    """Bounded ``repr`` of ``value``, on a helper thread if ``helper``."""
    if not helper:
        try:
            return bounded_text(repr(value))
        except BaseException as exc:  # noqa: BLE001 - never raise
            return f'<unrepresentable {name}: {type(exc).__name__}>'
    status, result = bounded_call(repr, value)
    if status == 'ok':
        return bounded_text(result)
    if status == 'error':
        return f'<unrepresentable {name}: {result}>'
    if status == 'timeout':
        return '<repr timed out>'
    return '<repr skipped: helpers busy>'
