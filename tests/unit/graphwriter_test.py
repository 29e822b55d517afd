"""The bulk graph writer against NetworkX's public API."""

from __future__ import annotations

import networkx as nx
import pytest

from provlog.mapping.graphwriter import GraphWriter


def _public_copy(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    copy = nx.MultiDiGraph(**graph.graph)
    copy.add_nodes_from(graph.nodes(data=True))
    copy.add_edges_from(graph.edges(keys=True, data=True))
    return copy


class TestGraphWriter:
    """The writer's graph is the one add_node/add_edge would have made."""

    def test_same_as_public_api(self) -> None:
        graph = nx.MultiDiGraph(run_id='r')
        writer = GraphWriter(graph)
        writer.node('a', {'kind': 'activity'})
        writer.node('e', {'kind': 'entity'})
        writer.edge('a', 'e', 'used', {'rel': 'used', 'prov:role': 'x'})
        writer.edge('e', 'a', 'wasGeneratedBy', {'rel': 'wasGeneratedBy'})
        writer.edge('a', 'e', 'other', {'rel': 'other'})  # parallel edge
        writer.edge('a', 'late', 'wasInformedBy', {'rel': 'wasInformedBy'})
        writer.node('late', {'kind': 'activity'})  # an end added first
        writer.node('a', {'prov:label': 'A'})  # an update
        writer.close()
        expected = nx.MultiDiGraph(run_id='r')
        expected.add_node('a', kind='activity', **{'prov:label': 'A'})
        expected.add_node('e', kind='entity')
        expected.add_edge('a', 'e', 'used', rel='used', **{'prov:role': 'x'})
        expected.add_edge('e', 'a', 'wasGeneratedBy', rel='wasGeneratedBy')
        expected.add_edge('a', 'e', 'other', rel='other')
        expected.add_edge('a', 'late', 'wasInformedBy', rel='wasInformedBy')
        expected.nodes['late']['kind'] = 'activity'
        assert nx.utils.graphs_equal(graph, expected)
        assert nx.utils.graphs_equal(graph, _public_copy(graph))
        # the predecessor side, which graphs_equal does not compare
        assert {n: dict(p) for n, p in graph.pred.items()} == {
            n: dict(p) for n, p in expected.pred.items()
        }
        assert sorted(graph.in_edges('e', keys=True)) == [
            ('a', 'e', 'other'),
            ('a', 'e', 'used'),
        ]
        assert graph.number_of_edges() == 4

    def test_views_see_later_writes(self) -> None:
        graph = nx.MultiDiGraph()
        writer = GraphWriter(graph)
        writer.node('a', {})
        assert len(graph.nodes) == 1
        writer.edge('a', 'b', 'k', {})
        writer.close()
        assert list(graph.edges) == [('a', 'b', 'k')]
        assert list(graph.successors('a')) == ['b']

    def test_rejects_other_graph_types(self) -> None:
        with pytest.raises(TypeError):
            GraphWriter(nx.DiGraph())  # type: ignore[arg-type]
