"""The Academy host adapter: log records in, provenance events out.

This is the only module that knows which ``academy.*`` extras carry
provenance. It does not import Academy: it reads record attributes by name,
so the handler works (and ignores everything) where Academy is absent.

It runs on the caller's thread, inside :meth:`logging.Handler.handle`, and so
does only what must happen there: pick the few fields it needs, snapshot live
values with :func:`provlog.values.freeze`, and recover what Academy does not
log (the parent action, the executing agent, the calling agent) from context
variables that follow the emitting asyncio task. Identifiers stay as the
immutable objects Academy passed (``UUID``, ``AgentId``); the writer thread
turns them into strings with :func:`ident` and :func:`tag_str`.
"""

from __future__ import annotations

import contextvars
import traceback
from collections.abc import Callable
from typing import Any

from provlog.values import freeze

__all__ = [
    'RawEvent',
    'current_agent',
    'current_execution',
    'extract',
    'ident',
    'tag_str',
]

#: What the handler hands to the writer: ``(kind, tag, time, data)``.
RawEvent = tuple[str, Any, float, dict[str, Any]]

STATE = 'academy.action_state'
TAG = 'academy.action_tag'
ACTION = 'academy.action'
AGENT_ID = 'academy.agent_id'
AGENT = 'academy.agent'

#: The action tag of the execution running in the current asyncio task.
#: Set on ``execute_start``; tasks created inside the action inherit it, so a
#: nested call's ``start`` record finds its parent here.
current_execution: contextvars.ContextVar[Any] = contextvars.ContextVar(
    'provlog_current_execution',
    default=None,
)

#: The Academy agent whose runtime runs the current task. Set on the
#: runtime's ``Starting agent`` record; the runtime's listener and action
#: tasks are created afterwards and inherit it.
current_agent: contextvars.ContextVar[Any] = contextvars.ContextVar(
    'provlog_current_agent',
    default=None,
)

_BUDGET = 10_000


def ident(entity: object) -> dict[str, Any] | None:
    """Academy ``AgentId``/``UserId`` as a plain dict (``None`` if absent)."""
    uid = getattr(entity, 'uid', None)
    if uid is None:
        return None
    out: dict[str, Any] = {
        'uid': str(uid),
        'role': getattr(entity, 'role', 'agent'),
    }
    name = getattr(entity, 'name', None)
    if name is not None:
        out['name'] = str(name)
    return out


def tag_str(tag: object) -> str | None:
    """An action tag (``UUID`` or string) as a string."""
    return None if tag is None else str(tag)


def _class_name(agent: object) -> str:
    cls = agent if isinstance(agent, type) else type(agent)
    module = cls.__module__
    if module == 'builtins':
        return cls.__qualname__
    if module == '__mp_main__':
        module = '__main__'
    return f'{module}.{cls.__qualname__}'


def _error(record: Any) -> dict[str, Any] | None:
    exc_info = record.exc_info
    if not exc_info or exc_info[0] is None:
        return None
    etype, exc, tb = exc_info
    return {
        'type': _class_name(etype),
        'message': str(exc),
        'traceback': ''.join(traceback.format_exception(etype, exc, tb)),
    }


# ------------------------------------------------------ per-state handlers


def _start(record: Any, extras: dict[str, Any]) -> dict[str, Any]:
    args = extras.get('academy.action_args') or ()
    kwargs = extras.get('academy.action_kwargs') or {}
    return {
        'action': extras.get(ACTION),
        'callee': extras.get(AGENT_ID),
        'parent': current_execution.get(),
        'caller': current_agent.get(),
        'args': [freeze(a, _BUDGET) for a in args],
        'kwargs': {str(k): freeze(v, _BUDGET) for k, v in kwargs.items()},
    }


def _sending(record: Any, extras: dict[str, Any]) -> dict[str, Any] | None:
    if current_agent.get() is not None:
        return None  # an agent's call: the caller is already on ``start``
    return {'src': extras.get('academy.src')}


def _success(record: Any, extras: dict[str, Any]) -> dict[str, Any]:
    return {'result': freeze(extras.get('academy.result'), _BUDGET)}


def _nothing(record: Any, extras: dict[str, Any]) -> dict[str, Any]:
    return {}


def _execute_start(record: Any, extras: dict[str, Any]) -> dict[str, Any]:
    current_execution.set(extras.get(TAG))
    return {'action': extras.get(ACTION), 'agent': current_agent.get()}


def _execute_exception(record: Any, extras: dict[str, Any]) -> dict[str, Any]:
    return {'error': _error(record)}


_Handler = Callable[[Any, dict[str, Any]], dict[str, Any] | None]
_BY_STATE: dict[str, _Handler] = {
    'start': _start,
    'sending': _sending,
    'success': _success,
    'exception': _nothing,
    'cancelled': _nothing,
    'execute_start': _execute_start,
    'execute_success': _nothing,
    'execute_exception': _execute_exception,
    'execute_cancelled': _nothing,
}


def _without_state(record: Any, extras: dict[str, Any]) -> RawEvent | None:
    """Agent identity records and the runtime's ``Invoking`` record."""
    agent_id = extras.get(AGENT_ID)
    if agent_id is None:
        return None
    if ACTION in extras:  # runtime.action: which agent runs this execution
        if current_agent.get() is not None:
            return None  # already on the execute_start event
        tag = current_execution.get()
        if tag is None:
            return None
        return ('exec_agent', tag, record.created, {'agent': agent_id})
    agent = extras.get(AGENT)
    if agent is None:
        return None
    if record.name == 'academy.runtime':
        current_agent.set(agent_id)
    return (
        'agent',
        None,
        record.created,
        {'agent': agent_id, 'class': _class_name(agent)},
    )


def extract(record: Any) -> RawEvent | None:
    """Map one log record to a raw event, or ``None`` when it carries none.

    Args:
        record: A :class:`logging.LogRecord`.

    Returns:
        ``(kind, tag, created, data)`` or ``None``. ``kind`` is the Academy
        action state, ``'agent'`` (an agent's identity and class) or
        ``'exec_agent'`` (which agent runs the current execution, when the
        runtime's own record did not say).
    """
    extras = record.__dict__
    state = extras.get(STATE)
    if state is None:
        return _without_state(record, extras)
    handler = _BY_STATE.get(state)
    if handler is None:
        return None  # 'waiting' and states this version does not know
    tag = extras.get(TAG)
    if tag is None:
        if state != 'cancelled' or not record.args:
            return None
        tag = record.args[0]  # reject_on_inactive: tag only in the args
    data = handler(record, extras)
    if data is None:
        return None
    return (state, tag, record.created, data)
