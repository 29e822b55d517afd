"""The PROV model: merged actions in, a NetworkX PROV graph out.

Nodes are IRIs in compact ``prefix:local`` form with a ``kind``
(``entity``/``activity``/``agent``) and their PROV attributes, keyed by
qualified name (``prov:startTime``, ``provlog:state``, ...). Edges point
from effect to cause, as PROV writes them (``activity -used-> entity``,
``entity -wasGeneratedBy-> activity``, ...), keyed by the relation name
(unique per pair of nodes), which is also in ``rel``.
``docs/model.md`` explains every choice.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
import os
import uuid
from datetime import datetime
from datetime import UTC
from typing import Any
from typing import Protocol
from urllib.parse import quote

import networkx as nx
import orjson

from provlog.actions.merge import MergedRun
from provlog.actions.process import Process
from provlog.capture.values.digest import SECRET_NODE
from provlog.mapping.graphwriter import GraphWriter
from provlog.vocab import Action
from provlog.vocab import EXEC_AGENT
from provlog.vocab import EXECUTE_EXCEPTION
from provlog.vocab import EXECUTE_START
from provlog.vocab import LIFE_RUNNING
from provlog.vocab import LIFE_SHUTDOWN
from provlog.vocab import LIFE_STARTING
from provlog.vocab import LIFE_STOPPING
from provlog.vocab import NOT_ENDED
from provlog.vocab import NOT_OBSERVED
from provlog.vocab import SENDING
from provlog.vocab import START
from provlog.vocab import STATE_OF_END
from provlog.vocab import SUCCESS

__all__ = [
    'ID_NS',
    'PREFIXES',
    'PROVLOG_NS',
    'Writer',
    'agent_id',
    'agent_node',
    'build_graph',
    'iso_time',
]

#: The project's vocabulary (terms PROV lacks): ontologies/provlog.ttl.
PROVLOG_NS = 'https://w3id.org/provlog/ns#'
#: Identifiers of requests and values, minted from action tags.
ID_NS = 'https://w3id.org/provlog/id/'

PREFIXES = {
    'provlog': PROVLOG_NS,
    'plid': ID_NS,
    'uuid': 'urn:uuid:',
}

#: Between the messages of ``provlog:incompleteness`` (one literal: PROV-N
#: and PROV-XML keep one value per attribute the same way).
_GAP_SEPARATOR = '\n'

_SKIP_DERIVATION = frozenset({'NoneType', 'bool'})
#: The content hash of every value masked whole (it hashes as the mask)
_MASKED_SHA256 = SECRET_NODE.digest.hex()


def iso_time(t: float) -> str:
    """Seconds since the epoch as ``xsd:dateTime`` in UTC, to microseconds.

    The text of each second is made once (an export has millions of
    times, in few distinct seconds); the microseconds are rounded as
    :meth:`datetime.fromtimestamp` rounds them (half to even).
    """
    frac, whole = math.modf(t)
    us = round(frac * 1e6)
    if us >= _US:
        whole += 1.0
        us -= _US
    elif us < 0:  # before 1970: not in a journal, but exact all the same
        return datetime.fromtimestamp(t, UTC).isoformat(
            timespec='microseconds'
        )
    second = _SECONDS.get(whole)
    if second is None:
        if len(_SECONDS) > _SECONDS_KEPT:
            _SECONDS.clear()
        second = _SECONDS[whole] = datetime.fromtimestamp(
            whole, UTC
        ).isoformat(timespec='seconds')[:-6]
    return f'{second}.{us:06d}+00:00'


#: Whole seconds -> their text without the offset, for :func:`iso_time`.
_SECONDS: dict[float, str] = {}
_SECONDS_KEPT = 100_000
_US = 1_000_000


def iri_segment(text: str) -> str:
    """``text`` as one IRI path segment that no reader can misread.

    Percent-encodes everything outside the unreserved set, and ``.`` too:
    a segment of dots is a relative-path step, and a compact name ending
    in ``.`` is not valid Turtle.
    """
    return quote(text, safe='').replace('.', '%2E')


class Writer(Protocol):
    """Where the builder puts nodes and edges: a graph or a buffer."""

    def __contains__(self, node: object) -> bool:
        """Whether ``node`` has been added."""
        ...

    def attrs(self, node: str) -> dict[str, Any]:
        """The attribute dict of ``node`` (its own, not a copy)."""
        ...

    def node(self, node: str, attrs: dict[str, Any]) -> None:
        """Add ``node`` with ``attrs``, or update the attributes it has."""
        ...

    def edge(self, u: str, v: str, key: str, attrs: dict[str, Any]) -> None:
        """Add the edge ``u -> v`` under ``key``."""
        ...


def agent_id(ident: object) -> str | None:
    """The node of the agent ``ident`` names, if it names one by UUID."""
    if not isinstance(ident, dict) or not isinstance(ident.get('uid'), str):
        return None
    try:
        return f'uuid:{uuid.UUID(ident["uid"])}'
    except ValueError:
        return None  # never mint an IRI from a string that is not a UUID


def agent_node(
    graph: Writer, ident: object, agents: dict[str, Any]
) -> str | None:
    """Add the agent ``ident`` names to ``graph`` (once); return its node."""
    if not isinstance(ident, dict) or not isinstance(ident.get('uid'), str):
        return None
    try:
        uid = str(uuid.UUID(ident['uid']))
    except ValueError:
        return None  # never mint an IRI from a string that is not a UUID
    node = f'uuid:{uid}'
    if node in graph:
        return node
    known = agents.get(uid, {})
    name = ident.get('name') or known.get('name')
    role = ident.get('role') or known.get('role') or 'agent'
    attrs: dict[str, Any] = {'kind': 'agent', 'provlog:academyId': uid}
    if role == 'user':
        attrs['prov:type'] = ('provlog:Client',)
        attrs['prov:label'] = f'client {name}' if name else 'client'
    else:
        attrs['prov:type'] = ('prov:SoftwareAgent', 'provlog:AcademyAgent')
        attrs['prov:label'] = str(name) if name else f'agent {uid[:8]}'
        cls = known.get('class')
        if isinstance(cls, str):
            attrs['provlog:agentClass'] = cls
    if name:
        attrs['provlog:agentName'] = str(name)
    graph.node(node, attrs)
    return node


class _Builder:
    """Builds the graph; one instance per merge."""

    def __init__(self, run: MergedRun) -> None:
        self.run = run
        self.writer = GraphWriter(nx.MultiDiGraph(run_id=run.run_id))
        self.graph: Writer = self.writer
        # (caller node, sha256) -> [(time, entity)] of the results it
        # received and their members; sorted by time before inference
        self.received: dict[tuple[str, str], list[tuple[float, str]]] = {}
        # (caller node, input entity, start time) of every input, linked to
        # what it was derived from once every result is indexed
        self.inputs: list[tuple[str, str, float]] = []
        self.members: dict[str, list[str]] = {}
        self.agents: dict[str, str] = {}  # uid as journalled -> node
        # journal's process id -> (process agent, its program's plan)
        self.processes: dict[str, tuple[str, str | None]] = {}

    def agent(self, ident: object) -> str | None:
        """The node of the agent ``ident`` names (parsed once per uid)."""
        uid = ident.get('uid') if isinstance(ident, dict) else None
        node = self.agents.get(uid) if isinstance(uid, str) else None
        if node is None:
            node = agent_node(self.graph, ident, self.run.agents)
            if node is not None and isinstance(uid, str):
                self.agents[uid] = node
        return node

    def edge(self, u: str, v: str, rel: str, **attrs: Any) -> None:
        """Add the relation ``rel`` from ``u`` (effect) to ``v`` (cause)."""
        # (u, v, rel) is unique in this model, so the relation name is the
        # key: G[u][v]['used'] reads naturally and costs no memory per edge
        attrs['rel'] = rel
        self.graph.edge(u, v, rel, attrs)

    def inside(self, tag: str, execution: str, inside: object) -> None:
        """What the execution logged, printed and warned, as entities.

        Each log record, each run of writes to one stream and each warning
        is an entity generated by the execution at its time
        (``plid:<tag>/out/<n>``); what the caps cut is counted on the
        execution.
        """
        if not isinstance(inside, dict):
            return
        records = inside.get('records')
        if not isinstance(records, list):
            return
        for n, record in enumerate(records):
            entity = _inside_entity(record)
            if entity is None:
                continue
            node = f'plid:{tag}/out/{n}'
            self.graph.node(node, entity)
            gen: dict[str, Any] = {'prov:role': str(record['k'])}
            if isinstance(record.get('t'), (int, float)):
                gen['prov:time'] = iso_time(record['t'])
            self.edge(node, execution, 'wasGeneratedBy', **gen)
        exec_attrs = self.graph.attrs(execution)
        for key, term in (
            ('cut_records', 'provlog:outputRecordsCut'),
            ('cut_chars', 'provlog:outputCharsCut'),
        ):
            count = inside.get(key)
            if isinstance(count, int) and count > 0:
                exec_attrs[term] = count
        sync_cpu = inside.get('sync_cpu')
        if isinstance(sync_cpu, (int, float)) and not isinstance(
            sync_cpu, bool
        ):
            exec_attrs['provlog:syncThreadCpu'] = float(sync_cpu)

    def value(
        self,
        node: str,
        desc: object,
        label: str,
        member_key: str | None = None,
    ) -> dict[str, Any] | None:
        """Add one value entity (and its members); return its attributes."""
        if not isinstance(desc, dict):
            return None
        attrs: dict[str, Any] = {
            'kind': 'entity',
            'prov:type': _VALUE_TYPE,
            'prov:label': label,
        }
        if member_key is not None:
            attrs['provlog:memberKey'] = member_key
        for key, got in desc.items():
            term = _VALUE_TERMS.get(key)
            if term is None:
                continue
            if key in _VALUE_FLAGS:
                if got is True:
                    attrs[term] = True
            elif isinstance(got, (str, int, float)):
                attrs[term] = got
        self.graph.node(node, attrs)
        members = desc.get('members')
        if isinstance(members, list) and members:
            attrs['prov:type'] = _COLLECTION_TYPE
            self.add_members(node, label, members)
        return attrs

    def add_members(self, node: str, label: str, members: list[Any]) -> None:
        """Add the member entities of the collection ``node``."""
        children = []
        for n, member in enumerate(members):
            if not (isinstance(member, list) and len(member) == 2):  # noqa: PLR2004
                continue
            name, sub = member
            child = f'{node}/{n}'
            key = str(name)
            if self.value(child, sub, f'{label}[{key}]', key) is not None:
                self.edge(node, child, 'hadMember')
                children.append(child)
        if children:
            self.members[node] = children

    def build(self) -> nx.MultiDiGraph:
        """Add the run, its agents and every action; return the graph."""
        run = self.run
        self.run_entity()
        for key, process in sorted(run.processes.items()):
            self.processes[key] = self.process(process)
        for uid, info in sorted(run.agents.items()):
            agent_node(self.graph, {'uid': uid, **info}, run.agents)
        ordered = sorted(
            run.actions.values(),
            key=lambda a: (_first_time(a), a.tag),
        )
        for action in ordered:
            self.action(action)
        for uid in sorted(run.launches.keys() | run.lifecycles.keys()):
            self.lifetime(uid)
        self.infer_derivations()
        return self.writer.close()

    def run_entity(self) -> None:
        """The run itself, saying whether the record of it is complete.

        ``provlog:complete`` is false exactly when the run has gaps
        (:meth:`MergedRun.gaps`); ``provlog:incompleteness`` then lists
        them, one message each, and the counts say how much is missing.
        """
        run = self.run
        processes = run.processes.values()
        gaps = run.gaps()
        attrs: dict[str, Any] = {
            'kind': 'entity',
            'prov:type': ('provlog:Run',),
            'prov:label': f'provlog run {run.run_id}',
            'provlog:complete': not gaps,
            'provlog:processes': len(run.processes),
            'provlog:processesNotClosed': sum(
                1 for p in processes if not p.closed
            ),
            'provlog:eventsDropped': sum(p.dropped for p in processes),
            'provlog:eventsLost': sum(p.lost for p in processes),
            'provlog:encodeErrors': sum(p.encode_errors for p in processes),
            'provlog:captureGaps': sum(len(p.capture_gaps) for p in processes),
            'provlog:executionsNotObserved': self.unseen_count(),
            'provlog:linesSkipped': sum(p.skipped for p in processes),
        }
        if gaps:
            attrs['provlog:incompleteness'] = _GAP_SEPARATOR.join(
                gap.message for gap in gaps
            )
        self.graph.node(f'plid:run/{iri_segment(run.run_id)}', attrs)

    # -- what the streaming builder answers from its bounded state ---------

    def unseen_count(self) -> int:
        """How many executions were not observed (for the run entity)."""
        return len(self.run.executions_not_observed())

    def is_action(self, tag: str, event: dict[str, Any]) -> bool:
        """Whether ``tag`` (named by ``event``) is an action of the run."""
        del event
        return tag in self.run.actions

    def parent_executor(self, tag: str, event: dict[str, Any]) -> str | None:
        """The node of the agent that ran the action ``tag`` (a parent)."""
        del event
        return self.executor(self.run.actions[tag])

    def caller(self, action: Action) -> str | None:
        """The agent that called ``action``: the caller, sender or parent's.

        The parent action's executor stands in when neither the ``start``
        nor the ``sending`` line names the caller.
        """
        start = action.get(START)
        caller = None
        if start is not None:
            caller = self.agent(start.get('caller'))
        if caller is None:
            send = action.get(SENDING)
            if send is not None:
                caller = self.agent(send.get('src'))
        parent = start.get('parent') if start is not None else None
        if (
            caller is None
            and start is not None
            and isinstance(parent, str)
            and self.is_action(parent, start)
        ):
            caller = self.parent_executor(parent, start)
        return caller

    def input(self, caller: str, node: str, t_start: float) -> None:
        """Note an input, linked once every result is indexed."""
        self.inputs.append((caller, node, t_start))

    def action(self, action: Action) -> None:  # noqa: C901, PLR0912, PLR0915
        tag = action.tag
        name = action.name or 'unknown'
        start = action.get(START)
        action.get(SENDING)
        exec_start = action.get(EXECUTE_START)
        caller_end_kind = action.caller_state
        exec_end_kind = action.execution_state
        caller_end = action.get(caller_end_kind) if caller_end_kind else None
        end_kind = action.execution_end  # execute_success, ...
        exec_end = action.get(end_kind) if end_kind else None

        # -- the request: the caller's side ---------------------------------
        request = f'plid:{tag}/request'
        caller: str | None = None
        has_caller_side = action.has_caller_side
        if has_caller_side:
            attrs: dict[str, Any] = {
                'kind': 'activity',
                'prov:type': _REQUEST_TYPE,
                'prov:label': f'request {name}',
                'provlog:actionName': name,
                'provlog:actionTag': tag,
                'provlog:state': STATE_OF_END.get(
                    caller_end_kind or '', NOT_ENDED
                ),
            }
            if start is not None:
                attrs['prov:startTime'] = iso_time(start['t'])
                if START in action.hosts:
                    attrs['provlog:host'] = action.hosts[START]
                self.pid(start, attrs)
            if caller_end is not None:
                attrs['prov:endTime'] = iso_time(caller_end['t'])
                if start is not None:
                    attrs['provlog:duration'] = _duration(start, caller_end)
            self.graph.node(request, attrs)
            caller = self.caller(action)
            parent = start.get('parent') if start is not None else None
            if (
                start is not None
                and isinstance(parent, str)
                and self.is_action(parent, start)
            ):
                self.edge(request, f'uuid:{parent}', 'wasInformedBy')
            if caller is not None:
                self.edge(
                    request,
                    caller,
                    'wasAssociatedWith',
                    **{'prov:role': 'caller'},
                )
                if start is not None:  # the caller called from there
                    self.delegate(caller, start)

        # -- the execution: the agent's side --------------------------------
        execution = f'uuid:{tag}'
        exec_attrs: dict[str, Any] = {
            'kind': 'activity',
            'prov:type': _EXECUTION_TYPE,
            'prov:label': name,
            'provlog:actionName': name,
            'provlog:actionTag': tag,
            'provlog:state': action.state,
            'provlog:executionState': STATE_OF_END.get(
                exec_end_kind or '', NOT_ENDED
            ),
        }
        if exec_start is None and exec_end_kind is None:
            exec_attrs['provlog:executionState'] = NOT_OBSERVED
        if exec_start is not None:
            exec_attrs['prov:startTime'] = iso_time(exec_start['t'])
            if EXECUTE_START in action.hosts:
                exec_attrs['provlog:host'] = action.hosts[EXECUTE_START]
        if exec_end is not None:
            exec_attrs['prov:endTime'] = iso_time(exec_end['t'])
            if exec_start is not None:
                exec_attrs['provlog:duration'] = _duration(
                    exec_start, exec_end
                )
        error = action.get(EXECUTE_EXCEPTION)
        if error is not None and isinstance(error.get('error'), dict):
            for key, term in (
                ('type', 'provlog:errorType'),
                ('message', 'provlog:errorMessage'),
                ('traceback', 'provlog:traceback'),
            ):
                if isinstance(error['error'].get(key), str):
                    exec_attrs[term] = error['error'][key]
        where = self.resources(exec_start, exec_end, exec_attrs)
        self.graph.node(execution, exec_attrs)
        if exec_end is not None:
            self.inside(tag, execution, exec_end.get('inside'))
        if has_caller_side:
            self.edge(execution, request, 'wasInformedBy')
        executor = self.executor(action)
        if executor is not None:
            assoc: dict[str, Any] = {'prov:role': 'executor'}
            if where is not None:  # the agent ran it in that process
                process, plan = where
                if plan is not None:
                    assoc['prov:plan'] = plan
                self.edge(executor, process, 'actedOnBehalfOf')
            self.edge(execution, executor, 'wasAssociatedWith', **assoc)

        # -- values ---------------------------------------------------------
        if start is not None:
            t_used = iso_time(exec_start['t']) if exec_start else None
            inputs: list[tuple[str, object, str]] = []
            args = start.get('args')
            if isinstance(args, list):
                inputs += [
                    (f'arg/{n}', d, f'arg{n}') for n, d in enumerate(args)
                ]
            kwargs = start.get('kwargs')
            if isinstance(kwargs, dict):
                inputs += [
                    (f'kwarg/{iri_segment(str(k))}', d, str(k))
                    for k, d in kwargs.items()
                ]
            for suffix, desc, role in inputs:
                node = f'plid:{tag}/{suffix}'
                if self.value(node, desc, f'{name} {role}') is None:
                    continue
                used_attrs: dict[str, Any] = {'prov:role': role}
                if t_used is not None:
                    used_attrs['prov:time'] = t_used
                self.edge(execution, node, 'used', **used_attrs)
                if caller is not None:
                    self.input(caller, node, float(start['t']))
        success = action.get(SUCCESS)
        if success is not None:
            node = f'plid:{tag}/result'
            value = self.value(node, success.get('result'), f'{name} result')
            if value is not None:
                gen_attrs: dict[str, Any] = {'prov:role': 'result'}
                if exec_end is not None and exec_end_kind == SUCCESS:
                    gen_attrs['prov:time'] = iso_time(exec_end['t'])
                self.edge(node, execution, 'wasGeneratedBy', **gen_attrs)
                if caller is not None:
                    self.receive(caller, node, float(success['t']))

    def lifetime(self, uid: str) -> None:
        """An agent's lifetime (agent's clock) and its launch (launcher's).

        The lifetime runs from the runtime's ``Starting agent`` to its
        ``Shutdown agent`` record; the launch is the instant of the
        Manager's ``Launched agent`` record. ``lifetime wasInformedBy
        launch`` joins the two clocks as a request and its execution are
        joined; the launched agent ``actedOnBehalfOf`` its launcher.
        """
        run = self.run
        agent = self.agent({'uid': uid, **run.agents.get(uid, {})})
        if agent is None:
            return
        label = self.graph.attrs(agent).get('prov:label', uid)
        states = run.lifecycles.get(uid, {})
        life = f'plid:{uid}/lifetime'
        attrs: dict[str, Any] = {
            'kind': 'activity',
            'prov:type': _LIFETIME_TYPE,
            'prov:label': f'lifetime of {label}',
            'provlog:agentState': next(
                (s for s in _LIFE_STATES if s in states), NOT_OBSERVED
            ),
        }
        start = states.get(LIFE_STARTING) or states.get(LIFE_RUNNING)
        end = states.get(LIFE_SHUTDOWN)
        if start is not None:
            attrs['prov:startTime'] = iso_time(start['t'])
            if start.get('_host') is not None:
                attrs['provlog:host'] = start['_host']
        if end is not None:
            attrs['prov:endTime'] = iso_time(end['t'])
            if start is not None:
                attrs['provlog:duration'] = _duration(start, end)
        if LIFE_STARTING in states and LIFE_RUNNING in states:
            attrs['provlog:startupDuration'] = _duration(
                states[LIFE_STARTING], states[LIFE_RUNNING]
            )
        expected = states.get(LIFE_STOPPING, {}).get('expected')
        if isinstance(expected, bool):
            attrs['provlog:shutdownExpected'] = expected
        self.graph.node(life, attrs)
        self.edge(life, agent, 'wasAssociatedWith', **{'prov:role': 'agent'})
        event = run.launches.get(uid)
        if event is not None:  # else started by hand, or launcher unseen
            self.launch(uid, agent, label, event)

    def launch(
        self, uid: str, agent: str, label: str, event: dict[str, Any]
    ) -> None:
        """The launch of the agent ``agent`` and who launched it."""
        launch = f'plid:{uid}/launch'
        when = iso_time(event['t'])
        launch_attrs: dict[str, Any] = {
            'kind': 'activity',
            'prov:type': _LAUNCH_TYPE,
            'prov:label': f'launch {label}',
            'prov:startTime': when,
            'prov:endTime': when,
        }
        if event.get('_host') is not None:
            launch_attrs['provlog:host'] = event['_host']
        parent = event.get('parent')
        if isinstance(parent, str) and self.is_action(parent, event):
            launch_attrs['provlog:launchedDuring'] = parent
        self.graph.node(launch, launch_attrs)
        self.edge(f'plid:{uid}/lifetime', launch, 'wasInformedBy')
        launcher = self.agent(event.get('launcher'))
        if launcher is not None:
            self.edge(
                launch,
                launcher,
                'wasAssociatedWith',
                **{'prov:role': 'launcher'},
            )
            if launcher != agent:
                self.edge(
                    agent,
                    launcher,
                    'actedOnBehalfOf',
                    **{'prov:type': _LAUNCH_DELEGATION_TYPE},
                )
        manager = self.agent(event.get('manager'))
        if manager is not None and manager != launcher:
            self.edge(
                launch,
                manager,
                'wasAssociatedWith',
                **{'prov:role': 'manager'},
            )

    # -- where and at what cost; the processes and what they ran ----------

    def delegate(self, agent: str, event: dict[str, Any]) -> None:
        """``agent`` acted through the process whose journal has ``event``."""
        where = self.processes.get(event.get('_process', ''))
        if where is not None:
            self.edge(agent, where[0], 'actedOnBehalfOf')

    def pid(self, event: dict[str, Any], attrs: dict[str, Any]) -> None:
        """``provlog:pid`` of the process whose journal holds ``event``."""
        process = self.run.processes.get(event.get('_process', ''))
        if process is not None and _is_int(process.pid):
            attrs['provlog:pid'] = process.pid

    def resources(
        self,
        start: dict[str, Any] | None,
        end: dict[str, Any] | None,
        attrs: dict[str, Any],
    ) -> tuple[str, str | None] | None:
        """Add where the execution ran and what it cost to ``attrs``.

        Returns:
            The process (agent) that ran it and that process's plan (the
            code), or ``None`` when no journal holds its agent side.
        """
        first = start if start is not None else end
        if first is None:
            return None
        self.pid(first, attrs)
        before = _res(start)
        after = _res(end)
        thread = before or after
        if thread is not None:
            if isinstance(thread.get('thread'), str):
                attrs['provlog:thread'] = thread['thread']
            if _is_int(thread.get('tid')):
                attrs['provlog:threadId'] = thread['tid']
        if after is not None and _is_int(after.get('maxrss')):
            attrs['provlog:maxRss'] = after['maxrss']
        if (
            before is not None
            and after is not None
            and start is not None
            and end is not None
            and start.get('_process') == end.get('_process')
        ):
            _costs(before, after, attrs)
        return self.processes.get(first.get('_process', ''))

    def process(self, process: Process) -> tuple[str, str | None]:
        """Add one process (a software agent), its software and its code.

        Returns:
            The process agent's node and its plan's (``None``: no script).
        """
        header = process.header
        context = process.context
        node = f'plid:process/{iri_segment(process.process)}'
        attrs: dict[str, Any] = {
            'kind': 'agent',
            'prov:type': _PROCESS_TYPE,
            'prov:label': f'process {process.label}',
            'provlog:processId': process.process,
        }
        if process.host is not None:
            attrs['provlog:host'] = str(process.host)
        if _is_int(process.pid):
            attrs['provlog:pid'] = process.pid
        for key, term in _PROCESS_TERMS.items():
            if isinstance(header.get(key), str):
                attrs[term] = header[key]
        for key, term in (
            ('argv', 'provlog:argv'),
            ('env', 'provlog:environment'),
        ):
            if isinstance(header.get(key), (list, dict)):
                attrs[term] = json.dumps(header[key], ensure_ascii=False)
        software = self.software(header, context)
        attrs['provlog:software'] = _qname(software)
        plan = self.code(header, context)
        if plan is not None:
            attrs['provlog:program'] = _qname(plan)
        self.graph.node(node, attrs)
        return node, plan

    def software(self, header: dict[str, Any], context: dict[str, Any]) -> str:
        """The Python and the packages a process ran on (one per content)."""
        attrs: dict[str, Any] = {'kind': 'entity', 'prov:type': _SOFTWARE_TYPE}
        for key, term in _SOFTWARE_TERMS.items():
            if isinstance(header.get(key), str):
                attrs[term] = header[key]
        packages = context.get('packages')
        if isinstance(packages, list) and all(
            isinstance(p, str) for p in packages
        ):
            attrs['provlog:packages'] = '\n'.join(packages)
            attrs['provlog:packageCount'] = len(packages)
        if isinstance(context.get('packages_sha256'), str):
            attrs['provlog:packagesSha256'] = context['packages_sha256']
        python = ' '.join(
            str(attrs[t])
            for t in ('provlog:pythonImplementation', 'provlog:pythonVersion')
            if t in attrs
        )
        count = attrs.get('provlog:packageCount')
        attrs['prov:label'] = (
            f'{python or "Python"}, {count} packages'
            if count is not None
            else python or 'Python'
        )
        node = f'plid:software/{_content_id(attrs)}'
        if node not in self.graph:
            self.graph.node(node, attrs)
        return node

    def code(
        self, header: dict[str, Any], context: dict[str, Any]
    ) -> str | None:
        """The main script at its commit, as the process's plan."""
        script = header.get('script')
        if not isinstance(script, str):
            return None
        attrs: dict[str, Any] = {
            'kind': 'entity',
            'prov:type': _CODE_TYPE,
            'provlog:script': script,
        }
        if isinstance(context.get('script_sha256'), str):
            attrs['provlog:scriptSha256'] = context['script_sha256']
        label = os.path.basename(script)
        git = context.get('git')
        if isinstance(git, dict) and isinstance(git.get('commit'), str):
            attrs['provlog:gitCommit'] = git['commit']
            label += f' @ {git["commit"][:12]}'
            if isinstance(git.get('dirty'), bool):
                attrs['provlog:gitDirty'] = git['dirty']
                if git['dirty']:
                    label += ' (modified)'
            if isinstance(git.get('root'), str):
                attrs['provlog:gitRoot'] = git['root']
        attrs['prov:label'] = label
        node = f'plid:code/{_content_id(attrs)}'
        if node not in self.graph:
            self.graph.node(node, attrs)
        return node

    def executor(self, action: Action) -> str | None:
        """The agent that ran ``action``: the runtime's, else the callee."""
        for kind in (EXECUTE_START, EXEC_AGENT):
            event = action.get(kind)
            if event is not None:
                node = self.agent(event.get('agent'))
                if node is not None:
                    return node
        start = action.get(START)
        if start is not None:
            return self.agent(start.get('callee'))
        return None

    def receive(self, caller: str, result: str, t: float) -> None:
        """Index ``result`` and its members as received by ``caller``."""
        for node in (result, *self.members.get(result, ())):
            attrs = self.graph.attrs(node)
            sha = attrs.get('provlog:sha256')
            if isinstance(sha, str) and _derivable(attrs):
                self.received.setdefault((caller, sha), []).append((t, node))

    def infer_derivations(self) -> None:
        """Link every input (or member) to the latest equal value received.

        Runs once every result is indexed, so the order the actions were
        added in (their first event on any clock) cannot hide a result.
        Costs one index lookup per input and member: linear in the values.
        """
        for received in self.received.values():
            received.sort()
        for caller, node, t_start in self.inputs:
            self.derive(caller, node, t_start)

    def derive(self, caller: str, node: str, t_start: float) -> None:
        """Link ``node`` (or members) to the latest earlier equal value.

        The candidates are the results ``caller`` received at or before
        ``t_start`` (its clock for both) and their members.
        """
        stack = [node]
        while stack:
            current = stack.pop()
            attrs = self.graph.attrs(current)
            sha = attrs.get('provlog:sha256')
            if isinstance(sha, str) and _derivable(attrs):
                match = self.match(caller, sha, t_start)
                if match is not None:
                    self.edge(
                        current,
                        match,
                        'wasDerivedFrom',
                        **{'provlog:inferredBy': 'content-hash'},
                    )
                    continue
            stack.extend(self.members.get(current, ()))

    def match(self, caller: str, sha: str, t_start: float) -> str | None:
        """The latest value ``caller`` received with hash ``sha`` by then."""
        received = self.received.get((caller, sha))
        if not received:
            return None
        n = bisect.bisect_right(received, (t_start, '\uffff'))
        return received[n - 1][1] if n else None


_VALUE_TERMS = {
    'type': 'provlog:pythonType',
    'size': 'provlog:size',
    'sha256': 'provlog:sha256',
    'preview': 'provlog:preview',
    'value': 'prov:value',
    'length': 'provlog:length',
    'redacted': 'provlog:redacted',
    'capped': 'provlog:capped',
    'truncated': 'provlog:truncated',
    'opaque': 'provlog:opaque',
}
#: Type tuples shared by every node of a kind (immutable, so sharing is safe)
_VALUE_TYPE = ('provlog:Value',)
_COLLECTION_TYPE = ('provlog:Value', 'prov:Collection')
_REQUEST_TYPE = ('provlog:ActionRequest',)
_EXECUTION_TYPE = ('provlog:ActionExecution',)
_LIFETIME_TYPE = ('provlog:AgentLifetime',)
_LAUNCH_TYPE = ('provlog:AgentLaunch',)
_LAUNCH_DELEGATION_TYPE = ('provlog:Launch',)
#: Lifecycle states, the furthest first: the lifetime's agentState
_LIFE_STATES = (LIFE_SHUTDOWN, LIFE_STOPPING, LIFE_RUNNING, LIFE_STARTING)
_INSIDE: dict[object, dict[str, Any]] = {
    'log': {'prov:type': ('provlog:LogRecord',)},
    'stdout': {'prov:type': ('provlog:Output',), 'provlog:stream': 'stdout'},
    'stderr': {'prov:type': ('provlog:Output',), 'provlog:stream': 'stderr'},
    'warning': {'prov:type': ('provlog:Warning',)},
}
_INSIDE_TERMS = {
    'level': 'provlog:level',
    'logger': 'provlog:logger',
    'msg': 'provlog:message',
    'text': 'provlog:text',
    'category': 'provlog:warningCategory',
    'file': 'provlog:sourceFile',
    'line': 'provlog:sourceLine',
}


def _inside_entity(record: object) -> dict[str, Any] | None:
    """The attributes of one log record, output or warning entity."""
    if not isinstance(record, dict):
        return None
    attrs = _INSIDE.get(record.get('k'))
    if attrs is None:
        return None
    entity: dict[str, Any] = {'kind': 'entity', **attrs}
    for key, term in _INSIDE_TERMS.items():
        found = record.get(key)
        if isinstance(found, (str, int)) and not isinstance(found, bool):
            entity[term] = found
    extra = record.get('extra')
    if isinstance(extra, dict) and extra:
        entity['provlog:extra'] = orjson.dumps(extra).decode()
    return entity


_VALUE_FLAGS = frozenset({'redacted', 'capped', 'truncated', 'opaque'})


_PROCESS_TYPE = ('provlog:Process',)
_SOFTWARE_TYPE = ('provlog:Software',)
_CODE_TYPE = ('prov:Plan', 'provlog:Code')
#: Header fields -> attributes of the process agent.
_PROCESS_TERMS = {
    'user': 'provlog:user',
    'cwd': 'provlog:workingDirectory',
    'platform': 'provlog:platform',
    'executable': 'provlog:executable',
}
#: Header fields -> attributes of the software entity.
_SOFTWARE_TERMS = {
    'implementation': 'provlog:pythonImplementation',
    'python': 'provlog:pythonVersion',
    'academy': 'provlog:academyVersion',
    'provlog': 'provlog:provlogVersion',
}


def _is_int(value: object) -> bool:
    return type(value) is int


def _res(event: dict[str, Any] | None) -> dict[str, Any] | None:
    res = event.get('res') if event is not None else None
    return res if isinstance(res, dict) else None


def _number(value: object) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _costs(
    before: dict[str, Any], after: dict[str, Any], attrs: dict[str, Any]
) -> None:
    """The differences of two samples of one process, as attributes."""
    keys = [
        ('cpu_user', 'provlog:cpuUser'),
        ('cpu_sys', 'provlog:cpuSystem'),
        ('maxrss', 'provlog:maxRssGrowth'),
    ]
    if before.get('tid') == after.get('tid'):  # the same thread
        keys.append(('thread_cpu', 'provlog:threadCpu'))
    for key, term in keys:
        a, b = _number(before.get(key)), _number(after.get(key))
        if a is not None and b is not None:
            attrs[term] = int(b - a) if key == 'maxrss' else round(b - a, 6)


def _qname(node: str) -> dict[str, str]:
    """An attribute value naming another node (PROV-JSON's typed QName)."""
    return {'$': node, 'type': 'prov:QUALIFIED_NAME'}


def _content_id(attrs: dict[str, Any]) -> str:
    """An identifier from the attributes: equal content, one node."""
    text = json.dumps(
        {k: v for k, v in attrs.items() if k != 'prov:type'},
        sort_keys=True,
        ensure_ascii=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _derivable(attrs: dict[str, Any]) -> bool:
    """Whether equal hashes of this value say anything.

    Not for ``None`` and booleans (too common), nor for a value masked
    whole (every secret hashes as ``[REDACTED]``).
    """
    return (
        attrs.get('provlog:pythonType') not in _SKIP_DERIVATION
        and attrs.get('provlog:sha256') != _MASKED_SHA256
    )


def _duration(start: dict[str, Any], end: dict[str, Any]) -> float:
    return round(float(end['t']) - float(start['t']), 6)


def _first_time(action: Action) -> float:
    return action.first_time


def build_graph(run: MergedRun) -> nx.MultiDiGraph:
    """Build the PROV graph of a merged run."""
    return _Builder(run).build()
