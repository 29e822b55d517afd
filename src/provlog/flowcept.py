"""Forward a run to Flowcept: one complete Flowcept task per Academy action.

The PROV graph stays the source of truth; Flowcept receives a projection of
it (``docs/flowcept.md`` has the field mapping and what Flowcept cannot
hold). Messages go through a :class:`BaseInterceptor` that provlog owns, so
a ``Flowcept`` instance of the host application in the same process is
neither shared nor stopped. Flowcept is imported only when forwarding is
asked for: it reads its settings at import time, from
``FLOWCEPT_SETTINGS_PATH``.

Replaying a run is idempotent: task, workflow and agent ids are the
action tags, the run id and the agent uids, and Flowcept's stores key
documents by them, so sending a run twice replaces rather than duplicates.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from typing import TYPE_CHECKING

import orjson

from provlog.merge import Action
from provlog.merge import Process
from provlog.model import iso_time

if TYPE_CHECKING:
    from provlog.graph import RunGraph

__all__ = [
    'FORWARD_RECORD',
    'FlowceptForwarding',
    'LiveForwarder',
    'forward_run',
    'forwarded_tags',
    'task_message',
]

#: File in the run folder that lists the actions a replay handed over.
FORWARD_RECORD = 'flowcept-forwarded.json'

_STATUS = {
    'completed': 'FINISHED',
    'failed': 'ERROR',
    'cancelled': 'ERROR',
    'not_ended': 'RUNNING',
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
    start = action.get('start') or {}
    send = action.get('sending') or {}
    exec_start = action.get('execute_start') or {}
    exec_agent = action.get('exec_agent') or {}
    caller_end = action.get(action.caller_state or '') or {}
    exec_end = (
        action.get(f'execute_{action.execution_state}')
        if action.execution_state
        else None
    ) or {}
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
    success = action.get('success') or {}
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
        'hostname': action.hosts.get('execute_start')
        or action.hosts.get('start'),
        'custom_metadata': {
            'provlog': {
                'state': action.state,
                'execution_state': action.execution_state or 'not_ended',
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
    error = (action.get('execute_exception') or {}).get('error')
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


_HEADER_SKIP = frozenset({'e', 'v', 'run', 't', 'env'})


def _process_context(process: Process) -> dict[str, Any]:
    """One process's context for the workflow message (no package list)."""
    out = {k: v for k, v in process.header.items() if k not in _HEADER_SKIP}
    out.update(
        {
            k: v
            for k, v in process.context.items()
            if k not in {'e', 'packages'}
        },
    )
    return out


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
    t = event.get('t')
    return iso_time(float(t)) if isinstance(t, (int, float)) else None


def forwarded_tags(run_dir: Path) -> set[str]:
    """Action tags a replay handed to Flowcept, from the run folder."""
    path = run_dir / FORWARD_RECORD
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return set()
    tags = data.get('tags') if isinstance(data, dict) else None
    return (
        {t for t in tags if isinstance(t, str)}
        if isinstance(tags, list)
        else set()
    )


class _Channel:
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


def forward_run(
    run: RunGraph,
    *,
    settings_path: str | os.PathLike[str] | None = None,
    workflow_name: str | None = None,
    campaign_id: str | None = None,
) -> int:
    """Send every action, agent and the workflow of ``run`` to Flowcept.

    Args:
        run: The merged run.
        settings_path: Flowcept settings YAML (else ``FLOWCEPT_SETTINGS_PATH``
            or Flowcept's own default). Must be set before Flowcept is first
            imported in this process.
        workflow_name: Name of the Flowcept workflow (default: the run id).
        campaign_id: Campaign to file the workflow under.

    Returns:
        The number of task messages handed to Flowcept.
    """
    channel = _Channel(
        run.run_id,
        FlowceptForwarding(
            settings_path=None
            if settings_path is None
            else str(settings_path),
            workflow_name=workflow_name,
            campaign_id=campaign_id,
        ),
        [_process_context(p) for p in run.run.processes.values()],
    )
    for uid, info in sorted(run.run.agents.items()):
        channel.agent(uid, info.get('name'), info.get('class'))
    tags = []
    for action in run.run.actions.values():
        channel.task(action)
        tags.append(action.tag)
    channel.close()
    record = run.run.run_dir / FORWARD_RECORD
    previous = forwarded_tags(run.run.run_dir)
    record.write_bytes(
        orjson.dumps(
            {'workflow_id': run.run_id, 'tags': sorted(previous | set(tags))},
        ),
    )
    return len(tags)


# ---------------------------------------------------------------- live


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
        self._channel = _Channel(run_id, options)
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
        if kind == 'agent':
            self._channel.agent(
                line.get('uid'),
                line.get('name'),
                line.get('class'),
            )
            return None
        tag = line.get('tag')
        if kind not in _CALLER_SIDE or not isinstance(tag, str):
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


_CALLER_END = frozenset({'success', 'exception', 'cancelled'})
_CALLER_SIDE = _CALLER_END | {'start', 'sending'}
