"""Argument and result values: snapshot, redact, hash, preview, cap.

Capture happens in two steps so the host pays as little as possible:

1. :func:`freeze` runs on the caller's thread. It copies what it needs of a
   live value into an immutable snapshot (containers become tuples, other
   objects become their type and a bounded ``repr``), so that later
   mutations by the host cannot change what is recorded. It never raises.
2. :func:`describe` runs on the background writer. It redacts secret-looking
   keys, computes the content hash over a canonical encoding, and builds the
   bounded preview that goes to disk.

The canonical encoding is type-tagged and order-stable (dict items sorted by
the encoding of their keys), and lists and tuples encode alike, because a
tuple sent by pickle and a list sent by JSON are the same value to a user.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from dataclasses import field
from typing import Any

__all__ = [
    'DEFAULT_REDACT_KEYS',
    'REDACTED',
    'Frozen',
    'Opaque',
    'ValuePolicy',
    'canonical_bytes',
    'describe',
    'freeze',
    'hash_value',
]

#: Marker that replaces a redacted value before anything is hashed or written.
REDACTED = '[REDACTED]'

#: Substrings that mark a mapping key or keyword argument as secret.
DEFAULT_REDACT_KEYS: frozenset[str] = frozenset(
    {
        'password',
        'passwd',
        'passphrase',
        'secret',
        'token',
        'api_key',
        'apikey',
        'access_key',
        'private_key',
        'credential',
        'authorization',
        'auth_header',
        'cookie',
        'session_key',
    },
)

_JSON_SAFE_INT = 2**53
_SCALARS = (str, int, float, bool, bytes, type(None), complex)
_MAX_REPR = 1000


@dataclass(frozen=True, slots=True)
class Opaque:
    """A value that is not plain data: its type name and a bounded repr."""

    type_name: str
    text: str


@dataclass(frozen=True, slots=True)
class Frozen:
    """An immutable snapshot of a container, taken on the caller's thread.

    ``kind`` is ``'seq'`` or ``'map'``; ``items`` holds frozen elements (for a
    map, frozen ``(key, value)`` pairs); ``length`` is the container's real
    length, which is more than ``len(items)`` when ``truncated``.
    """

    kind: str
    type_name: str
    items: tuple[Any, ...]
    length: int
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class ValuePolicy:
    """What the writer may keep of a value.

    Attributes:
        capture: Keep a preview of the value (else only type, size, hash).
        max_bytes: Values whose canonical encoding is larger are kept as
            type, size and hash only.
        preview_chars: Length bound of the preview text.
        redact_keys: Lower-case substrings that mark a key as secret.
        max_members: Containers up to this length become collections with
            one member entity per element.
    """

    capture: bool = True
    max_bytes: int = 64 * 1024
    preview_chars: int = 200
    redact_keys: frozenset[str] = field(default=DEFAULT_REDACT_KEYS)
    max_members: int = 32

    def is_secret(self, key: object) -> bool:
        """Return whether a mapping key or keyword name looks like a secret."""
        if not isinstance(key, str):
            return False
        low = key.lower().replace('-', '_')
        return any(pattern in low for pattern in self.redact_keys)


def _type_name(value: object) -> str:
    cls = type(value)
    module = cls.__module__
    if module in {'builtins', '__main__', '__mp_main__'}:
        return cls.__qualname__
    return f'{module}.{cls.__qualname__}'


def _safe_repr(value: object) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # noqa: BLE001 - user __repr__ may raise anything
        return f'<unrepresentable {_type_name(value)}: {type(exc).__name__}>'
    if not isinstance(text, str):
        return f'<unrepresentable {_type_name(value)}>'
    return text if len(text) <= _MAX_REPR else text[:_MAX_REPR] + '\u2026'


def freeze(value: object, budget: int = 10_000) -> object:
    """Snapshot ``value`` so later mutation by the host cannot change it.

    Scalars are immutable and kept as they are. Lists, tuples, sets and
    dicts are copied into :class:`Frozen` up to ``budget`` elements in all;
    cycles and anything past the budget are cut and marked truncated. Any
    other object becomes an :class:`Opaque` with its type and bounded repr.
    Never raises.
    """
    state = [budget]
    try:
        return _freeze(value, state, set())
    except Exception as exc:  # noqa: BLE001 - never raise into the host
        return Opaque(_type_name(value), f'<snapshot failed: {exc!r}>')


def _freeze(value: object, budget: list[int], active: set[int]) -> object:
    if isinstance(value, _SCALARS) and type(value) in _SCALARS:
        return value
    if isinstance(value, (list, tuple, set, frozenset, dict)):
        key = id(value)
        if key in active:
            return Opaque(_type_name(value), '<cycle>')
        active.add(key)
        try:
            return _freeze_container(value, budget, active)
        finally:
            active.discard(key)
    return Opaque(_type_name(value), _safe_repr(value))


def _freeze_container(
    value: list[Any]
    | tuple[Any, ...]
    | set[Any]
    | frozenset[Any]
    | dict[Any, Any],
    budget: list[int],
    active: set[int],
) -> Frozen:
    length = len(value)
    take = min(length, max(budget[0], 0))
    budget[0] -= take
    items: list[Any] = []
    if isinstance(value, dict):
        for n, (k, v) in enumerate(value.items()):
            if n >= take:
                break
            items.append(
                (_freeze(k, budget, active), _freeze(v, budget, active)),
            )
        kind = 'map'
    else:
        source = value
        if isinstance(value, (set, frozenset)):
            source = sorted(value, key=_safe_repr)
        for n, v in enumerate(source):
            if n >= take:
                break
            items.append(_freeze(v, budget, active))
        kind = 'seq'
    return Frozen(kind, _type_name(value), tuple(items), length, take < length)


# ---------------------------------------------------------------- canonical


def canonical_bytes(value: object) -> bytes:
    """Return the canonical, type-tagged encoding of a frozen value."""
    out: list[bytes] = []
    _encode(value, out)
    return b''.join(out)


def _encode(value: object, out: list[bytes]) -> None:  # noqa: C901, PLR0912
    if value is None:
        out.append(b'n')
    elif value is True:
        out.append(b't')
    elif value is False:
        out.append(b'f')
    elif isinstance(value, int):
        out.append(b'i%d;' % value)
    elif isinstance(value, float):
        literal = repr(value) if math.isfinite(value) else str(value)
        out.append(b'd' + literal.encode() + b';')
    elif isinstance(value, str):
        raw = value.encode('utf-8', 'surrogatepass')
        out.append(b's%d:' % len(raw) + raw)
    elif isinstance(value, bytes):
        out.append(b'b%d:' % len(value) + value)
    elif isinstance(value, complex):
        out.append(b'c' + repr(value).encode() + b';')
    elif isinstance(value, Frozen):
        if value.kind == 'map':
            pairs = sorted(
                (canonical_bytes(k), canonical_bytes(v))
                for k, v in value.items
            )
            out.append(b'm%d{' % len(pairs))
            for k, v in pairs:
                out.append(k)
                out.append(v)
            out.append(b'}')
        else:
            out.append(b'l%d[' % len(value.items))
            for item in value.items:
                _encode(item, out)
            out.append(b']')
        if value.truncated:
            out.append(b'~%d' % value.length)
    elif isinstance(value, Opaque):
        name = value.type_name.encode('utf-8', 'surrogatepass')
        text = value.text.encode('utf-8', 'surrogatepass')
        out.append(b'o%d:' % len(name) + name + b'%d:' % len(text) + text)
    else:  # not produced by freeze(); encode by repr so hashing never fails
        _encode(Opaque(_type_name(value), _safe_repr(value)), out)


def hash_value(value: object) -> str:
    """Return the sha-256 hex digest of a live value, as provlog computes it.

    Use it to find the entity of a value you hold: it freezes and hashes the
    value exactly as the capture path does (without redaction).
    """
    return hashlib.sha256(canonical_bytes(freeze(value))).hexdigest()


# ---------------------------------------------------------------- describe


def _redact(value: object, policy: ValuePolicy) -> tuple[object, bool]:
    """Mask secret-keyed map entries; return the value and if any were."""
    if not isinstance(value, Frozen):
        return value, False
    changed = False
    items: list[Any] = []
    for item in value.items:
        if value.kind == 'map':
            k, v = item
            if policy.is_secret(k):
                items.append((k, REDACTED))
                changed = True
                continue
            v, hit = _redact(v, policy)
            items.append((k, v))
        else:
            v, hit = _redact(item, policy)
            items.append(v)
        changed = changed or hit
    if not changed:
        return value, False
    return Frozen(
        value.kind,
        value.type_name,
        tuple(items),
        value.length,
        value.truncated,
    ), True


def _jsonable(value: object) -> Any:  # noqa: PLR0911
    """Plain JSON form of a frozen value, for previews."""
    if isinstance(value, Frozen):
        if value.kind == 'map':
            return {
                (k if isinstance(k, str) else _preview_key(k)): _jsonable(v)
                for k, v in value.items
            }
        return [_jsonable(v) for v in value.items]
    if isinstance(value, Opaque):
        return value.text
    if isinstance(value, bytes):
        return _safe_repr(value)
    if isinstance(value, complex):
        return repr(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _preview_key(key: object) -> str:
    plain = _jsonable(key)
    return plain if isinstance(plain, str) else repr(plain)


def _preview(value: object, limit: int) -> str:
    import orjson  # noqa: PLC0415 - keep import cost off the module load

    if isinstance(value, str):
        text = value
    elif isinstance(value, Opaque):
        text = value.text
    else:
        try:
            text = orjson.dumps(
                _jsonable(value),
                option=orjson.OPT_NON_STR_KEYS,
            ).decode()
        except (TypeError, ValueError):
            text = _safe_repr(value)
    if len(text) > limit:
        text = text[: limit - 1] + '\u2026'
    return text


def _plain_literal(value: object, max_chars: int) -> bool:
    """Whether ``value`` can stand as ``prov:value`` in any JSON reader."""
    if isinstance(value, bool):
        return True
    if isinstance(value, int):
        return -_JSON_SAFE_INT <= value <= _JSON_SAFE_INT
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str) and len(value) <= max_chars


_SCALAR_PREVIEW: dict[type, Any] = {
    int: str,
    float: repr,
    bool: lambda v: 'true' if v else 'false',
    type(None): lambda v: 'null',
}


def _describe_scalar(
    value: object, policy: ValuePolicy
) -> dict[str, Any] | None:
    """The common case (a number, a flag, a short string) without detours."""
    cls = type(value)
    if cls is str:
        text = str(value)
        if len(text) > policy.preview_chars:
            return None
        raw = text.encode('utf-8', 'surrogatepass')
        encoded = b's%d:' % len(raw) + raw
        preview = text
    else:
        render = _SCALAR_PREVIEW.get(cls)
        if render is None:
            return None
        encoded = canonical_bytes(value)
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
) -> dict[str, Any]:
    """Describe a frozen value as the journal stores it.

    Args:
        value: Output of :func:`freeze`.
        policy: What may be kept.
        secret: The value sits under a secret-looking name and is masked whole.
        members: Describe the elements of a small container too.

    Returns:
        A JSON-ready dict: ``type``, ``size``, ``sha256``, and where allowed
        ``preview``, ``value`` (small scalars), ``members``, and the flags
        ``redacted``, ``capped``, ``truncated``.
    """
    if not secret:
        fast = _describe_scalar(value, policy)
        if fast is not None:
            return fast
    type_name = (
        value.type_name
        if isinstance(value, (Frozen, Opaque))
        else _type_name(value)
    )
    redacted = secret
    if secret:
        value = REDACTED
    else:
        value, redacted = _redact(value, policy)
    encoded = canonical_bytes(value)
    out: dict[str, Any] = {
        'type': type_name,
        'size': len(encoded),
        'sha256': hashlib.sha256(encoded).hexdigest(),
    }
    if redacted:
        out['redacted'] = True
    if isinstance(value, Frozen):
        out['length'] = value.length
        if value.truncated:
            out['truncated'] = True
    elif isinstance(value, Opaque):
        out['opaque'] = True
    if len(encoded) > policy.max_bytes:
        out['capped'] = True
        return out
    if policy.capture:
        out['preview'] = _preview(value, policy.preview_chars)
        if _plain_literal(value, policy.preview_chars):
            out['value'] = value
    if (
        members
        and isinstance(value, Frozen)
        and not value.truncated
        and 0 < value.length <= policy.max_members
    ):
        if value.kind == 'map':
            out['members'] = [
                [
                    _preview_key(k),
                    describe(
                        v,
                        policy,
                        secret=policy.is_secret(k),
                        members=False,
                    ),
                ]
                for k, v in value.items
            ]
        else:
            out['members'] = [
                [str(n), describe(v, policy, members=False)]
                for n, v in enumerate(value.items)
            ]
    return out
