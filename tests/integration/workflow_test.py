"""The example workflow, captured for real on both exchanges."""

from __future__ import annotations

from collections import Counter
from typing import Any

import networkx as nx

import provlog
from tests.provcheck import check_provjson


def _executions(g: nx.MultiDiGraph) -> dict[str, dict[str, Any]]:
    return {
        n: d
        for n, d in g.nodes(data=True)
        if 'provlog:ActionExecution' in d.get('prov:type', ())
    }


def _targets(g: nx.MultiDiGraph, node: str, rel: str) -> list[str]:
    return [v for _, v, d in g.out_edges(node, data=True) if d['rel'] == rel]


def _label(g: nx.MultiDiGraph, node: str) -> str:
    return str(g.nodes[node]['prov:label'])


class TestWorkflowCapture:
    """Every invocation is in the graph once, with both sides and its values."""

    def test_every_action_once(self, workflow_run):
        graph = provlog.load(workflow_run['run_dir'])
        names = Counter(
            d['provlog:actionName'] for d in _executions(graph.nx).values()
        )
        assert names == Counter(
            {
                'run_pipeline': 1,
                'square': 3,
                'summarize': 1,
                'invert': 2,
                'slow_simulation': 2,
                'validate': 1,
                'store': 1,
            },
        )
        assert graph.stats()['states'] == {
            'completed': 6,
            'failed': 3,
            'cancelled': 2,
            'not_ended': 0,
        }

    def test_both_sides_times_agents_and_callers(self, workflow_run):
        g = provlog.load(workflow_run['run_dir']).nx
        agents = {v: k for k, v in workflow_run['agents'].items()}
        for node, data in _executions(g).items():
            assert data['prov:startTime'].endswith('+00:00')
            assert data['prov:endTime'] >= data['prov:startTime']
            (executor,) = _targets(g, node, 'wasAssociatedWith')
            assert executor.removeprefix('uuid:') in agents
            (request,) = _targets(g, node, 'wasInformedBy')
            req = g.nodes[request]
            assert req['prov:startTime'] <= data['prov:startTime']
            assert req['prov:endTime'] >= req['prov:startTime']
            (caller,) = _targets(g, request, 'wasAssociatedWith')
            expected_caller = (
                'coordinator'
                if _targets(g, request, 'wasInformedBy')
                else 'client'
            )
            assert _label(g, caller).startswith(expected_caller)
            expected_agent = {
                'square': 'worker-a',
                'invert': 'worker-a',
                'summarize': 'worker-b',
                'slow_simulation': 'worker-b',
                'store': 'worker-b',
                'run_pipeline': 'coordinator',
                'validate': 'coordinator',
            }[data['provlog:actionName']]
            assert agents[executor.removeprefix('uuid:')] == expected_agent
        classes = {
            d.get('provlog:agentClass')
            for _, d in g.nodes(data=True)
            if d['kind'] == 'agent'
        }
        assert {
            'examples.pipeline.WorkerA',
            'examples.pipeline.WorkerB',
            'examples.pipeline.Coordinator',
        } <= classes

    def test_executing_agent_logged_not_guessed(self, workflow_run):
        run = provlog.load(workflow_run['run_dir']).run
        for action in run.actions.values():
            execute_start = action.get('execute_start')
            assert execute_start is not None, action.name
            assert 'exec_agent' not in action.events  # known on execute_start
            assert (
                execute_start['agent']['uid']
                == action.get('start')['callee']['uid']
            )

    def test_nested_calls_point_at_parent_execution(self, workflow_run):
        g = provlog.load(workflow_run['run_dir']).nx
        parents = {}
        for node, data in _executions(g).items():
            (request,) = _targets(g, node, 'wasInformedBy')
            parent = _targets(g, request, 'wasInformedBy')
            parents.setdefault(data['provlog:actionName'], []).append(
                tuple(g.nodes[p]['provlog:actionName'] for p in parent),
            )
        assert parents['square'] == [('run_pipeline',)] * 3
        assert parents['summarize'] == [('run_pipeline',)]
        assert sorted(parents['invert']) == [('run_pipeline',), ('validate',)]
        assert sorted(parents['slow_simulation']) == [(), ('run_pipeline',)]
        assert parents['run_pipeline'] == [()]
        assert parents['validate'] == [()]

    def test_values_and_derivation(self, workflow_run):
        g = provlog.load(workflow_run['run_dir']).nx
        (pipeline,) = (
            n
            for n, d in _executions(g).items()
            if d['provlog:actionName'] == 'run_pipeline'
        )
        used = {
            d['prov:role']: v
            for _, v, d in g.out_edges(pipeline, data=True)
            if d['rel'] == 'used'
        }
        assert g.nodes[used['arg0']]['provlog:preview'] == '[1.0,2.0,3.0]'
        assert g.nodes[used['scale']]['prov:value'] == 0.5
        (result,) = (
            u
            for u, v, d in g.in_edges(pipeline, data=True)
            if d['rel'] == 'wasGeneratedBy' and d['prov:role'] == 'result'
        )
        assert g.nodes[result]['provlog:sha256'] == provlog.hash_value(
            workflow_run['result'],
        )
        # summarize's list argument: each element derived from a square result
        (summarize,) = (
            n
            for n, d in _executions(g).items()
            if d['provlog:actionName'] == 'summarize'
        )
        (values,) = _targets(g, summarize, 'used')
        members = _targets(g, values, 'hadMember')
        assert len(members) == 3
        for member in members:
            (origin,) = _targets(g, member, 'wasDerivedFrom')
            (producer,) = _targets(g, origin, 'wasGeneratedBy')
            assert g.nodes[producer]['provlog:actionName'] == 'square'

    def test_failure_carries_exception_and_traceback(self, workflow_run):
        g = provlog.load(workflow_run['run_dir']).nx
        failed = [
            d
            for d in _executions(g).values()
            if d['provlog:actionName'] == 'invert'
        ]
        assert len(failed) == 2
        for data in failed:
            assert data['provlog:state'] == 'failed'
            assert data['provlog:errorType'] == 'ZeroDivisionError'
            assert 'division by zero' in data['provlog:errorMessage']
            assert 'Traceback' in data['provlog:traceback']
            assert 'return 1 / x' in data['provlog:traceback']

    def test_cancelled_marked_cancelled(self, workflow_run):
        g = provlog.load(workflow_run['run_dir']).nx
        slow = [
            d
            for d in _executions(g).values()
            if d['provlog:actionName'] == 'slow_simulation'
        ]
        assert [d['provlog:state'] for d in slow] == ['cancelled'] * 2
        assert [d['provlog:executionState'] for d in slow] == ['cancelled'] * 2

    def test_export_is_valid_provjson(self, workflow_run):
        graph = provlog.load(workflow_run['run_dir'])
        document = check_provjson(graph.to_provjson())
        assert len(document.get_records()) == graph.nx.number_of_nodes() + (
            graph.nx.number_of_edges()
        )


def test_processes_one_journal_each(procpool_run):
    """Manager process plus three spawn workers each wrote a journal."""
    stats = provlog.load(procpool_run['run_dir']).stats()
    assert stats['processes'] == 4
    assert stats['agents'] == 3
    assert stats['processes_not_closed'] == []
    assert stats['complete'] is True
