"""The read side is a pipeline: no module imports one that imports it back.

Read statically from the source, so an import under ``if TYPE_CHECKING:``
or inside a function counts as much as one at the top of a module.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import networkx as nx

import provlog

SRC = Path(provlog.__file__).parent


def _modules(package: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of ``package``."""
    found = {}
    for path in sorted(package.rglob('*.py')):
        parts = path.relative_to(package.parent).with_suffix('').parts
        if parts[-1] == '__init__':
            parts = parts[:-1]
        found['.'.join(parts)] = path
    return found


def _targets(
    node: ast.Import | ast.ImportFrom, module: str, is_package: bool
) -> list[str]:
    """What one import statement names: modules, or names in a module."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ''
    if node.level:
        anchor = module if is_package else module.rpartition('.')[0]
        for _ in range(node.level - 1):
            anchor = anchor.rpartition('.')[0]
        base = f'{anchor}.{base}' if base else anchor
    return [f'{base}.{alias.name}' for alias in node.names]


def _owner(name: str, modules: dict[str, Path]) -> str:
    """The module ``name`` is, or is defined in; empty if not one of ours.

    ``from pkg import name`` names the submodule if there is one, else a
    name defined in ``pkg`` itself.
    """
    while name and name not in modules:
        name = name.rpartition('.')[0]
    return name


def import_graph(package: Path) -> nx.DiGraph:
    """Module -> every module of ``package`` it imports, anywhere in it."""
    modules = _modules(package)
    graph = nx.DiGraph()
    for module, path in modules.items():
        graph.add_node(module)
        is_package = path.name == '__init__.py'
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for name in _targets(node, module, is_package):
                target = _owner(name, modules)
                if target and target != module:
                    graph.add_edge(module, target)
    return graph


def import_cycles(package: Path) -> list[list[str]]:
    """Every set of modules that import each other, in a loop."""
    graph = import_graph(package)
    return sorted(
        sorted(component)
        for component in nx.strongly_connected_components(graph)
        if len(component) > 1
    )


class TestNoImportCycles:
    """A cycle, even annotation-only, means a stage reads a later one."""

    def test_provlog_has_no_import_cycle(self) -> None:
        graph = import_graph(SRC)
        assert graph.number_of_nodes() > 50, sorted(graph)
        assert ('provlog.graph', 'provlog.query.lineage') in graph.edges
        cycles = import_cycles(SRC)
        assert cycles == [], '; '.join(' <-> '.join(c) for c in cycles)

    def test_check_catches_an_annotation_only_cycle(
        self, tmp_path: Path
    ) -> None:
        package = tmp_path / 'pkg'
        (package / 'sub').mkdir(parents=True)
        files = {
            '__init__.py': '',
            'low.py': """
                from typing import TYPE_CHECKING
                if TYPE_CHECKING:
                    from pkg.high import High
            """,
            'high.py': 'from pkg import low\nclass High: ...\n',
            'sub/__init__.py': '',
            'sub/a.py': 'def f():\n    from . import b\n',
            'sub/b.py': 'from .a import f\n',
            'alone.py': 'from pkg.low import TYPE_CHECKING\n',
        }
        for name, text in files.items():
            (package / name).write_text(textwrap.dedent(text))
        assert import_cycles(package) == [
            ['pkg.high', 'pkg.low'],
            ['pkg.sub.a', 'pkg.sub.b'],
        ]


#: The read side's stages, in order; a module may import its own stage's
#: modules and those of earlier stages, never a later one.
STAGES = (
    ('provlog.vocab', 'provlog.clip', 'provlog.gcpause', 'provlog._version'),
    ('provlog.journals',),
    ('provlog.actions',),
    ('provlog.mapping',),
    (
        'provlog.formats',
        'provlog.query',
        'provlog.validate',
        'provlog.flowcept',
    ),
    ('provlog.graph',),
    ('provlog.views', 'provlog.runs', 'provlog.catalog'),
    ('provlog.cli', 'provlog.__main__'),
)


def stage_of(module: str) -> int | None:
    """The index in :data:`STAGES` of the stage ``module`` belongs to."""
    for index, prefixes in enumerate(STAGES):
        if any(
            module == prefix or module.startswith(prefix + '.')
            for prefix in prefixes
        ):
            return index
    return None


class TestStagesInOrder:
    """The package layout is the pipeline: journals, actions, mapping, uses."""

    def test_no_stage_imports_a_later_one(self) -> None:
        graph = import_graph(SRC)
        backwards = [
            f'{source} -> {target}'
            for source, target in graph.edges
            if (low := stage_of(source)) is not None
            and (high := stage_of(target)) is not None
            and high > low
        ]
        assert backwards == []

    def test_every_read_module_has_a_stage(self) -> None:
        loose = [
            module
            for module in import_graph(SRC)
            if stage_of(module) is None
            and not module.startswith('provlog.capture')
            and module not in {'provlog', 'provlog.academy', 'provlog.testing'}
        ]
        assert loose == []
