"""Where an execution ran and what it cost: one cheap sample per record.

On ``execute_start`` and on each ``execute_*`` end record the handler takes
a :func:`sample` on the emitting thread (Academy logs both from the agent's
event loop): the thread's identifier and name (already on the record), the
process's resource usage (``getrusage(RUSAGE_SELF)``: user and system CPU
seconds, peak resident set size) and the thread's own CPU time
(``time.thread_time``). That is two system calls, about a microsecond in
all; nothing is formatted on the host. The writer turns a sample into the
journal's ``res`` object with :func:`usage`.

What the numbers mean (``docs/model.md``): process CPU counts every thread
of the process over the execution, including concurrent executions and
work the action ran in other threads (``agent_run_sync``); the thread CPU
is the event loop's thread, so for an async action it includes the other
tasks the loop ran meanwhile. ``getrusage`` gives the peak resident set
size, not the current one (which needs a ``/proc`` read: not cheap).
"""

from __future__ import annotations

import sys
import time
from typing import Any

__all__ = ['Sample', 'sample', 'usage']

#: ``(thread ident, thread name, struct_rusage or None, thread CPU s)``
Sample = tuple[Any, Any, Any, float]

if sys.platform != 'win32':
    import resource

    _getrusage: Any = resource.getrusage
    _SELF = resource.RUSAGE_SELF
else:  # pragma: no cover - no getrusage: thread CPU time only
    _getrusage = None
    _SELF = 0
_thread_time = time.thread_time
#: ``ru_maxrss`` is in bytes on macOS and in KiB on Linux and the BSDs.
_RSS_UNIT = 1 if sys.platform == 'darwin' else 1024


def sample(record: Any) -> Sample:
    """Take the usage sample for ``record`` (on the emitting thread)."""
    return (
        record.thread,
        record.threadName,
        None if _getrusage is None else _getrusage(_SELF),
        _thread_time(),
    )


def usage(raw: object) -> dict[str, Any] | None:
    """The journal form (``res``) of a :func:`sample`, on the writer thread.

    Returns:
        ``tid`` and ``thread`` (the emitting thread), ``cpu_user`` and
        ``cpu_sys`` (the process's CPU seconds so far), ``maxrss`` (the
        process's peak resident set size so far, in bytes) and
        ``thread_cpu`` (the thread's CPU seconds so far); ``None`` for
        anything that is not a sample.
    """
    if not (isinstance(raw, tuple) and len(raw) == 4):  # noqa: PLR2004
        return None
    tid, name, rusage, thread_cpu = raw
    out: dict[str, Any] = {
        'tid': tid if type(tid) is int else None,
        'thread': name if type(name) is str else None,
        'thread_cpu': round(float(thread_cpu), 6),
    }
    if rusage is not None:
        out['cpu_user'] = round(float(rusage.ru_utime), 6)
        out['cpu_sys'] = round(float(rusage.ru_stime), 6)
        out['maxrss'] = int(rusage.ru_maxrss) * _RSS_UNIT
    return out
