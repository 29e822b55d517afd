"""Capture sessions: install the handler in one process, and take it down.

A session is what ``init_logging()`` starts in each process: one journal
file in the run folder (readable by its owner only) and one handler fed by
the taps of :mod:`provlog.capture.taps`. It never touches the root logger
and adds no handler to any logger. Starting the same run twice in one
process shares the session (reference-counted), and a process that forks
gets its own journal in the child.
"""

from __future__ import annotations

import atexit
import contextvars
import functools
import multiprocessing.util
import os
import platform
import re
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provlog import __version__
from provlog.capture.context import collect
from provlog.capture.context import header_fields
from provlog.capture.encoder import Encoder
from provlog.capture.handler import ProvenanceHandler
from provlog.capture.inside import install as install_inside
from provlog.capture.inside import Limits
from provlog.capture.journal import FORMAT_VERSION
from provlog.capture.journal import JournalWriter
from provlog.capture.journal import MAX_PENDING
from provlog.capture.journal import warn_stderr
from provlog.capture.taps import capture_problems
from provlog.capture.taps import install_handler
from provlog.capture.values import ValuePolicy
from provlog.vocab import FORWARDED
from provlog.vocab import JOURNAL

__all__ = ['WriterOptions', 'active_runs', 'flush_all', 'start_session']

#: The runs whose ``LogConfig`` was entered in this task or the task that
#: made it: an action goes to the run of the Manager it belongs to, even
#: when two Managers with their own configs share a process.
active_runs: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    'provlog_active_runs',
    default=(),
)

_lock = threading.Lock()
_sessions: dict[str, _Session] = {}


_exit_registered = False


@dataclass
class _Session:
    open_writer: Callable[..., JournalWriter]
    handler: ProvenanceHandler
    writer: JournalWriter
    uninstall: Callable[[], None]
    refs: int = 1
    forwarder: Any = None


@dataclass(frozen=True)
class WriterOptions:
    """How a process's journal writer behaves (from the ``LogConfig``)."""

    flush_interval: float = 0.2
    max_pending: int = MAX_PENDING
    drop_when_full: bool = False


def _academy_version() -> str | None:
    try:
        from importlib.metadata import version  # noqa: PLC0415

        return version('academy-py')
    except Exception:  # noqa: BLE001
        return None


def _safe_host() -> str:
    return re.sub(r'[^A-Za-z0-9._-]', '_', socket.gethostname())[:64] or 'host'


def _open_writer(
    run_dir: Path,
    run_id: str,
    policy: ValuePolicy,
    options: WriterOptions,
    *,
    lazy: bool = False,
) -> JournalWriter:
    process = uuid.uuid4().hex
    host = socket.gethostname()
    path = run_dir / f'{_safe_host()}-{os.getpid()}-{process[:8]}.jsonl'
    header: dict[str, Any] = {
        'e': JOURNAL,
        'v': FORMAT_VERSION,
        'run': run_id,
        'process': process,
        'host': host,
        'pid': os.getpid(),
        'python': platform.python_version(),
        'academy': _academy_version(),
        'provlog': __version__,
        'argv0': os.path.basename(sys.argv[0]) if sys.argv else None,
        'flush_interval': options.flush_interval,
        'capture_values': policy.capture,
        'max_value_bytes': policy.max_bytes,
        **header_fields(policy),
    }
    return JournalWriter(
        path,
        header,
        Encoder(policy),
        flush_interval=options.flush_interval,
        max_pending=options.max_pending,
        drop_when_full=options.drop_when_full,
        check=capture_problems,
        lazy=lazy,
        preamble=functools.partial(collect, header['script']),
    )


def _start_forwarder(writer: JournalWriter, run_id: str, options: Any) -> Any:
    """Live Flowcept forwarding for this process, or ``None`` if it fails."""
    try:
        from provlog.capture.live import LiveForwarder  # noqa: PLC0415

        def report(tags: list[str]) -> None:
            writer.put((FORWARDED, None, time.time(), {'tags': tags}))

        forwarder = LiveForwarder(run_id, options, report)
    except Exception as exc:  # noqa: BLE001 - never break the host
        warn_stderr(f'Flowcept forwarding is off in this process: {exc!r}')
        return None
    writer.observer = forwarder.observe
    return forwarder


def _accept_for(run_id: str) -> Callable[[], bool]:
    """Whether a record emitted in the current task belongs to ``run_id``.

    A task that entered some runs' configs belongs to those that are live
    here; any other task (a worker's, a thread's) belongs to every run.
    """

    def accept() -> bool:
        runs = active_runs.get()
        if not runs or run_id in runs:
            return True
        return not any(run in _sessions for run in runs)

    return accept


def start_session(
    run_dir: Path,
    run_id: str,
    policy: ValuePolicy,
    options: WriterOptions | None = None,
    *,
    forwarding: Any = None,
    strict: bool = False,
    limits: Limits | None = None,
) -> Callable[[], None]:
    """Start capturing this process's Academy records into ``run_dir``.

    Args:
        run_dir: The run folder; created if missing.
        run_id: Identifier of the run (the LogConfig's ``uuid``).
        policy: What to keep of argument and result values.
        options: How the journal writer behaves.
        forwarding: A :class:`provlog.academy.FlowceptForwarding` to
            forward completed calls live (``None``: journal only).
        strict: Raise when the journal cannot be created, instead of
            saying so once on stderr and running on without capture.
        limits: What to keep of what each execution logs, prints and
            warns (``None``: nothing).

    Returns:
        A callback that ends this use of the session: the last one removes
        the handler, restores the logger levels and drains the journal.

    Raises:
        OSError: ``strict`` and the journal cannot be created.
    """
    open_writer = functools.partial(
        _open_writer,
        run_dir,
        run_id,
        policy,
        options or WriterOptions(),
    )
    with _lock:
        session = _sessions.get(run_id)
        if session is not None:
            session.refs += 1
        else:
            try:
                writer = open_writer()
            except OSError as exc:
                if strict:
                    raise
                warn_stderr(
                    f'capture is off in process {os.getpid()}: cannot create '
                    f'a journal in {run_dir}: {exc.strerror or exc} (pass '
                    'strict=True to ProvenanceLogging to fail instead)',
                )
                return _nothing
            handler = ProvenanceHandler(
                writer,
                accept=_accept_for(run_id),
                close_sink=False,
            )
            removals = [install_handler(handler)]
            if limits is not None:
                removals.append(install_inside(limits))
            session = _Session(
                open_writer,
                handler,
                writer,
                functools.partial(_run_all, removals),
            )
            if forwarding is not None:
                session.forwarder = _start_forwarder(
                    writer, run_id, forwarding
                )
            _sessions[run_id] = session
            _register_exit_flush()
    runs = active_runs.get()
    if run_id not in runs:
        active_runs.set((*runs, run_id))
    done = threading.Event()

    def stop() -> None:
        if done.is_set():
            return
        done.set()
        _release(run_id)

    return stop


def _nothing() -> None:
    """The stop callback of a process where capture could not start."""


def _run_all(callbacks: list[Callable[[], None]]) -> None:
    for callback in callbacks:
        callback()


def _release(run_id: str) -> None:
    with _lock:
        session = _sessions.get(run_id)
        if session is None:
            return
        session.refs -= 1
        if session.refs > 0:
            return
        del _sessions[run_id]
        session.uninstall()
    session.handler.close()
    if session.forwarder is not None:
        session.writer.flush()
        session.forwarder.close()
    session.writer.close()


def flush_all(timeout: float = 2.0) -> None:
    """Write every live session's pending events (e.g. before ``os._exit``)."""
    for session in list(_sessions.values()):
        try:
            session.writer.flush(timeout)
        except Exception:  # noqa: BLE001, S112 - best effort
            continue


def _close_at_exit() -> None:
    """Drain and close every live session as the process exits.

    A session whose ``LogConfig`` context was never exited (Academy skips the
    uninit callback when its body raises) still gets every event to disk and
    a ``close`` line marked ``at_exit``: nothing was lost. Only a process
    that could not run this (SIGKILL, a crash) leaves its journal unclosed.
    """
    for session in list(_sessions.values()):
        try:
            session.writer.close(2.0, at_exit=True)
        except Exception:  # noqa: BLE001, S112 - exit path: best effort
            continue


def _register_exit_flush() -> None:
    global _exit_registered  # noqa: PLW0603
    if _exit_registered:
        return
    _exit_registered = True
    atexit.register(_close_at_exit)
    # multiprocessing children leave through os._exit and skip atexit, but
    # run these finalizers first
    multiprocessing.util.Finalize(None, _close_at_exit, exitpriority=100)


def _after_fork_in_child() -> None:
    """Give each session a fresh journal in a forked child.

    The parent's writer thread does not exist in the child, and parent and
    child must never append to the same file. The new journal is created on
    the child's first event: a child that execs (``subprocess`` with
    ``preexec_fn``, as Parsl starts its workers) or exits without capturing
    leaves no file and no thread.
    """
    global _lock, _exit_registered  # noqa: PLW0603 - parent's state
    _lock = threading.Lock()
    _exit_registered = False
    for session in _sessions.values():
        writer = session.open_writer(lazy=True)
        session.writer = writer
        session.handler.sink = writer
    if _sessions:
        _register_exit_flush()


if hasattr(os, 'register_at_fork'):
    os.register_at_fork(after_in_child=_after_fork_in_child)
