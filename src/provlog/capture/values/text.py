"""JSON-safe text: strings any JSON encoder takes as they are."""

from __future__ import annotations

__all__ = ['json_escape', 'json_safe']


def json_safe(text: str) -> str:
    """``text`` with lone surrogates escaped, so any JSON encoder takes it."""
    if text.isascii():
        return text
    try:
        text.encode('utf-8')
    except UnicodeEncodeError:
        return text.encode('utf-8', 'backslashreplace').decode('utf-8')
    return text


def json_escape(text: str) -> str:
    """``text`` escaped as inside a JSON string, without the quotes."""
    import orjson  # noqa: PLC0415 - keep import cost off the module load

    return orjson.dumps(text).decode()[1:-1]
