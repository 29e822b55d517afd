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
from provlog.vocab import AGENT
from provlog.vocab import LAUNCH
from provlog.vocab import LIFECYCLE

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
        and all(_agent(uid, info) for uid, info in agents.items())
        and isinstance(forwarded, list)
        and all(isinstance(t, str) for t in forwarded)
        and _dict_of(launches, dict)
        and all(_launch(uid, e) for uid, e in launches.items())
        and _dict_of(lifecycles, dict)
        and all(
            _TAG.fullmatch(uid)
            and _dict_of(states, dict)
            and all(_life(state, e) for state, e in states.items())
            for uid, states in lifecycles.items()
        )
        and _idents(idents)
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


def _named(event: dict[str, Any]) -> bool:
    """A line that names its agent (launch, lifecycle), as merged."""
    agent = event.get('agent')
    return isinstance(agent, dict) and isinstance(agent.get('uid'), str)


def _launch(uid: str, event: dict[str, Any]) -> bool:
    """An agent's launch, as :class:`~.merge._Lives` keeps it."""
    return bool(
        _TAG.fullmatch(uid)
        and event.get('e') == LAUNCH
        and _named(event)
        and _timed(event)
    )


def _life(state: str, event: dict[str, Any]) -> bool:
    """An agent's lifecycle line for ``state``, as merged."""
    return (
        event.get('e') == LIFECYCLE
        and event.get('state') == state
        and _named(event)
        and _timed(event)
    )


def _agent(uid: str, info: dict[str, Any]) -> bool:
    """What the merge knows of an agent: its ``agent`` line's fields.

    Keyed by its UUID as the merge writes it; ``role``, ``name`` and
    ``class`` strings or null, as the journal reader checks an ``agent``
    line (the merge adds only strings to them, from launch and lifecycle
    lines).
    """
    return bool(
        _TAG.fullmatch(uid)
        and isinstance(info.get('uid'), str)
        and info.get('e', AGENT) == AGENT
        and _check_event(AGENT, info) is None
    )


def _idents(idents: object) -> bool:
    """The identities the calls name: objects with a ``uid`` string each.

    As the journal reader checks a call's ``caller``, ``callee``, ``src``
    or ``agent``, and one per ``uid`` as
    :meth:`~.merge.MergedRun.call_idents` keeps them.
    """
    if not isinstance(idents, list):
        return False
    uids = [i.get('uid') if isinstance(i, dict) else None for i in idents]
    return all(isinstance(u, str) for u in uids) and len(set(uids)) == len(
        uids
    )


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
