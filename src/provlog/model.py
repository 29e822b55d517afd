"""The PROV model: merged actions in, a NetworkX PROV graph out.

Nodes are IRIs in compact ``prefix:local`` form with a ``kind``
(``entity``/``activity``/``agent``) and their PROV attributes, keyed by
qualified name (``prov:startTime``, ``provlog:state``, ...). Edges point
from effect to cause, as PROV writes them (``activity -used-> entity``,
``entity -wasGeneratedBy-> activity``, ...), keyed by a relation key that is
unique per relation instance, with the relation name in ``rel``.
``docs/model.md`` explains every choice.
"""

from __future__ import annotations

import bisect
import uuid
from datetime import datetime
from datetime import UTC
from typing import Any
from urllib.parse import quote

import networkx as nx

from provlog.merge import Action
from provlog.merge import MergedRun

__all__ = ['ID_NS', 'PREFIXES', 'PROVLOG_NS', 'build_graph', 'iso_time']

#: The project's vocabulary (terms PROV lacks): ontologies/provlog.ttl.
PROVLOG_NS = 'https://w3id.org/provlog/ns#'
#: Identifiers of requests and values, minted from action tags.
ID_NS = 'https://w3id.org/provlog/id/'

PREFIXES = {
    'provlog': PROVLOG_NS,
    'plid': ID_NS,
    'uuid': 'urn:uuid:',
}

_SKIP_DERIVATION = frozenset({'NoneType', 'bool'})


def iso_time(t: float) -> str:
    """Seconds since the epoch as ``xsd:dateTime`` in UTC, to microseconds."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec='microseconds')


def iri_segment(text: str) -> str:
    """``text`` as one IRI path segment that no reader can misread.

    Percent-encodes everything outside the unreserved set, and ``.`` too:
    a segment of dots is a relative-path step, and a compact name ending
    in ``.`` is not valid Turtle.
    """
    return quote(text, safe='').replace('.', '%2E')


def _agent_node(
    graph: nx.MultiDiGraph, ident: object, agents: dict[str, Any]
) -> str | None:
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
        attrs['prov:type'] = ['provlog:Client']
        attrs['prov:label'] = f'client {name}' if name else 'client'
    else:
        attrs['prov:type'] = ['prov:SoftwareAgent', 'provlog:AcademyAgent']
        attrs['prov:label'] = str(name) if name else f'agent {uid[:8]}'
        cls = known.get('class')
        if isinstance(cls, str):
            attrs['provlog:agentClass'] = cls
    if name:
        attrs['provlog:agentName'] = str(name)
    graph.add_node(node, **attrs)
    return node


class _Builder:
    """Builds the graph; one instance per merge."""

    def __init__(self, run: MergedRun) -> None:
        self.run = run
        self.graph = nx.MultiDiGraph(run_id=run.run_id)
        # (caller node, sha256) -> [(time, entity)] of results it received,
        # sorted by time
        self.received: dict[tuple[str, str], list[tuple[float, str]]] = {}
        self.members: dict[str, list[str]] = {}

    def edge(self, u: str, v: str, rel: str, key: str, **attrs: Any) -> None:
        self.graph.add_edge(u, v, key=f'{rel}:{key}', rel=rel, **attrs)

    def value(  # noqa: C901
        self,
        node: str,
        desc: object,
        label: str,
    ) -> str | None:
        """Add one value entity (and its members); return its node id."""
        if not isinstance(desc, dict):
            return None
        attrs: dict[str, Any] = {
            'kind': 'entity',
            'prov:type': ['provlog:Value'],
            'prov:label': label,
        }
        for key, term in _VALUE_TERMS.items():
            got = desc.get(key)
            if key in _VALUE_FLAGS:
                if got is True:
                    attrs[term] = True
            elif isinstance(got, (str, int, float)):
                attrs[term] = got
        members = desc.get('members')
        if isinstance(members, list) and members:
            attrs['prov:type'].append('prov:Collection')
        self.graph.add_node(node, **attrs)
        if isinstance(members, list):
            for n, member in enumerate(members):
                if not (isinstance(member, list) and len(member) == 2):  # noqa: PLR2004
                    continue
                name, sub = member
                child = f'{node}/{n}'
                if self.value(child, sub, f'{label}[{name}]') is not None:
                    self.graph.nodes[child]['provlog:memberKey'] = str(name)
                    self.edge(node, child, 'hadMember', child)
                    self.members.setdefault(node, []).append(child)
        return node

    def build(self) -> nx.MultiDiGraph:
        run = self.run
        self.run_entity()
        for uid, info in sorted(run.agents.items()):
            _agent_node(self.graph, {'uid': uid, **info}, run.agents)
        ordered = sorted(
            run.actions.values(),
            key=lambda a: (_first_time(a), a.tag),
        )
        for action in ordered:
            self.action(action)
        return self.graph

    def run_entity(self) -> None:
        """The run itself, saying whether the record of it is complete."""
        run = self.run
        processes = run.processes.values()
        self.graph.add_node(
            f'plid:run/{iri_segment(run.run_id)}',
            **{
                'kind': 'entity',
                'prov:type': ['provlog:Run'],
                'prov:label': f'provlog run {run.run_id}',
                'provlog:complete': run.complete,
                'provlog:processes': len(run.processes),
                'provlog:processesNotClosed': sum(
                    1 for p in processes if not p.closed
                ),
                'provlog:eventsDropped': sum(p.dropped for p in processes),
                'provlog:linesSkipped': sum(p.skipped for p in processes),
            },
        )

    def action(self, action: Action) -> None:  # noqa: C901, PLR0912, PLR0915
        run = self.run
        tag = action.tag
        name = action.name or 'unknown'
        start = action.get('start')
        send = action.get('sending')
        exec_start = action.get('execute_start')
        caller_end_kind = action.caller_state
        exec_end_kind = action.execution_state
        caller_end = action.get(caller_end_kind) if caller_end_kind else None
        exec_end = (
            action.get(f'execute_{exec_end_kind}') if exec_end_kind else None
        )

        # -- the request: the caller's side ---------------------------------
        request = f'plid:{tag}/request'
        caller: str | None = None
        has_caller_side = any(
            k in action.events
            for k in ('start', 'sending', 'success', 'exception', 'cancelled')
        )
        if has_caller_side:
            attrs: dict[str, Any] = {
                'kind': 'activity',
                'prov:type': ['provlog:ActionRequest'],
                'prov:label': f'request {name}',
                'provlog:actionName': name,
                'provlog:actionTag': tag,
                'provlog:state': _REQUEST_STATE.get(
                    caller_end_kind or '', 'not_ended'
                ),
            }
            if start is not None:
                attrs['prov:startTime'] = iso_time(start['t'])
                if 'start' in action.hosts:
                    attrs['provlog:host'] = action.hosts['start']
            if caller_end is not None:
                attrs['prov:endTime'] = iso_time(caller_end['t'])
                if start is not None:
                    attrs['provlog:duration'] = _duration(start, caller_end)
            self.graph.add_node(request, **attrs)
            if start is not None:
                caller = _agent_node(
                    self.graph, start.get('caller'), run.agents
                )
            if caller is None and send is not None:
                caller = _agent_node(self.graph, send.get('src'), run.agents)
            parent = start.get('parent') if start is not None else None
            if isinstance(parent, str) and parent in run.actions:
                self.edge(request, f'uuid:{parent}', 'wasInformedBy', tag)
                if caller is None:
                    caller = self.executor(run.actions[parent])
            if caller is not None:
                self.edge(
                    request,
                    caller,
                    'wasAssociatedWith',
                    tag,
                    **{'prov:role': 'caller'},
                )

        # -- the execution: the agent's side --------------------------------
        execution = f'uuid:{tag}'
        exec_attrs: dict[str, Any] = {
            'kind': 'activity',
            'prov:type': ['provlog:ActionExecution'],
            'prov:label': name,
            'provlog:actionName': name,
            'provlog:actionTag': tag,
            'provlog:state': action.state,
            'provlog:executionState': _EXEC_STATE.get(
                exec_end_kind or '', 'not_ended'
            ),
        }
        if exec_start is None and exec_end_kind is None:
            exec_attrs['provlog:executionState'] = 'not_observed'
        if exec_start is not None:
            exec_attrs['prov:startTime'] = iso_time(exec_start['t'])
            if 'execute_start' in action.hosts:
                exec_attrs['provlog:host'] = action.hosts['execute_start']
        if exec_end is not None:
            exec_attrs['prov:endTime'] = iso_time(exec_end['t'])
            if exec_start is not None:
                exec_attrs['provlog:duration'] = _duration(
                    exec_start, exec_end
                )
        error = action.get('execute_exception')
        if error is not None and isinstance(error.get('error'), dict):
            for key, term in (
                ('type', 'provlog:errorType'),
                ('message', 'provlog:errorMessage'),
                ('traceback', 'provlog:traceback'),
            ):
                if isinstance(error['error'].get(key), str):
                    exec_attrs[term] = error['error'][key]
        self.graph.add_node(execution, **exec_attrs)
        if has_caller_side:
            self.edge(execution, request, 'wasInformedBy', tag)
        executor = self.executor(action)
        if executor is not None:
            self.edge(
                execution,
                executor,
                'wasAssociatedWith',
                tag,
                **{'prov:role': 'executor'},
            )

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
                node = self.value(
                    f'plid:{tag}/{suffix}', desc, f'{name} {role}'
                )
                if node is None:
                    continue
                used_attrs: dict[str, Any] = {'prov:role': role}
                if t_used is not None:
                    used_attrs['prov:time'] = t_used
                self.edge(
                    execution, node, 'used', f'{tag}/{suffix}', **used_attrs
                )
                if caller is not None:
                    self.derive(caller, node, start['t'])
        success = action.get('success')
        if success is not None:
            node = self.value(
                f'plid:{tag}/result', success.get('result'), f'{name} result'
            )
            if node is not None:
                gen_attrs: dict[str, Any] = {'prov:role': 'result'}
                if exec_end is not None and exec_end_kind == 'success':
                    gen_attrs['prov:time'] = iso_time(exec_end['t'])
                self.edge(node, execution, 'wasGeneratedBy', tag, **gen_attrs)
                sha = self.graph.nodes[node].get('provlog:sha256')
                if (
                    caller is not None
                    and isinstance(sha, str)
                    and self._derivable(node)
                ):
                    bisect.insort(
                        self.received.setdefault((caller, sha), []),
                        (float(success['t']), node),
                    )

    def executor(self, action: Action) -> str | None:
        """The agent that ran ``action``: the runtime's, else the callee."""
        run = self.run
        for kind in ('execute_start', 'exec_agent'):
            event = action.get(kind)
            if event is not None:
                node = _agent_node(self.graph, event.get('agent'), run.agents)
                if node is not None:
                    return node
        start = action.get('start')
        if start is not None:
            return _agent_node(self.graph, start.get('callee'), run.agents)
        return None

    def _derivable(self, node: str) -> bool:
        return (
            self.graph.nodes[node].get('provlog:pythonType')
            not in _SKIP_DERIVATION
        )

    def derive(self, caller: str, node: str, t_start: float) -> None:
        """Link ``node`` (or members) to the latest earlier equal result."""
        stack = [node]
        while stack:
            current = stack.pop()
            sha = self.graph.nodes[current].get('provlog:sha256')
            received = (
                self.received.get((caller, sha))
                if isinstance(sha, str) and self._derivable(current)
                else None
            )
            if received:
                # the latest result received at or before the call started
                n = bisect.bisect_right(received, (float(t_start), '\uffff'))
                match = received[n - 1][1] if n else None
                if match is not None:
                    self.edge(
                        current,
                        match,
                        'wasDerivedFrom',
                        current,
                        **{'provlog:inferredBy': 'content-hash'},
                    )
                    continue
            stack.extend(self.members.get(current, ()))


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
_VALUE_FLAGS = frozenset({'redacted', 'capped', 'truncated', 'opaque'})
_REQUEST_STATE = {
    'success': 'completed',
    'exception': 'failed',
    'cancelled': 'cancelled',
}
_EXEC_STATE = _REQUEST_STATE


def _duration(start: dict[str, Any], end: dict[str, Any]) -> float:
    return round(float(end['t']) - float(start['t']), 6)


def _first_time(action: Action) -> float:
    times = [e.get('t', 0.0) for e in action.events.values()]
    return float(min(times)) if times else 0.0


def build_graph(run: MergedRun) -> nx.MultiDiGraph:
    """Build the PROV graph of a merged run."""
    return _Builder(run).build()
