"""``export --format perfetto`` and ``--format otlp`` of real runs.

Expectations come from the journals (``graph.run``), not from
:mod:`provlog.actions.spans`, so a mistake there shows here too.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)

import provlog

_ENDS = frozenset(
    {
        'success',
        'exception',
        'cancelled',
        'execute_success',
        'execute_exception',
        'execute_cancelled',
    }
)


def _export(run_dir: Path, fmt: str) -> dict[str, Any]:
    return orjson.loads(provlog.load(run_dir).serialize(fmt))


def _sides(run_dir: Path) -> tuple[set[str], set[str]]:
    """Tags with a request side and tags with an execution side."""
    actions = provlog.load(run_dir).run.actions.values()
    return (
        {a.tag for a in actions if a.has_caller_side},
        {a.tag for a in actions if a.has_execution_side},
    )


def _slices(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in doc['traceEvents'] if e['ph'] == 'X']


def _copy_edited(run: dict[str, Any], tmp: Path, edit: Any) -> Path:
    """The run's journals with each event replaced by ``edit(event)``.

    ``edit`` returns the event to keep (changed or not), or None to drop it.
    """
    dst = tmp / run['run_dir'].name
    dst.mkdir()
    for journal in run['run_dir'].glob('*.jsonl'):
        kept = []
        for line in journal.read_bytes().splitlines():
            event = edit(orjson.loads(line))
            if event is not None:
                kept.append(orjson.dumps(event))
        (dst / journal.name).write_bytes(b'\n'.join(kept) + b'\n')
    return dst


def _copy_without(run: dict[str, Any], tmp: Path, drop: Any) -> Path:
    """The run's journals without the events ``drop(event)`` picks."""
    return _copy_edited(run, tmp, lambda e: None if drop(e) else e)


def _tags_of(run_dir: Path, action: str) -> list[str]:
    graph = provlog.load(run_dir)
    return sorted(
        a.tag for a in graph.run.actions.values() if a.name == action
    )


def _tag_of(run_dir: Path, action: str) -> str:
    return _tags_of(run_dir, action)[0]


class TestPerfettoSlices:
    """Every request and every execution is one slice, or views lose work."""

    def test_each_side_exactly_once(self, workflow_run):
        run_dir = workflow_run['run_dir']
        doc = _export(run_dir, 'perfetto')
        requests, executions = _sides(run_dir)
        seen = Counter((e['cat'], e['args']['tag']) for e in _slices(doc))
        assert set(seen.values()) == {1}
        assert {t for c, t in seen if c == 'request'} == requests
        assert {t for c, t in seen if c == 'execution'} == executions
        assert len(executions) == 11


class TestPerfettoFlows:
    """An arrow joins each request to its execution, across processes."""

    @staticmethod
    def _bound(doc: dict[str, Any], flow: dict[str, Any]) -> dict[str, Any]:
        """The slice a flow event binds to: the innermost enclosing one."""
        around = [
            e
            for e in _slices(doc)
            if (e['pid'], e['tid']) == (flow['pid'], flow['tid'])
            and e['ts'] <= flow['ts'] < e['ts'] + e['dur']
        ]
        return max(around, key=lambda e: (e['ts'], -e['dur']))

    def test_flow_joins_request_to_execution(self, procpool_run):
        run_dir = procpool_run['run_dir']
        graph = provlog.load(run_dir)
        doc = _export(run_dir, 'perfetto')
        names = {
            e['pid']: e['args']['name']
            for e in doc['traceEvents']
            if e['name'] == 'process_name'
        }
        flows: dict[int, dict[str, dict[str, Any]]] = {}
        for e in doc['traceEvents']:
            if e['ph'] in {'s', 'f'}:
                assert e['ph'] not in flows.setdefault(e['id'], {})
                flows[e['id']][e['ph']] = e
        both = {
            a.tag
            for a in graph.run.actions.values()
            if a.has_caller_side and a.has_execution_side
        }
        assert len(flows) == len(both) == 11
        crossed = 0
        for pair in flows.values():
            assert pair['f']['bp'] == 'e'
            request = self._bound(doc, pair['s'])
            execution = self._bound(doc, pair['f'])
            assert (request['cat'], execution['cat']) == (
                'request',
                'execution',
            )
            tag = request['args']['tag']
            assert execution['args']['tag'] == tag
            action = graph.run.actions[tag]
            start = action.get('start')
            caller = start.get('caller') or action.get('sending')['src']
            callee = action.get('execute_start')['agent']
            for slice_, kind, who in (
                (request, 'start', caller['uid']),
                (execution, 'execute_start', callee['uid']),
            ):
                label = graph.run.processes[action.get(kind)['_process']].label
                name = graph.timeline.agent_name(who)
                assert names[slice_['pid']] == f'{name} ({label})'
            crossed += request['pid'] != execution['pid']
        assert crossed == 11


class TestPerfettoTracks:
    """Viewers need a name for every process and only nesting on a track."""

    def test_every_pid_named(self, procpool_run):
        doc = _export(procpool_run['run_dir'], 'perfetto')
        events = doc['traceEvents']
        named = {e['pid'] for e in events if e['name'] == 'process_name'}
        threads = {e['tid'] for e in events if e['name'] == 'thread_name'}
        assert {e['pid'] for e in events} == named
        assert {e['tid'] for e in events if e['ph'] != 'M'} <= threads
        assert len(named) == 4  # the client and three agents

    def test_one_track_only_nests(self, workflow_run):
        doc = _export(workflow_run['run_dir'], 'perfetto')
        by_track: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for e in _slices(doc):
            by_track.setdefault((e['pid'], e['tid']), []).append(
                (e['ts'], e['ts'] + e['dur'])
            )
        lanes = 0
        for found in by_track.values():
            found.sort(key=lambda i: (i[0], -i[1]))
            for i, (s1, e1) in enumerate(found):
                for s2, e2 in found[i + 1 :]:
                    assert e2 <= e1 or s2 >= e1, ((s1, e1), (s2, e2))
            lanes += 1
        # the three squares overlap in the worker: more tracks than agents
        assert lanes > 4


class TestPerfettoClock:
    """Slices are in microseconds from the run's first call, never before."""

    def test_microseconds_from_run_start(self, procpool_run):
        run_dir = procpool_run['run_dir']
        actions = provlog.load(run_dir).run.actions.values()
        origin = min(e['t'] for a in actions for e in a.events.values())
        doc = _export(run_dir, 'perfetto')
        assert min(e['ts'] for e in _slices(doc)) == 0
        for e in _slices(doc):
            assert isinstance(e['ts'], int)
            assert e['ts'] >= 0
            assert e['dur'] >= 1
        square = _tag_of(run_dir, 'square')
        action = next(a for a in actions if a.tag == square)
        begin = action.get('execute_start')['t']
        end = action.get('execute_success')['t']
        (slice_,) = (
            e
            for e in _slices(doc)
            if e['args']['tag'] == square and e['cat'] == 'execution'
        )
        assert abs(slice_['ts'] - (begin - origin) * 1e6) <= 1
        assert abs(slice_['dur'] - (end - begin) * 1e6) <= 2
        assert doc['displayTimeUnit'] == 'ms'
        assert doc['metadata']['provlog-run'] == provlog.load(run_dir).run_id


class TestPerfettoNotEnded:
    """A side never ended is drawn to the run's end, marked not_ended."""

    def test_not_ended_to_run_end(self, procpool_run, tmp_path):
        never, half = _tags_of(procpool_run['run_dir'], 'square')[:2]

        def drop(e: dict[str, Any]) -> bool:
            # ``never`` lost every end; ``half`` only its execution's end
            if e.get('tag') == never:
                return e['e'] in _ENDS
            return e.get('tag') == half and e['e'] == 'execute_success'

        doc = _export(_copy_without(procpool_run, tmp_path, drop), 'perfetto')
        last = max(e['ts'] + e['dur'] for e in _slices(doc))
        states = {
            (e['args']['tag'], e['cat']): (
                e['args']['state'],
                e['ts'] + e['dur'] == last,
            )
            for e in _slices(doc)
            if e['args']['tag'] in {never, half}
        }
        assert states == {
            (never, 'request'): ('not_ended', True),
            (never, 'execution'): ('not_ended', True),
            (half, 'request'): ('completed', False),
            (half, 'execution'): ('not_ended', True),
        }


class TestPerfettoInstant:
    """A side that took no time still gets 1 µs, so it can be clicked."""

    def test_zero_duration_is_one_microsecond(self, procpool_run, tmp_path):
        run_dir = procpool_run['run_dir']
        tag = _tag_of(run_dir, 'invert')
        begin = provlog.load(run_dir).run.actions[tag].get('execute_start')

        def edit(e: dict[str, Any]) -> dict[str, Any]:
            if e.get('tag') == tag and e['e'] == 'execute_exception':
                return {**e, 't': begin['t']}
            return e

        doc = _export(_copy_edited(procpool_run, tmp_path, edit), 'perfetto')
        (mine,) = (
            e
            for e in _slices(doc)
            if e['args']['tag'] == tag and e['cat'] == 'execution'
        )
        assert mine['dur'] == 1


def _spans(doc: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Every span with its resource's attributes, as plain dicts."""
    out = []
    for rs in doc['resourceSpans']:
        resource = _attrs(rs['resource'])
        for ss in rs['scopeSpans']:
            out += [(span, resource) for span in ss['spans']]
    return out


def _attrs(item: dict[str, Any]) -> dict[str, Any]:
    return {
        a['key']: next(iter(a['value'].values()))
        for a in item.get('attributes', [])
    }


def _by_side(doc: dict[str, Any]) -> dict[tuple[str, int], dict[str, Any]]:
    """Span by (tag, kind); asserts each is there once."""
    found: dict[tuple[str, int], dict[str, Any]] = {}
    for span, resource in _spans(doc):
        key = (_attrs(span)['academy.action_tag'], span['kind'])
        assert key not in found
        found[key] = {**span, 'resource': resource}
    return found


def _root(actions: dict[str, Any], tag: str) -> str:
    """The top-level call above ``tag``, by the journals' parents."""
    while True:
        parent = (actions[tag].get('start') or {}).get('parent')
        if parent is None or parent not in actions:
            return tag
        tag = parent


SERVER, CLIENT = 2, 3
_HEX = re.compile(r'[0-9a-f]+')


class TestOtlpSchema:
    """Collectors accept it: the protobuf schema parses it, ids are hex."""

    def test_parses_as_export_request(self, workflow_run):
        graph = provlog.load(workflow_run['run_dir'])
        text = graph.serialize('otlp', indent=True).decode()
        message = json_format.Parse(text, ExportTraceServiceRequest())
        assert (
            sum(
                len(ss.spans)
                for rs in message.resource_spans
                for ss in rs.scope_spans
            )
            == 22
        )
        # OTLP/JSON ids are hex, which protobuf's own JSON reads as base64:
        # check them on the JSON itself
        for span, _ in _spans(orjson.loads(text)):
            assert len(span['traceId']) == 32
            assert len(span['spanId']) == 16
            assert _HEX.fullmatch(span['traceId'] + span['spanId'])
            assert int(span['endTimeUnixNano']) >= int(
                span['startTimeUnixNano']
            )

    def test_span_ids_unique_and_stable(self, procpool_run):
        graph = provlog.load(procpool_run['run_dir'])
        doc = orjson.loads(graph.serialize('otlp'))
        ids = [span['spanId'] for span, _ in _spans(doc)]
        assert len(ids) == len(set(ids)) == 22
        again = provlog.load(procpool_run['run_dir']).serialize('otlp')
        assert orjson.loads(again) == doc


class TestOtlpSpans:
    """Each request is a CLIENT span and each execution a SERVER span."""

    def test_every_side_once(self, workflow_run):
        run_dir = workflow_run['run_dir']
        requests, executions = _sides(run_dir)
        spans = _by_side(_export(run_dir, 'otlp'))
        assert {t for t, k in spans if k == CLIENT} == requests
        assert {t for t, k in spans if k == SERVER} == executions
        for (tag, _), span in spans.items():
            attrs = _attrs(span)
            assert attrs['gen_ai.operation.name'] == 'invoke_agent'
            assert attrs['provlog.run_id'] == provlog.load(run_dir).run_id
            assert attrs['academy.action_tag'] == tag


class TestOtlpParents:
    """The span tree is the call tree: request, execution, nested request."""

    def test_parent_links(self, procpool_run):
        run_dir = procpool_run['run_dir']
        actions = provlog.load(run_dir).run.actions
        spans = _by_side(_export(run_dir, 'otlp'))
        by_id = {s['spanId']: s for s in spans.values()}
        for span in spans.values():
            if 'parentSpanId' in span:
                above = by_id[span['parentSpanId']]
                assert above['traceId'] == span['traceId']
        across = 0
        for tag, action in actions.items():
            server, client = spans[tag, SERVER], spans[tag, CLIENT]
            assert server['parentSpanId'] == client['spanId']
            parent = action.get('start').get('parent')
            if parent is None:
                assert 'parentSpanId' not in client
                continue
            above = spans[parent, SERVER]
            assert client['parentSpanId'] == above['spanId']
            assert client['traceId'] == above['traceId']
            instance = 'service.instance.id'
            across += (
                client['resource'][instance] != above['resource'][instance]
            )
        assert across == 0  # a nested request runs in its parent's process
        assert (
            sum(
                s['resource']['service.instance.id']
                != spans[t, CLIENT]['resource']['service.instance.id']
                for (t, k), s in spans.items()
                if k == SERVER
            )
            == 11
        )  # every execution ran in another process than its caller

    def test_one_trace_per_top_level_call(self, procpool_run):
        run_dir = procpool_run['run_dir']
        actions = provlog.load(run_dir).run.actions
        spans = _by_side(_export(run_dir, 'otlp'))
        tops = {
            t for t, a in actions.items() if a.get('start')['parent'] is None
        }
        assert {s['traceId'] for s in spans.values()} == {
            t.replace('-', '') for t in tops
        }
        for (tag, _), span in spans.items():
            assert span['traceId'] == _root(actions, tag).replace('-', '')

    def test_missing_parent_starts_own_trace(self, procpool_run, tmp_path):
        top = _tag_of(procpool_run['run_dir'], 'run_pipeline')
        run_dir = _copy_without(
            procpool_run, tmp_path, lambda e: e.get('tag') == top
        )
        actions = provlog.load(run_dir).run.actions
        spans = _by_side(_export(run_dir, 'otlp'))
        orphans = [
            t for t, a in actions.items() if a.get('start')['parent'] == top
        ]
        assert len(orphans) == 6
        for tag in orphans:
            client = spans[tag, CLIENT]
            assert 'parentSpanId' not in client
            assert client['traceId'] == tag.replace('-', '')
            assert _attrs(client)['provlog.parent_missing'] == top
            assert spans[tag, SERVER]['parentSpanId'] == client['spanId']


class TestOtlpFailures:
    """A failed execution says ERROR and carries the traceback, for triage."""

    def test_error_status_and_exception_event(self, procpool_run):
        run_dir = procpool_run['run_dir']
        actions = provlog.load(run_dir).run.actions
        spans = _by_side(_export(run_dir, 'otlp'))
        failed = {
            t: a for t, a in actions.items() if a.get('execute_exception')
        }
        assert len(failed) == 3
        for tag, action in failed.items():
            error = action.get('execute_exception')['error']
            span = spans[tag, SERVER]
            assert span['status']['code'] == 2
            assert error['type'] in span['status']['message']
            (event,) = span['events']
            attrs = _attrs(event)
            assert event['name'] == 'exception'
            assert attrs['exception.type'] == error['type']
            assert attrs['exception.message'] == error['message']
            assert 'Traceback' in attrs['exception.stacktrace']
        states = Counter(
            (_attrs(s)['academy.action_state'], s['status']['code'])
            for (_, k), s in spans.items()
            if k == SERVER
        )
        assert states == {
            ('completed', 1): 6,
            ('failed', 2): 3,
            ('cancelled', 0): 2,
        }


class TestOtlpResources:
    """One resource per process, named so backends group spans by service."""

    def test_resource_per_process(self, procpool_run):
        graph = provlog.load(procpool_run['run_dir'])
        doc = _export(procpool_run['run_dir'], 'otlp')
        resources = [_attrs(rs['resource']) for rs in doc['resourceSpans']]
        assert {r['service.instance.id'] for r in resources} == set(
            graph.run.processes
        )
        for r in resources:
            process = graph.run.processes[r['service.instance.id']]
            assert r['host.name'] == process.host
            assert r['process.pid'] == str(process.pid)
        assert sorted(r['service.name'] for r in resources) == [
            'academy',
            'examples.pipeline.Coordinator',
            'examples.pipeline.WorkerA',
            'examples.pipeline.WorkerB',
        ]


class TestCli:
    """``python -m provlog export --format perfetto|otlp`` writes the file."""

    @pytest.mark.parametrize(
        ('fmt', 'key'),
        (('perfetto', 'traceEvents'), ('otlp', 'resourceSpans')),
    )
    def test_export(self, procpool_run, tmp_path, fmt, key):
        out = tmp_path / f'run.{fmt}'
        done = subprocess.run(
            [
                sys.executable,
                '-m',
                'provlog',
                'export',
                str(procpool_run['run_dir']),
                '--format',
                fmt,
                '-o',
                str(out),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert f'({fmt}, 11 actions)' in done.stderr
        assert orjson.loads(out.read_bytes())[key]
