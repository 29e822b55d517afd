"""Live forwarding to Flowcept, and the Flowcept form of an action.

With ``ProvenanceLogging(flowcept=...)`` every process forwards the calls
it made as they finish (:class:`LiveForwarder`); ``provlog forward``
replays a whole run after the fact (:mod:`provlog.flowcept`). Both send
one complete Flowcept task per Academy action (:func:`task_message`)
through a :class:`Channel`, so the mapping lives here, on the capture
side, and the host loads none of the read side to forward.

The PROV graph stays the source of truth; Flowcept receives a projection of
it (``docs/flowcept.md`` has the field mapping and what Flowcept cannot
hold). Messages go through a :class:`BaseInterceptor` that provlog owns, so
a ``Flowcept`` instance of the host application in the same process is
neither shared nor stopped. Flowcept is imported only when forwarding is
asked for: it reads its settings at import time, from
``FLOWCEPT_SETTINGS_PATH``.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from datetime import UTC
from pathlib import Path
from typing import Any

from provlog.vocab import Action
from provlog.vocab import AGENT
from provlog.vocab import CALLER_ENDS
from provlog.vocab import CALLER_KINDS
from provlog.vocab import CANCELLED
from provlog.vocab import COMPLETED
from provlog.vocab import EXEC_AGENT
from provlog.vocab import EXECUTE_EXCEPTION
from provlog.vocab import EXECUTE_START
from provlog.vocab import FAILED
from provlog.vocab import NOT_ENDED
from provlog.vocab import SENDING
from provlog.vocab import START
from provlog.vocab import SUCCESS

__all__ = [
    'Channel',
    'FlowceptForwarding',
    'LiveForwarder',
    'task_message',
]

#: Action state -> Flowcept task status.
_STATUS = {
    COMPLETED: 'FINISHED',
    FAILED: 'ERROR',
    CANCELLED: 'ERROR',
    NOT_ENDED: 'RUNNING',
}


def _values(descriptions: dict[str, Any]) -> dict[str, Any]:
    """Argument or result descriptions as Flowcept ``used``/``generated``.

    Only what the journal kept: preview, type, size and content hash. A
    redacted or capped value never had its content written, so it cannot
    leak here.
    """
    out: dict[str, Any] = {}
    for role, desc in descriptions.items():
        if not isinstance(desc, dict):
            continue
        out[role] = {
            k: desc[k]
            for k in (
                'preview',
                'type',
                'size',
                'sha256',
                'redacted',
                'capped',
            )
            if k in desc
        }
    return out


def _uid(ident: Any) -> str | None:
    if isinstance(ident, dict) and isinstance(ident.get('uid'), str):
        return str(ident['uid'])
    return None


def task_message(
    action: Action,
    *,
    workflow_id: str,
    campaign_id: str | None = None,
) -> dict[str, Any]:
    """The Flowcept task message of one merged action."""
    start = action.get(START) or {}
    send = action.get(SENDING) or {}
    exec_start = action.get(EXECUTE_START) or {}
    exec_agent = action.get(EXEC_AGENT) or {}
    caller_end = action.get(action.caller_state or '') or {}
    exec_end = action.get(action.execution_end or '') or {}
    agent = (
        _uid(exec_start.get('agent'))
        or _uid(exec_agent.get('agent'))
        or _uid(start.get('callee'))
    )
    caller = start.get('caller') or send.get('src')
    used: dict[str, Any] = {}
    args = start.get('args')
    if isinstance(args, list):
        used.update(_values({f'arg{n}': d for n, d in enumerate(args)}))
    kwargs = start.get('kwargs')
    if isinstance(kwargs, dict):
        used.update(_values(kwargs))
    success = action.get(SUCCESS) or {}
    generated = _values({'result': success.get('result')})
    first = exec_start or start
    last = exec_end or caller_end
    message: dict[str, Any] = {
        'type': 'task',
        'task_id': action.tag,
        'workflow_id': workflow_id,
        'activity_id': action.name,
        'subtype': 'academy_action',
        'status': _STATUS[action.state],
        'used': used,
        'generated': generated,
        'hostname': action.hosts.get(EXECUTE_START) or action.hosts.get(START),
        'custom_metadata': {
            'provlog': {
                'state': action.state,
                'execution_state': action.execution_state or NOT_ENDED,
                'caller_role': caller.get('role')
                if isinstance(caller, dict)
                else None,
                'caller_id': _uid(caller),
                'request_started_at': _time(start),
                'request_ended_at': _time(caller_end),
                'execution_started_at': _time(exec_start),
                'execution_ended_at': _time(exec_end),
                'prov_activity': f'urn:uuid:{action.tag}',
            },
        },
    }
    if campaign_id:
        message['campaign_id'] = campaign_id
    if agent:
        message['agent_id'] = agent
    if isinstance(caller, dict) and caller.get('role') == 'agent':
        message['source_agent_id'] = _uid(caller)
    parent = start.get('parent')
    if isinstance(parent, str):
        message['parent_task_id'] = parent
    if 't' in first:
        message['started_at'] = float(first['t'])
    if 't' in last:
        message['ended_at'] = float(last['t'])
    _add_outputs(message, action, exec_end)
    _add_telemetry(message, exec_start, exec_end)
    return message


def _add_telemetry(
    message: dict[str, Any],
    exec_start: dict[str, Any],
    exec_end: dict[str, Any],
) -> None:
    """Where the execution ran and what it cost, as Flowcept telemetry."""
    for key, event in (
        ('telemetry_at_start', exec_start),
        ('telemetry_at_end', exec_end),
    ):
        telemetry = _telemetry(event.get('res'))
        if telemetry is not None:
            message[key] = telemetry


def _add_outputs(
    message: dict[str, Any], action: Action, exec_end: dict[str, Any]
) -> None:
    """Stdout, stderr (with the error) and the log lines of the execution."""
    streams = _streams(exec_end.get('inside'))
    error = (action.get(EXECUTE_EXCEPTION) or {}).get('error')
    if isinstance(error, dict):
        streams['stderr'] = (
            f'{streams.get("stderr", "")}{error.get("type")}: '
            f'{error.get("message")}\n{error.get("traceback", "")}'
        )
    for key in ('stdout', 'stderr'):
        if streams.get(key):
            message[key] = streams[key]
    if streams.get('logs'):
        message['custom_metadata']['provlog']['logs'] = streams['logs']


def _telemetry(res: object) -> dict[str, Any] | None:
    """A ``res`` sample in the shape of Flowcept's telemetry."""
    if not isinstance(res, dict):
        return None
    return {
        'process': {
            'cpu_times': {
                'user': res.get('cpu_user'),
                'system': res.get('cpu_sys'),
            },
            'memory': {'max_rss': res.get('maxrss')},
        },
        'thread': {
            'id': res.get('tid'),
            'name': res.get('thread'),
            'cpu_time': res.get('thread_cpu'),
        },
    }


def _streams(inside: object) -> dict[str, Any]:
    """What an execution printed, and its log lines, as Flowcept holds them."""
    out: dict[str, Any] = {}
    records = inside.get('records') if isinstance(inside, dict) else None
    if not isinstance(records, list):
        return out
    for record in records:
        if not isinstance(record, dict):
            continue
        kind = record.get('k')
        if kind in {'stdout', 'stderr'} and isinstance(
            record.get('text'), str
        ):
            out[kind] = out.get(kind, '') + record['text']
        elif kind == 'log':
            out.setdefault('logs', []).append(
                {k: record.get(k) for k in ('t', 'level', 'logger', 'msg')},
            )
    return out


def _time(event: dict[str, Any]) -> str | None:
    """An event's time as :func:`provlog.mapping.model.iso_time` writes it."""
    t = event.get('t')
    if not isinstance(t, (int, float)):
        return None
    return datetime.fromtimestamp(float(t), UTC).isoformat(
        timespec='microseconds'
    )


class Channel:
    """provlog's own interceptor, carrying one run's workflow, agents, tasks.

    Owning the interceptor (rather than a ``Flowcept`` controller) keeps
    provlog apart from any Flowcept the host application runs.
    """

    def __init__(
        self,
        run_id: str,
        options: FlowceptForwarding,
        context: list[dict[str, Any]] | None = None,
    ) -> None:
        if options.settings_path:
            os.environ['FLOWCEPT_SETTINGS_PATH'] = str(
                Path(options.settings_path).resolve(),
            )
        from flowcept.commons.flowcept_dataclasses.agent_object import (  # noqa: PLC0415
            AgentObject,
        )
        from flowcept.commons.flowcept_dataclasses.workflow_object import (  # noqa: PLC0415
            WorkflowObject,
        )
        from flowcept.commons.vocabulary import Status  # noqa: PLC0415
        from flowcept.flowceptor.adapters.base_interceptor import (  # noqa: PLC0415
            BaseInterceptor,
        )

        self._agent_cls = AgentObject
        self._finished = Status.FINISHED
        self.run_id = run_id
        self.campaign_id = options.campaign_id
        self._interceptor = BaseInterceptor(kind='provlog')
        self._interceptor.start(bundle_exec_id=run_id, check_safe_stops=False)
        self._workflow = WorkflowObject(
            workflow_id=run_id,
            name=options.workflow_name or f'provlog run {run_id}',
        )
        self._workflow.campaign_id = options.campaign_id
        self._workflow.status = Status.RUNNING
        self._workflow.custom_metadata = {'provlog': {'run': run_id}}
        if context:
            self._workflow.custom_metadata['provlog']['context'] = context
        self._interceptor.send_workflow_message(self._workflow)

    def agent(self, uid: Any, name: Any, agent_class: Any) -> None:
        """Send one Academy agent as a Flowcept agent."""
        agent = self._agent_cls(
            agent_id=uid,
            name=name,
            workflow_id=self.run_id,
            campaign_id=self.campaign_id,
        )
        agent.extra_metadata = {'agent_class': agent_class}
        self._interceptor.send_agent_message(agent)

    def task(self, action: Action, **metadata: Any) -> None:
        """Send the task message of one action (extra provlog metadata)."""
        message = task_message(
            action,
            workflow_id=self.run_id,
            campaign_id=self.campaign_id,
        )
        message['custom_metadata']['provlog'].update(metadata)
        self._interceptor.intercept(message)

    def close(self) -> None:
        """Mark the workflow finished and flush the interceptor."""
        self._workflow.status = self._finished
        self._workflow.ended_at = time.time()
        self._interceptor.intercept(self._workflow.to_dict())
        self._interceptor.stop(check_safe_stops=False)


@dataclass(frozen=True)
class FlowceptForwarding:
    """Live forwarding options; picklable, travels inside the LogConfig.

    Attributes:
        settings_path: Flowcept settings YAML, applied in every process
            before Flowcept is imported (else ``FLOWCEPT_SETTINGS_PATH``).
        workflow_name: Name of the Flowcept workflow (default: run id).
        campaign_id: Campaign the workflow belongs to.
    """

    settings_path: str | None = None
    workflow_name: str | None = None
    campaign_id: str | None = None


class LiveForwarder:
    """Forwards this process's completed calls to Flowcept as they finish.

    It observes the journal writer (so the journal is written first and
    stays the source of truth) and works on a thread of its own, so a slow
    or absent broker delays only forwarding. The calling process forwards
    each action when the call ends, from what it saw: ids, values, status,
    the caller's times. The agent side's details (execution times, the
    traceback) are added by ``provlog forward`` on replay, which replaces
    the task.
    """

    def __init__(
        self,
        run_id: str,
        options: FlowceptForwarding,
        report: Callable[[list[str]], None],
        *,
        max_pending: int = 100_000,
    ) -> None:
        self.run_id = run_id
        self._report = report
        self._max_pending = max_pending
        self._queue: queue.SimpleQueue[list[dict[str, Any]] | None] = (
            queue.SimpleQueue()
        )
        self._open: dict[str, Action] = {}
        self.forwarded = 0
        self._channel = Channel(run_id, options)
        self._thread = threading.Thread(
            target=self._run,
            name='provlog-flowcept',
            daemon=True,
        )
        self._thread.start()

    def observe(self, lines: list[dict[str, Any]]) -> None:
        """Called by the journal writer with the lines it just wrote."""
        self._queue.put(lines)

    def close(self, timeout: float = 5.0) -> None:
        """Forward what is left, end the workflow, stop the interceptor."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            lines = self._queue.get()
            if lines is None:
                break
            sent: list[str] = []
            for line in lines:
                try:
                    tag = self._line(line)
                except Exception:  # noqa: BLE001, S112 - one bad line only
                    continue
                if tag is not None:
                    sent.append(tag)
            if sent:
                self.forwarded += len(sent)
                self._report(sent)
        with contextlib.suppress(Exception):
            self._channel.close()

    def _line(self, line: dict[str, Any]) -> str | None:
        kind = line.get('e')
        if kind == AGENT:
            self._channel.agent(
                line.get('uid'),
                line.get('name'),
                line.get('class'),
            )
            return None
        tag = line.get('tag')
        if kind not in CALLER_KINDS or not isinstance(tag, str):
            return None
        action = self._open.get(tag)
        if action is None:
            if len(self._open) >= self._max_pending:
                return None  # replay sends it; memory stays bounded
            action = self._open[tag] = Action(tag)
        action.events[kind] = line
        if kind not in _CALLER_END:
            return None
        del self._open[tag]
        self._channel.task(action, live=True)
        return tag


_CALLER_END = frozenset(CALLER_ENDS)
