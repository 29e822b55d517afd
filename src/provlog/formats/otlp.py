"""OTLP/JSON: a run as OpenTelemetry traces, for Jaeger, Tempo, collectors.

One ``ExportTraceServiceRequest``. Each top-level call is a trace whose id
is its action tag; every call is a CLIENT span (the request, in the
caller's process) and a SERVER span (the execution, in the agent's), the
execution a child of its request and a nested request a child of the
execution that made it, across processes. Each process is a resource. Ids
are derived from the tags, so exporting a run twice gives the same ids.
Read from :attr:`provlog.RunGraph.timeline` and the merged journals only,
so it never builds the PROV graph.
"""

from __future__ import annotations

import hashlib
from typing import Any
from typing import ClassVar
from typing import TYPE_CHECKING

import orjson

from provlog import __version__
from provlog import clip
from provlog.actions.merge import MergedRun
from provlog.actions.spans import Call
from provlog.actions.spans import Side
from provlog.actions.spans import Timeline
from provlog.formats.otlpattrs import attr
from provlog.formats.otlpattrs import bool_attr
from provlog.formats.otlpattrs import call_values
from provlog.formats.otlpattrs import cut_preview
from provlog.formats.otlpattrs import int_attr
from provlog.gcpause import gc_paused
from provlog.vocab import CANCELLED
from provlog.vocab import FAILED
from provlog.vocab import NOT_ENDED

if TYPE_CHECKING:
    from provlog.mapping.runview import RunView

__all__ = ['Otlp', 'export_request']

#: ``Span.SpanKind`` and ``Status.StatusCode`` of the OTLP protobuf.
KIND_SERVER = 2
KIND_CLIENT = 3
STATUS_UNSET = 0
STATUS_OK = 1
STATUS_ERROR = 2
#: Call states whose spans end without a status.
_UNSET = frozenset({NOT_ENDED, CANCELLED})

_NO_TRACE = '0' * 32


class Otlp:
    """OTLP/JSON traces (``ExportTraceServiceRequest``)."""

    name: ClassVar[str] = 'otlp'
    suffix: ClassVar[str] = 'otlp.json'
    summary: ClassVar[str] = 'OpenTelemetry OTLP/JSON traces (Jaeger, Tempo)'

    @gc_paused
    def serialize(self, graph: RunView, *, indent: bool = False) -> bytes:
        """The request, compact: receivers cap request sizes."""
        del indent
        return orjson.dumps(export_request(graph.timeline, graph.run))


def span_id(tag: str, side: str) -> str:
    """The span id of one side (``request``/``execution``) of a call."""
    digest = hashlib.blake2b(f'{tag}/{side}'.encode(), digest_size=8)
    return digest.hexdigest()


def trace_id(tag: str) -> str:
    """The trace id of the call tree rooted at ``tag``: the tag's hex."""
    hexed = tag.replace('-', '').lower()
    if len(hexed) != 32 or hexed == _NO_TRACE:  # noqa: PLR2004
        return hashlib.blake2b(tag.encode(), digest_size=16).hexdigest()
    return hexed


def _nanos(t: float) -> str:
    return str(round(t * 1e6) * 1000)


_OPERATION = attr('gen_ai.operation.name', 'invoke_agent')
_NOT_ENDED = bool_attr('provlog.ended', False)
_NOT_STARTED = bool_attr('provlog.started', False)
_CLOCK_SUSPECT = bool_attr('provlog.clock_suspect', True)
_PARENT_EXECUTION_MISSING = bool_attr('provlog.parent_execution_missing', True)


class _Builder:
    """Spans of one run, grouped by the process that recorded them."""

    def __init__(self, tl: Timeline, run: MergedRun) -> None:
        self.tl = tl
        self.run = run
        self.by_process: dict[str | None, list[dict[str, Any]]] = {}
        self.agents_in: dict[str | None, set[str]] = {}
        self.trace: dict[str, str] = {}
        self.names: dict[str | None, str] = {}
        self.attrs: dict[tuple[str, str], dict[str, Any]] = {}
        self.run_attr = attr('provlog.run_id', tl.run_id)

    def name(self, uid: str | None) -> str:
        found = self.names.get(uid)
        if found is None:
            found = self.names[uid] = self.tl.agent_name(uid)
        return found

    def build(self) -> None:
        for call in self.tl.walk():  # parents before their children
            self.add(call)

    def add(self, call: Call) -> None:
        parent = self.tl.calls.get(call.parent) if call.parent else None
        same_trace = parent is not None and parent.tag in self.trace
        trace = (
            self.trace[parent.tag]
            if same_trace and parent is not None
            else trace_id(call.tag)
        )
        self.trace[call.tag] = trace
        common = self.common(call)
        upstream: str | None = None
        if same_trace and parent is not None:
            if parent.execution is not None:
                upstream = span_id(parent.tag, 'execution')
            elif parent.request is not None:
                upstream = span_id(parent.tag, 'request')
                common.append(_PARENT_EXECUTION_MISSING)
        elif call.parent is not None and call.parent != call.tag:
            common.append(attr('provlog.parent_missing', call.parent))
        if call.request is not None:
            self.span(
                call, call.request, trace, upstream, common, request=True
            )
            upstream = span_id(call.tag, 'request')
        if call.execution is not None:
            self.span(
                call, call.execution, trace, upstream, common, request=False
            )

    def shared(self, key: str, value: str) -> dict[str, Any]:
        """One attribute object for every span with this key and value."""
        found = self.attrs.get((key, value))
        if found is None:
            found = self.attrs[key, value] = attr(key, value)
        return found

    def common(self, call: Call) -> list[dict[str, Any]]:
        shared = self.shared
        attrs = [
            _OPERATION,
            self.run_attr,
            shared('gen_ai.agent.name', self.name(call.callee)),
            shared('academy.action', call.action),
            shared('academy.action_state', call.state),
            shared('academy.caller_name', self.name(call.caller)),
            attr('academy.action_tag', call.tag),
        ]
        if call.callee is not None:
            attrs.append(shared('gen_ai.agent.id', call.callee))
        if call.caller is not None:
            attrs.append(shared('academy.caller', call.caller))
        attrs += call_values(self.run, call.tag)
        return attrs

    def span(
        self,
        call: Call,
        side: Side,
        trace: str,
        parent: str | None,
        common: list[dict[str, Any]],
        *,
        request: bool,
    ) -> None:
        which = 'request' if request else 'execution'
        attrs = list(common)
        if side.thread is not None:
            attrs.append(self.shared('thread.name', side.thread))
        if not side.ended:
            attrs.append(_NOT_ENDED)
        if not side.started:
            attrs.append(_NOT_STARTED)
        if side.clock_suspect:
            attrs.append(_CLOCK_SUSPECT)
        span: dict[str, Any] = {
            'traceId': trace,
            'spanId': span_id(call.tag, which),
            'name': f'{self.name(call.callee)}.{call.action}',
            'kind': KIND_CLIENT if request else KIND_SERVER,
            'startTimeUnixNano': _nanos(side.start),
            'endTimeUnixNano': _nanos(side.end),
            'attributes': attrs,
            'status': _status(call, side),
        }
        if parent is not None:
            span['parentSpanId'] = parent
        error = call.error
        if error is not None and not request:
            span['events'] = [_exception(error, side.end)]
        self.by_process.setdefault(side.process, []).append(span)
        if not request and call.callee is not None:
            self.agents_in.setdefault(side.process, set()).add(call.callee)

    def resource(self, process: str | None) -> dict[str, Any]:
        proc = self.run.processes.get(process) if process else None
        agents = self.agents_in.get(process, set())
        service = 'academy'
        if len(agents) == 1:
            cls = self.tl.agents.get(next(iter(agents)), {}).get('class')
            service = cls if isinstance(cls, str) and cls else service
        instance = clip.cut(process, clip.ID_CHARS) if process else 'unknown'
        attrs = [
            attr('service.name', service),
            attr('service.instance.id', instance),
            attr('provlog.run_id', self.tl.run_id),
        ]
        if proc is not None:
            if proc.host is not None:
                host = clip.text(proc.host, clip.NAME_CHARS)
                attrs.append(attr('host.name', host))
            if isinstance(proc.pid, int) and not isinstance(proc.pid, bool):
                attrs.append(int_attr('process.pid', proc.pid))
        return {'attributes': attrs}


def _status(call: Call, side: Side) -> dict[str, Any]:
    if not side.ended or call.state in _UNSET:
        return {'code': STATUS_UNSET}
    if call.state == FAILED:
        error = call.error or {}
        kind = error.get('type') or 'failed'
        message = error.get('message') or ''
        text = f'{kind}: {message}' if message else kind
        return {'code': STATUS_ERROR, 'message': cut_preview(text)}
    return {'code': STATUS_OK}


def _exception(error: dict[str, str], at: float) -> dict[str, Any]:
    """The ``exception`` event; its texts were bounded in the timeline."""
    attrs = [
        attr('exception.type', error.get('type', '')),
        attr('exception.message', error.get('message', '')),
    ]
    if error.get('traceback'):
        attrs.append(attr('exception.stacktrace', error['traceback']))
    return {
        'name': 'exception',
        'timeUnixNano': _nanos(at),
        'attributes': attrs,
    }


def export_request(tl: Timeline, run: MergedRun) -> dict[str, Any]:
    """The ``ExportTraceServiceRequest`` of a run, as OTLP/JSON."""
    builder = _Builder(tl, run)
    builder.build()
    scope = {'name': 'provlog', 'version': __version__}
    order = sorted(
        builder.by_process,
        key=lambda p: (tl.processes.get(p or '', '~'), p or ''),
    )
    return {
        'resourceSpans': [
            {
                'resource': builder.resource(process),
                'scopeSpans': [
                    {'scope': scope, 'spans': builder.by_process[process]}
                ],
            }
            for process in order
        ]
    }
