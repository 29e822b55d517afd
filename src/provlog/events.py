"""Journal lines: what one event holds on disk.

Every line is a JSON object with ``e`` (the kind) and, for action events,
``tag`` (the Academy action tag) and ``t`` (the emitting host's
``record.created``, seconds since the epoch). Kinds:

============================  ==============================================
``journal``                   header: ``v``, ``run``, ``process``, ``host``,
                              ``pid``, ``python``, ``academy``, ``provlog``,
                              ``flush_interval``, ``t``
``agent``                     ``uid``, ``role``, ``name``, ``class``
``start``                     ``action``, ``callee``, ``parent``, ``caller``
                              (when an agent calls), ``args`` (list of value
                              descriptions), ``kwargs``
``sending``                   ``src`` (the client that calls: ``uid``,
                              ``role``, ``name``); not written for agents
``success``                   ``result`` (a value description)
``exception`` ``cancelled``   nothing more
``execute_start``             ``action``, ``agent`` (the agent running it)
``exec_agent``                ``agent``, when ``execute_start`` lacked it
``execute_success``           nothing more
``execute_exception``         ``error``: ``type``, ``message``, ``traceback``
``execute_cancelled``         nothing more
``dropped``                   ``n`` events dropped because the writer lagged
``close``                     the process closed its journal cleanly
============================  ==============================================

A value description is what :func:`provlog.values.describe` returns.
"""

from __future__ import annotations

from typing import Any

from provlog.capture import ident
from provlog.capture import RawEvent
from provlog.capture import tag_str
from provlog.values import describe
from provlog.values import ValuePolicy

__all__ = ['ACTION_KINDS', 'Encoder']

_IDENT_CACHE = 4096

#: Kinds that belong to one action invocation (they carry ``tag``).
ACTION_KINDS = frozenset(
    {
        'start',
        'sending',
        'success',
        'exception',
        'cancelled',
        'execute_start',
        'exec_agent',
        'execute_success',
        'execute_exception',
        'execute_cancelled',
    },
)


class Encoder:
    """Turns raw events into journal lines on the writer thread.

    It applies the value policy (redaction, caps, previews, hashes), turns
    Academy's identifier objects into strings, and writes each agent's
    identity once per journal.
    """

    __slots__ = ('_agents', '_idents', 'policy')

    def __init__(self, policy: ValuePolicy) -> None:
        self.policy = policy
        self._agents: set[tuple[str, str]] = set()
        self._idents: dict[tuple[Any, ...], dict[str, Any] | None] = {}

    def _ident(self, entity: object) -> dict[str, Any] | None:
        """:func:`ident`, remembered: the same agents recur in every event."""
        uid = getattr(entity, 'uid', None)
        if uid is None:
            return None
        key = (
            uid,
            getattr(entity, 'name', None),
            getattr(entity, 'role', None),
        )
        found = self._idents.get(key)
        if found is None:
            if len(self._idents) > _IDENT_CACHE:
                self._idents.clear()
            found = self._idents[key] = ident(entity)
        return found

    def __call__(self, raw: RawEvent) -> dict[str, Any] | None:  # noqa: C901
        """Return the journal line for ``raw`` (``None`` to write nothing)."""
        kind, tag, created, data = raw
        if kind == 'agent':
            agent = self._ident(data['agent'])
            if agent is None:
                return None
            key = (agent['uid'], data['class'])
            if key in self._agents:
                return None
            self._agents.add(key)
            return {
                'e': 'agent',
                't': created,
                **agent,
                'class': data['class'],
            }
        line: dict[str, Any] = {'e': kind, 'tag': tag_str(tag), 't': created}
        if kind == 'start':
            policy = self.policy
            line['action'] = data['action']
            line['callee'] = self._ident(data['callee'])
            line['parent'] = tag_str(data['parent'])
            caller = self._ident(data.get('caller'))
            if caller is not None:
                line['caller'] = caller
            line['args'] = [describe(a, policy) for a in data['args']]
            line['kwargs'] = {
                k: describe(v, policy, secret=policy.is_secret(k))
                for k, v in data['kwargs'].items()
            }
        elif kind == 'success':
            line['result'] = describe(data['result'], self.policy)
        elif kind == 'sending':
            line['src'] = self._ident(data['src'])
        elif kind in {'execute_start', 'exec_agent'}:
            agent = self._ident(data.get('agent'))
            if agent is not None:
                line['agent'] = agent
            if 'action' in data:
                line['action'] = data['action']
        else:
            line.update(data)
        return line
