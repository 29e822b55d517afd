"""Academy ``JSONPoolLogging`` records to provlog journal lines.

Academy's ``JSONHandler`` writes one JSON object per log record: every
attribute of the record (``created``, ``process``, ``thread``, ``msg``,
``args``, ``exc_text``, the ``academy.*`` extras, ...) as its ``str()``,
plus ``formatted``. The action records there are the ones provlog captures
live (:mod:`provlog.capture.records`), so the same journal lines can be
built from them, with these differences:

* Values (arguments, keyword arguments, results) exist only as the
  ``str()`` of the tuple, dict or value: each becomes a description of
  type ``unknown`` with ``str_form: true``, a preview of that text and the
  SHA-256 of that text (not of the original value). Arguments are split
  at the top-level commas of the tuple's text.
* Identifiers appear as ``AgentId<name>`` in the extras; the full uid is
  taken from the ``repr`` of the same identifier in a record's ``args``
  (``AgentId(uid=UUID('...'), name='...')``), from any file of the run.
* What provlog recovers live from the emitting task is inferred from
  record order within one process: the caller of a call is the ``src``
  of its ``sending`` record; its parent is the one execution of that
  caller open in the process when the call started (none if there is
  none, unknown if there are several); the executing agent is the callee
  its caller named, else the agent of the runtime's ``Invoking`` record.
* Not in the logs: the host name, resource use, what an action printed,
  the process's software context.

Nothing in the logs is executed (:mod:`provlog.journals.importers.pyrepr`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from provlog.capture.values import describe
from provlog.capture.values import Scrubber
from provlog.capture.values import ValuePolicy
from provlog.journals.importers.pyrepr import class_name
from provlog.journals.importers.pyrepr import Identities
from provlog.journals.importers.pyrepr import split_top
from provlog.journals.importers.pyrepr import tag_of
from provlog.journals.importers.pyrepr import unquote

__all__ = ['Converter', 'Counts']

_LIFECYCLE = (
    ('Starting agent', 'starting'),
    ('Running agent', 'running'),
    ('Shutting down agent', 'stopping'),
    ('Shutdown agent', 'shutdown'),
)
_CALLER_END = frozenset({'success', 'exception', 'cancelled'})
_EXEC_END = frozenset(
    {'execute_success', 'execute_exception', 'execute_cancelled'}
)


@dataclass
class Counts:
    """What one file's conversion could not carry."""

    unresolved: set[str] = field(default_factory=set)
    parents_ambiguous: int = 0
    callers_unknown: int = 0
    records: int = 0
    #: Records of an action or agent that had no usable time or tag.
    unusable: int = 0


def _float(text: object) -> float | None:
    try:
        value = float(str(text))
    except ValueError:
        return None
    return value if 0 <= value <= 253_402_300_799.0 else None  # noqa: PLR2004


class Converter:
    """One ``.jsonlog`` file's records to journal lines, in order.

    Feed records to :meth:`feed` (each returns the lines it produced) and
    call :meth:`finish` at the end of the file.
    """

    def __init__(
        self,
        known: Identities,
        policy: ValuePolicy,
        scrubber: Scrubber,
    ) -> None:
        self.known = known
        self.policy = policy
        self.scrubber = scrubber
        self.counts = Counts()
        self._open: dict[str, dict[str, Any] | None] = {}  # tag -> agent
        self._actions: dict[str, object] = {}  # open tag -> action name
        self._pending: dict[
            str, tuple[dict[str, Any], dict[str, list[str]]]
        ] = {}
        self._agents: list[dict[str, Any]] = []  # started in this process
        self._seen: set[tuple[str, str]] = set()
        self._managers: list[dict[str, Any]] = []

    # ----------------------------------------------------------- helpers

    def _ident(self, text: object) -> dict[str, Any] | None:
        found = self.known.ident(text)
        if found is None and isinstance(text, str):
            self.counts.unresolved.add(text)
        return found

    def value(self, text: str, *, secret: bool = False) -> dict[str, Any]:
        """A value description of the ``str()`` form ``text``."""
        if secret:
            inner = unquote(text)
            self.scrubber.learn(text)
            if inner is not None:
                self.scrubber.learn(inner)
            out = describe(
                text, self.policy, secret=True, scrubber=self.scrubber
            )
            out.pop('value', None)
            out.update({'type': 'unknown', 'str_form': True})
            return out
        data = text.encode('utf-8', 'surrogatepass')
        out = {
            'type': 'unknown',
            'size': len(data),
            'sha256': hashlib.sha256(data).hexdigest(),
            'str_form': True,
        }
        if self.policy.capture:
            clean = self.scrubber.scrub(text)
            if clean != text:
                out['redacted'] = True
            room = self.policy.preview_chars
            if len(clean) > room:
                clean = clean[: room - 1] + '\u2026'
            out['preview'] = clean
        return out

    def _args(self, text: object) -> list[dict[str, Any]]:
        if not isinstance(text, str):
            return []
        parts = split_top(text, '(', ')')
        if parts is None:
            return [self.value(text)]
        return [self.value(p) for p in parts]

    def _kwargs(self, text: object) -> dict[str, Any]:
        if not isinstance(text, str) or text == '{}':
            return {}
        parts = split_top(text, '{', '}')
        if parts is None:
            return {'?': self.value(text)}
        out: dict[str, Any] = {}
        for part in parts:
            key_text, sep, rest = part.partition(': ')
            key = unquote(key_text) if sep else None
            if key is None:
                out[f'?{len(out)}'] = self.value(part)
                continue
            out[key] = self.value(rest, secret=self.policy.is_secret(key))
        return out

    # ------------------------------------------------------------ records

    def feed(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        """The journal lines of one record (often none)."""
        self.counts.records += 1
        t = _float(record.get('created'))
        if t is None:
            if any(k.startswith('academy.') for k in record):
                self.counts.unusable += 1
            return []
        state = record.get('academy.action_state')
        if isinstance(state, str):
            return self._action(state, record, t)
        return self._other(record, t)

    def _action(  # noqa: C901, PLR0912, PLR0915 - one branch per state
        self, state: str, record: dict[str, Any], t: float
    ) -> list[dict[str, Any]]:
        tag = tag_of(record)
        if tag is None:
            self.counts.unusable += state != 'waiting'
            return []
        out: list[dict[str, Any]] = []
        line: dict[str, Any] = {'e': state, 'tag': tag, 't': t}
        if state == 'start':
            line['action'] = record.get('academy.action')
            line['callee'] = self._ident(record.get('academy.agent_id'))
            line['parent'] = None
            line['kwargs'] = self._kwargs(record.get('academy.action_kwargs'))
            line['args'] = self._args(record.get('academy.action_args'))
            by_agent: dict[str, list[str]] = {}
            for open_tag, agent in self._open.items():
                if agent is not None:
                    by_agent.setdefault(agent['uid'], []).append(open_tag)
            self._pending[tag] = (line, by_agent)
            return out
        if state == 'sending':
            src = self._ident(record.get('academy.src'))
            pending = self._pending.pop(tag, None)
            if pending is not None:
                start, by_agent = pending
                if src is not None and src['role'] == 'agent':
                    start['caller'] = src
                    parents = by_agent.get(src['uid'], [])
                    if len(parents) == 1:
                        start['parent'] = parents[0]
                    elif parents:
                        self.counts.parents_ambiguous += 1
                out.append(start)
            if src is not None and src['role'] != 'agent':
                line['src'] = src
                out.append(line)
            return out
        if state in _CALLER_END:
            out.extend(self._flush(tag))
            if state == 'success':
                line['result'] = self.value(str(record.get('academy.result')))
            out.append(line)
            return out
        if state == 'execute_start':
            line['action'] = record.get('academy.action')
            agent = self._ident(self.known.callees.get(tag))
            if agent is None and len(self._agents) == 1:
                agent = self._agents[0]
            if agent is not None:
                line['agent'] = agent
            self._open[tag] = agent
            self._actions[tag] = line['action']
        elif state in _EXEC_END:
            self._open.pop(tag, None)
            self._actions.pop(tag, None)
            if state == 'execute_exception':
                line['error'] = self._error(record)
        else:
            return []  # waiting, and states this importer does not know
        line['res'] = self._res(record)
        out.append(line)
        return out

    def _flush(self, tag: str) -> list[dict[str, Any]]:
        pending = self._pending.pop(tag, None)
        if pending is None:
            return []
        self.counts.callers_unknown += 1
        return [pending[0]]

    def _res(self, record: dict[str, Any]) -> dict[str, Any]:
        res: dict[str, Any] = {}
        tid = record.get('thread')
        if isinstance(tid, str) and tid.isdigit():
            res['tid'] = int(tid)
        if isinstance(record.get('threadName'), str):
            res['thread'] = record['threadName']
        return res

    def _error(self, record: dict[str, Any]) -> dict[str, Any]:
        info = str(record.get('exc_info', ''))
        found = re.match(r"\(<class '([^']{1,300})'>", info)
        kind = class_name(f"<class '{found.group(1)}'>") if found else '?'
        text = record.get('exc_text')
        text = text if isinstance(text, str) and text != 'None' else ''
        last = text.rstrip('\n').rsplit('\n', 1)[-1]
        message = last.partition(': ')[2] if ': ' in last else ''
        scrub = self.scrubber.scrub
        return {
            'type': kind,
            'message': scrub(message),
            'traceback': scrub(text),
        }

    def _other(self, record: dict[str, Any], t: float) -> list[dict[str, Any]]:
        agent_text = record.get('academy.agent_id')
        if agent_text is None:
            self._manager(record)
            return []
        agent = self._ident(agent_text)
        if agent is None:
            return []
        if 'academy.action' in record:  # the runtime's ``Invoking`` record
            return self._exec_agent(record, agent, t)
        if 'academy.agent' not in record:
            return []
        cls = self.known.classes.get(str(agent_text)) or class_name(
            str(record['academy.agent'])
        )
        out: list[dict[str, Any]] = []
        if (agent['uid'], cls) not in self._seen:
            self._seen.add((agent['uid'], cls))
            out.append({'e': 'agent', 't': t, **agent, 'class': cls})
        line = self._life(record, agent, cls, t)
        if line is not None:
            out.append(line)
        return out

    def _manager(self, record: dict[str, Any]) -> None:
        """Follow the Managers entered and closed in this process."""
        user = self._ident(record.get('academy.user_id'))
        if user is None or record.get('name') != 'academy.manager':
            return
        msg = str(record.get('msg', ''))
        if msg.startswith('Entered manager context'):
            self._managers.append(user)
        elif msg.startswith('Closed manager') and self._managers:
            self._managers.pop()

    def _life(
        self, record: dict[str, Any], agent: dict[str, Any], cls: str, t: float
    ) -> dict[str, Any] | None:
        """A ``lifecycle`` or ``launch`` line, or ``None``."""
        name, msg = record.get('name'), str(record.get('msg', ''))
        line: dict[str, Any] = {'t': t, 'agent': agent, 'class': cls}
        if name == 'academy.manager' and msg.startswith('Launched agent'):
            launcher = self._managers[-1] if self._managers else None
            return {
                'e': 'launch',
                **line,
                'launcher': launcher,
                'parent': None,
            }
        if name != 'academy.runtime':
            return None
        state = next((s for p, s in _LIFECYCLE if msg.startswith(p)), None)
        if state is None:
            return None
        if state == 'starting' and agent not in self._agents:
            self._agents.append(agent)
        line = {'e': 'lifecycle', **line, 'state': state}
        expected = record.get('academy.expected')
        if expected in {'True', 'False'}:
            line['expected'] = expected == 'True'
        return line

    def _exec_agent(
        self, record: dict[str, Any], agent: dict[str, Any], t: float
    ) -> list[dict[str, Any]]:
        action = record.get('academy.action')
        for tag in reversed(self._open):  # the latest of that action
            if self._open[tag] is None and self._actions.get(tag) == action:
                self._open[tag] = agent
                line = {'e': 'exec_agent', 'tag': tag, 't': t, 'agent': agent}
                return [{**line, 'action': action}]
        return []

    def finish(self) -> list[dict[str, Any]]:
        """The calls still waiting for their ``sending`` record."""
        out: list[dict[str, Any]] = []
        for tag in list(self._pending):
            out.extend(self._flush(tag))
        return out
