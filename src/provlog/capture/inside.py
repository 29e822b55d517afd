"""Inside an action: what it logged, printed and warned, per execution.

Attribution follows the execution's asyncio task through
:data:`current_execution`, set on ``execute_start``: tasks the action
creates inherit it, and so do Academy's ``agent_run_sync`` threads once
:mod:`provlog.academy` has them run in the caller's context. Three hooks,
installed while a session wants them and removed with the last:

* log records of any logger at ``level`` (INFO) or above, seen in
  :meth:`logging.Logger.handle`. While an execution runs,
  :meth:`logging.Logger.isEnabledFor` also says yes to such records where
  the host's configuration says no (no level is changed), and a record
  the host would not have created goes no further than provlog: every
  handler still receives exactly what it received without provlog;
* ``sys.stdout`` and ``sys.stderr`` replaced by tees that write through
  unchanged and keep a copy of what an execution wrote;
* ``warnings.showwarning`` wrapped the same way.

Only what runs on the host's thread lives here, and it does little: keep
the record's fields and a frozen snapshot of its arguments and extras.
Formatting, redaction and encoding happen on the writer
(:func:`provlog.capture.encoder.Encoder`). At most :attr:`Limits.records`
records and :attr:`Limits.chars` characters of text are kept per
execution; what is cut is counted.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from provlog.capture.values import describe
from provlog.capture.values import freeze
from provlog.capture.values import Frozen
from provlog.capture.values import json_safe
from provlog.capture.values import REDACTED
from provlog.capture.values import Scrubber
from provlog.capture.values import ValuePolicy

__all__ = [
    'Inside',
    'Limits',
    'begin',
    'current_agent',
    'current_execution',
    'encode',
    'end',
    'install',
    'run_timed',
]

#: The action tag of the execution running in the current asyncio task.
#: Set on ``execute_start``; tasks created inside the action inherit it, so a
#: nested call's ``start`` record finds its parent here.
current_execution: contextvars.ContextVar[Any] = contextvars.ContextVar(
    'provlog_current_execution',
    default=None,
)

#: The Academy agent whose runtime runs the current task. Set on the
#: runtime's ``Starting agent`` record; the runtime's listener and action
#: tasks are created afterwards and inherit it.
current_agent: contextvars.ContextVar[Any] = contextvars.ContextVar(
    'provlog_current_agent',
    default=None,
)

#: LogRecord attributes that are not extras.
_STANDARD = frozenset(
    logging.LogRecord('', 0, '', 0, '', (), None).__dict__,
) | {'message', 'asctime', 'taskName'}
_SCALARS = (str, int, float, bool, type(None))
_EXTRA_BUDGET = 200
_MAX_LIVE = 100_000


@dataclass(frozen=True, slots=True)
class Limits:
    """What is kept of one execution's log records, output and warnings."""

    level: int = logging.INFO
    records: int = 100
    chars: int = 64 * 1024
    logs: bool = True
    output: bool = True

    @property
    def wanted(self) -> bool:
        """Whether anything is to be kept at all."""
        return self.logs or self.output


class Inside:
    """What one execution logged, printed and warned, as the host saw it."""

    __slots__ = (
        'chars',
        'cut_chars',
        'cut_records',
        'limits',
        'records',
        'sync_cpu',
    )

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.records: list[tuple[Any, ...]] = []
        self.chars = 0
        self.cut_records = 0
        self.cut_chars = 0
        self.sync_cpu = 0.0

    def _room(self, n: int) -> bool:
        if len(self.records) >= self.limits.records:
            self.cut_records += 1
            return False
        if self.chars + n > self.limits.chars:
            self.cut_chars += n
            return False
        self.chars += n
        return True

    def log(self, record: logging.LogRecord) -> None:
        """Keep a log record's fields; arguments frozen, formatted later."""
        msg = record.msg
        text = msg if type(msg) is str else None
        if not self._room(len(text) if text is not None else 100):
            return
        args: object = record.args
        if args and not (
            type(args) is tuple and all(type(a) in _SCALARS for a in args)
        ):
            args = freeze(args, _EXTRA_BUDGET)
        extra = {
            k: freeze(v, _EXTRA_BUDGET)
            for k, v in record.__dict__.items()
            if k not in _STANDARD and not k.startswith('academy.')
        }
        self.records.append(
            (
                'log',
                record.created,
                record.levelno,
                record.name,
                msg if text is not None else freeze(msg, _EXTRA_BUDGET),
                args,
                extra,
            ),
        )

    def text(self, stream: str, text: str, created: float) -> None:
        """Keep what the execution wrote to ``stream``."""
        if self._room(len(text)):
            self.records.append((stream, created, text))

    def warning(
        self,
        message: object,
        category: type[Warning],
        filename: str,
        lineno: int,
        created: float,
    ) -> None:
        """Keep a warning the execution raised."""
        if self._room(100):
            args = getattr(message, 'args', None)
            if type(args) is tuple and len(args) == 1 and type(args[0]) is str:
                message = args[0]  # the text a warnings.warn(str) shows
            self.records.append(
                (
                    'warning',
                    created,
                    message
                    if type(message) is str
                    else freeze(message, _EXTRA_BUDGET),
                    getattr(category, '__name__', '?'),
                    str(filename)[:500],
                    lineno,
                ),
            )

    def data(self) -> dict[str, Any]:
        """What to attach to the execution's end event."""
        out: dict[str, Any] = {
            'records': self.records,
            'cut_records': self.cut_records,
            'cut_chars': self.cut_chars,
        }
        if self.sync_cpu:
            out['sync_cpu'] = self.sync_cpu
        return out


_live: dict[Any, Inside] = {}
_limits: Limits | None = None


def begin(tag: object) -> None:
    """Start collecting for the execution ``tag`` (on ``execute_start``)."""
    limits = _limits
    if limits is not None and len(_live) < _MAX_LIVE:
        _live[tag] = Inside(limits)


def end(tag: object) -> dict[str, Any] | None:
    """Stop collecting for ``tag``; what it logged, printed and warned."""
    inside = _live.pop(tag, None)
    if inside is None or not (inside.records or inside.sync_cpu):
        return None
    return inside.data()


def run_timed(function: Callable[..., Any], /, *args: Any, **kw: Any) -> Any:
    """Run ``function``; add this thread's CPU time to the execution's.

    Used for Academy's ``agent_run_sync``: ``sync_cpu`` of the execution
    whose context the function runs in.
    """
    began = time.thread_time()
    try:
        return function(*args, **kw)
    finally:
        inside = _current()
        if inside is not None:
            inside.sync_cpu += time.thread_time() - began


def _current() -> Inside | None:
    tag = current_execution.get()
    return None if tag is None else _live.get(tag)


# ---------------------------------------------------------------- hooks

_original_handle = logging.Logger.handle
_original_enabled = logging.Logger.isEnabledFor


def _is_enabled_for(self: logging.Logger, level: int) -> bool:
    """``Logger.isEnabledFor``: also yes inside an execution, at ``level``."""
    if self.disabled:
        return False
    try:
        enabled = self._cache[level]  # type: ignore[attr-defined]
    except KeyError:
        enabled = _original_enabled(self, level)
    if enabled:
        return True
    limits = _limits
    return (
        limits is not None
        and level >= limits.level
        and self.manager.disable < level
        and current_execution.get() is not None
    )


def _handle(self: logging.Logger, record: logging.LogRecord) -> None:
    """``Logger.handle``: keep an execution's records, pass on the host's.

    Below the capture level nothing is done: such a record exists because
    the host's configuration let it.
    """
    limits = _limits
    if limits is not None and record.levelno >= limits.level:
        try:
            tag = current_execution.get()
            if tag is not None:
                inside = _live.get(tag)
                if inside is not None:
                    inside.log(record)
                if not _original_enabled(self, record.levelno):
                    return  # created only because an execution wanted it
        except Exception:  # noqa: BLE001, S110 - never break host logging
            pass
    _original_handle(self, record)


class _Tee:
    """A text stream that writes through and keeps an execution's copy."""

    __slots__ = ('_name', '_real')

    def __init__(self, real: Any, name: str) -> None:
        self._real = real
        self._name = name

    def write(self, text: str) -> int:
        """Write ``text`` to the real stream, unchanged; keep a copy."""
        n: int = self._real.write(text)
        try:
            inside = _current()
            if inside is not None and type(text) is str:
                inside.text(self._name, text, time.time())
        except Exception:  # noqa: BLE001, S110 - the host's write went through
            pass
        return n

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


_original_showwarning = warnings.showwarning


def _showwarning(  # noqa: PLR0917 - warnings' own signature
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    try:
        inside = _current()
        if inside is not None:
            inside.warning(message, category, filename, lineno, time.time())
    except Exception:  # noqa: BLE001, S110 - the warning is still shown
        pass
    _shown(message, category, filename, lineno, file, line)


_shown: Callable[..., None] = _original_showwarning
_lock = threading.Lock()
_users = 0


def install(limits: Limits) -> Callable[[], None]:
    """Hook logging, the standard streams and warnings for ``limits``.

    Reference-counted: the last removal puts back everything that is still
    provlog's (a stream or hook the host replaced meanwhile is left alone).

    Returns:
        The removal callback.
    """
    global _limits, _users  # noqa: PLW0603 - process-wide hooks
    with _lock:
        _users += 1
        _limits = limits
        if _users == 1:
            _hook(limits)
    done = threading.Event()

    def remove() -> None:
        global _limits, _users  # noqa: PLW0603
        if done.is_set():
            return
        done.set()
        with _lock:
            _users -= 1
            if not _users:
                _limits = None
                _live.clear()
                _unhook()

    return remove


def _hook(limits: Limits) -> None:
    global _shown  # noqa: PLW0603
    if limits.logs:
        logging.Logger.handle = _handle  # type: ignore[method-assign]
        logging.Logger.isEnabledFor = _is_enabled_for  # type: ignore[method-assign]
    if limits.output:
        _tee_streams()
        _shown = warnings.showwarning
        warnings.showwarning = _showwarning


def _unhook() -> None:
    if logging.Logger.handle is _handle:
        logging.Logger.handle = _original_handle  # type: ignore[method-assign]
    if logging.Logger.isEnabledFor is _is_enabled_for:
        logging.Logger.isEnabledFor = _original_enabled  # type: ignore[method-assign]
    for name in ('stdout', 'stderr'):
        stream = getattr(sys, name)
        if isinstance(stream, _Tee):
            setattr(sys, name, stream._real)
    if warnings.showwarning is _showwarning:
        warnings.showwarning = _shown


def _tee_streams() -> None:
    for name in ('stdout', 'stderr'):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, _Tee):
            setattr(sys, name, _Tee(stream, name))


# ------------------------------------------------------- on the writer

_LEVELS = {10: 'DEBUG', 20: 'INFO', 30: 'WARNING', 40: 'ERROR', 50: 'CRITICAL'}
_MAX_MESSAGE = 2000


def encode(
    data: dict[str, Any],
    policy: ValuePolicy,
    scrubber: Scrubber,
) -> dict[str, Any]:
    """The journal form of :meth:`Inside.data`, on the writer thread.

    Messages are formatted here, from the record's frozen arguments; every
    text is made JSON-safe, cut, and scrubbed of the process's secrets;
    extras are redacted by name like keyword arguments.
    """
    out: list[dict[str, Any]] = []
    for item in data['records']:
        kind = item[0]
        if kind == 'log':
            _, created, levelno, name, msg, args, extra = item
            entry: dict[str, Any] = {
                'k': 'log',
                't': created,
                'level': _LEVELS.get(levelno, f'Level {levelno}'),
                'logger': _clean(str(name), scrubber),
                'msg': _clean(_format(msg, args, policy, scrubber), scrubber),
            }
            if extra:
                entry['extra'] = {
                    _clean(str(k), scrubber): _preview(
                        v, policy, scrubber, secret=policy.is_secret(k)
                    )
                    for k, v in extra.items()
                }
            out.append(entry)
        elif kind == 'warning':
            _, created, message, category, filename, lineno = item
            out.append(
                {
                    'k': 'warning',
                    't': created,
                    'category': _clean(category, scrubber),
                    'msg': _clean(_text(message, policy, scrubber), scrubber),
                    'file': _clean(filename, scrubber),
                    'line': lineno if type(lineno) is int else None,
                },
            )
        elif out and out[-1]['k'] == kind:  # consecutive writes: one entry
            out[-1]['text'] += item[2]
        else:
            out.append({'k': kind, 't': item[1], 'text': item[2]})
    for entry in out:
        if 'text' in entry:
            entry['text'] = scrubber.scrub(json_safe(entry['text']))
    encoded: dict[str, Any] = {
        'records': out,
        'cut_records': data['cut_records'],
        'cut_chars': data['cut_chars'],
    }
    if data.get('sync_cpu'):
        encoded['sync_cpu'] = round(data['sync_cpu'], 6)
    return encoded


def _clean(text: str, scrubber: Scrubber) -> str:
    text = json_safe(text[: _MAX_MESSAGE + 1])
    if len(text) > _MAX_MESSAGE:
        text = text[:_MAX_MESSAGE] + '\u2026'
    return scrubber.scrub(text)


def _preview(
    value: object,
    policy: ValuePolicy,
    scrubber: Scrubber,
    *,
    secret: bool = False,
) -> str:
    described = describe(
        value,
        policy,
        secret=secret,
        members=False,
        scrubber=scrubber,
    )
    if described.get('redacted') and secret:
        return REDACTED
    preview = described.get('preview')
    if preview is None:
        return f'<{described["type"]}>'
    return str(preview)


def _text(value: object, policy: ValuePolicy, scrubber: Scrubber) -> str:
    if type(value) is str:
        return value
    return _preview(value, policy, scrubber)


def _format(
    msg: object,
    args: object,
    policy: ValuePolicy,
    scrubber: Scrubber,
) -> str:
    """``msg % args`` as logging would, from what the host thread kept."""
    text = _text(msg, policy, scrubber)
    if not args:
        return text
    if isinstance(args, tuple):
        plain: Any = args
    elif isinstance(args, Frozen) and args.kind == 'seq':
        plain = tuple(_preview(a, policy, scrubber) for a in args.items)
    else:
        plain = _preview(args, policy, scrubber)
    try:
        return str(text % plain)
    except Exception:  # noqa: BLE001 - as logging shows a bad format
        return f'{text} {plain!r}'
