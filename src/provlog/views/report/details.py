"""What the details pane shows of one action, compact and bounded.

Journals hold whatever the workflow logged and returned; a report must
stay small enough to open. Every text is cut here to a fixed size (the cut
says so), and the log lines of all actions share one budget, handed to
failures first, so a chatty run cannot make the report unreadable.
"""

from __future__ import annotations

from typing import Any

from provlog import clip
from provlog.clip import cut
from provlog.mapping.model import iri_segment

__all__ = [
    'LOG_BUDGET',
    'LOG_RECORDS',
    'LOG_RECORD_CHARS',
    'PREVIEW_CHARS',
    'LogBudget',
    'cpu',
    'cut',
    'error',
    'inputs',
    'value',
]

#: Characters of a value's preview kept in the report.
PREVIEW_CHARS = 200
#: Characters of an error message, and of a traceback (its end is kept).
MESSAGE_CHARS = 2000
TRACEBACK_CHARS = 8000
#: Log records kept per action, and characters per record.
LOG_RECORDS = 40
LOG_RECORD_CHARS = 500
#: Characters of log text in the whole report.
LOG_BUDGET = 2_000_000

_FLAGS = ('redacted', 'capped', 'truncated', 'opaque')


def value(desc: object) -> dict[str, Any] | None:
    """A value description as the page shows it: type, preview, hash.

    Keys: ``t`` type, ``p`` preview, ``h`` sha256, ``n`` size in bytes,
    ``l`` length, ``f`` flags (``redacted``, ``capped``, ``truncated``,
    ``opaque``, and ``cut`` when the preview was cut here).
    """
    if not isinstance(desc, dict):
        return None
    out: dict[str, Any] = {}
    for key, short, limit in (
        ('type', 't', PREVIEW_CHARS),
        ('sha256', 'h', clip.HASH_CHARS),
    ):
        if isinstance(desc.get(key), str):
            out[short] = cut(desc[key], limit)
    for key, short in (('size', 'n'), ('length', 'l')):
        if isinstance(desc.get(key), int) and not isinstance(
            desc.get(key), bool
        ):
            out[short] = desc[key]
    flags = [f for f in _FLAGS if desc.get(f) is True]
    preview = desc.get('preview')
    if isinstance(preview, str):
        out['p'] = cut(preview, PREVIEW_CHARS)
        if len(preview) > PREVIEW_CHARS:
            flags.append('cut')
    if flags:
        out['f'] = flags
    return out


def inputs(start: dict[str, Any] | None) -> tuple[list[Any], dict[str, int]]:
    """The arguments of a ``start`` event, and their index by IRI suffix.

    Returns:
        ``[name, value]`` pairs, positional first (``arg0``, ...), then
        keywords; and each input's index keyed by the suffix the PROV
        model gives its entity (``arg/0``, ``kwarg/<name>``), so that
        derivations found in the graph can point at an input.
    """
    found: list[Any] = []
    index: dict[str, int] = {}
    if start is None:
        return found, index
    args = start.get('args')
    if isinstance(args, list):
        for n, desc in enumerate(args):
            index[f'arg/{n}'] = len(found)
            found.append([f'arg{n}', value(desc)])
    kwargs = start.get('kwargs')
    if isinstance(kwargs, dict):
        for key, desc in kwargs.items():
            if not isinstance(key, str):  # pragma: no cover - JSON keys
                continue
            index[f'kwarg/{iri_segment(key)}'] = len(found)
            found.append([cut(key, PREVIEW_CHARS), value(desc)])
    return found, index


def error(err: dict[str, Any] | None) -> dict[str, str] | None:
    """An execution's error: ``type``, ``message``, ``traceback``, cut."""
    if err is None:
        return None
    out = {}
    for key, limit in (
        ('type', PREVIEW_CHARS),
        ('message', MESSAGE_CHARS),
        ('traceback', TRACEBACK_CHARS),
    ):
        text = err.get(key)
        if isinstance(text, str):
            out[key] = cut(text, limit, tail=key == 'traceback')
    return out


def _number(value: object) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def cpu(
    start: dict[str, Any] | None, end: dict[str, Any] | None
) -> dict[str, float]:
    """What an execution cost, from the ``res`` samples at its two ends.

    Keys (each only when both samples have it): ``cpu`` the process's CPU
    seconds (user + system) over the execution, when both ends were
    journalled by one process; ``thread_cpu`` the thread's, when one thread
    ran both ends; ``maxrss`` the process's peak resident bytes at the end.
    """
    before = start.get('res') if start is not None else None
    after = end.get('res') if end is not None else None
    out: dict[str, float] = {}
    if isinstance(after, dict) and _number(after.get('maxrss')) is not None:
        out['maxrss'] = after['maxrss']
    if not (isinstance(before, dict) and isinstance(after, dict)):
        return out
    if start is None or end is None:  # pragma: no cover - typing only
        return out
    if start.get('_process') != end.get('_process'):
        return out
    spent = [_delta(before, after, key) for key in ('cpu_user', 'cpu_sys')]
    if spent[0] is not None and spent[1] is not None:
        out['cpu'] = round(spent[0] + spent[1], 6)
    thread = _delta(before, after, 'thread_cpu')
    if thread is not None and before.get('tid') == after.get('tid'):
        out['thread_cpu'] = round(thread, 6)
    return out


def _delta(
    before: dict[str, Any], after: dict[str, Any], key: str
) -> float | None:
    a, b = _number(before.get(key)), _number(after.get(key))
    return None if a is None or b is None else b - a


class LogBudget:
    """Hands out log lines to actions until the report's budget is spent.

    A record is ``[kind, time since t0, a, b, text]``: for ``log`` records
    ``a`` is the level and ``b`` the logger, for ``warning`` the category
    and ``file:line``; for ``stdout`` and ``stderr`` both are empty.
    """

    __slots__ = ('left', 't0')

    def __init__(self, t0: float, chars: int = LOG_BUDGET) -> None:
        self.t0 = t0
        self.left = chars

    def take(self, inside: object) -> tuple[list[list[Any]], int]:
        """The records of an ``inside`` entry that fit, and how many not."""
        records = inside.get('records') if isinstance(inside, dict) else None
        if not isinstance(records, list):
            return [], 0
        cut_before = (
            inside.get('cut_records') if isinstance(inside, dict) else 0
        )
        missing = cut_before if isinstance(cut_before, int) else 0
        out: list[list[Any]] = []
        for record in records:
            line = self._line(record)
            if line is None:
                continue
            if len(out) >= LOG_RECORDS or self.left <= 0:
                missing += 1
                continue
            self.left -= len(line[4]) + len(line[2]) + len(line[3]) + 16
            out.append(line)
        return out, missing

    def _line(self, record: object) -> list[Any] | None:
        if not isinstance(record, dict):
            return None
        kind = record.get('k')
        t = _number(record.get('t'))
        when = round(t - self.t0, 6) if t is not None else None
        if kind == 'log':
            a, b, text = record.get('level'), record.get('logger'), 'msg'
        elif kind == 'warning':
            a = record.get('category')
            b = ':'.join(
                clip.text(record.get(k), PREVIEW_CHARS, default='?')
                for k in ('file', 'line')
            )
            text = 'msg'
        elif kind in {'stdout', 'stderr'}:
            a, b, text = '', '', 'text'
        else:
            return None
        return [
            kind,
            when,
            clip.text(a, PREVIEW_CHARS),
            clip.text(b, PREVIEW_CHARS),
            clip.text(record.get(text), LOG_RECORD_CHARS),
        ]
