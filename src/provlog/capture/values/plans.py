"""How to snapshot each type, decided once per type without user code.

A :class:`Plan` says how :class:`~provlog.capture.values.snapshot.Snapshot`
reads instances of a type: as a builtin container (through the builtin
base's C-level methods), a named tuple, a mutable buffer, an enum, a safe
``repr``, or an object by its fields (instance dict and slots) with its
own ``repr`` as the fallback.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import fractions
import ipaddress
import pathlib
import types
import uuid
from dataclasses import dataclass
from typing import Any

from provlog.capture.values.text import json_safe

__all__ = ['Plan', 'plan_for', 'qualified_name']

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


def qualified_name(cls: type) -> str:
    """``module.qualname`` of ``cls``, JSON-safe (no user code)."""
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
class Plan:
    """How to snapshot instances of one type (computed once per type)."""

    how: str
    name: str
    base: Any = None
    fields: tuple[Any, ...] = ()


_PLANS: dict[int, tuple[type, Plan]] = {}
_PLAN_CACHE = 2048


def plan_for(cls: type) -> Plan:
    """The plan of ``cls``, from a bounded cache keyed by identity."""
    entry = _PLANS.get(id(cls))
    if entry is not None and entry[0] is cls:
        return entry[1]
    plan = _make_plan(cls)
    if len(_PLANS) >= _PLAN_CACHE:
        _PLANS.clear()
    _PLANS[id(cls)] = (cls, plan)
    return plan


def _make_plan(cls: type) -> Plan:  # noqa: C901, PLR0911
    name = qualified_name(cls)
    mro = type.__dict__['__mro__'].__get__(cls)
    if _within(tuple, mro):
        fields = _static(cls, '_fields')
        if (
            cls is not tuple
            and isinstance(fields, tuple)
            and all(isinstance(f, str) for f in fields)
        ):
            return Plan('namedtuple', name, tuple, fields)
        return Plan('seq', name, tuple)
    for base, how in (
        (list, 'seq'),
        (dict, 'map'),
        (set, 'set'),
        (frozenset, 'set'),
        (bytearray, 'blob'),
        (memoryview, 'blob'),
    ):
        if _within(base, mro):
            return Plan(how, name, base)
    if _within(enum.Enum, mro):
        return Plan('enum', name)
    if id(cls) in _SAFE_REPR_IDS:
        return Plan('repr', name)
    if _within(type, mro) and _static(type(cls), '__repr__') is type.__repr__:
        return Plan('repr', name)  # a class whose metaclass keeps repr
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
    return Plan(how, name, dict_descr, tuple(slots))


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
