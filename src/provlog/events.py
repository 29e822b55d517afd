"""Journal lines: what one event holds on disk.

Every line is a JSON object with ``e`` (the kind) and, for action events,
``tag`` (the Academy action tag) and ``t`` (the emitting host's
``record.created``, seconds since the epoch). Kinds:

============================  ==============================================
``journal``                   header: ``v``, ``run``, ``process``, ``host``,
                              ``pid``, ``python``, ``academy``, ``provlog``,
                              ``flush_interval``, ``t``
``agent``                     ``uid``, ``role``, ``name``, ``class``
``start``                     ``action``, ``callee``, ``parent``, ``args``
                              (list of value descriptions), ``kwargs``
``sending``                   ``src`` (the caller: ``uid``, ``role``, ``name``)
``success``                   ``result`` (a value description)
``exception`` ``cancelled``   nothing more
``execute_start``             ``action``
``exec_agent``                ``agent`` (the agent running the execution)
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

from provlog.capture import RawEvent
from provlog.values import describe
from provlog.values import ValuePolicy

__all__ = ['ACTION_KINDS', 'Encoder']

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

    It applies the value policy (redaction, caps, previews, hashes) and
    writes each agent's identity once per journal.
    """

    __slots__ = ('_agents', 'policy')

    def __init__(self, policy: ValuePolicy) -> None:
        self.policy = policy
        self._agents: set[tuple[str, str]] = set()

    def __call__(self, raw: RawEvent) -> dict[str, Any] | None:
        """Return the journal line for ``raw`` (``None`` to write nothing)."""
        kind, tag, created, data = raw
        if kind == 'agent':
            key = (data['uid'], data.get('class', ''))
            if key in self._agents:
                return None
            self._agents.add(key)
            return {'e': 'agent', 't': created, **data}
        line: dict[str, Any] = {'e': kind, 'tag': tag, 't': created}
        if kind == 'start':
            policy = self.policy
            line['action'] = data['action']
            line['callee'] = data['callee']
            line['parent'] = data['parent']
            line['args'] = [describe(a, policy) for a in data['args']]
            line['kwargs'] = {
                k: describe(v, policy, secret=policy.is_secret(k))
                for k, v in data['kwargs'].items()
            }
        elif kind == 'success':
            line['result'] = describe(data['result'], self.policy)
        else:
            line.update(data)
        return line
