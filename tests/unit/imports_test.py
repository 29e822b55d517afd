"""The capture half loads none of the read side, and costs little to import.

A process that captures imports ``provlog.academy``; it must not pay for
``networkx``, the RDF stack or the PROV model (issue 14). Three checks:
what a fresh interpreter has loaded after the import, how long the import
takes on top of Academy's, and, statically, what every module of the
capture package imports.
"""

from __future__ import annotations

import ast
import json
import os
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import provlog

SRC = Path(provlog.__file__).parent
CAPTURE = SRC / 'capture'

#: Nothing of these may be loaded by ``import provlog.academy``.
READ_SIDE = (
    'networkx',
    'rdflib',
    'pyoxigraph',
    'prov',
    'jsonschema',
    'rich',
    'provlog.graph',
    'provlog.actions.merge',
    'provlog.mapping.model',
    'provlog.journals.reader',
    'provlog.flowcept',
    'flowcept',
)

#: Import cost allowed on top of Academy's, milliseconds (median).
BUDGET_MS = 20.0
RUNS = 5

#: Modules of the capture package that may import Academy itself.
ACADEMY_MODULES = frozenset({'provlog.capture.config'})


def _child(code: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        [sys.executable, '-c', textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _loaded(modules: str) -> list[str]:
    """Which of :data:`READ_SIDE` ``import {modules}`` loads, fresh.

    Also checks that the import leaves the root logger as it was.
    """
    out = _child(
        f"""
        import json, logging, sys
        root = logging.getLogger()
        before = (root.level, list(root.handlers))
        import {modules}
        assert (root.level, list(root.handlers)) == before, 'root logger'
        print(json.dumps(sorted(sys.modules)))
        """,
    )
    loaded = json.loads(out)
    return [
        name
        for name in READ_SIDE
        if any(m == name or m.startswith(f'{name}.') for m in loaded)
    ]


def test_capture_api_loads_no_read_side():
    assert _loaded('provlog.academy') == []


def test_package_init_is_lazy():
    assert _loaded('provlog') == []
    out = _child(
        """
        import sys
        import provlog
        names = dir(provlog)
        assert set(provlog.__all__) <= set(names), names
        handler = provlog.ProvenanceHandler
        assert 'provlog.graph' not in sys.modules
        assert provlog.hash_value(1) == provlog.hash_value(1)
        assert 'networkx' not in sys.modules
        load = provlog.load
        assert 'provlog.graph' in sys.modules
        assert load.__module__ == 'provlog.graph'
        assert provlog.RunGraph.__name__ == 'RunGraph'
        assert issubclass(provlog.JournalError, Exception)
        try:
            provlog.nothing_here
        except AttributeError as exc:
            assert 'nothing_here' in str(exc)
        else:
            raise AssertionError('no AttributeError')
        print(handler.__module__)
        """,
    )
    assert out.strip() == 'provlog.capture.handler'


_TIMED = """
import time
t0 = time.perf_counter()
import academy.agent
import academy.logging.configs.base
t1 = time.perf_counter()
import provlog.academy
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""


def test_capture_api_import_cost(tmp_path):
    """``import provlog.academy`` costs at most 20 ms on top of Academy.

    Timed inside each fresh interpreter (not its start-up), with bytecode
    cached as in any installation: a private cache, filled by one run that
    is not counted, whatever ``PYTHONDONTWRITEBYTECODE`` says here.
    """
    env = {
        k: v for k, v in os.environ.items() if k != 'PYTHONDONTWRITEBYTECODE'
    }
    env['PYTHONPYCACHEPREFIX'] = str(tmp_path / 'pycache')
    _child(_TIMED, env)
    extra = []
    for _ in range(RUNS):
        _, ours = map(float, _child(_TIMED, env).split())
        extra.append(ours * 1000)
    median = statistics.median(extra)
    assert median <= BUDGET_MS, (
        f'import provlog.academy took {median:.1f} ms on top of Academy '
        f'(runs: {", ".join(f"{x:.1f}" for x in sorted(extra))})'
    )


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix('').parts
    if parts[-1] == '__init__':
        parts = parts[:-1]
    return '.'.join(parts)


def _in_function(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return True
    return False


def _imports(
    path: Path, root: Path = SRC.parent
) -> list[tuple[str, tuple[str, ...], int, bool]]:
    """``(module, names, line, inside a function)`` of every import."""
    tree = ast.parse(path.read_text(), str(path))
    parents = {
        child: node
        for node in ast.walk(tree)
        for child in ast.iter_child_nodes(node)
    }
    package = _module_name(path, root)
    if path.name != '__init__.py':
        package = package.rpartition('.')[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [
                (a.name, (), node.lineno, _in_function(node, parents))
                for a in node.names
            ]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ''
            if node.level:  # relative: resolve against this package
                base = package.rsplit('.', node.level - 1)[0]
                module = f'{base}.{module}' if module else base
            names = tuple(a.name for a in node.names)
            found.append(
                (module, names, node.lineno, _in_function(node, parents))
            )
    return found


def _allowed(
    module: str, names: tuple[str, ...], owner: str, in_function: bool
) -> bool:
    top = module.partition('.')[0]
    if top in sys.stdlib_module_names or top == 'orjson':
        return True
    if module == 'provlog.vocab' or module.startswith('provlog.capture'):
        return True
    if module == 'provlog':  # the package itself: lazy, only the version
        return names == ('__version__',)
    if top == 'academy':
        return owner in ACADEMY_MODULES
    if top == 'flowcept':
        return in_function  # only when forwarding is asked for
    return False


def _bad_imports(paths: list[Path], root: Path = SRC.parent) -> list[str]:
    """Every import of ``paths`` the capture half may not make."""
    bad = []
    for path in paths:
        owner = _module_name(path, root)
        for module, names, line, in_function in _imports(path, root):
            if not _allowed(module, names, owner, in_function):
                shown = f'from {module} import {", ".join(names)}'
                bad.append(
                    f'{path.relative_to(root)}:{line}: '
                    f'{shown if names else f"import {module}"}'
                )
    return bad


def _capture_modules() -> list[Path]:
    return sorted(CAPTURE.rglob('*.py'))


def test_capture_package_imports_only_stdlib_orjson_academy():
    paths = _capture_modules()
    assert len(paths) > 10, paths
    assert _bad_imports(paths) == []


def test_vocab_and_public_capture_modules_import_no_read_side():
    vocab = SRC / 'vocab.py'
    assert _bad_imports([vocab]) == []
    assert all(
        module.partition('.')[0] in sys.stdlib_module_names
        for module, *_ in _imports(vocab)
    )
    assert _bad_imports([SRC / 'academy.py']) == []


@pytest.mark.parametrize(
    ('source', 'caught'),
    (
        ('import networkx', True),
        ('from provlog.actions.merge import Action', True),
        ('from provlog import load', True),
        ('from .. import graph', True),
        ('import academy.agent', True),  # records.py reads records only
        ('import flowcept', True),
        ('def f():\n    import flowcept', False),
        ('from .values import freeze', False),
    ),
)
def test_static_check_catches(tmp_path, source, caught):
    """The check itself, on a copy of a capture module with one import more."""
    path = tmp_path / 'provlog' / 'capture' / 'records.py'
    path.parent.mkdir(parents=True)
    original = (CAPTURE / 'records.py').read_text()
    path.write_text(f'{original}\n{source}\n')
    bad = _bad_imports([path], tmp_path)
    line = original.count('\n') + 2
    assert len(bad) == caught, bad
    assert all(
        b.startswith(f'provlog/capture/records.py:{line}: ') for b in bad
    )
