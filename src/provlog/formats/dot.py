"""The lineage picture as Graphviz DOT, and as SVG when Graphviz is here.

Values are ellipses, executions boxes coloured by state, and arrows follow
the data: a value points to the execution that used it, an execution to
the value it generated; a dashed arrow joins an execution to the calls it
made, a dotted one a member to the collection holding it. Log records,
outputs and agents are left out: the picture answers *where did this come
from*, and ``provlog report`` shows the rest.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import deque
from collections.abc import Iterable
from collections.abc import Iterator
from typing import Any
from typing import ClassVar
from typing import TYPE_CHECKING

from provlog.clip import cut
from provlog.vocab import CANCELLED
from provlog.vocab import COMPLETED
from provlog.vocab import FAILED
from provlog.vocab import NOT_ENDED

if TYPE_CHECKING:
    import networkx as nx

    from provlog.mapping.runview import RunView

__all__ = ['Dot', 'Svg', 'dot_to_svg', 'lineage_dot', 'lineage_nodes']

#: The most nodes Graphviz is asked to lay out; beyond it, layout takes
#: minutes to hours, so ``svg`` refuses and says what to do instead.
MAX_SVG_NODES = 5000
#: Seconds Graphviz may take before the SVG is abandoned.
SVG_TIMEOUT = 120.0

_VALUE = 'provlog:Value'
_EXECUTION = 'provlog:ActionExecution'
_FILL = {
    COMPLETED: '#d9f2d9',
    FAILED: '#f8d0d0',
    CANCELLED: '#fbe8c8',
    NOT_ENDED: '#e0e0e0',
}
_FOLLOW = frozenset({'wasGeneratedBy', 'used', 'wasDerivedFrom', 'hadMember'})


def _types(data: dict[str, Any]) -> tuple[str, ...]:
    types = data.get('prov:type', ())
    return types if isinstance(types, tuple) else (str(types),)


def _quote(*lines: object, limit: int = 48) -> str:
    """``lines`` as one DOT string, joined by DOT's own line breaks.

    Each line is bounded and loses its control characters: labels are
    values from the run, and nothing in them may end the string.
    """
    out = []
    for line in lines:
        s = cut(str(line), limit)
        s = ''.join(c if c.isprintable() else ' ' for c in s)
        out.append(s.replace('\\', '\\\\').replace('"', '\\"'))
    return '"' + '\\n'.join(out) + '"'


def _called(g: nx.MultiDiGraph, execution: str) -> Iterator[str]:
    """Executions that ``execution`` called (through their requests)."""
    for request, _, d in g.in_edges(execution, data=True):
        if d['rel'] != 'wasInformedBy':
            continue
        for child, _, e in g.in_edges(request, data=True):
            if e['rel'] == 'wasInformedBy':
                yield child


def lineage_nodes(
    g: nx.MultiDiGraph,
    target: str | None = None,
    *,
    depth: int | None = None,
) -> set[str]:
    """Values and executions in the lineage of ``target`` (all if None).

    ``depth`` counts action levels as ``provlog why --depth`` does: an
    execution ``depth`` levels down is shown but not followed further.
    """
    if target is None:
        return {
            n
            for n, d in g.nodes(data=True)
            if _VALUE in _types(d) or _EXECUTION in _types(d)
        }
    # a 0-1 breadth-first walk: each node at the fewest action levels
    levels = {target: 0}
    queue = deque([target])
    while queue:
        node = queue.popleft()
        level = levels[node]
        execution = _EXECUTION in _types(g.nodes[node])
        if execution and depth is not None and level >= depth:
            continue
        ahead = [
            v
            for _, v, d in g.out_edges(node, data=True)
            if d['rel'] in _FOLLOW
        ]
        if execution:
            ahead += _called(g, node)
        step = 1 if execution else 0
        for v in ahead:
            if v not in levels or levels[v] > level + step:
                levels[v] = level + step
                if step:
                    queue.append(v)
                else:
                    queue.appendleft(v)
    return {
        n
        for n in levels
        if _VALUE in _types(g.nodes[n]) or _EXECUTION in _types(g.nodes[n])
    }


def _node_line(name: int, data: dict[str, Any]) -> str:
    if _EXECUTION in _types(data):
        state = str(data.get('provlog:state', NOT_ENDED))
        label = _quote(data.get('prov:label', '?'), state)
        fill = _FILL.get(state, _FILL[NOT_ENDED])
        return (
            f'  n{name} [shape=box, style="rounded,filled", '
            f'fillcolor="{fill}", label={label}];'
        )
    label = _quote(data.get('prov:label', ''), data.get('provlog:preview', ''))
    return f'  n{name} [shape=ellipse, label={label}];'


#: How each followed relation is drawn: arrows go cause -> effect.
_STYLE = {
    'used': '',
    'wasGeneratedBy': '',
    'wasDerivedFrom': ' [style=dashed, label="derived"]',
    'hadMember': ' [style=dotted, arrowhead=none]',
}
_CALLED = ' [style=dashed, color="#7a7a7a", label="called"]'


def _edges(
    g: nx.MultiDiGraph, nodes: set[str]
) -> Iterable[tuple[str, str, str]]:
    for u in nodes:
        for _, v, d in g.out_edges(u, data=True):
            style = _STYLE.get(d['rel'])
            if style is not None and v in nodes:
                yield v, u, style
        if _EXECUTION in _types(g.nodes[u]):
            for child in _called(g, u):
                if child in nodes:
                    yield u, child, _CALLED


def lineage_dot(
    g: nx.MultiDiGraph,
    target: str | None = None,
    *,
    title: str = '',
    depth: int | None = None,
    max_nodes: int | None = None,
) -> str:
    """The lineage picture of ``target`` (the whole run if None) in DOT.

    Raises:
        ValueError: More than ``max_nodes`` nodes to draw.
    """
    nodes = lineage_nodes(g, target, depth=depth)
    if max_nodes is not None and len(nodes) > max_nodes:
        raise _too_many(len(nodes))
    order = sorted(nodes)
    ids = {n: i for i, n in enumerate(order)}
    lines = [
        'digraph lineage {',
        '  rankdir=LR;',
        f'  label={_quote(title, limit=120)}; labelloc=t;',
        '  node [fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=8];',
    ]
    lines += [_node_line(ids[n], g.nodes[n]) for n in order]
    lines += sorted(
        f'  n{ids[a]} -> n{ids[b]}{style};'
        for a, b, style in set(_edges(g, nodes))
    )
    lines.append('}')
    return '\n'.join(lines) + '\n'


def _too_many(nodes: int) -> ValueError:
    return ValueError(
        f'{nodes} nodes is too many to lay out (at most {MAX_SVG_NODES}); '
        "use the 'dot' format, or the picture of one result's lineage"
    )


def dot_to_svg(dot: str) -> bytes:
    """Lay ``dot`` out with Graphviz.

    Raises:
        ValueError: Graphviz is not installed, took over
            :data:`SVG_TIMEOUT` seconds, or failed.
    """
    exe = shutil.which('dot')
    if exe is None:
        raise ValueError(
            'svg needs Graphviz: apt-get install graphviz (or use dot)'
        )
    try:
        done = subprocess.run(  # noqa: S603 - a fixed program, no shell
            [exe, '-Tsvg'],
            input=dot.encode(),
            capture_output=True,
            timeout=SVG_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ValueError(
            f"Graphviz took over {SVG_TIMEOUT:.0f} s; use the 'dot' format"
        ) from None
    if done.returncode != 0:
        first = done.stderr.decode(errors='replace').strip().splitlines()
        raise ValueError(
            f'Graphviz failed: {first[0] if first else done.returncode}'
        )
    return done.stdout


class Dot:
    """The whole run's lineage as Graphviz DOT text."""

    name: ClassVar[str] = 'dot'
    suffix: ClassVar[str] = 'dot'
    summary: ClassVar[str] = 'lineage picture, Graphviz DOT'

    def serialize(self, graph: RunView, *, indent: bool = False) -> bytes:
        """DOT text of every value and execution of the run."""
        del indent
        return lineage_dot(graph.nx, title=f'run {graph.run_id}').encode()


class Svg:
    """The whole run's lineage as SVG (needs Graphviz's ``dot``)."""

    name: ClassVar[str] = 'svg'
    suffix: ClassVar[str] = 'svg'
    summary: ClassVar[str] = 'lineage picture, SVG (needs Graphviz)'

    def serialize(self, graph: RunView, *, indent: bool = False) -> bytes:
        """The DOT picture laid out by Graphviz.

        Refused before the PROV graph is built when the run has more
        executions than Graphviz can lay out in bounded time.
        """
        del indent
        executions = sum(
            1 for a in graph.run.actions.values() if a.has_execution_side
        )
        if executions > MAX_SVG_NODES:
            raise _too_many(executions)
        dot = lineage_dot(
            graph.nx, title=f'run {graph.run_id}', max_nodes=MAX_SVG_NODES
        )
        return dot_to_svg(dot)
