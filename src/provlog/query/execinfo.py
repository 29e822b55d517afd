"""What the graph says one execution did: its output and its cost, as text.

``provlog why`` shows, under each action, what it logged, printed and
warned (the entities :mod:`provlog.capture.inside` captured) and where it
ran at what cost (the attributes of :mod:`provlog.capture.resources`). Both
are read back from the graph, so a run loaded from PROV-JSON or journals
reads the same.
"""

from __future__ import annotations

from typing import Any

import networkx as nx

__all__ = ['cost_text', 'execution_details', 'line_text', 'output_lines']

_ROLES = frozenset({'log', 'stdout', 'stderr', 'warning'})
_MIB = 1024 * 1024


def output_lines(g: nx.MultiDiGraph, execution: str) -> list[str]:
    """The execution's log lines, output and warnings, one line each."""
    found: list[tuple[int, str]] = []
    for u, _, d in g.in_edges(execution, data=True):
        if d['rel'] != 'wasGeneratedBy' or d.get('prov:role') not in _ROLES:
            continue
        order = u.rsplit('/', 1)[-1]
        found.append(
            (
                int(order) if order.isdigit() else 0,
                line_text(d['prov:role'], g.nodes[u]),
            ),
        )
    return [text for _, text in sorted(found)]


def execution_details(
    g: nx.MultiDiGraph, execution: str, data: dict[str, Any]
) -> dict[str, str]:
    """``output`` (lines joined) and ``cost``, where the graph has them."""
    out: dict[str, str] = {}
    lines = output_lines(g, execution)
    if lines:
        out['output'] = '\n'.join(lines)
    cost = cost_text(data)
    if cost is not None:
        out['cost'] = cost
    return out


def line_text(role: str, data: dict[str, Any]) -> str:
    """One log record, output or warning entity as one line of text."""
    if role == 'log':
        return (
            f'{data.get("provlog:level", "?")} '
            f'{data.get("provlog:logger", "?")}: '
            f'{data.get("provlog:message", "")}'
        )
    if role == 'warning':
        return (
            f'warning {data.get("provlog:warningCategory", "Warning")}: '
            f'{data.get("provlog:message", "")}'
        )
    text = str(data.get('provlog:text', '')).rstrip('\n')
    return f'{role}: ' + text.replace('\n', f'\n{role}: ')


def cost_text(data: dict[str, Any]) -> str | None:
    """``cpu 12 ms, peak 52 MiB, pid 123 on host``, or ``None``."""
    parts = []
    user, system = data.get('provlog:cpuUser'), data.get('provlog:cpuSystem')
    if isinstance(user, (int, float)) and isinstance(system, (int, float)):
        parts.append(f'cpu {(user + system) * 1000:.0f} ms')
    sync = data.get('provlog:syncThreadCpu')
    if isinstance(sync, (int, float)):
        parts.append(f'in agent_run_sync {sync * 1000:.0f} ms')
    rss = data.get('provlog:maxRss')
    if isinstance(rss, int):
        parts.append(f'peak rss {rss / _MIB:.0f} MiB')
    pid, host = data.get('provlog:pid'), data.get('provlog:host')
    if pid is not None:
        parts.append(f'pid {pid}' + (f' on {host}' if host else ''))
    return ', '.join(parts) or None
