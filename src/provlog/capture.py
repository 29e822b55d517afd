"""The Academy host adapter: log records in, provenance events out.

This is the only module that knows which ``academy.*`` extras carry
provenance. It does not import Academy: it reads record attributes by name,
so the handler works (and ignores everything) where Academy is absent.

It runs on the caller's thread, inside :meth:`logging.Handler.handle`, and so
does only what must happen there: pick the few fields it needs, snapshot live
values with :func:`provlog.values.freeze`, and recover what Academy does not
log (the parent action and the executing agent) from context variables that
follow the emitting asyncio task.
"""

from __future__ import annotations

import contextvars
import traceback
from typing import Any

from provlog.values import freeze

__all__ = ['RawEvent', 'current_execution', 'extract']

#: What the handler hands to the writer: ``(kind, tag, time, data)``.
RawEvent = tuple[str, str | None, float, dict[str, Any]]

STATE = 'academy.action_state'
TAG = 'academy.action_tag'
ACTION = 'academy.action'
AGENT_ID = 'academy.agent_id'
AGENT = 'academy.agent'

#: The action tag of the execution running in the current asyncio task.
#: Set on ``execute_start``; tasks created inside the action inherit it, so a
#: nested call's ``start`` record finds its parent here.
current_execution: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    'provlog_current_execution',
    default=None,
)

_CALLER_END = frozenset({'success', 'exception', 'cancelled'})
_EXEC_END = frozenset({'execute_success', 'execute_cancelled'})


def _ident(entity: object) -> dict[str, Any] | None:
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


def extract(  # noqa: C901, PLR0911, PLR0912
    record: Any,
    budget: int = 10_000,
) -> RawEvent | None:
    """Map one log record to a raw event, or ``None`` when it carries none.

    Args:
        record: A :class:`logging.LogRecord`.
        budget: Element budget for snapshotting one value.

    Returns:
        ``(kind, tag, created, data)`` or ``None``. ``kind`` is the Academy
        action state, ``'agent'`` (an agent's identity and class) or
        ``'exec_agent'`` (which agent runs the current execution).
    """
    extras = record.__dict__
    state = extras.get(STATE)
    if state is None:
        agent_id = extras.get(AGENT_ID)
        if agent_id is None:
            return None
        if ACTION in extras:  # runtime.action: the executing agent
            tag = current_execution.get()
            if tag is None:
                return None
            return (
                'exec_agent',
                tag,
                record.created,
                {'agent': _ident(agent_id)},
            )
        agent = extras.get(AGENT)
        if agent is None:
            return None
        ident = _ident(agent_id)
        if ident is None:
            return None
        ident['class'] = _class_name(agent)
        return ('agent', None, record.created, ident)

    tag_obj = extras.get(TAG)
    if tag_obj is None and state == 'cancelled' and record.args:
        tag_obj = record.args[0]  # reject_on_inactive: tag only in the args
    if tag_obj is None:
        return None
    tag = str(tag_obj)
    created = record.created

    if state == 'start':
        args = extras.get('academy.action_args') or ()
        kwargs = extras.get('academy.action_kwargs') or {}
        data: dict[str, Any] = {
            'action': extras.get(ACTION),
            'callee': _ident(extras.get(AGENT_ID)),
            'parent': current_execution.get(),
            'args': [freeze(a, budget) for a in args],
            'kwargs': {str(k): freeze(v, budget) for k, v in kwargs.items()},
        }
        return ('start', tag, created, data)
    if state == 'sending':
        return (
            'sending',
            tag,
            created,
            {'src': _ident(extras.get('academy.src'))},
        )
    if state == 'success':
        return (
            'success',
            tag,
            created,
            {'result': freeze(extras.get('academy.result'), budget)},
        )
    if state in _CALLER_END:
        return (state, tag, created, {})
    if state == 'execute_start':
        current_execution.set(tag)
        return ('execute_start', tag, created, {'action': extras.get(ACTION)})
    if state == 'execute_exception':
        return ('execute_exception', tag, created, {'error': _error(record)})
    if state in _EXEC_END:
        return (state, tag, created, {})
    return None  # 'waiting' and states this version does not know
