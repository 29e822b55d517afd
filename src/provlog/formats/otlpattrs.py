"""OTLP attribute objects, and the previews of a call's values.

The previews come from the journals as written: each is cut to
:data:`PREVIEW_CHARS`, and a preview that is not text (a list, an object)
is written as a placeholder (:func:`provlog.clip.text`), never turned into
text.
"""

from __future__ import annotations

from itertools import islice
from typing import Any

from provlog import clip
from provlog.actions.merge import MergedRun
from provlog.vocab import START
from provlog.vocab import SUCCESS

__all__ = [
    'PREVIEW_CHARS',
    'attr',
    'bool_attr',
    'call_values',
    'cut_preview',
    'int_attr',
]

#: The longest argument or result preview an attribute holds.
PREVIEW_CHARS = 256


def attr(key: str, value: str) -> dict[str, Any]:
    """A string attribute."""
    return {'key': key, 'value': {'stringValue': value}}


def int_attr(key: str, value: int) -> dict[str, Any]:
    """An integer attribute (a string in OTLP/JSON: it is 64-bit)."""
    return {'key': key, 'value': {'intValue': str(value)}}


def bool_attr(key: str, value: bool) -> dict[str, Any]:
    """A boolean attribute."""
    return {'key': key, 'value': {'boolValue': value}}


def cut_preview(text: str) -> str:
    """``text`` cut to :data:`PREVIEW_CHARS`."""
    return clip.cut(text, PREVIEW_CHARS)


def _preview(desc: object) -> str:
    preview = desc.get('preview') if isinstance(desc, dict) else None
    return clip.text(preview, PREVIEW_CHARS, default='?')


def call_values(run: MergedRun, tag: str) -> list[dict[str, Any]]:
    """Attributes previewing the arguments and result of a call."""
    action = run.actions.get(tag)
    if action is None:
        return []
    start = action.get(START) or {}
    args, kwargs = start.get('args'), start.get('kwargs')
    # a preview holds at most PREVIEW_CHARS of them, each 1 character
    shown = [
        _preview(d)
        for d in (args[:PREVIEW_CHARS] if isinstance(args, list) else ())
        if isinstance(d, dict)
    ]
    keywords = kwargs.items() if isinstance(kwargs, dict) else ()
    shown += [
        f'{clip.cut(k, PREVIEW_CHARS)}={_preview(d)}'
        for k, d in islice(keywords, PREVIEW_CHARS)
        if isinstance(d, dict)
    ]
    out = (
        [attr('academy.args', cut_preview(', '.join(shown)))] if shown else []
    )
    result = (action.get(SUCCESS) or {}).get('result')
    if not isinstance(result, dict):
        return out
    if 'preview' in result:
        out.append(attr('academy.result', _preview(result)))
    if isinstance(result.get('sha256'), str):
        digest = clip.cut(result['sha256'], clip.HASH_CHARS)
        out.append(attr('academy.result.sha256', digest))
    return out
