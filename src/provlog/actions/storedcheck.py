"""The parts of a stored merged form, checked as they are read.

:mod:`provlog.actions.stored` reads a run's merged form back from its run
folder, which anyone may have written: each part is checked to be what
:func:`provlog.actions.stored.save` writes, and each stored line by the
journal reader's own check (:mod:`provlog.journals.reader`), so what the
later stages get from it is what a merge of the journals would give them.
Anything else raises :class:`DamagedError`, and the run is merged again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from provlog.actions.process import CaptureGap
from provlog.actions.process import Process
from provlog.journals.reader import _check_event
from provlog.vocab import Action
from provlog.vocab import ACTION_KINDS

__all__ = [
    'KINDS',
    'DamagedError',
    'Stored',
    'action_line',
    'need',
    'run_part',
]

#: The kinds of an action's lines, in the order of the index's bits.
KINDS = tuple(sorted(ACTION_KINDS))
_TAG = re.compile(
    r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'
)


class DamagedError(ValueError):
    """The stored form is not what :func:`~.stored.save` writes."""


@dataclass
class Stored:
    """A run's merged form, as :func:`~.stored.load` read it."""

    run_id: str
    actions: dict[str, Action]
    agents: dict[str, dict[str, Any]]
    processes: dict[str, Process]
    forwarded: set[str]
    launches: dict[str, dict[str, Any]]
    lifecycles: dict[str, dict[str, dict[str, Any]]]
    idents: list[dict[str, Any]]


def run_part(about: Any, index: Any) -> Stored:
    """The run's part of the stored form, checked.

    Raises:
        DamagedError: It is not what :func:`~.stored.save` writes.
    """
    need(isinstance(about, dict) and isinstance(index, dict))
    tags, kinds, sizes = index['tags'], index['kinds'], index['sizes']
    need(
        isinstance(tags, list)
        and isinstance(kinds, list)
        and isinstance(sizes, list)
        and isinstance(index['first'], list)
        and all(type(t) is float for t in index['first'])
        and len(tags)
        == len(kinds)
        == len(sizes)
        == len(set(tags))
        == len(index['first'])
        and all(type(t) is str and _TAG.fullmatch(t) for t in tags)
        and all(type(k) is int and 0 < k < 1 << len(KINDS) for k in kinds)
        and all(type(s) is int and s > 1 for s in sizes)
    )
    run_id, agents, forwarded = (
        about['run'],
        about['agents'],
        about['forwarded'],
    )
    launches, lifecycles = about['launches'], about['lifecycles']
    idents = about['idents']
    need(
        isinstance(run_id, str)
        and _dict_of(agents, dict)
        and isinstance(forwarded, list)
        and all(isinstance(t, str) for t in forwarded)
        and _dict_of(launches, dict)
        and all(_timed(e) for e in launches.values())
        and _dict_of(lifecycles, dict)
        and all(
            _dict_of(states, dict) and all(_timed(e) for e in states.values())
            for states in lifecycles.values()
        )
        and isinstance(idents, list)
        and all(isinstance(i, dict) for i in idents)
        and isinstance(about['processes'], list)
    )
    processes = {}
    for fields in about['processes']:
        process = _process(fields)
        processes[process.process] = process
    return Stored(
        run_id,
        {},
        agents,
        processes,
        set(forwarded),
        launches,
        lifecycles,
        idents,
    )


def need(ok: object) -> None:
    """Raise :class:`DamagedError` unless ``ok``."""
    if not ok:
        raise DamagedError('not the stored form')


def _dict_of(value: object, kind: type) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, kind) for k, v in value.items()
    )


def _event(event: dict[str, Any]) -> bool:
    return _check_event(event.get('e'), event) is None


def _timed(event: dict[str, Any]) -> bool:
    """A launch or lifecycle line, as the merge keeps them: with a time."""
    return 't' in event and _event(event)


_PROCESS_TYPES: dict[str, tuple[type, ...]] = {
    'process': (str,),
    'host': (str, type(None)),
    'pid': (int, type(None)),
    'files': (list,),
    'closed': (bool,),
    'dropped': (int,),
    'skipped': (int,),
    'partial_tail': (bool,),
    'header': (dict,),
    'lost': (int,),
    'lost_since': (float, int, type(None)),
    'encode_errors': (int,),
    'capture_gaps': (list,),
    'context': (dict,),
}
_GAP_TYPES: dict[str, tuple[type, ...]] = {
    'kind': (str,),
    'since': (float, int, type(None)),
    'noticed': (float, int, type(None)),
    'reason': (str,),
    'resumed': (float, int, type(None)),
}


def _process(fields: object) -> Process:
    """One process of the stored form, checked field by field."""
    need(
        isinstance(fields, dict)
        and fields.keys() == _PROCESS_TYPES.keys()
        and all(isinstance(fields[k], t) for k, t in _PROCESS_TYPES.items())
    )
    assert isinstance(fields, dict)
    gaps = []
    for gap in fields['capture_gaps']:
        need(
            isinstance(gap, dict)
            and gap.keys() == _GAP_TYPES.keys()
            and all(isinstance(gap[k], t) for k, t in _GAP_TYPES.items())
        )
        gaps.append(CaptureGap(**gap))
    return Process(**{**fields, 'capture_gaps': gaps})


def action_line(
    raw: bytes, tag: str, kinds: frozenset[str]
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """One action's line, checked as the journals' lines are."""
    events, hosts = orjson.loads(raw)
    need(
        isinstance(events, dict)
        and events.keys() == kinds
        and isinstance(hosts, dict)
        and hosts.keys() <= kinds
        and all(isinstance(h, str) for h in hosts.values())
    )
    for kind, event in events.items():
        need(
            isinstance(event, dict)
            and event.get('e') == kind
            and event.get('tag') == tag
            and isinstance(event.get('_process'), str)
            and _event(event)
        )
    return events, hosts
