"""The lineage picture: ``export --format dot|svg`` and ``why --format``."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest

import provlog
from provlog.cli import main
from provlog.formats.dot import lineage_dot
from provlog.formats.dot import lineage_nodes
from provlog.query.lineage import resolve_target

needs_graphviz = pytest.mark.skipif(
    shutil.which('dot') is None, reason='Graphviz is not installed'
)

_NODE = re.compile(r'^  n\d+ \[shape=(box|ellipse)', re.MULTILINE)


def _typed(graph: provlog.RunGraph, kind: str) -> set[str]:
    return {
        n
        for n, d in graph.nx.nodes(data=True)
        if kind in d.get('prov:type', ())
    }


def _pipeline_tag(graph: provlog.RunGraph) -> str:
    (tag,) = (
        d['provlog:actionTag']
        for _, d in graph.nx.nodes(data=True)
        if d.get('provlog:actionName') == 'run_pipeline'
        and 'provlog:ActionExecution' in d.get('prov:type', ())
    )
    return str(tag)


class TestWholeRun:
    """Every execution and value of the run is in the picture, once."""

    def test_counts(self, procpool_run):
        graph = provlog.load(procpool_run['run_dir'])
        text = graph.serialize('dot').decode()
        shapes = _NODE.findall(text)
        assert shapes.count('box') == len(
            _typed(graph, 'provlog:ActionExecution')
        )
        assert shapes.count('ellipse') == len(_typed(graph, 'provlog:Value'))

    @needs_graphviz
    def test_graphviz_reads_it(self, procpool_run, tmp_path: Path):
        out = tmp_path / 'run.svg'
        assert (
            main(
                [
                    'export',
                    str(procpool_run['run_dir']),
                    '-f',
                    'svg',
                    '-o',
                    str(out),
                ]
            )
            == 0
        )
        svg = out.read_text()
        assert svg.lstrip().startswith('<?xml')
        graph = provlog.load(procpool_run['run_dir'])
        nodes = len(_typed(graph, 'provlog:ActionExecution')) + len(
            _typed(graph, 'provlog:Value')
        )
        assert svg.count('class="node"') == nodes


class TestWhyPicture:
    """``why --format dot`` draws one result's lineage and nothing else."""

    def test_only_lineage(self, procpool_run, capsys):
        run_dir = str(procpool_run['run_dir'])
        graph = provlog.load(run_dir)
        tag = _pipeline_tag(graph)
        assert main(['why', run_dir, tag, '--format', 'dot']) == 0
        text = capsys.readouterr().out
        assert 'how was run_pipeline result produced?' in text
        # the pipeline's own calls are in it; the client's later calls not
        assert 'summarize' in text
        assert 'square' in text
        assert 'store' not in text
        assert 'validate' not in text
        # what it shows is what the why tree shows
        tree = graph.why(tag).to_json()
        names = set()
        stack = [tree]
        while stack:
            node = stack.pop()
            if node['kind'] == 'action':
                names.add(node['name'])
            stack += [c['node'] for c in node.get('children', [])]
        assert names == set(re.findall(r'label="(\w+)\\n\w+"', text))

    @pytest.mark.parametrize('depth', (0, 1, None))
    def test_same_executions_as_the_tree(self, procpool_run, capsys, depth):
        """The picture holds the executions the tree shows, at any depth."""
        run_dir = str(procpool_run['run_dir'])
        graph = provlog.load(run_dir)
        tag = _pipeline_tag(graph)
        tree = graph.why(tag, depth=depth).to_json()
        shown = set()
        stack = [tree]
        while stack:
            node = stack.pop()
            if node['kind'] == 'action':
                shown.add(node['id'].removeprefix('urn:'))
            stack += [c['node'] for c in node.get('children', [])]
        drawn = {
            n
            for n in lineage_nodes(
                graph.nx, resolve_target(graph, tag), depth=depth
            )
            if 'provlog:ActionExecution' in graph.nx.nodes[n]['prov:type']
        }
        assert drawn == shown
        args = ['why', run_dir, tag, '--format', 'dot']
        if depth is not None:
            args += ['--depth', str(depth)]
        assert main(args) == 0
        text = capsys.readouterr().out
        assert text.count('shape=box') == len(shown)


class TestTooLarge:
    """SVG of a run too large to lay out is refused at once, in one line."""

    def test_refused_before_layout(self, tmp_path: Path, capsys):
        sys.path.insert(
            0, str(Path(__file__).resolve().parents[2] / 'benchmarks')
        )
        from synthetic import make_run

        run_dir = make_run(tmp_path, 6000)
        assert main(['export', str(run_dir), '-f', 'svg']) == 2
        err = capsys.readouterr().err
        assert err.count('\n') == 1
        assert 'too many to lay out' in err
        # refused from the counts, before the PROV graph is built
        graph = provlog.load(run_dir)
        with pytest.raises(ValueError, match='too many'):
            graph.serialize('svg')
        assert graph._nx is None


class TestHostileLabels:
    """Quotes, backslashes and line breaks in values cannot break DOT."""

    @needs_graphviz
    def test_parses(self):
        g = nx.MultiDiGraph()
        nasty = 'a"b\\c\nd\r}];digraph x {' + 'y' * 500
        g.add_node(
            'v',
            kind='entity',
            **{'prov:type': ('provlog:Value',)},
            **{'prov:label': nasty, 'provlog:preview': nasty},
        )
        text = lineage_dot(g, title=nasty)
        # one statement per line: nothing from a value breaks a line
        lines = text.splitlines()
        assert all(line.startswith('  ') for line in lines[1:-1])
        done = subprocess.run(
            ['dot', '-Tcanon'],
            input=text.encode(),
            capture_output=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert b'digraph x' not in done.stdout.split(b'\n', 1)[0]
        assert len(text) < 1000


class TestNoGraphviz:
    """Without Graphviz, svg is a one-line error and exit 2, dot still works."""

    def test_error(self, procpool_run, tmp_path: Path):
        env = {'PATH': str(tmp_path), 'HOME': str(tmp_path)}
        cmd = [sys.executable, '-m', 'provlog', 'export']
        run_dir = str(procpool_run['run_dir'])
        done = subprocess.run(
            [*cmd, run_dir, '-f', 'svg'],
            capture_output=True,
            env=env,
            check=False,
            timeout=120,
        )
        assert done.returncode == 2
        assert done.stderr.decode().count('\n') == 1
        assert 'Graphviz' in done.stderr.decode()
        done = subprocess.run(
            [*cmd, run_dir, '-f', 'dot'],
            capture_output=True,
            env=env,
            check=False,
            timeout=120,
        )
        assert done.returncode == 0
        assert done.stdout.startswith(b'digraph lineage {')
