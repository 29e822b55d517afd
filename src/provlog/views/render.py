"""Terminal output: derivation trees, result tables, CSV (``rich``)."""

from __future__ import annotations

import csv
import io
from datetime import datetime

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from provlog.clip import cut
from provlog.query.lineage import MAX_NESTING
from provlog.query.lineage import WhyNode
from provlog.query.sparql import QueryResult
from provlog.vocab import CANCELLED
from provlog.vocab import COMPLETED
from provlog.vocab import FAILED
from provlog.vocab import NOT_ENDED

__all__ = ['print_table', 'to_csv', 'why_levels', 'why_tree']

_STATE_STYLE = {
    COMPLETED: 'green',
    FAILED: 'bold red',
    CANCELLED: 'yellow',
    NOT_ENDED: 'magenta',
}


def _clock(iso: str | None) -> str:
    if not iso:
        return '?'
    return iso.replace('Z', '+00:00')[11:23]


def _took(start: str | None, end: str | None) -> str:
    if not start or not end:
        return ''
    delta = datetime.fromisoformat(end.replace('Z', '+00:00')) - (
        datetime.fromisoformat(start.replace('Z', '+00:00'))
    )
    return f' ({delta.total_seconds() * 1000:.0f} ms)'


def _short(text: str, limit: int = 80) -> str:
    return cut(text, limit)


#: Lines of an action's own output ``why`` shows without ``--verbose``.
OUTPUT_LINES = 5


def _action_label(d: dict[str, str], *, verbose: bool = False) -> str:
    state = d.get('state', '?')
    style = _STATE_STYLE.get(state, 'white')
    text = (
        f'[bold]{escape(d.get("name", "?"))}[/] on '
        f'[cyan]{escape(d.get("agent", "?"))}[/]  [{style}]{state}[/]  '
    )
    if 'note' in d:  # no times to show (not observed): say why
        text += f'[dim]({escape(d["note"])})[/]'
    else:
        text += (
            f'{_clock(d.get("start"))} \u2192 {_clock(d.get("end"))}'
            f'{_took(d.get("start"), d.get("end"))}'
        )
    if 'errorType' in d:
        text += (
            f'\n[red]{escape(d["errorType"])}: '
            f'{escape(_short(d.get("errorMessage", "")))}[/]'
        )
    if 'result' in d:
        text += f'  \u21d2 {escape(_short(d["result"], 60))}'
    if 'cost' in d:
        text += f'\n[dim]{escape(d["cost"])}[/]'
    if 'output' in d:
        lines = d['output'].split('\n')
        shown = lines if verbose else lines[:OUTPUT_LINES]
        text += ''.join(
            f'\n[dim]\u2502[/] {escape(line if verbose else _short(line, 99))}'
            for line in shown
        )
        if len(shown) < len(lines):
            text += (
                f'\n[dim]\u2502 \u2026 {len(lines) - len(shown)} more '
                '(--verbose)[/]'
            )
    return text


def _label(
    node: WhyNode, levels: int, *, more: bool = False, verbose: bool = False
) -> str:
    d = node.details
    if node.kind == 'action':
        text = _action_label(d, verbose=verbose)
    else:
        shown = d.get('preview')
        if d.get('capped') == 'true':
            shown = '<over the size cap: type, size and hash only>'
        text = (
            f'{escape(d.get("label", node.iri))} = '
            f'[bold]{escape(_short(shown or "?"))}[/]'
            f'  [dim]{escape(d.get("type", ""))} '
            f'sha256:{d.get("sha256", "")[:12]}[/]'
        )
        if d.get('redacted') == 'true':
            text += '  [yellow](redacted)[/]'
        if 'caller' in d and not node.children:
            text += f'  [dim]sent by {escape(d["caller"])}[/]'
    if node.seen_above:
        text += '  [dim](shown above)[/]'
    if node.cut:
        text += '  [dim]\u2026 (--depth reached)[/]'
    if node.too_deep or more:  # a line of its own: it must not wrap away
        text += (
            f'\n[dim]\u2026 ({levels} levels shown; continue with '
            f'`provlog why RUN {escape(node.iri)}`)[/]'
        )
    return text


def why_tree(
    root: WhyNode, max_levels: int = MAX_NESTING, *, verbose: bool = False
) -> Tree:
    """A ``rich`` tree of a derivation, at most ``max_levels`` deep.

    A node at the last level that has more under it says how to continue
    (``provlog why RUN <its IRI>``): a terminal shows each level four
    columns further right, and drops what does not fit. Under each action:
    where it ran at what cost, and the first :data:`OUTPUT_LINES` lines of
    what it logged, printed and warned (all of them with ``verbose``).
    """
    levels = min(max_levels, MAX_NESTING)
    tree = Tree(
        _label(
            root,
            levels,
            more=levels == 0 and bool(root.children),
            verbose=verbose,
        ),
    )
    stack = [(tree, root, 0)]
    while stack:  # no recursion: any depth renders
        parent, node, level = stack.pop()
        if level >= levels:
            continue
        for relation, child in node.children:
            more = level + 1 >= levels and bool(child.children)
            label = _label(child, levels, more=more, verbose=verbose)
            branch = parent.add(f'[dim]{relation}[/] {label}')
            stack.append((branch, child, level + 1))
    return tree


def why_levels(width: int) -> int:
    """How many tree levels fit a terminal ``width`` columns wide."""
    return max(4, min(MAX_NESTING, (width - 40) // 4))


def _cell(term: dict[str, str] | None) -> str:
    return '' if term is None else term['value']


def print_table(result: QueryResult, console: Console) -> None:
    """Print SELECT rows (or an ASK answer) as a table."""
    if result.boolean is not None:
        console.print('yes' if result.boolean else 'no')
        return
    table = Table(show_lines=False, header_style='bold')
    for name in result.variables:
        table.add_column(name, overflow='fold')
    for row in result.rows:
        table.add_row(*(escape(_cell(row.get(n))) for n in result.variables))
    console.print(table)
    console.print(f'[dim]{len(result.rows)} rows[/]')


def to_csv(result: QueryResult) -> str:
    """SELECT rows as CSV with a header line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator='\n')
    if result.boolean is not None:
        writer.writerow(['boolean'])
        writer.writerow(['true' if result.boolean else 'false'])
        return out.getvalue()
    writer.writerow(result.variables)
    for row in result.rows:
        writer.writerow([_cell(row.get(n)) for n in result.variables])
    return out.getvalue()
