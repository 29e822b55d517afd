"""The Academy host adapter: log records in, provenance events out.

This is the only module that knows which ``academy.*`` extras carry
provenance. It does not import Academy: it reads record attributes by name,
so the handler works (and ignores everything) where Academy is absent.

It runs on the caller's thread, inside :meth:`logging.Handler.handle`, and so
does only what must happen there: pick the few fields it needs, snapshot live
values with :func:`provlog.capture.values.freeze`, and recover what Academy
does not log (the parent action, the executing agent, the calling agent) from
context variables that follow the emitting asyncio task. Identifiers stay as
the immutable objects Academy passed (``UUID``, ``AgentId``); the writer
thread turns them into strings with :func:`ident` and :func:`tag_str`.
"""

from __future__ import annotations

import contextvars
import traceback
import types
from collections.abc import Callable
from typing import Any

from provlog.capture import inside
from provlog.capture.inside import current_agent
from provlog.capture.inside import current_execution
from provlog.capture.resources import Sample
from provlog.capture.resources import sample
from provlog.capture.values import bounded_call
from provlog.capture.values import freeze
from provlog.capture.values import json_safe
from provlog.capture.values import Snapshot
from provlog.vocab import AGENT as AGENT_KIND
from provlog.vocab import CANCELLED
from provlog.vocab import EXCEPTION
from provlog.vocab import EXEC_AGENT
from provlog.vocab import EXECUTE_CANCELLED
from provlog.vocab import EXECUTE_EXCEPTION
from provlog.vocab import EXECUTE_START
from provlog.vocab import EXECUTE_SUCCESS
from provlog.vocab import LAUNCH
from provlog.vocab import LIFE_RUNNING
from provlog.vocab import LIFE_SHUTDOWN
from provlog.vocab import LIFE_STARTING
from provlog.vocab import LIFE_STOPPING
from provlog.vocab import LIFECYCLE
from provlog.vocab import SENDING
from provlog.vocab import START
from provlog.vocab import SUCCESS

__all__ = [
    'RawEvent',
    'current_agent',
    'current_execution',
    'current_managers',
    'extract',
    'format_error',
    'ident',
    'tag_str',
    'wanted',
]

#: What the handler hands to the writer: ``(kind, tag, time, data)``.
RawEvent = tuple[str, Any, float, dict[str, Any]]

STATE = 'academy.action_state'
TAG = 'academy.action_tag'
ACTION = 'academy.action'
AGENT_ID = 'academy.agent_id'
AGENT = 'academy.agent'
USER_ID = 'academy.user_id'

#: The Managers entered (``async with``) in the current task, innermost
#: last, each as ``(its user id, the agent running the task then)``. Set on
#: the Manager's ``Entered manager context`` record, popped on ``Closed
#: manager``; a ``Launched agent`` record reads it to name the launcher.
current_managers: contextvars.ContextVar[tuple[tuple[Any, Any], ...]] = (
    contextvars.ContextVar('provlog_current_managers', default=())
)

_BUDGET = 10_000
#: Types whose values are immutable and kept as they are by a snapshot.
_SCALARS = frozenset(
    id(t) for t in (str, int, float, bool, bytes, type(None), complex)
)


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
        out['name'] = json_safe(str(name))
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


_MESSAGE_CHARS = 64 * 1024
_CHAIN = 8
_FRAMES = 200
_CAUSE = BaseException.__dict__['__cause__']
_CONTEXT = BaseException.__dict__['__context__']
_SUPPRESS = BaseException.__dict__['__suppress_context__']
_TRACEBACK = BaseException.__dict__['__traceback__']


_ARGS = BaseException.__dict__['args']
_PLAIN_ARGS = frozenset(id(t) for t in (str, int, float, bytes, bool))


def _builtin_str(exc: BaseException) -> bool:
    """Whether ``str(exc)`` runs only C code (and may run on the host).

    That is: the ``__str__`` is a builtin one and the arguments are plain.
    """
    for klass in type(exc).__mro__:
        found = klass.__dict__.get('__str__')
        if found is not None:
            break
    if type(found) is not types.WrapperDescriptorType:
        return False
    args = _ARGS.__get__(exc)
    return type(args) is tuple and all(
        id(type(a)) in _PLAIN_ARGS for a in args
    )


def _message(exc: BaseException) -> str:
    """``str(exc)``, waited for a bounded time.

    Called directly when it runs no user code, else on a helper thread.
    """
    if _builtin_str(exc):
        return str(exc)[:_MESSAGE_CHARS]
    status, text = bounded_call(str, exc)
    if status == 'ok' and isinstance(text, str):
        return str.__str__(text[:_MESSAGE_CHARS])
    if status == 'error':
        return f'<unprintable {_class_name(type(exc))}: {text}>'
    return f'<str() of the exception not taken: {status}>'


def _stack(tb: types.TracebackType | None) -> traceback.StackSummary:
    """The innermost frames of ``tb``: file, line, function only.

    No source line is read and no file is touched here (the writer reads
    the lines when it formats the traceback).
    """
    frames = [
        traceback.FrameSummary(
            frame.f_code.co_filename,
            lineno,
            frame.f_code.co_name,
            lookup_line=False,
        )
        for frame, lineno in traceback.walk_tb(tb)
    ]
    return traceback.StackSummary.from_list(frames[-_FRAMES:])


def _error(record: Any) -> dict[str, Any] | None:
    """The exception of ``record``, read without running unbounded user code.

    On the caller's thread only the frames (file, line, function), the
    class names and each message (``str`` under the helper-thread bound of
    :func:`provlog.capture.values.bounded_call`) are taken; the writer
    formats the traceback text (see :func:`format_error`).
    """
    try:
        exc_info = record.exc_info
        if not exc_info or exc_info[0] is None:
            return None
        etype, exc, tb = exc_info
        chain: list[tuple[str, str, traceback.StackSummary, str | None]] = []
        seen: set[int] = set()
        relation: str | None = None
        current: BaseException | None = exc
        while current is not None and id(current) not in seen:
            if len(chain) >= _CHAIN:
                break
            seen.add(id(current))
            frames = tb if current is exc else _TRACEBACK.__get__(current)
            chain.append(
                (
                    _class_name(type(current)),
                    _message(current),
                    _stack(frames),
                    relation,
                ),
            )
            cause = _CAUSE.__get__(current)
            if cause is not None:
                current, relation = cause, 'cause'
            elif not _SUPPRESS.__get__(current):
                current, relation = _CONTEXT.__get__(current), 'context'
            else:
                current = None
        return {
            'type': _class_name(etype),
            'message': chain[0][1] if chain else '',
            'chain': chain,
        }
    except BaseException as exc:  # noqa: BLE001 - never raise into the host
        return {
            'type': '?',
            'message': f'<exception not captured: {type(exc).__name__}>',
            'chain': [],
        }


_RELATION = {
    'cause': '\nThe above exception was the direct cause of the following '
    'exception:\n\n',
    'context': '\nDuring handling of the above exception, another exception '
    'occurred:\n\n',
}


def format_error(error: dict[str, Any]) -> dict[str, Any]:
    """Journal form (``type``, ``message``, ``traceback``) of an error.

    Formats what :func:`_error` took on the caller's thread; runs on the
    writer thread and reads source lines there, like
    :func:`traceback.format_exception`.
    """
    parts: list[str] = []
    for type_name, message, stack, relation in reversed(error['chain']):
        if stack:
            parts.append('Traceback (most recent call last):\n')
            parts.extend(stack.format())
        parts.append(
            f'{type_name}: {message}\n' if message else f'{type_name}\n'
        )
        if relation is not None:
            parts.append(_RELATION[relation])
    return {
        'type': error['type'],
        'message': error['message'],
        'traceback': ''.join(parts),
    }


# ------------------------------------------------------ per-state handlers


def _start(record: Any, extras: dict[str, Any]) -> dict[str, Any]:
    args = tuple(extras.get('academy.action_args') or ())
    kwargs = dict(extras.get('academy.action_kwargs') or {})
    if all(id(type(v)) in _SCALARS for v in (*args, *kwargs.values())):
        taken = list(args)  # immutable already: nothing to snapshot
        named = {k if type(k) is str else '?': v for k, v in kwargs.items()}
    else:
        snap = Snapshot(_BUDGET)  # one element and time budget for the event
        taken = [snap.take(a) for a in args]
        named = {
            k if type(k) is str else '?': snap.take(v)
            for k, v in kwargs.items()
        }
    return {
        'action': extras.get(ACTION),
        'callee': extras.get(AGENT_ID),
        'parent': current_execution.get(),
        'caller': current_agent.get(),
        'args': taken,
        'kwargs': named,
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
    tag = extras.get(TAG)
    current_execution.set(tag)
    inside.begin(tag)
    return {
        'action': extras.get(ACTION),
        'agent': current_agent.get(),
        'res': sample(record),
    }


def _execute_end(
    record: Any,
    extras: dict[str, Any],
    res: Sample | None = None,
) -> dict[str, Any]:
    """Where it ran and what it cost; what it logged, printed and warned."""
    out: dict[str, Any] = {'res': sample(record) if res is None else res}
    tag = extras.get(TAG)
    if tag is not None and current_execution.get() == tag:
        # its scope ends here: a host that logs both ends on one thread's
        # context (not a task per execution, as Academy does) would
        # otherwise make every later call a child of this one
        current_execution.set(None)
    found = inside.end(tag)
    if found is not None:
        out['inside'] = found
    return out


def _execute_exception(record: Any, extras: dict[str, Any]) -> dict[str, Any]:
    res = sample(record)  # before the error is taken: not its cost
    return {'error': _error(record), **_execute_end(record, extras, res)}


_Handler = Callable[[Any, dict[str, Any]], dict[str, Any] | None]
#: Academy's action states are the journal's kinds of action line.
_BY_STATE: dict[str, _Handler] = {
    START: _start,
    SENDING: _sending,
    SUCCESS: _success,
    EXCEPTION: _nothing,
    CANCELLED: _nothing,
    EXECUTE_START: _execute_start,
    EXECUTE_SUCCESS: _execute_end,
    EXECUTE_EXCEPTION: _execute_exception,
    EXECUTE_CANCELLED: _execute_end,
}


#: The runtime's lifecycle records (message prefix -> state), in order.
_LIFECYCLE = (
    ('Starting agent', LIFE_STARTING),
    ('Running agent', LIFE_RUNNING),
    ('Shutting down agent', LIFE_STOPPING),
    ('Shutdown agent', LIFE_SHUTDOWN),
)


def _same_uid(a: object, b: object) -> bool:
    uid = getattr(a, 'uid', None)
    return uid is not None and uid == getattr(b, 'uid', None)


def _manager_record(record: Any, user: object) -> None:
    """``Entered manager context`` / ``Closed manager``: track the Manager."""
    msg = record.msg
    if not isinstance(msg, str):
        return
    managers = current_managers.get()
    top = managers[-1][0] if managers else None
    if msg.startswith('Entered manager context'):
        if not _same_uid(top, user):  # once, though two sessions see it
            current_managers.set((*managers, (user, current_agent.get())))
    elif msg.startswith('Closed manager') and _same_uid(top, user):
        current_managers.set(managers[:-1])


def _launcher() -> tuple[Any, Any]:
    """Who launches an agent from the current task, and through which user.

    Returns:
        ``(launcher, manager)``. The launcher is the client whose Manager
        was entered in this task, or the agent running the task (an agent
        launching alongside itself, or through a Manager it holds: then
        ``manager`` is that Manager's user id). ``(None, None)`` when
        neither is known (a Manager never entered with ``async with``).
    """
    agent = current_agent.get()
    managers = current_managers.get()
    if managers:
        user, holder = managers[-1]
        if holder == agent:  # entered in this agent's task (or no agent's)
            if agent is None or _same_uid(user, agent):
                return user, None
            return agent, user
    return agent, None


def _lifecycle(msg: object) -> str | None:
    """The lifecycle state a runtime record with an agent reports."""
    if not isinstance(msg, str):
        return None
    for prefix, state in _LIFECYCLE:
        if msg.startswith(prefix):
            return state
    return None


def _agent_event(
    record: Any, extras: dict[str, Any], agent_id: object, agent: object
) -> RawEvent:
    """An agent's identity, launch or lifecycle event."""
    cls = agent if isinstance(agent, type) else type(agent)
    data: dict[str, Any] = {
        'agent': agent_id,
        'class': _class_name(agent),
        'cls': cls,
    }
    name = record.name
    msg = record.msg
    if name == 'academy.runtime':
        current_agent.set(agent_id)
        state = _lifecycle(msg)
        if state is not None:
            if state == LIFE_STARTING:
                # the runtime's tasks belong to this agent, not to the
                # action or Managers of the task that launched it
                current_execution.set(None)
                current_managers.set(())
            data['state'] = state
            expected = extras.get('academy.expected')
            if isinstance(expected, bool):
                data['expected'] = expected
            return (LIFECYCLE, None, record.created, data)
    elif (
        name == 'academy.manager'
        and isinstance(msg, str)
        and msg.startswith('Launched agent')
    ):
        launcher, manager = _launcher()
        data['launcher'] = launcher
        data['manager'] = manager
        data['parent'] = current_execution.get()
        return (LAUNCH, None, record.created, data)
    return (AGENT_KIND, None, record.created, data)


def _without_state(record: Any, extras: dict[str, Any]) -> RawEvent | None:
    """Agent identity, launch and lifecycle records, and ``Invoking``.

    Also follows the Manager context of the current task (``Entered
    manager context`` and ``Closed manager`` carry ``academy.user_id``),
    which names the client that launches agents from it.
    """
    agent_id = extras.get(AGENT_ID)
    if agent_id is None:
        user = extras.get(USER_ID)
        if user is not None and record.name == 'academy.manager':
            _manager_record(record, user)
        return None
    if ACTION in extras:  # runtime.action: which agent runs this execution
        if current_agent.get() is not None:
            return None  # already on the execute_start event
        tag = current_execution.get()
        if tag is None:
            return None
        return (EXEC_AGENT, tag, record.created, {'agent': agent_id})
    agent = extras.get(AGENT)
    if agent is None:
        return None
    return _agent_event(record, extras, agent_id, agent)


def wanted(record: Any) -> bool:
    """Whether :func:`extract` may use ``record`` (asked first, cheaply).

    ``False`` only for the records it ignores without looking further:
    Academy's ``waiting``, ``Invoking`` inside an agent's task, records
    without its extras. The handler asks this first, so the records it
    drops cost a few dict lookups.
    """
    extras = record.__dict__
    state = extras.get(STATE)
    if state is not None:
        return type(state) is not str or state in _BY_STATE
    if AGENT_ID in extras:
        return ACTION not in extras or current_agent.get() is None
    return USER_ID in extras


def extract(record: Any) -> RawEvent | None:
    """Map one log record to a raw event, or ``None`` when it carries none.

    Args:
        record: A :class:`logging.LogRecord`.

    Returns:
        ``(kind, tag, created, data)`` or ``None``. ``kind`` is the Academy
        action state, ``'agent'`` (an agent's identity and class),
        ``'launch'`` (the Manager launched an agent: who launched it),
        ``'lifecycle'`` (the runtime started, runs, stops or shut down an
        agent) or ``'exec_agent'`` (which agent runs the current execution,
        when the runtime's own record did not say).
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
        if state != CANCELLED or not record.args:
            return None
        tag = record.args[0]  # reject_on_inactive: tag only in the args
    data = handler(record, extras)
    if data is None:
        return None
    return (state, tag, record.created, data)
