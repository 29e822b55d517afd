"""Derivations from members of results, on a real grid search.

The workflow (``tests/workflows/gridsearch.py``) passes the member
``dataset_config`` of ``prepare_gridsearch``'s result to
``generate_dataset`` and its ``grid`` inside ``train``'s settings; it runs
on the local exchange and in a spawn pool, and once with agents that run
without the config (their executions are not observed).
"""

from __future__ import annotations

import asyncio
from typing import Any

import networkx as nx
import pytest

import provlog
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
