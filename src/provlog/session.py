"""Capture sessions: install the handler in one process, and take it down.

A session is what ``init_logging()`` starts in each process: one journal
file in the run folder, one handler on the ``academy`` logger, and the two
lifecycle loggers raised to DEBUG. It never touches the root logger. Starting
the same run twice in one process shares the session (reference-counted),
and a process that forks gets its own journal in the child.
"""

from __future__ import annotations

import atexit
import logging
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
from provlog.events import Encoder
from provlog.handler import ProvenanceHandler
from provlog.journal import FORMAT_VERSION
from provlog.journal import JournalWriter
from provlog.journal import warn_stderr
from provlog.values import ValuePolicy

__all__ = [
    'CAPTURE_LOGGERS',
    'HANDLER_LOGGER',
    'install_handler',
    'start_session',
]

#: The logger the handler is attached to (never the root logger).
HANDLER_LOGGER = 'academy'

#: Loggers that emit the action lifecycle, raised to DEBUG while capturing.
CAPTURE_LOGGERS = ('academy.handle', 'academy.runtime')

_lock = threading.Lock()
_sessions: dict[str, _Session] = {}


def install_handler(handler: logging.Handler) -> Callable[[], None]:
    """Attach ``handler`` where Academy's lifecycle records reach it.

    Raises :data:`CAPTURE_LOGGERS` to DEBUG and adds the handler to
    :data:`HANDLER_LOGGER`; never touches the root logger.

    Returns:
        A callback that removes the handler and restores the levels.
    """
    saved = {name: logging.getLogger(name).level for name in CAPTURE_LOGGERS}
    for name in CAPTURE_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    logging.getLogger(HANDLER_LOGGER).addHandler(handler)

    def remove() -> None:
        logging.getLogger(HANDLER_LOGGER).removeHandler(handler)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)

    return remove


_exit_registered = False


@dataclass
class _Session:
    run_dir: Path
    run_id: str
    policy: ValuePolicy
    flush_interval: float
    handler: ProvenanceHandler
    writer: JournalWriter
    uninstall: Callable[[], None]
    refs: int = 1
    forwarder: Any = None


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
    flush_interval: float,
) -> JournalWriter:
    process = uuid.uuid4().hex
    host = socket.gethostname()
    path = run_dir / f'{_safe_host()}-{os.getpid()}-{process[:8]}.jsonl'
    header = {
        'e': 'journal',
        'v': FORMAT_VERSION,
        'run': run_id,
        'process': process,
        'host': host,
        'pid': os.getpid(),
        'python': platform.python_version(),
        'academy': _academy_version(),
        'provlog': __version__,
        'argv0': os.path.basename(sys.argv[0]) if sys.argv else None,
        'flush_interval': flush_interval,
        'capture_values': policy.capture,
        'max_value_bytes': policy.max_bytes,
        't': time.time(),
    }
    return JournalWriter(
        path,
        header,
        Encoder(policy),
        flush_interval=flush_interval,
    )


def _start_forwarder(writer: JournalWriter, run_id: str, options: Any) -> Any:
    """Live Flowcept forwarding for this process, or ``None`` if it fails."""
    try:
        from provlog.flowcept import LiveForwarder  # noqa: PLC0415

        def report(tags: list[str]) -> None:
            writer.put(('forwarded', None, time.time(), {'tags': tags}))

        forwarder = LiveForwarder(run_id, options, report)
    except Exception as exc:  # noqa: BLE001 - never break the host
        warn_stderr(f'Flowcept forwarding is off in this process: {exc!r}')
        return None
    writer.observer = forwarder.observe
    return forwarder


def start_session(
    run_dir: Path,
    run_id: str,
    policy: ValuePolicy,
    *,
    flush_interval: float = 0.2,
    forwarding: Any = None,
) -> Callable[[], None]:
    """Start capturing this process's Academy records into ``run_dir``.

    Args:
        run_dir: The run folder; created if missing.
        run_id: Identifier of the run (the LogConfig's ``uuid``).
        policy: What to keep of argument and result values.
        flush_interval: Longest time an event waits in memory.
        forwarding: A :class:`provlog.flowcept.FlowceptForwarding` to
            forward completed calls live (``None``: journal only).

    Returns:
        A callback that ends this use of the session: the last one removes
        the handler, restores the logger levels and drains the journal.
    """
    with _lock:
        session = _sessions.get(run_id)
        if session is not None:
            session.refs += 1
        else:
            writer = _open_writer(run_dir, run_id, policy, flush_interval)
            handler = ProvenanceHandler(
                writer,
                ignore_thread=writer.thread_ident,
                close_sink=False,
            )
            session = _Session(
                run_dir,
                run_id,
                policy,
                flush_interval,
                handler,
                writer,
                install_handler(handler),
            )
            if forwarding is not None:
                session.forwarder = _start_forwarder(
                    writer, run_id, forwarding
                )
            _sessions[run_id] = session
            _register_exit_flush()
    done = threading.Event()

    def stop() -> None:
        if done.is_set():
            return
        done.set()
        _release(run_id)

    return stop


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


def _flush_all() -> None:
    """Drain every live session at interpreter or worker exit.

    A session whose ``LogConfig`` context was never exited (Academy skips the
    uninit callback when the body raises) still gets its events to disk; it
    writes no ``close`` line, so the merge reports the process as not closed.
    """
    for session in list(_sessions.values()):
        try:
            session.writer.flush(2.0)
        except Exception:  # noqa: BLE001, S112 - exit path: best effort
            continue


def _register_exit_flush() -> None:
    global _exit_registered  # noqa: PLW0603
    if _exit_registered:
        return
    _exit_registered = True
    atexit.register(_flush_all)
    # multiprocessing children leave through os._exit and skip atexit, but
    # run these finalizers first
    multiprocessing.util.Finalize(None, _flush_all, exitpriority=100)


def _after_fork_in_child() -> None:
    """Give each session a fresh journal in a forked child.

    The parent's writer thread does not exist in the child, and parent and
    child must never append to the same file.
    """
    global _lock, _exit_registered  # noqa: PLW0603 - parent's state
    _lock = threading.Lock()
    _exit_registered = False
    for session in _sessions.values():
        try:
            writer = _open_writer(
                session.run_dir,
                session.run_id,
                session.policy,
                session.flush_interval,
            )
        except OSError:
            continue
        session.writer = writer
        session.handler.sink = writer
        session.handler.set_ignored_thread(writer.thread_ident)
    if _sessions:
        _register_exit_flush()


if hasattr(os, 'register_at_fork'):
    os.register_at_fork(after_in_child=_after_fork_in_child)
