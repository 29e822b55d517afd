"""Journal lines: what one event holds on disk.

Every line is a JSON object with ``e`` (the kind) and, for action events,
``tag`` (the Academy action tag) and ``t`` (the emitting host's
``record.created``, seconds since the epoch). Kinds:

============================  ==============================================
``journal``                   header: ``v``, ``run``, ``process``, ``host``,
                              ``pid``, ``python``, ``academy``, ``provlog``,
                              ``flush_interval``, ``t``
``agent``                     ``uid``, ``role``, ``name``, ``class``
``launch``                    a Manager launched an agent (its ``Launched
                              agent`` record, launcher's clock): ``agent``
                              (``uid``, ``role``, ``name``), ``class``,
                              ``launcher`` (the client or agent that
                              launched it, or null), ``manager`` (the
                              Manager's user id when an agent launched
                              through a Manager it holds), ``parent`` (the
                              action executing in the launching task)
``lifecycle``                 the runtime's ``Starting agent``, ``Running
                              agent``, ``Shutting down agent`` and
                              ``Shutdown agent`` records (agent's clock):
                              ``agent``, ``class``, ``state``
                              (``starting``, ``running``, ``stopping``,
                              ``shutdown``), ``expected`` (on ``stopping``:
                              whether the shutdown was expected)
``start``                     ``action``, ``callee``, ``parent``, ``caller``
                              (when an agent calls), ``args`` (list of value
                              descriptions), ``kwargs``
``sending``                   ``src`` (the client that calls: ``uid``,
                              ``role``, ``name``); not written for agents
``success``                   ``result`` (a value description)
``exception`` ``cancelled``   nothing more
``execute_start``             ``action``, ``agent`` (the agent running it),
                              ``res`` (below)
``exec_agent``                ``agent``, when ``execute_start`` lacked it
``execute_success``           ``res``; ``inside`` (below), when there is any
``execute_exception``         ``error``: ``type``, ``message``,
                              ``traceback``; ``res``; ``inside``
``execute_cancelled``         ``res``; ``inside``
``context``                   the process's software and code, taken on the
                              writer thread (second line): ``packages``
                              (sorted ``name==version``),
                              ``packages_sha256``, ``script_sha256``,
                              ``git`` (``commit``, ``dirty``, ``root``, or
                              null), ``took`` (seconds), ``errors``
``dropped``                   ``n`` events dropped because the writer lagged
                              (only with ``drop_when_full``, or after a
                              bounded wait for a stuck writer)
``lost``                      ``n`` events lost since ``since`` because the
                              file could not be written (disk full)
``encode_error``              an event that could not be encoded: ``kind``,
                              ``tag``, ``t``, ``error``
``gap``                       capture stopped seeing records (the host
                              disabled or reconfigured logging): ``since``
                              (last time it was intact), ``reason``
``resume``                    capture works again after a ``gap``
``close``                     the process closed its journal: ``events``,
                              ``max_backlog``, ``waited`` (seconds the host
                              waited for the writer), ``at_exit`` when it
                              was closed as the process exited without its
                              uninit callback
============================  ==============================================

``res`` (:func:`provlog.capture.resources.usage`), sampled on the thread that
logged the record: ``tid`` and ``thread`` (its ident and name), ``cpu_user``
and ``cpu_sys`` (the process's CPU seconds so far), ``maxrss`` (the
process's peak resident set size so far, bytes), ``thread_cpu`` (the
thread's CPU seconds so far). The header also holds the process's context
(:func:`provlog.capture.context.header_fields`): ``implementation``,
``platform``, ``executable``, ``user``, ``cwd``, ``argv`` and ``env``
(allow-listed, redacted by the value policy), ``script``.

Any line may carry ``sanitized: true``: it held text with lone surrogates
or integers beyond 64 bits, written escaped rather than lost.

A value description is what :func:`provlog.capture.values.describe` returns.

``inside`` is what the execution logged, printed and warned
(:mod:`provlog.capture.inside`): ``records``, a list in order of entries with
``k`` ``log`` (``t``, ``level``, ``logger``, ``msg``, ``extra``), ``stdout`` or
``stderr`` (``t``, ``text``) or ``warning`` (``t``, ``category``, ``msg``,
``file``, ``line``); and ``cut_records``, ``cut_chars``: what the per-execution
caps left out.

Redaction on ``start``: keyword arguments by their names, positional
arguments by the names of the parameters they bind to. Those names come
from the agent's class (``inspect.signature`` of the action method, cached
per class and action); the class is known for every agent this process saw
launched (the Manager's ``Launched agent`` record) or started (the runtime's
``Starting agent`` record), in a process-wide map. Limit: an agent calling
an agent whose class this process never saw (launched elsewhere) cannot name
its positional arguments; a secret passed so is still masked when the same
value was redacted earlier in this process (see
:class:`provlog.capture.values.Scrubber`), else it is written like any value.
Keywords are described before positional arguments, so a secret also passed
by keyword is known before the positional ones are previewed. Error
messages and tracebacks are formatted here and scrubbed of every value
redacted so far in the process.
"""

from __future__ import annotations

import inspect
import threading
import uuid
from typing import Any

from provlog.capture import inside
from provlog.capture.records import format_error
from provlog.capture.records import ident
from provlog.capture.records import RawEvent
from provlog.capture.resources import usage
from provlog.capture.values import describe
from provlog.capture.values import json_safe
from provlog.capture.values import Scrubber
from provlog.capture.values import SECRETS
from provlog.capture.values import ValuePolicy
from provlog.vocab import AGENT
from provlog.vocab import AGENT_KINDS
from provlog.vocab import EXEC_AGENT
from provlog.vocab import EXECUTE_CANCELLED
from provlog.vocab import EXECUTE_EXCEPTION
from provlog.vocab import EXECUTE_START
from provlog.vocab import EXECUTE_SUCCESS
from provlog.vocab import EXECUTION_ENDS
from provlog.vocab import LAUNCH
from provlog.vocab import SENDING
from provlog.vocab import START
from provlog.vocab import SUCCESS

__all__ = ['Encoder', 'parameter_names']

_IDENT_CACHE = 4096
#: Kinds that name the executing agent and the action.
_BEGINS = frozenset({EXECUTE_START, EXEC_AGENT})
#: Execution ends with nothing of their own but ``res`` and ``inside``.
_PLAIN_ENDS = frozenset({EXECUTE_SUCCESS, EXECUTE_CANCELLED})
#: Kinds that may carry ``inside``: the execution's own lines.
_EXECUTE = frozenset({EXECUTE_START, *EXECUTION_ENDS})
_CLASS_CACHE = 4096
_TAG_CACHE = 4096

#: Class -> whether its instances are immutable (a frozen pydantic model,
#: as Academy's ``AgentId`` and ``UserId``): those are remembered by
#: identity, without hashing them.
_FROZEN: dict[type, bool] = {}


def _frozen(cls: type) -> bool:
    found = _FROZEN.get(cls)
    if found is None:
        config = getattr(cls, 'model_config', None)
        found = isinstance(config, dict) and config.get('frozen') is True
        if len(_FROZEN) >= _CLASS_CACHE:
            _FROZEN.clear()
        _FROZEN[cls] = found
    return found


#: Agent uid -> agent class, for every agent this process has seen launched
#: or started (process-wide: any journal's encoder may need it).
_CLASSES: dict[str, type] = {}
#: (class, action) -> positional parameter names and the ``*args`` name.
_PARAMS: dict[tuple[type, str], tuple[tuple[str, ...], str | None]] = {}
_LOCK = threading.Lock()


def _remember_class(uid: str, cls: object) -> None:
    if not isinstance(cls, type):
        return
    with _LOCK:
        if len(_CLASSES) >= _CLASS_CACHE:
            _CLASSES.clear()
        _CLASSES[uid] = cls


def parameter_names(
    cls: type, action: str
) -> tuple[tuple[str, ...], str | None]:
    """Positional parameter names of action ``action`` of agent ``cls``.

    Returns:
        The names that positional arguments bind to in order (without
        ``self``), and the name of the ``*args`` parameter (or ``None``).
        Empty when the method or its signature cannot be found.
    """
    key = (cls, action)
    found = _PARAMS.get(key)
    if found is not None:
        return found
    names: tuple[str, ...] = ()
    rest: str | None = None
    try:
        static = inspect.getattr_static(cls, action)
        method = getattr(cls, action)
        params = list(inspect.signature(method).parameters.values())
        if isinstance(static, staticmethod) or inspect.ismethod(method):
            pass  # already without self / bound to the class
        elif params:
            params = params[1:]  # self
        names = tuple(
            p.name
            for p in params
            if p.kind
            in {
                inspect.Parameter.POSITIONAL_ONLY,
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
            }
        )
        rest = next(
            (
                p.name
                for p in params
                if p.kind == inspect.Parameter.VAR_POSITIONAL
            ),
            None,
        )
    except Exception:  # noqa: BLE001, S110 - unknown: redact by value only
        pass
    with _LOCK:
        if len(_PARAMS) >= _CLASS_CACHE:
            _PARAMS.clear()
        _PARAMS[key] = (names, rest)
    return names, rest


class Encoder:
    """Turns raw events into journal lines on the writer thread.

    It applies the value policy (redaction, caps, previews, hashes), turns
    Academy's identifier objects into strings, and writes each agent's
    identity once per journal.
    """

    __slots__ = (
        '_agents',
        '_by_id',
        '_idents',
        '_tags',
        'policy',
        'scrubber',
    )

    def __init__(
        self, policy: ValuePolicy, scrubber: Scrubber | None = None
    ) -> None:
        self.policy = policy
        self.scrubber = SECRETS if scrubber is None else scrubber
        self._agents: set[tuple[str, str]] = set()
        self._idents: dict[tuple[Any, ...], dict[str, Any] | None] = {}
        #: id -> (immutable identifier, its :func:`ident`)
        self._by_id: dict[int, tuple[object, dict[str, Any] | None]] = {}
        #: id -> (UUID, its text)
        self._tags: dict[int, tuple[object, str]] = {}

    def _tag(self, tag: object) -> str | None:
        """:func:`~provlog.capture.records.tag_str`, remembered per tag."""
        if tag is None:
            return None
        if type(tag) is str:
            return tag
        found = self._tags.get(id(tag))
        if found is not None and found[0] is tag:
            return found[1]
        text = str(tag)
        if type(tag) is uuid.UUID:  # immutable: its text never changes
            tags = self._tags
            if len(tags) >= _TAG_CACHE:
                tags.clear()
            tags[id(tag)] = (tag, text)
        return text

    def _ident(self, entity: object) -> dict[str, Any] | None:
        """:func:`ident`, remembered: the same agents recur in every event."""
        if entity is None:
            return None
        found = self._by_id.get(id(entity))
        if found is not None and found[0] is entity:
            return found[1]
        out = self._ident_of(entity)
        if _frozen(type(entity)):
            by_id = self._by_id
            if len(by_id) >= _IDENT_CACHE:
                by_id.clear()
            by_id[id(entity)] = (entity, out)
        return out

    def _ident_of(self, entity: object) -> dict[str, Any] | None:
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
        if kind == AGENT:
            return self._identity(created, data)
        if kind in AGENT_KINDS:
            return self._agent_line(kind, created, data)
        line: dict[str, Any] = {'e': kind, 'tag': self._tag(tag), 't': created}
        if kind == START:
            self._start(line, data)
        elif kind == SUCCESS:
            line['result'] = describe(
                data['result'], self.policy, scrubber=self.scrubber
            )
        elif kind == SENDING:
            line['src'] = self._ident(data['src'])
        elif kind in _BEGINS:
            agent = self._ident(data.get('agent'))
            if agent is not None:
                line['agent'] = agent
            if 'action' in data:
                line['action'] = _text(data['action'])
        elif kind == EXECUTE_EXCEPTION:
            line['error'] = self._error(data.get('error'))
        elif kind not in _PLAIN_ENDS:
            line.update(data)
        if 'res' in data:  # execute_*: where it ran, what it cost so far
            line['res'] = usage(data['res'])
        found = data.get('inside')
        if found is not None and kind in _EXECUTE:
            line['inside'] = inside.encode(found, self.policy, self.scrubber)
        return line

    def _identity(
        self, created: float, data: dict[str, Any]
    ) -> dict[str, Any] | None:
        """An ``agent`` line, once per agent and class in this journal."""
        agent = self._ident(data['agent'])
        if agent is None:
            return None
        _remember_class(agent['uid'], data.get('cls'))
        key = (agent['uid'], data['class'])
        if key in self._agents:
            return None
        self._agents.add(key)
        return {
            'e': AGENT,
            't': created,
            **agent,
            'class': json_safe(data['class']),
        }

    def _agent_line(
        self, kind: str, created: float, data: dict[str, Any]
    ) -> dict[str, Any] | None:
        """A ``launch`` or ``lifecycle`` line (``None`` without an agent)."""
        agent = self._ident(data['agent'])
        if agent is None:
            return None
        _remember_class(agent['uid'], data.get('cls'))
        line: dict[str, Any] = {
            'e': kind,
            't': created,
            'agent': agent,
            'class': json_safe(data['class']),
        }
        if kind == LAUNCH:
            line['launcher'] = self._ident(data.get('launcher'))
            manager = self._ident(data.get('manager'))
            if manager is not None:
                line['manager'] = manager
            line['parent'] = self._tag(data.get('parent'))
        else:
            line['state'] = data['state']
            if 'expected' in data:
                line['expected'] = data['expected']
        return line

    def _start(self, line: dict[str, Any], data: dict[str, Any]) -> None:
        """Arguments, redacted by keyword and by positional parameter name.

        Keywords are described first, so a secret passed by name is known to
        the scrubber before the positional arguments are previewed.
        """
        policy = self.policy
        scrubber = self.scrubber
        action = data['action']
        callee = self._ident(data['callee'])
        line['action'] = _text(action)
        line['callee'] = callee
        line['parent'] = self._tag(data['parent'])
        caller = self._ident(data.get('caller'))
        if caller is not None:
            line['caller'] = caller
        args = data['args']
        cls = _CLASSES.get(callee['uid']) if callee is not None else None
        names: tuple[str, ...] = ()
        rest: str | None = None
        if cls is not None and isinstance(action, str) and args:
            names, rest = parameter_names(cls, action)
        kwargs = {
            json_safe(k): describe(
                v, policy, secret=policy.is_secret(k), scrubber=scrubber
            )
            for k, v in data['kwargs'].items()
        }
        described = []
        for n, arg in enumerate(args):
            name = names[n] if n < len(names) else rest
            described.append(
                describe(
                    arg,
                    policy,
                    secret=name is not None and policy.is_secret(name),
                    scrubber=scrubber,
                ),
            )
        line['args'] = described
        line['kwargs'] = kwargs

    def _error(self, error: object) -> dict[str, Any] | None:
        """The error, formatted here, JSON-safe and with secrets masked."""
        if not isinstance(error, dict):
            return None
        if 'chain' in error:
            error = format_error(error)
        scrub = self.scrubber.scrub
        return {
            k: scrub(json_safe(v)) if isinstance(v, str) else v
            for k, v in error.items()
        }


def _text(value: object) -> object:
    return json_safe(value) if isinstance(value, str) else value
