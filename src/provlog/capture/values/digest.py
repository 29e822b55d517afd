"""The content hash of a frozen value, with redaction, one node at a time.

The content hash is a Merkle hash over a canonical, type-tagged encoding.
A scalar's digest is the sha-256 of its canonical bytes (``s<n>:`` and the
UTF-8 for a ``str``, ``b<n>:`` and the bytes for ``bytes``, ``i<n>;`` for an
``int``, ...). A container's digest is the sha-256 of a short header and the
digests of its elements: in order for lists and tuples (which hash alike,
because a tuple sent by pickle and a list sent by JSON are the same value to
a user), sorted for dict items, set elements and object fields. ``size`` is
the length of the expanded canonical encoding, computed without expanding
(capped at 2**53 so it stays a JSON-safe integer).

Each distinct node is digested once, so shared references cost once
however often they recur.
"""

from __future__ import annotations

import array
import hashlib
import math
from typing import Any

from provlog.capture.values.redaction import REDACTED
from provlog.capture.values.redaction import Scrubber
from provlog.capture.values.redaction import ValuePolicy
from provlog.capture.values.snapshot import freeze
from provlog.capture.values.snapshot import Frozen
from provlog.capture.values.snapshot import MAX_DEPTH
from provlog.capture.values.snapshot import Opaque

__all__ = [
    'DECIMAL_INT_BITS',
    'SECRET_NODE',
    'Walker',
    'hash_value',
    'pair_secret',
    'scalar_bytes',
]

DECIMAL_INT_BITS = 10_000  # ints wider than this are encoded in hex
_CHUNK = 1 << 20
#: Sequences and sets at least this long are first tried as all floats or
#: all 64-bit ints, encoded in one pass.
_BULK = 16


def _int_bytes(value: int) -> bytes:
    if value.bit_length() <= DECIMAL_INT_BITS:
        return b'i%d;' % value
    return b'x' + hex(value).encode() + b';'  # no int->str digit limit


def scalar_bytes(value: object) -> bytes | None:  # noqa: PLR0911
    """Canonical bytes of a small scalar (``None`` for str, bytes, others)."""
    if value is None:
        return b'n'
    if value is True:
        return b't'
    if value is False:
        return b'f'
    cls = type(value)
    if cls is int:
        return _int_bytes(value)  # type: ignore[arg-type]
    if cls is float:
        number: float = value  # type: ignore[assignment]
        literal = repr(number) if math.isfinite(number) else str(number)
        return b'd' + literal.encode() + b';'
    if cls is complex:
        return b'c' + repr(value).encode() + b';'
    return None


def _packed(items: tuple[Any, ...]) -> bytes | None:
    """All floats or all 64-bit ints, packed (``None`` for any other mix).

    Equal packed bytes mean the very same numbers (bit for bit, so ``0.0``
    and ``-0.0`` differ), hence the same digest: the key under which a
    digest is remembered.
    """
    kinds = set(map(type, items))
    if kinds == {float}:
        return b'd' + array.array('d', items).tobytes()
    if kinds == {int}:
        try:
            return b'q' + array.array('q', items).tobytes()
        except OverflowError:  # past 64 bits
            return None
    return None


def _bulk_parts(items: tuple[Any, ...], code: int) -> tuple[list[bytes], int]:
    """Element digests and encoded size of :func:`_packed` numbers.

    The same bytes as :func:`scalar_bytes` of each (``d<repr>;``,
    ``i<decimal>;``), made in one join.
    """
    if code == ord('d'):
        raw = ('d' + ';\nd'.join(map(float.__repr__, items)) + ';').encode()
    else:
        raw = ('i' + ';\ni'.join(map(int.__repr__, items)) + ';').encode()
    pieces = raw.split(b'\n')
    sha256 = hashlib.sha256
    return [sha256(p).digest() for p in pieces], len(raw) - len(pieces) + 1


#: Digest and size of long number sequences, by kind, length and content:
#: a value passed on (one action's result, the next one's argument) is
#: hashed once. Bounded to :data:`_REMEMBER_ENTRIES` sequences.
_REMEMBERED: dict[bytes, tuple[bytes, int]] = {}
_REMEMBER_FROM = 1024
_REMEMBER_ENTRIES = 16


def _str_digest(text: str) -> tuple[bytes, int]:
    """Digest and encoded size of a ``str``, in bounded extra memory."""
    if len(text) <= _CHUNK:
        raw = text.encode('utf-8', 'surrogatepass')
        return hashlib.sha256(b's%d:' % len(raw) + raw).digest(), len(raw) + (
            len(b's%d:' % len(raw))
        )
    if text.isascii():
        size = len(text)
    else:
        size = sum(
            len(text[i : i + _CHUNK].encode('utf-8', 'surrogatepass'))
            for i in range(0, len(text), _CHUNK)
        )
    head = b's%d:' % size
    h = hashlib.sha256(head)
    for i in range(0, len(text), _CHUNK):
        h.update(text[i : i + _CHUNK].encode('utf-8', 'surrogatepass'))
    return h.digest(), size + len(head)


def _bytes_digest(data: bytes, head: bytes) -> tuple[bytes, int]:
    h = hashlib.sha256(head)
    h.update(data)  # no copy of a large bytes object
    return h.digest(), len(head) + len(data)


_REDACTED_DIGEST = _str_digest(REDACTED)


class _Node:
    """What the writer computed of one frozen node."""

    __slots__ = ('digest', 'redacted', 'size')

    def __init__(self, digest: bytes, size: int, *, redacted: bool) -> None:
        self.digest = digest
        self.size = size
        self.redacted = redacted


SECRET_NODE = _Node(*_REDACTED_DIGEST, redacted=True)


def pair_secret(item: object, policy: ValuePolicy | None) -> bool:
    """Whether ``item`` is a ``(secret-looking name, value)`` pair."""
    return (
        policy is not None
        and isinstance(item, Frozen)
        and item.kind == 'seq'
        and len(item.items) == 2  # noqa: PLR2004 - a key-value pair
        and type(item.items[0]) in {str, bytes}
        and policy.is_secret(item.items[0])
    )


class Walker:
    """Digests, redaction and previews of one event's frozen values.

    Each distinct node is digested once (memo by ``id``), so shared
    references cost once however often they recur.
    """

    __slots__ = ('memo', 'policy', 'scrubber')

    def __init__(
        self, policy: ValuePolicy | None, scrubber: Scrubber | None
    ) -> None:
        self.policy = policy
        self.scrubber = scrubber
        self.memo: dict[int, _Node] = {}

    def secret(self, value: object) -> _Node:
        """Mask ``value`` whole, and teach the scrubber its text."""
        if self.scrubber is not None:
            self._learn(value, 0)
        return SECRET_NODE

    def _learn(self, value: object, depth: int) -> None:
        assert self.scrubber is not None
        if type(value) in {str, bytes}:
            self.scrubber.learn(value)
        elif isinstance(value, Frozen) and value.kind != 'blob':
            if depth > MAX_DEPTH:
                return
            for item in value.items[:1000]:
                if isinstance(item, tuple) and value.kind in {'map', 'obj'}:
                    self._learn(item[1], depth + 1)
                else:
                    self._learn(item, depth + 1)
        elif isinstance(value, Frozen):
            self.scrubber.learn(value.items[0])

    def node(self, value: object) -> _Node:
        """Digest, size and redaction of ``value``, computed once per node."""
        cls = type(value)
        scalar = scalar_bytes(value)
        if scalar is not None:
            return _Node(
                hashlib.sha256(scalar).digest(), len(scalar), redacted=False
            )
        key = id(value)
        found = self.memo.get(key)
        if found is not None:
            return found
        if cls is str or cls is bytes:
            if self.scrubber is not None and self.scrubber.known(value):
                return SECRET_NODE
            if cls is str:
                node = _Node(*_str_digest(value), redacted=False)  # type: ignore[arg-type]
            else:
                data: bytes = value  # type: ignore[assignment]
                node = _Node(
                    *_bytes_digest(data, b'b%d:' % len(data)), redacted=False
                )
        elif isinstance(value, Frozen):
            node = self._container(value)
        elif isinstance(value, Opaque):
            name = value.type_name.encode('utf-8', 'surrogatepass')
            text = value.text.encode('utf-8', 'surrogatepass')
            raw = b'o%d:' % len(name) + name + b'%d:' % len(text) + text
            node = _Node(
                hashlib.sha256(raw).digest(), len(raw), redacted=False
            )
        else:  # not produced by freeze(): snapshot it first
            node = self.node(freeze(value))
        self.memo[key] = node
        return node

    def child(self, value: object, *, secret: bool) -> _Node:
        """The node of ``value``, masked whole if ``secret``."""
        return self.secret(value) if secret else self.node(value)

    def _blob(self, value: Frozen) -> _Node:
        data: bytes = value.items[0]
        if not value.truncated:
            if self.scrubber is not None and self.scrubber.known(data):
                return SECRET_NODE
            return _Node(
                *_bytes_digest(data, b'b%d:' % len(data)), redacted=False
            )
        head = b'b%d~%d:' % (value.length, len(data))
        return _Node(*_bytes_digest(data, head), redacted=False)

    def _container(self, value: Frozen) -> _Node:
        policy = self.policy
        redacted = False
        parts: list[bytes] = []
        size = 0
        kind = value.kind
        if kind == 'blob':
            return self._blob(value)
        if pair_secret(value, policy):
            knode = self.node(value.items[0])
            vnode = self.secret(value.items[1])
            h = hashlib.sha256(b'l2[' + knode.digest + vnode.digest + b']')
            return _Node(
                h.digest(), 4 + knode.size + vnode.size, redacted=True
            )
        if kind in {'map', 'obj'}:
            for k, v in value.items:
                knode = self.node(k)
                secret = policy is not None and policy.is_secret(k)
                vnode = self.child(v, secret=secret)
                parts.append(knode.digest + vnode.digest)
                size += knode.size + vnode.size
                redacted = redacted or knode.redacted or vnode.redacted
            parts.sort()
        else:
            packed = (
                _packed(value.items) if len(value.items) >= _BULK else None
            )
            if packed is not None:
                return self._numbers(value, packed)
            for item in value.items:
                node = self.node(item)
                parts.append(node.digest)
                size += node.size
                redacted = redacted or node.redacted
            if kind == 'set':
                parts.sort()
        head = _head(value, len(parts))
        tail = b'~%d' % value.length if value.truncated else b''
        h = hashlib.sha256(head)
        for part in parts:
            h.update(part)
        h.update(b']' + tail)
        return _Node(
            h.digest(), len(head) + size + 1 + len(tail), redacted=redacted
        )

    def _numbers(self, value: Frozen, packed: bytes) -> _Node:
        """A list, tuple or set of :func:`_packed` numbers, hashed in bulk."""
        key = None
        if len(value.items) >= _REMEMBER_FROM:
            key = b'%s:%d:%d:' % (
                value.kind.encode(),
                value.length,
                value.truncated,
            )
            key += packed
            found = _REMEMBERED.get(key)
            if found is not None:
                return _Node(*found, redacted=False)
        parts, size = _bulk_parts(value.items, packed[0])
        if value.kind == 'set':
            parts.sort()
        head = _head(value, len(parts))
        tail = b'~%d' % value.length if value.truncated else b''
        h = hashlib.sha256(head)
        h.update(b''.join(parts))
        h.update(b']' + tail)
        node = _Node(
            h.digest(), len(head) + size + 1 + len(tail), redacted=False
        )
        if key is not None:
            if len(_REMEMBERED) >= _REMEMBER_ENTRIES:
                _REMEMBERED.clear()
            _REMEMBERED[key] = (node.digest, node.size)
        return node


def _head(value: Frozen, count: int) -> bytes:
    """The type tag and count that open a container's digest."""
    if value.kind == 'map':
        return b'm%d{' % count
    if value.kind == 'set':
        return b'S%d{' % count
    if value.kind == 'obj':
        name = value.type_name.encode('utf-8', 'surrogatepass')
        return b'O%d:' % len(name) + name + b'%d{' % count
    return b'l%d[' % count


def hash_value(value: object) -> str:
    """Return the sha-256 hex digest of a live value, as provlog computes it.

    Use it to find the entity of a value you hold: it freezes and hashes the
    value exactly as the capture path does (without redaction).
    """
    return Walker(None, None).node(freeze(value)).digest.hex()
