"""Journal text as the views show it: bounded, and only ever text.

Journals hold whatever a workflow (or a damaged file) put there: a name
of a megabyte, a list where a string belongs, a list nested a thousand
deep. The report, the Perfetto trace and the OTLP export write such
fields through :func:`text`, which keeps strings (cut to a limit, the cut
marked) and numbers, and writes anything else as a fixed placeholder
(``<list>``, ``<object>``), so no view calls ``str()`` on an object from a
journal and no field can make a view large.
"""

from __future__ import annotations

__all__ = [
    'HASH_CHARS',
    'ID_CHARS',
    'MESSAGE_CHARS',
    'NAME_CHARS',
    'TRACEBACK_CHARS',
    'cut',
    'text',
]

#: Names, types, labels, hosts, threads: what a view shows in one line.
NAME_CHARS = 200
#: Identifiers (uids, tags, run and process ids), which are short.
ID_CHARS = 100
#: A content hash (a SHA-256 hex digest is 64 characters).
HASH_CHARS = 64
#: An error message.
MESSAGE_CHARS = 2000
#: A traceback, the end kept (where the error was raised).
TRACEBACK_CHARS = 16_000

_ELLIPSIS = '\u2026'
_PLACEHOLDERS: dict[type, str] = {list: '<list>', dict: '<object>'}


def cut(value: str, limit: int, *, tail: bool = False) -> str:
    """``value`` within ``limit`` characters, marked where it was cut.

    ``tail`` keeps the end instead of the start.
    """
    if len(value) <= limit:
        return value
    if tail:
        return _ELLIPSIS + value[len(value) - limit + 1 :]
    return value[: limit - 1] + _ELLIPSIS


def text(
    value: object, limit: int, *, tail: bool = False, default: str = ''
) -> str:
    """A journal field as text of at most ``limit`` characters.

    A string is cut (:func:`cut`); a number is written as JSON writes it;
    None is ``default``; anything else is a placeholder naming its JSON
    type (``<list>``, ``<object>``, ``<bool>``), never its content.
    """
    if isinstance(value, str):
        return cut(value, limit, tail=tail)
    if value is None:
        return default
    if isinstance(value, bool):
        return '<bool>'
    if isinstance(value, (int, float)):
        try:
            return cut(repr(value), limit)
        except ValueError:  # an int of more digits than Python writes
            return '<number>'
    return _PLACEHOLDERS.get(type(value), '<value>')
