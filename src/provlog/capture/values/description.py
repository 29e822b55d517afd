"""What the journal stores of a value: type, size, hash, bounded preview.

:func:`describe` runs on the background writer. It redacts secrets
(secret-looking keys, field names, key-value pairs, values already
redacted in this process), computes the content hash, and builds the
bounded preview that goes to disk, all without expanding shared
references: each distinct node is digested once.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from typing import Any

from provlog.capture.values.digest import DECIMAL_INT_BITS
from provlog.capture.values.digest import pair_secret
from provlog.capture.values.digest import scalar_bytes
from provlog.capture.values.digest import SECRET_NODE
from provlog.capture.values.digest import Walker
from provlog.capture.values.plans import qualified_name
from provlog.capture.values.redaction import REDACTED
from provlog.capture.values.redaction import Scrubber
from provlog.capture.values.redaction import ValuePolicy
from provlog.capture.values.snapshot import Frozen
from provlog.capture.values.snapshot import Opaque
from provlog.capture.values.text import json_escape
from provlog.capture.values.text import json_safe

__all__ = ['describe']

_JSON_SAFE_INT = 2**53


class _Full(Exception):  # noqa: N818 - control flow, not an error
    """The preview reached its length bound."""


class _Preview:
    """Compact JSON-like text of a frozen value, built up to a bound."""

    __slots__ = ('left', 'out', 'walker')

    def __init__(self, walker: Walker, limit: int) -> None:
        self.walker = walker
        self.left = limit + 1
        self.out: list[str] = []

    def put(self, text: str) -> None:
        n = len(text)
        if n >= self.left:
            self.out.append(text[: self.left])
            self.left = 0
            raise _Full
        self.out.append(text)
        self.left -= n

    def text(self, value: object, *, secret: bool = False) -> str:
        try:
            if secret:
                self.put(REDACTED)
            elif isinstance(value, Opaque):
                self.put(value.text)
            elif type(value) is str:
                self.put(json_safe(value[: self.left]))
            elif type(value) is int or type(value) is float:
                self.put(_leaf_text(value, self.left))
            else:
                self.value(value, secret=False)
        except _Full:
            pass
        return ''.join(self.out)

    def string(self, text: str) -> None:
        self.put(_json_str(text[: self.left]))

    def key(self, key: object) -> None:
        if type(key) is str:
            self.string(key)
        else:
            self.string(_leaf_text(key, self.left))

    def value(self, value: object, *, secret: bool) -> None:
        walker = self.walker
        cls = type(value)
        if secret or (
            (cls is str or cls is bytes)  # the only values a scrubber knows
            and walker.scrubber is not None
            and walker.scrubber.known(value)
        ):
            self.string(REDACTED)
            return
        if not isinstance(value, Frozen) or value.kind == 'blob':
            leaf = _leaf_json(value, self.left)
            self.put(leaf)
            return
        policy = walker.policy
        if value.kind in {'map', 'obj'}:
            self.put('{')
            for n, (k, v) in enumerate(value.items):
                if n:
                    self.put(',')
                self.key(k)
                self.put(':')
                self.value(
                    v, secret=policy is not None and policy.is_secret(k)
                )
            self.put('}')
            return
        if pair_secret(value, policy):
            self.put('[')
            self.value(value.items[0], secret=False)
            self.put(',')
            self.string(REDACTED)
            self.put(']')
            return
        items = value.items
        if value.kind == 'set':
            items = tuple(sorted(items, key=lambda i: walker.node(i).digest))
        self.put('[')
        for n, item in enumerate(items):
            if n:
                self.put(',')
            self.value(item, secret=False)
        self.put(']')


def _json_str(text: str) -> str:
    return '"' + json_escape(json_safe(text)) + '"'


def _leaf_text(value: object, limit: int) -> str:  # noqa: PLR0911
    """Plain text of a leaf value, at most about ``limit`` chars."""
    if type(value) is str:
        return json_safe(value[:limit])
    if isinstance(value, Opaque):
        return value.text[:limit]
    if type(value) is bytes:
        return repr(value[:limit])
    if isinstance(value, Frozen) and value.kind == 'blob':
        head = value.items[0][:limit]
        return f'{value.type_name}({head!r})'
    if type(value) is int:
        if value.bit_length() > DECIMAL_INT_BITS:
            return f'<int of {value.bit_length()} bits>'
        return str(value)
    if type(value) is float:
        return repr(value)
    return repr(value) if type(value) is complex else str(value)


def _leaf_json(value: object, limit: int) -> str:
    """JSON text of a leaf inside a container preview."""
    if value is None:
        return 'null'
    if value is True:
        return 'true'
    if value is False:
        return 'false'
    cls = type(value)
    if cls is int and value.bit_length() <= DECIMAL_INT_BITS:  # type: ignore[attr-defined]
        return str(value)
    if cls is float and math.isfinite(value):  # type: ignore[arg-type]
        return repr(value)
    return _json_str(_leaf_text(value, limit))


def _plain_literal(value: object, max_chars: int) -> bool:
    """Whether ``value`` can stand as ``prov:value`` in any JSON reader."""
    if isinstance(value, bool):
        return True
    if type(value) is int:
        return -_JSON_SAFE_INT <= value <= _JSON_SAFE_INT
    if type(value) is float:
        return math.isfinite(value)
    return (
        type(value) is str
        and len(value) <= max_chars
        and json_safe(value) is value
    )


_SCALAR_PREVIEW: dict[type, Callable[[Any], str]] = {
    int: str,
    float: repr,
    bool: lambda v: 'true' if v else 'false',
    type(None): lambda v: 'null',
}


def _describe_scalar(
    value: object, policy: ValuePolicy, scrubber: Scrubber | None
) -> dict[str, Any] | None:
    """The common case (a number, a flag, a short string) without detours."""
    cls = type(value)
    if cls is str:
        text: str = value  # type: ignore[assignment]
        if (
            len(text) > policy.preview_chars
            or json_safe(text) is not text
            or (
                scrubber is not None
                and (scrubber.known(text) or scrubber.scrub(text) != text)
            )
        ):
            return None
        raw = text.encode('utf-8')
        encoded = b's%d:' % len(raw) + raw
        preview = text
    else:
        render = _SCALAR_PREVIEW.get(cls)
        if render is None or (
            cls is int and value.bit_length() > 64  # type: ignore[attr-defined]  # noqa: PLR2004
        ):
            return None
        encoded = scalar_bytes(value)  # type: ignore[assignment]
        preview = render(value)
    if len(encoded) > policy.max_bytes:
        return None
    out: dict[str, Any] = {
        'type': cls.__name__,
        'size': len(encoded),
        'sha256': hashlib.sha256(encoded).hexdigest(),
    }
    if policy.capture:
        out['preview'] = preview
        if value is not None and _plain_literal(value, policy.preview_chars):
            out['value'] = value
    return out


def describe(  # noqa: C901, PLR0912
    value: object,
    policy: ValuePolicy,
    *,
    secret: bool = False,
    members: bool = True,
    scrubber: Scrubber | None = None,
    walker: Walker | None = None,
) -> dict[str, Any]:
    """Describe a frozen value as the journal stores it.

    Args:
        value: Output of :func:`freeze`.
        policy: What may be kept.
        secret: The value sits under a secret-looking name and is masked whole.
        members: Describe the elements of a small container too.
        scrubber: Learns every redacted value and masks the values it knows
            (``None``: neither).
        walker: Shares digests between the values of one event.

    Returns:
        A JSON-ready dict: ``type``, ``size``, ``sha256``, and where allowed
        ``preview``, ``value`` (small scalars), ``members``, and the flags
        ``redacted``, ``capped``, ``truncated``, ``opaque``. Every string in
        it is JSON-safe and every integer within 64 bits.
    """
    if not secret:
        fast = _describe_scalar(value, policy, scrubber)
        if fast is not None:
            return fast
    walker = walker or Walker(policy, scrubber)
    type_name = (
        value.type_name
        if isinstance(value, (Frozen, Opaque))
        else qualified_name(type(value))
    )
    node = walker.child(value, secret=secret)
    out: dict[str, Any] = {
        'type': type_name,
        'size': min(node.size, _JSON_SAFE_INT),
        'sha256': node.digest.hex(),
    }
    if node.redacted:
        out['redacted'] = True
    if isinstance(value, Frozen):
        out['length'] = min(value.length, _JSON_SAFE_INT)
        if value.truncated:
            out['truncated'] = True
    elif isinstance(value, Opaque):
        out['opaque'] = True
    if node.size > policy.max_bytes:
        out['capped'] = True
        return out
    masked = node is SECRET_NODE
    if policy.capture:
        room = policy.preview_chars
        if scrubber is not None:
            room += scrubber.longest
        preview = _Preview(walker, room).text(value, secret=masked)
        if scrubber is not None:
            clean = scrubber.scrub(preview)
            if clean != preview:
                preview = clean
                out['redacted'] = True
        if len(preview) > policy.preview_chars:
            preview = preview[: policy.preview_chars - 1] + '\u2026'
        out['preview'] = preview
        if (
            not masked
            and not out.get('redacted')
            and _plain_literal(value, policy.preview_chars)
        ):
            out['value'] = value
        elif masked:
            out['value'] = REDACTED
    if (
        members
        and not masked
        and isinstance(value, Frozen)
        and value.kind != 'blob'
        and not value.truncated
        and 0 < value.length <= policy.max_members
    ):
        out['members'] = _members(value, policy, scrubber, walker)
    return out


def _members(
    value: Frozen,
    policy: ValuePolicy,
    scrubber: Scrubber | None,
    walker: Walker,
) -> list[list[Any]]:
    out: list[list[Any]] = []
    if value.kind in {'map', 'obj'}:
        for k, v in value.items:
            desc = describe(
                v,
                policy,
                secret=policy.is_secret(k),
                members=False,
                scrubber=scrubber,
                walker=walker,
            )
            out.append([json_safe(_leaf_text(k, 1000)), desc])
    else:
        items = value.items
        if value.kind == 'set':
            items = tuple(sorted(items, key=lambda i: walker.node(i).digest))
        for n, item in enumerate(items):
            desc = describe(
                item, policy, members=False, scrubber=scrubber, walker=walker
            )
            out.append([str(n), desc])
    if scrubber is not None:
        for member in out:
            member[0] = scrubber.scrub(member[0])
    return out
