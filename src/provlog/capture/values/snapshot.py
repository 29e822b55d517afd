"""The host-thread snapshot: an immutable, bounded copy of a live value.

:func:`freeze` (or one :class:`Snapshot` per event) runs on the caller's
thread. It copies what it needs of a live value into an immutable
snapshot, so that later mutations by the host cannot change what is
recorded. It is bounded by an element budget and a time budget
(:data:`SNAPSHOT_SECONDS`), never raises, and runs no user-defined Python
code on the caller's thread:

* builtin containers (and subclasses of them) are read with the C-level
  methods of the builtin base (``list.__iter__``, ``dict.items``, ...), so
  overridden ``__iter__``, ``__len__`` or ``items`` are not called; sets
  are taken in iteration order (they are ordered by digest later, on the
  writer);
* shared references are frozen once (memoised by ``id()``), cycles and
  nesting deeper than :data:`MAX_DEPTH` are cut;
* records (dataclasses, pydantic models, attrs classes,
  ``SimpleNamespace``, named tuples) and objects with ``__dict__`` or
  ``__slots__`` whose class keeps the default ``repr`` are described by
  their fields, read from the instance dict and slot descriptors (no
  properties, no ``__getattr__``); an object whose class chose its own
  ``repr`` (an Academy ``Handle``, say) keeps that ``repr`` (below);
* ``bytearray`` and ``memoryview`` are copied up to
  :data:`MUTABLE_COPY_BYTES`; past that the first
  :data:`MUTABLE_COPY_BYTES` bytes and the real length are kept and the
  snapshot is marked truncated (its hash is over that prefix and length);
* enums and stdlib types with a known-safe ``repr`` (UUID, datetime,
  Decimal, Fraction, paths, ...) are kept as their ``repr``;
* any other object is kept as its ``repr``, computed on a helper thread
  that the caller waits for at most
  :data:`~provlog.capture.values.bounded.REPR_TIMEOUT` seconds (then
  ``<repr timed out>``); see :mod:`provlog.capture.values.bounded`.

Limits, by design:

* records are described by their fields, not their ``repr``: a dataclass
  that hides a secret in its ``repr`` but keeps it in a field with an
  innocent name shows that field (see :mod:`provlog.capture.values.redaction`);
* a truncated set keeps its first elements in iteration order, which may
  differ between processes (so may its hash, as for any truncated value);
* ``freeze`` swallows every exception, so a real ``KeyboardInterrupt``
  delivered during the microseconds of a snapshot is lost.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from provlog.capture.values.bounded import bounded_text
from provlog.capture.values.bounded import repr_text
from provlog.capture.values.plans import Plan
from provlog.capture.values.plans import plan_for
from provlog.capture.values.plans import qualified_name

__all__ = [
    'MAX_DEPTH',
    'MUTABLE_COPY_BYTES',
    'SNAPSHOT_SECONDS',
    'Frozen',
    'Opaque',
    'Snapshot',
    'freeze',
]

#: Time budget of one snapshot (one event) on the caller's thread; past it
#: the remaining elements are cut and the snapshot is marked truncated.
SNAPSHOT_SECONDS = 0.05

#: ``bytearray``/``memoryview`` bytes copied on the caller's thread.
MUTABLE_COPY_BYTES = 1024 * 1024

#: Nesting depth a snapshot follows; deeper values are cut.
MAX_DEPTH = 64

_CLOCK_EVERY = 64

#: Sequences and sets at least this long are first tried as all scalars,
#: copied at C speed.
_BULK = 16


@dataclass(frozen=True, slots=True)
class Opaque:
    """A value that is not plain data: its type name and a bounded repr."""

    type_name: str
    text: str


@dataclass(frozen=True, slots=True)
class Frozen:
    """An immutable snapshot of a container, taken on the caller's thread.

    ``kind`` is ``'seq'`` (list, tuple), ``'set'``, ``'map'`` (items are
    frozen ``(key, value)`` pairs), ``'obj'`` (an object by its fields:
    ``(name, value)`` pairs) or ``'blob'`` (a ``bytearray`` or
    ``memoryview``: ``items`` is one ``bytes`` copy). ``length`` is the real
    length, more than what ``items`` holds when ``truncated``.
    """

    kind: str
    type_name: str
    items: tuple[Any, ...]
    length: int
    truncated: bool = False


_SCALAR_IDS = frozenset(
    id(t) for t in (str, int, float, bool, bytes, type(None), complex)
)


class Snapshot:
    """One bounded snapshot on the caller's thread (one event's values).

    Values frozen through one instance share its element budget, its time
    budget and its memo, so the same object passed twice is frozen once.
    """

    __slots__ = ('_active', '_count', '_deadline', '_left', '_memo')

    def __init__(
        self,
        budget: int = 10_000,
        seconds: float = SNAPSHOT_SECONDS,
    ) -> None:
        self._left = budget
        self._deadline = time.perf_counter() + seconds
        self._count = 0
        self._memo: dict[int, object] = {}
        self._active: set[int] = set()

    def take(self, value: object) -> object:
        """Return the snapshot of ``value``; never raises."""
        if id(type(value)) in _SCALAR_IDS:
            return value
        try:
            return self._take(value, 0)
        except BaseException as exc:  # noqa: BLE001 - never raise into host
            return Opaque(
                qualified_name(type(value)),
                f'<snapshot failed: {type(exc).__name__}>',
            )

    def _spend(self) -> bool:
        """Spend one element; ``False`` when the budget is gone."""
        self._left -= 1
        self._count += 1
        if (
            self._count % _CLOCK_EVERY == 0
            and time.perf_counter() > self._deadline
        ):
            self._left = 0
        return self._left >= 0

    def _take(self, value: object, depth: int) -> object:
        cls = type(value)
        if id(cls) in _SCALAR_IDS:
            return value
        key = id(value)
        found = self._memo.get(key)
        if found is not None:
            return found
        plan = plan_for(cls)
        if key in self._active:
            return Opaque(plan.name, '<cycle>')
        if depth >= MAX_DEPTH:
            return Opaque(plan.name, '<too deep>')
        self._active.add(key)
        try:
            frozen = self._by_plan(value, plan, depth + 1)
        finally:
            self._active.discard(key)
        self._memo[key] = frozen
        return frozen

    def _by_plan(  # noqa: PLR0911
        self, value: Any, plan: Plan, depth: int
    ) -> object:
        how = plan.how
        if how in {'seq', 'set'}:
            return self._sequence(value, plan, depth)
        if how == 'map':
            return self._pairs(
                'map',
                plan.name,
                dict.items(value),
                dict.__len__(value),
                depth,
                keys=True,
            )
        if how == 'namedtuple':
            pairs = zip(plan.fields, tuple.__iter__(value), strict=False)
            return self._pairs(
                'obj', plan.name, pairs, len(plan.fields), depth, keys=False
            )
        if how == 'blob':
            return _blob(value, plan)
        if how == 'enum':
            member = object.__getattribute__(value, '_name_')
            return Opaque(plan.name, f'{plan.name}.{bounded_text(member)}')
        if how == 'repr':
            return Opaque(plan.name, repr_text(value, plan.name, helper=False))
        fields, count = _fields(value, plan)
        if count:
            frozen = self._obj(plan, fields, count, depth)
            if frozen.items or frozen.truncated:
                return frozen
        if how == 'helper' and time.perf_counter() > self._deadline:
            self._left = 0  # no time left to wait for user code
            return Opaque(plan.name, '<repr skipped: time budget>')
        text = repr_text(value, plan.name, helper=how == 'helper')
        return Opaque(plan.name, text)

    def _obj(
        self,
        plan: Plan,
        fields: Iterator[tuple[str, Any]],
        count: int,
        depth: int,
    ) -> Frozen:
        """An object by its fields; its length is the fields it shows."""
        frozen = self._pairs(
            'obj', plan.name, fields, count, depth, keys=False
        )
        if frozen.truncated:
            return frozen
        return Frozen('obj', plan.name, frozen.items, len(frozen.items))

    def _sequence(self, value: Any, plan: Plan, depth: int) -> Frozen:
        """A list, tuple or set: in bulk when it holds scalars only."""
        base = plan.base
        length = base.__len__(value)
        if length >= _BULK:
            bulk = self._bulk(
                plan.how, plan.name, base.__iter__(value), length
            )
            if bulk is not None:
                return bulk
        return self._seq(
            plan.how, plan.name, base.__iter__(value), length, depth
        )

    def _bulk(
        self, kind: str, name: str, items: Iterator[Any], length: int
    ) -> Frozen | None:
        """:meth:`_seq` of a sequence of scalars only, at C speed.

        Takes as many elements as the budget allows, and spends it as
        :meth:`_seq` would; ``None`` (nothing spent) when an element is not
        a scalar, the budget or time is gone, or the set changed size.
        """
        left = self._left
        if left <= 0 or time.perf_counter() > self._deadline:
            return None
        try:
            taken = tuple(itertools.islice(items, min(length, left)))
        except RuntimeError:  # changed size during iteration (other thread)
            return None
        for cls in set(map(type, taken)):
            if id(cls) not in _SCALAR_IDS:
                return None
        n = len(taken)
        spent = n + 1 if n == left < length else n  # the refused element
        self._left = left - spent
        self._count += spent
        return Frozen(kind, name, taken, length, n < length)

    def _seq(
        self,
        kind: str,
        name: str,
        items: Iterator[Any],
        length: int,
        depth: int,
    ) -> Frozen:
        out: list[object] = []
        try:
            for item in items:
                if not self._spend():
                    break
                out.append(self._take(item, depth))
        except RuntimeError:  # changed size during iteration (other thread)
            pass
        return Frozen(kind, name, tuple(out), length, len(out) < length)

    def _pairs(
        self,
        kind: str,
        name: str,
        items: Iterable[tuple[Any, Any]],
        length: int,
        depth: int,
        *,
        keys: bool,
    ) -> Frozen:
        out: list[tuple[object, object]] = []
        try:
            for k, v in items:
                if not self._spend():
                    break
                key = self._take(k, depth) if keys else k
                out.append((key, self._take(v, depth)))
        except RuntimeError:  # changed size during iteration (other thread)
            pass
        return Frozen(kind, name, tuple(out), length, len(out) < length)


def _fields(
    value: object, plan: Plan
) -> tuple[Iterator[tuple[str, Any]], int]:
    """An object's fields from its instance dict and slots (no user code).

    Returns:
        The fields, lazily (the budget decides how many are read), and how
        many there are at most.
    """
    inst = None
    if plan.base is not None:
        found = plan.base.__get__(value, type(value))
        if type(found) is dict:
            inst = found
    count = (0 if inst is None else dict.__len__(inst)) + len(plan.fields)
    return _field_items(value, inst, plan.fields), count


def _field_items(
    value: object,
    inst: dict[Any, Any] | None,
    slots: tuple[Any, ...],
) -> Iterator[tuple[str, Any]]:
    if inst is not None:
        for key, item in dict.items(inst):
            if type(key) is str and not key.startswith('__'):
                yield key, item
    for key, descr in slots:
        try:
            item = descr.__get__(value, type(value))
        except AttributeError:  # slot not set
            continue
        yield key, item


def _blob(value: Any, plan: Plan) -> Frozen:
    """Copy a mutable buffer up to :data:`MUTABLE_COPY_BYTES`."""
    if isinstance(value, memoryview):
        try:
            view = value.cast('B') if value.c_contiguous else None
        except (TypeError, ValueError):  # released, or not castable
            view = None
        if view is None:
            return Frozen('blob', plan.name, (b'',), 0, truncated=True)
        length = view.nbytes
        data = bytes(view[:MUTABLE_COPY_BYTES])
    else:
        length = bytearray.__len__(value)
        data = bytes(memoryview(value)[:MUTABLE_COPY_BYTES])
    return Frozen('blob', plan.name, (data,), length, len(data) < length)


def freeze(value: object, budget: int = 10_000) -> object:
    """Snapshot ``value`` so later mutation by the host cannot change it.

    Scalars are immutable and kept as they are; containers and objects
    become :class:`Frozen`, anything else an :class:`Opaque` with its type and
    bounded repr (see the module docstring). At most ``budget`` elements and
    :data:`SNAPSHOT_SECONDS` are spent; the rest is cut and marked truncated.
    Never raises.
    """
    if id(type(value)) in _SCALAR_IDS:
        return value
    return Snapshot(budget).take(value)
