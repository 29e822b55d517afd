"""Argument and result values: snapshot, redact, hash, preview, cap.

Capture happens in two steps so the host pays as little as possible:

1. :func:`freeze` (or one :class:`Snapshot` per event) runs on the caller's
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
     that the caller waits for at most :data:`REPR_TIMEOUT` seconds (then
     ``<repr timed out>``). A stuck helper is left behind; a fresh one takes
     the next ``repr``, up to :data:`MAX_REPR_THREADS` helpers.

2. :func:`describe` runs on the background writer. It redacts secrets
   (secret-looking keys, field names, key-value pairs, values already
   redacted in this process), computes the content hash, and builds the
   bounded preview that goes to disk, all without expanding shared
   references: each distinct node is digested once.

The content hash is a Merkle hash over a canonical, type-tagged encoding.
A scalar's digest is the sha-256 of its canonical bytes (``s<n>:`` and the
UTF-8 for a ``str``, ``b<n>:`` and the bytes for ``bytes``, ``i<n>;`` for an
``int``, ...). A container's digest is the sha-256 of a short header and the
digests of its elements: in order for lists and tuples (which hash alike,
because a tuple sent by pickle and a list sent by JSON are the same value to
a user), sorted for dict items, set elements and object fields. ``size`` is
the length of the expanded canonical encoding, computed without expanding
(capped at 2**53 so it stays a JSON-safe integer).

Secrets. A value is masked (replaced by ``[REDACTED]`` before hashing) when
it sits under a secret-looking dict key (``str`` or ``bytes``), object field
or keyword/parameter name, or is the second item of a ``(name, value)``
pair whose name looks secret (header lists). Every value masked so far in
the process is learnt by :data:`SECRETS` (a :class:`Scrubber`): a ``str`` or
``bytes`` equal to one is masked whole wherever it appears later, and
:func:`scrub` masks it inside any text (previews, error messages,
tracebacks, log messages).

Limits, by design:

* values shorter than ``Scrubber.min_chars`` (6) are not learnt, and every
  ``str``/``bytes`` inside a masked value is learnt: a user name inside a
  masked ``credentials`` dict, say, is masked wherever it appears later in
  the process (over-masking is preferred to a leak);
* a value that merely *contains* a learnt secret keeps the hash of its
  clear content (only its text is masked);
* records are described by their fields, not their ``repr``: a dataclass
  that hides a secret in its ``repr`` but keeps it in a field with an
  innocent name shows that field; conversely the ``repr`` of a class that
  defines one is recorded as it reads (scrubbed of learnt secrets only);
* when :data:`MAX_REPR_THREADS` helpers are stuck in user code, ``repr`` of
  further objects is skipped (``<repr skipped: helpers busy>``) until one
  returns;
* a truncated set keeps its first elements in iteration order, which may
  differ between processes (so may its hash, as for any truncated value);
* ``freeze`` swallows every exception, so a real ``KeyboardInterrupt``
  delivered during the microseconds of a snapshot is lost.
"""

from __future__ import annotations

import contextlib
import datetime
import decimal
import enum
import fractions
import functools
import hashlib
import ipaddress
import math
import os
import pathlib
import queue
import re
import threading
import time
import types
import uuid
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from typing import Any

__all__ = [
    'DEFAULT_REDACT_KEYS',
    'MAX_DEPTH',
    'MAX_REPR_THREADS',
    'MUTABLE_COPY_BYTES',
    'REDACTED',
    'REPR_TIMEOUT',
    'SECRETS',
    'SNAPSHOT_SECONDS',
    'Frozen',
    'Opaque',
    'Scrubber',
    'Snapshot',
    'ValuePolicy',
    'bounded_call',
    'describe',
    'freeze',
    'hash_value',
    'json_safe',
    'scrub',
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

#: Seconds the caller's thread waits for a user-defined ``repr`` (or
#: ``str`` of an exception) computed on a helper thread.
REPR_TIMEOUT = 0.02

#: Helper threads that may be busy with user code at once; when all are
#: stuck, further ``repr`` calls are skipped at once.
MAX_REPR_THREADS = 4

#: Time budget of one snapshot (one event) on the caller's thread; past it
#: the remaining elements are cut and the snapshot is marked truncated.
SNAPSHOT_SECONDS = 0.05

#: ``bytearray``/``memoryview`` bytes copied on the caller's thread.
MUTABLE_COPY_BYTES = 1024 * 1024

#: Nesting depth a snapshot follows; deeper values are cut.
MAX_DEPTH = 64

_JSON_SAFE_INT = 2**53
_MAX_REPR = 1000
_DECIMAL_INT_BITS = 10_000  # ints wider than this are encoded in hex
_CLOCK_EVERY = 64
_CHUNK = 1 << 20


def json_safe(text: str) -> str:
    """``text`` with lone surrogates escaped, so any JSON encoder takes it."""
    if text.isascii():
        return text
    try:
        text.encode('utf-8')
    except UnicodeEncodeError:
        return text.encode('utf-8', 'backslashreplace').decode('utf-8')
    return text


# ------------------------------------------------------------ snapshots


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
_SAFE_REPR_IDS = frozenset(
    id(t)
    for t in (
        uuid.UUID,
        datetime.date,
        datetime.datetime,
        datetime.time,
        datetime.timedelta,
        datetime.timezone,
        decimal.Decimal,
        fractions.Fraction,
        pathlib.PurePath,
        pathlib.PurePosixPath,
        pathlib.PureWindowsPath,
        pathlib.Path,
        pathlib.PosixPath,
        pathlib.WindowsPath,
        ipaddress.IPv4Address,
        ipaddress.IPv6Address,
        ipaddress.IPv4Network,
        ipaddress.IPv6Network,
        range,
        slice,
        type,
        types.FunctionType,
        types.BuiltinFunctionType,
        type(Ellipsis),
        type(NotImplemented),
    )
)
_MISSING = object()


def _static(cls: type, name: str) -> Any:
    """Look ``name`` up in the class dicts of ``cls``'s MRO (no user code)."""
    for klass in type.__dict__['__mro__'].__get__(cls):
        found = klass.__dict__.get(name, _MISSING)
        if found is not _MISSING:
            return found
    return _MISSING


def _within(base: type, mro: tuple[type, ...]) -> bool:
    """``base in mro`` by identity (a metaclass ``__eq__`` is not called)."""
    return any(klass is base for klass in mro)


def _type_name(cls: type) -> str:
    try:
        module = type.__dict__['__module__'].__get__(cls)
        qualname = type.__dict__['__qualname__'].__get__(cls)
    except BaseException:  # noqa: BLE001 - never raise into the host
        return '?'
    if not isinstance(module, str) or module in {
        'builtins',
        '__main__',
        '__mp_main__',
    }:
        return json_safe(str(qualname))
    return json_safe(f'{module}.{qualname}')


@dataclass(frozen=True, slots=True)
class _Plan:
    """How to snapshot instances of one type (computed once per type)."""

    how: str
    name: str
    base: Any = None
    fields: tuple[Any, ...] = ()


_PLANS: dict[int, tuple[type, _Plan]] = {}
_PLAN_CACHE = 2048


def _plan(cls: type) -> _Plan:
    entry = _PLANS.get(id(cls))
    if entry is not None and entry[0] is cls:
        return entry[1]
    plan = _make_plan(cls)
    if len(_PLANS) >= _PLAN_CACHE:
        _PLANS.clear()
    _PLANS[id(cls)] = (cls, plan)
    return plan


def _make_plan(cls: type) -> _Plan:  # noqa: C901, PLR0911
    name = _type_name(cls)
    mro = type.__dict__['__mro__'].__get__(cls)
    if _within(tuple, mro):
        fields = _static(cls, '_fields')
        if (
            cls is not tuple
            and isinstance(fields, tuple)
            and all(isinstance(f, str) for f in fields)
        ):
            return _Plan('namedtuple', name, tuple, fields)
        return _Plan('seq', name, tuple)
    for base, how in (
        (list, 'seq'),
        (dict, 'map'),
        (set, 'set'),
        (frozenset, 'set'),
        (bytearray, 'blob'),
        (memoryview, 'blob'),
    ):
        if _within(base, mro):
            return _Plan(how, name, base)
    if _within(enum.Enum, mro):
        return _Plan('enum', name)
    if id(cls) in _SAFE_REPR_IDS:
        return _Plan('repr', name)
    if _within(type, mro) and _static(type(cls), '__repr__') is type.__repr__:
        return _Plan('repr', name)  # a class whose metaclass keeps repr
    slots: list[tuple[str, Any]] = []
    for klass in reversed(mro):
        for key, attr in klass.__dict__.items():
            if isinstance(attr, types.MemberDescriptorType) and not (
                key.startswith('__')
            ):
                slots.append((key, attr))
    has_dict = isinstance(
        _static(cls, '__dict__'),
        (types.GetSetDescriptorType, types.MemberDescriptorType),
    )
    module = type.__dict__['__module__'].__get__(cls)
    if module == 'builtins' or not (has_dict or slots):
        has_dict, slots = False, []
    found = _static(cls, '__repr__')
    safe_repr = found is object.__repr__ or found is type.__repr__
    how = 'default' if safe_repr else 'helper'
    if not (safe_repr or _data_class(cls, mro)):
        has_dict, slots = False, []  # the class chose its repr: keep it
    dict_descr = _static(cls, '__dict__') if has_dict else None
    return _Plan(how, name, dict_descr, tuple(slots))


_DATA_MARKERS = (
    '__dataclass_fields__',
    '__attrs_attrs__',
    '__pydantic_fields__',
)


def _data_class(cls: type, mro: tuple[type, ...]) -> bool:
    """Whether ``cls`` is a record type: dataclass, attrs, pydantic, ..."""
    return _within(types.SimpleNamespace, mro) or any(
        _static(cls, marker) is not _MISSING for marker in _DATA_MARKERS
    )


class _Helper:
    """A daemon thread that runs user code for the caller, one at a time."""

    __slots__ = ('_jobs', '_pool')

    def __init__(self, pool: _Helpers) -> None:
        self._pool = pool
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        thread = threading.Thread(
            target=self._run,
            name='provlog-repr',
            daemon=True,
        )
        thread.start()

    def submit(self, job: _Job) -> None:
        self._jobs.put(job)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                job.result = job.func(job.arg)
            except BaseException as exc:  # noqa: BLE001 - user code
                job.error = type(exc).__name__
            job.done.set()
            self._pool.release(self)


class _Job:
    __slots__ = ('arg', 'done', 'error', 'func', 'result')

    def __init__(self, func: Callable[[Any], Any], arg: object) -> None:
        self.func = func
        self.arg = arg
        self.result: Any = None
        self.error: str | None = None
        self.done = threading.Event()


class _Helpers:
    """The helper threads; a busy (maybe stuck) one is never waited for."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[_Helper] = []
        self._count = 0

    def acquire(self) -> _Helper | None:
        with self._lock:
            if self._idle:
                return self._idle.pop()
            if self._count >= MAX_REPR_THREADS:
                return None
            self._count += 1
        try:
            return _Helper(self)
        except BaseException:  # noqa: BLE001 - e.g. no more threads
            with self._lock:
                self._count -= 1
            return None

    def release(self, helper: _Helper) -> None:
        with self._lock:
            self._idle.append(helper)

    def reset(self) -> None:
        """After ``fork``: the child has none of the parent's threads."""
        self._lock = threading.Lock()
        self._idle = []
        self._count = 0


_HELPERS = _Helpers()
if hasattr(os, 'register_at_fork'):
    os.register_at_fork(after_in_child=_HELPERS.reset)


def bounded_call(
    func: Callable[[Any], Any],
    arg: object,
    timeout: float = REPR_TIMEOUT,
) -> tuple[str, Any]:
    """Run ``func(arg)`` on a helper thread, waiting at most ``timeout``.

    Returns:
        ``('ok', result)``, ``('error', exception class name)``,
        ``('timeout', None)`` or ``('busy', None)`` when every helper is
        stuck. Never raises, whatever ``func`` raises.
    """
    helper = _HELPERS.acquire()
    if helper is None:
        return 'busy', None
    job = _Job(func, arg)
    helper.submit(job)
    if not job.done.wait(timeout):
        return 'timeout', None
    if job.error is not None:
        return 'error', job.error
    return 'ok', job.result


def _bounded_text(text: object) -> str:
    if not isinstance(text, str):
        return '<not a str>'
    text = str.__str__(str.__getitem__(text, slice(0, _MAX_REPR + 1)))
    text = json_safe(text)
    return text if len(text) <= _MAX_REPR else text[:_MAX_REPR] + '\u2026'


def _repr_text(value: object, name: str, *, helper: bool) -> str:
    if not helper:
        try:
            return _bounded_text(repr(value))
        except BaseException as exc:  # noqa: BLE001 - never raise
            return f'<unrepresentable {name}: {type(exc).__name__}>'
    status, result = bounded_call(repr, value)
    if status == 'ok':
        return _bounded_text(result)
    if status == 'error':
        return f'<unrepresentable {name}: {result}>'
    if status == 'timeout':
        return '<repr timed out>'
    return '<repr skipped: helpers busy>'


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
                _type_name(type(value)),
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
        plan = _plan(cls)
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
        self, value: Any, plan: _Plan, depth: int
    ) -> object:
        how = plan.how
        if how in {'seq', 'set'}:
            base = plan.base
            return self._seq(
                how,
                plan.name,
                base.__iter__(value),
                base.__len__(value),
                depth,
            )
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
            return Opaque(plan.name, f'{plan.name}.{_bounded_text(member)}')
        if how == 'repr':
            return Opaque(
                plan.name, _repr_text(value, plan.name, helper=False)
            )
        fields, count = _fields(value, plan)
        if count:
            frozen = self._obj(plan, fields, count, depth)
            if frozen.items or frozen.truncated:
                return frozen
        if how == 'helper' and time.perf_counter() > self._deadline:
            self._left = 0  # no time left to wait for user code
            return Opaque(plan.name, '<repr skipped: time budget>')
        text = _repr_text(value, plan.name, helper=how == 'helper')
        return Opaque(plan.name, text)

    def _obj(
        self,
        plan: _Plan,
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
    value: object, plan: _Plan
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


def _blob(value: Any, plan: _Plan) -> Frozen:
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


# ------------------------------------------------------------ secrets


class Scrubber:
    """Values redacted in this process, masked wherever they appear later.

    Once :meth:`learn` has seen a secret (a ``str`` or ``bytes`` of at least
    ``min_chars``), :meth:`scrub` replaces it in any text (in its plain, JSON
    escaped and ``repr`` forms) and :meth:`known` tells a value equal to it.
    Thread-safe; keeps at most ``max_secrets`` (the oldest are forgotten).
    """

    def __init__(self, min_chars: int = 6, max_secrets: int = 4096) -> None:
        self.min_chars = min_chars
        self.max_secrets = max_secrets
        self._lock = threading.Lock()
        self._values: dict[object, None] = {}
        self._forms: dict[str, None] = {}
        self._pattern: re.Pattern[str] | None = None
        self._index: dict[str, list[str]] = {}
        self._dirty = False
        #: Length of the longest text form of a known secret.
        self.longest = 0

    def __len__(self) -> int:
        return len(self._values)

    def learn(self, value: object) -> None:
        """Remember ``value`` (a ``str`` or ``bytes``) as a secret."""
        if not (type(value) is str or type(value) is bytes):
            return
        if len(value) < self.min_chars:
            return
        forms, alias = _text_forms(value)
        with self._lock:
            if value in self._values:
                return
            self._values[value] = None
            if alias is not None:
                self._values[alias] = None
            for form in forms:
                if len(form) >= self.min_chars and form not in self._forms:
                    self._forms[form] = None
                    self.longest = max(self.longest, len(form))
                    key = form[: self.min_chars]  # copy on write: no lock
                    self._index[key] = sorted(  # for readers in scrub
                        [*self._index.get(key, ()), form],
                        key=len,
                        reverse=True,
                    )
            while len(self._values) > self.max_secrets:
                del self._values[next(iter(self._values))]
            while len(self._forms) > 3 * self.max_secrets:
                form = next(iter(self._forms))
                del self._forms[form]
                key = form[: self.min_chars]
                self._index[key] = [f for f in self._index[key] if f != form]
            self._dirty = len(self._forms) <= _REGEX_FORMS

    def known(self, value: object) -> bool:
        """Whether ``value`` equals a secret learnt before."""
        cls = type(value)
        return (
            bool(self._values)
            and (cls is str or cls is bytes)
            and value in self._values
        )

    def scrub(self, text: str) -> str:
        """``text`` with every known secret replaced by ``[REDACTED]``.

        Up to :data:`_REGEX_FORMS` forms one compiled alternation does it;
        past that, a scan indexed by each form's first ``min_chars``
        characters (no recompiling a huge pattern for every new secret).
        """
        if not self._forms:
            return text
        if len(self._forms) > _REGEX_FORMS:
            return self._scan(text)
        pattern = self._pattern
        if self._dirty or pattern is None:
            with self._lock:
                forms = sorted(self._forms, key=len, reverse=True)
                pattern = re.compile('|'.join(map(re.escape, forms)))
                self._pattern = pattern
                self._dirty = False
        return pattern.sub(REDACTED, text)

    def _scan(self, text: str) -> str:
        index = self._index  # buckets are replaced, never changed in place
        width = self.min_chars
        out: list[str] = []
        last = i = 0
        end = len(text) - width
        while i <= end:
            for form in index.get(text[i : i + width], ()):
                if text.startswith(form, i):
                    out.append(text[last:i])
                    out.append(REDACTED)
                    i = last = i + len(form)
                    break
            else:
                i += 1
        if not out:
            return text
        out.append(text[last:])
        return ''.join(out)


_REGEX_FORMS = 64


def _text_forms(value: str | bytes) -> tuple[list[str], bytes | None]:
    """How a secret may read in text, and its bytes twin for a ``str``."""
    if isinstance(value, bytes):
        forms = [repr(value)[2:-1]]
        with contextlib.suppress(UnicodeDecodeError):
            forms.append(value.decode('utf-8'))
        return forms, None
    plain = json_safe(value)
    forms = [plain, repr(value)[1:-1], _json_escape(plain)]
    return forms, value.encode('utf-8', 'surrogatepass')


def _json_escape(text: str) -> str:
    import orjson  # noqa: PLC0415 - keep import cost off the module load

    return orjson.dumps(text).decode()[1:-1]


#: The process-wide :class:`Scrubber` that capture feeds and consults.
SECRETS = Scrubber()


def scrub(text: str) -> str:
    """Mask in ``text`` every value redacted so far in this process."""
    return SECRETS.scrub(text)


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
        """Whether a key, field or keyword name (str or bytes) is secret."""
        if type(key) is bytes:
            key = key.decode('utf-8', 'replace')
        if not isinstance(key, str):
            return False
        return _secret_name(self.redact_keys, str.__str__(key))


@functools.lru_cache(maxsize=4096)
def _secret_name(patterns: frozenset[str], key: str) -> bool:
    low = key.lower().replace('-', '_')
    return any(pattern in low for pattern in patterns)


# ------------------------------------------------------------ hashing


def _int_bytes(value: int) -> bytes:
    if value.bit_length() <= _DECIMAL_INT_BITS:
        return b'i%d;' % value
    return b'x' + hex(value).encode() + b';'  # no int->str digit limit


def _scalar_bytes(value: object) -> bytes | None:  # noqa: PLR0911
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


_SECRET_NODE = _Node(*_REDACTED_DIGEST, redacted=True)


def _pair_secret(item: object, policy: ValuePolicy | None) -> bool:
    """Whether ``item`` is a ``(secret-looking name, value)`` pair."""
    return (
        policy is not None
        and isinstance(item, Frozen)
        and item.kind == 'seq'
        and len(item.items) == 2  # noqa: PLR2004 - a key-value pair
        and type(item.items[0]) in {str, bytes}
        and policy.is_secret(item.items[0])
    )


class _Walker:
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
        return _SECRET_NODE

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
        scalar = _scalar_bytes(value)
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
                return _SECRET_NODE
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
        return self.secret(value) if secret else self.node(value)

    def _blob(self, value: Frozen) -> _Node:
        data: bytes = value.items[0]
        if not value.truncated:
            if self.scrubber is not None and self.scrubber.known(data):
                return _SECRET_NODE
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
        if _pair_secret(value, policy):
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
    return _Walker(None, None).node(freeze(value)).digest.hex()


# ------------------------------------------------------------ previews


class _Full(Exception):  # noqa: N818 - control flow, not an error
    """The preview reached its length bound."""


class _Preview:
    """Compact JSON-like text of a frozen value, built up to a bound."""

    __slots__ = ('left', 'out', 'walker')

    def __init__(self, walker: _Walker, limit: int) -> None:
        self.walker = walker
        self.left = limit + 1
        self.out: list[str] = []

    def put(self, text: str) -> None:
        if len(text) >= self.left:
            self.out.append(text[: self.left])
            self.left = 0
            raise _Full
        self.out.append(text)
        self.left -= len(text)

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
        if secret or (
            walker.scrubber is not None and walker.scrubber.known(value)
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
        if _pair_secret(value, policy):
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
    return '"' + _json_escape(json_safe(text)) + '"'


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
        if value.bit_length() > _DECIMAL_INT_BITS:
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
    if cls is int and value.bit_length() <= _DECIMAL_INT_BITS:  # type: ignore[attr-defined]
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


# ------------------------------------------------------------ describe

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
        encoded = _scalar_bytes(value)  # type: ignore[assignment]
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
    walker: _Walker | None = None,
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
    walker = walker or _Walker(policy, scrubber)
    type_name = (
        value.type_name
        if isinstance(value, (Frozen, Opaque))
        else _type_name(type(value))
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
    masked = node is _SECRET_NODE
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
    walker: _Walker,
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
