"""Derivations from members of results, on a real grid search.

The workflow (``tests/workflows/gridsearch.py``) passes the member
``dataset_config`` of ``prepare_gridsearch``'s result to
``generate_dataset`` and its ``grid`` inside ``train``'s settings; it runs
on the local exchange and in a spawn pool, and once with agents that run
without the config (their executions are not observed).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import networkx as nx
import orjson
import pytest

import provlog
from provlog.cli import main
from provlog.mapping.rdf import expand
from provlog.mapping.rdf import PROV
from provlog.query.lineage import lineage_edges_nx
from provlog.query.lineage import lineage_edges_sparql
from provlog.query.lineage import NOT_OBSERVED
from tests.workflows.gridsearch import DATASET_CONFIG
from tests.workflows.gridsearch import GRID
from tests.workflows.gridsearch import run_gridsearch

INFERRED = {'rel': 'wasDerivedFrom', 'provlog:inferredBy': 'content-hash'}


@pytest.fixture(scope='module', params=('local', 'procpool'))
def grid_run(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The grid search, captured on the local exchange and in a spawn pool."""
    tmp = tmp_path_factory.mktemp(f'grid-{request.param}')
    return asyncio.run(run_gridsearch(tmp / 'prov-runs', request.param))


@pytest.fixture(scope='module')
def unobserved_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The grid search whose agents' processes wrote no journal."""
    tmp = tmp_path_factory.mktemp('grid-unobserved')
    return asyncio.run(
        run_gridsearch(tmp / 'prov-runs', 'procpool', observe_agents=False)
    )


def _targets(g: nx.MultiDiGraph, node: str, rel: str) -> list[str]:
    return [v for _, v, d in g.out_edges(node, data=True) if d['rel'] == rel]


def _calls(g: nx.MultiDiGraph, name: str) -> list[tuple[str, str]]:
    """``(caller's label, execution)`` of each call of ``name``, in order."""
    found = []
    for node, data in g.nodes(data=True):
        if data.get('provlog:actionName') != name or node.startswith('plid:'):
            continue
        (request,) = _targets(g, node, 'wasInformedBy')
        (caller,) = _targets(g, request, 'wasAssociatedWith')
        found.append(
            (
                g.nodes[request]['prov:startTime'],
                g.nodes[caller]['prov:label'],
                node,
            )
        )
    return [(label, node) for _, label, node in sorted(found)]


def _inputs(g: nx.MultiDiGraph, execution: str) -> dict[str, str]:
    return {
        d['prov:role']: v
        for _, v, d in g.out_edges(execution, data=True)
        if d['rel'] == 'used'
    }


def _result(g: nx.MultiDiGraph, execution: str) -> str:
    (result,) = (
        u
        for u, _, d in g.in_edges(execution, data=True)
        if d['rel'] == 'wasGeneratedBy'
    )
    return str(result)


def _member(g: nx.MultiDiGraph, collection: str, key: str) -> str:
    (member,) = (
        v
        for v in _targets(g, collection, 'hadMember')
        if g.nodes[v]['provlog:memberKey'] == key
    )
    return member


class _Grid:
    """The nodes of one grid search run the tests look at."""

    def __init__(self, g: nx.MultiDiGraph) -> None:
        ((_, search),) = _calls(g, 'prepare_gridsearch')
        self.search = search
        self.search_result = _result(g, search)
        self.config = _member(g, self.search_result, 'dataset_config')
        self.grid = _member(g, self.search_result, 'grid')
        datasets = _calls(g, 'generate_dataset')
        client = [n for label, n in datasets if label.startswith('client')]
        self.first_dataset, self.dataset = client
        self.by_sweep = [n for label, n in datasets if label == 'sweep']
        ((_, train),) = _calls(g, 'train')
        self.train = train
        self.train_result = _result(g, train)


class TestDerivedFromResultMember:
    """An input equal to a part of a received result comes from that part."""

    def test_argument_derived_from_member(self, grid_run):
        g = provlog.load(grid_run['run_dir']).nx
        grid = _Grid(g)
        assert g.nodes[grid.config]['provlog:sha256'] == provlog.hash_value(
            DATASET_CONFIG
        )
        arg = _inputs(g, grid.dataset)['arg0']
        assert _targets(g, arg, 'wasDerivedFrom') == [grid.config]
        assert g[arg][grid.config]['wasDerivedFrom'] == INFERRED

    def test_member_of_argument_derived_from_member(self, grid_run):
        g = provlog.load(grid_run['run_dir']).nx
        grid = _Grid(g)
        inputs = _inputs(g, grid.train)
        settings = inputs['settings']
        assert _targets(g, settings, 'wasDerivedFrom') == []
        rates = _member(g, settings, 'learning_rates')
        assert g.nodes[rates]['provlog:sha256'] == provlog.hash_value(GRID)
        assert _targets(g, rates, 'wasDerivedFrom') == [grid.grid]
        assert g[rates][grid.grid]['wasDerivedFrom'] == INFERRED
        # the whole-result rule still holds: the latest equal data set
        assert _targets(g, inputs['arg0'], 'wasDerivedFrom') == [
            _result(g, grid.dataset)
        ]


class TestCallerReceivedBefore:
    """Equal content is no derivation unless the caller had received it."""

    def test_not_before_receipt_nor_by_another_caller(self, grid_run):
        g = provlog.load(grid_run['run_dir']).nx
        grid = _Grid(g)
        assert len(grid.by_sweep) == 1
        for execution in (grid.first_dataset, *grid.by_sweep):
            arg = _inputs(g, execution)['arg0']
            assert (
                g.nodes[arg]['provlog:sha256']
                == (g.nodes[grid.config]['provlog:sha256'])
            )
            assert _targets(g, arg, 'wasDerivedFrom') == []


class TestMaskedSecrets:
    """Secrets all hash as the mask: equal hashes say nothing about them."""

    def test_secret_not_derived_from_a_secret_member(self, grid_run):
        g = provlog.load(grid_run['run_dir']).nx
        grid = _Grid(g)
        token = _member(g, grid.search_result, 'token')
        ((_, publish),) = _calls(g, 'publish')
        key = _inputs(g, publish)['api_key']
        assert (
            g.nodes[key]['provlog:sha256']
            == (g.nodes[token]['provlog:sha256'])
        )
        assert g.nodes[key]['provlog:redacted'] is True
        assert _targets(g, key, 'wasDerivedFrom') == []
        # the report it publishes is train's result, passed on whole
        report = _inputs(g, publish)['arg0']
        assert _targets(g, report, 'wasDerivedFrom') == [grid.train_result]


class TestMemberLineage:
    """`@lineage` and `why` lead from such an input to the result's action."""

    def test_sparql_walk_on_both_engines(self, grid_run):
        graph = provlog.load(grid_run['run_dir'])
        grid = _Grid(graph.nx)
        target = grid.train_result
        edges = lineage_edges_nx(graph.nx, target)
        arg = _inputs(graph.nx, grid.dataset)['arg0']
        for edge in (
            (arg, 'wasDerivedFrom', grid.config),
            (grid.search_result, 'hadMember', grid.config),
            (grid.search_result, 'wasGeneratedBy', grid.search),
        ):
            s, rel, o = edge
            assert (expand(s), rel, expand(o), None) in edges
        assert lineage_edges_sparql(graph.store, target) == edges
        assert (
            lineage_edges_sparql(
                graph.to_rdflib('rdflib'), target, engine='rdflib'
            )
            == edges
        )
        for engine in ('oxigraph', 'rdflib'):
            rows = graph.sparql(
                '@lineage',
                bindings={'target': expand(target)},
                engine=engine,
            ).rows
            found = {
                (r['s']['value'], r['p']['value'], r['o']['value'])
                for r in rows
            }
            assert (
                expand(arg),
                PROV + 'wasDerivedFrom',
                expand(grid.config),
            ) in found
            assert (
                expand(grid.search_result),
                PROV + 'wasGeneratedBy',
                expand(grid.search),
            ) in found

    @pytest.mark.parametrize('engine', ('oxigraph', 'rdflib'))
    def test_derived_from_value_follows_members(self, grid_run, engine):
        graph = provlog.load(grid_run['run_dir'])
        grid = _Grid(graph.nx)

        def actions(target: str) -> set[str]:
            return set(
                graph.sparql(
                    '@derived-from-value',
                    bindings={'target': expand(target)},
                    engine=engine,
                ).column('action')
            )

        everything = {
            'prepare_gridsearch',
            'generate_dataset',
            'train',
            'publish',
        }
        assert actions(grid.search_result) == everything
        assert actions(grid.config) == everything
        # the grid reached train's settings; its sibling dataset_config,
        # not the grid, went to generate_dataset
        assert actions(grid.grid) == {'prepare_gridsearch', 'train', 'publish'}

    def test_why_tree(self, grid_run):
        graph = provlog.load(grid_run['run_dir'])
        grid = _Grid(graph.nx)
        tree = graph.why(grid.dataset.removeprefix('uuid:')).to_json()
        assert (
            tree
            == graph.why(
                grid.dataset.removeprefix('uuid:'), engine='rdflib'
            ).to_json()
        )
        (generated,) = tree['children']
        (used,) = generated['node']['children']
        assert used['relation'] == 'used arg0'
        (derived,) = used['node']['children']
        assert derived['relation'] == 'derived from'
        member = derived['node']
        assert member['label'] == 'prepare_gridsearch result[dataset_config]'
        (member_of,) = member['children']
        assert member_of['relation'] == 'member of'
        assert member_of['node']['id'] == expand(grid.search_result)
        (by,) = member_of['node']['children']
        assert by['relation'] == 'generated by'
        assert by['node']['name'] == 'prepare_gridsearch'
        assert by['node']['agent'] == 'planner'
        assert by['node']['executionState'] == 'completed'
        assert 'note' not in by['node']

    def test_why_cli_text(self, grid_run, capsys, monkeypatch):
        monkeypatch.setenv('COLUMNS', '400')
        graph = provlog.load(grid_run['run_dir'])
        grid = _Grid(graph.nx)
        tag = grid.train.removeprefix('uuid:')
        assert main(['why', str(grid_run['run_dir']), tag]) == 0
        out = capsys.readouterr().out
        assert 'derived from prepare_gridsearch result[dataset_config]' in out
        assert 'member of prepare_gridsearch result = ' in out
        assert 'generated by prepare_gridsearch on planner' in out
        assert 'member train settings[learning_rates]' in out
        assert 'derived from prepare_gridsearch result[grid]' in out


class TestExecutionNotObserved:
    """`why` says an execution was not observed instead of `? → ?`."""

    def test_text_and_json(self, unobserved_run, capsys, monkeypatch):
        monkeypatch.setenv('COLUMNS', '400')
        run_dir = unobserved_run['run_dir']
        graph = provlog.load(run_dir)
        assert len(list(Path(run_dir).glob('*.jsonl'))) == 1
        assert graph.stats()['executions_not_observed'] == 6  # client's calls
        tag = _Grid(graph.nx).dataset.removeprefix('uuid:')
        assert main(['why', str(run_dir), tag, '--json']) == 0
        tree = orjson.loads(capsys.readouterr().out)
        action = tree['children'][0]['node']
        assert action['name'] == 'generate_dataset'
        assert action['state'] == 'completed'
        assert action['executionState'] == 'not_observed'
        assert action['note'] == NOT_OBSERVED
        assert 'start' not in action
        assert main(['why', str(run_dir), tag]) == 0
        out = capsys.readouterr().out
        assert f'generate_dataset on trainer  completed  ({NOT_OBSERVED})' in (
            out
        )
        assert '? \u2192 ?' not in out
        assert graph.why(tag).to_json() == tree

    def test_derivations_need_only_the_caller(self, unobserved_run):
        g = provlog.load(unobserved_run['run_dir']).nx
        grid = _Grid(g)
        assert grid.by_sweep == []  # the sweep agent wrote no journal
        arg = _inputs(g, grid.dataset)['arg0']
        assert _targets(g, arg, 'wasDerivedFrom') == [grid.config]
