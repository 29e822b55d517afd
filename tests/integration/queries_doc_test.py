"""The PROV-O reference in docs/queries.md holds for a real run's export.

Every term in the reference table, every IRI pattern and every example
query is checked against ``provlog export RUN --format turtle`` of the
example workflow, so the page cannot drift from the export.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import rdflib

from provlog.cli import main
from provlog.mapping.rdf import expand
from provlog.mapping.rdf import NAMESPACES

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / 'docs' / 'queries.md'
SECTION = '## Writing your own query: the terms'


def _section() -> str:
    text = DOC.read_text()
    start = text.index(SECTION)
    end = text.find('\n## ', start + len(SECTION))
    return text[start:] if end < 0 else text[start:end]


def _first_cells(header: str) -> list[str]:
    """The backquoted first cells of the table whose header row starts so."""
    lines = _section().splitlines()
    start = lines.index(header)
    cells = []
    for line in lines[start + 2 :]:
        if not line.startswith('|'):
            break
        cell = line.split('|')[1].strip()
        assert cell.startswith('`'), line
        assert cell.endswith('`'), line
        cells.append(cell[1:-1])
    return cells


def _turtle(run_dir: Path, tmp_path: Path) -> rdflib.Graph:
    """What ``provlog export RUN --format turtle`` writes, parsed."""
    out = tmp_path / 'run.ttl'
    assert main(['export', str(run_dir), '-f', 'turtle', '-o', str(out)]) == 0
    return rdflib.Graph().parse(out, format='turtle')


def _iris(graph: rdflib.Graph) -> set[str]:
    return {
        str(term)
        for triple in graph
        for term in triple
        if isinstance(term, rdflib.URIRef)
    }


@pytest.fixture(scope='module')
def exported(
    procpool_run: dict[str, object], tmp_path_factory: pytest.TempPathFactory
) -> rdflib.Graph:
    """The Turtle export of the example workflow run in a spawn pool."""
    run_dir = procpool_run['run_dir']
    assert isinstance(run_dir, Path)
    return _turtle(run_dir, tmp_path_factory.mktemp('turtle'))


class TestQueriesReference:
    """Users write queries from this page, not from reading the Turtle."""

    def test_every_term_occurs_in_the_export(self, exported):
        terms = _first_cells('| term | on | meaning |')
        assert len(terms) > 40
        used = _iris(exported)
        missing = [t for t in terms if expand(t) not in used]
        assert missing == []

    def test_every_iri_pattern_names_nodes(self, exported):
        patterns = _first_cells('| IRI | names |')
        assert 'uuid:<action tag>' in patterns
        iris = _iris(exported)
        for pattern in patterns:
            prefix, _, local = pattern.partition(':')
            assert prefix in NAMESPACES, pattern
            parts = re.split(r'<[^>]+>', local)
            regex = '[^/]+'.join(re.escape(p) for p in parts)
            found = re.compile(re.escape(NAMESPACES[prefix]) + regex)
            assert any(found.fullmatch(iri) for iri in iris), pattern

    def test_pattern_check_catches_a_wrong_pattern(self, exported):
        # the check above fails for an IRI shape the export does not have
        found = re.compile(re.escape(NAMESPACES['plid']) + '[^/]+/input')
        assert not any(found.fullmatch(iri) for iri in _iris(exported))
        assert expand('prov:startTime') not in _iris(exported)

    @pytest.mark.parametrize('engine', ('oxigraph', 'rdflib'))
    def test_example_queries_answer(self, procpool_run, capsys, engine):
        queries = re.findall(r'```sparql\n(.*?)```', _section(), re.S)
        assert len(queries) == 2
        for query in queries:
            code = main(
                [
                    'query',
                    str(procpool_run['run_dir']),
                    query,
                    '-f',
                    'csv',
                    '--engine',
                    engine,
                ]
            )
            assert code == 0
            rows = capsys.readouterr().out.splitlines()
            assert len(rows) >= 3, query  # a header and two answers
