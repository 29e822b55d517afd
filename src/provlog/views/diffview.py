"""``provlog diff`` in the terminal: the summary line, then each difference.

Every text from the journals is printed as plain text, one line each:
rich markup in a preview or an error message is shown, not interpreted,
and control characters (a newline, a terminal escape) are escaped.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text

from provlog.clip import cut
from provlog.journals.reader import show
from provlog.views.diff import DiffResult

__all__ = ['print_diff']

_PREVIEW = 60


def summary_line(result: DiffResult) -> str:
    """``N matched, N added, ...``: what the terminal shows first."""
    s = result.summary()
    return (
        f'{s["matched"]} matched, {s["added"]} added, '
        f'{s["missing"]} missing, {s["changed_args"]} changed args, '
        f'{s["changed_results"]} changed results, '
        f'{s["state_changes"]} state changes, '
        f'{s["slower"]} slower, {s["faster"]} faster'
    )


def _short(value: dict[str, Any] | None) -> str:
    if value is None:
        return '(none)'
    preview = value.get('preview')
    shown = cut('?' if preview is None else str(preview), _PREVIEW)
    digest = value.get('sha256') or '?'
    return f'{shown} ({digest[:12]})'


def _arg(name: int | str) -> str:
    """``#0`` for a position, ``scale=`` for a keyword."""
    return f'#{name}' if isinstance(name, int) else f'{name}='


def _error(err: dict[str, str] | None) -> str:
    if not err:
        return ''
    return f' ({err.get("type", "?")}: {err.get("message", "")})'


def _line(console: Console, style: str, *parts: str) -> None:
    text = Text()
    text.append(show(parts[0]), style=style)
    for part in parts[1:]:
        text.append(show(part))
    console.print(text)


def print_diff(result: DiffResult, console: Console) -> None:
    """Summary line first; then added, missing, changed and lineage."""
    a, b = result.runs
    _line(console, 'bold', summary_line(result))
    _line(console, 'dim', f'A {a["run"]}  B {b["run"]}')
    for title, entries, style in (
        ('missing in B', result.missing, 'red'),
        ('added in B', result.added, 'green'),
    ):
        for entry in entries:
            _line(console, style, f'{title:<13}', f'{entry["path"]}')
    for entry in result.changed:
        _changed(console, entry)
    for final in result.lineage:
        _final(console, final)


def _changed(console: Console, entry: dict[str, Any]) -> None:
    """The lines of one matched call that changed."""
    path = entry['path']
    for arg in entry['args']:
        _line(
            console,
            'yellow',
            'argument     ',
            f'{path} {_arg(arg["arg"])}: ',
            f'{_short(arg["a"])} -> {_short(arg["b"])}',
        )
    if entry['result']:
        r = entry['result']
        _line(
            console,
            'yellow',
            'result       ',
            f'{path}: {_short(r["a"])} -> {_short(r["b"])}',
        )
    if entry['state']:
        st = entry['state']
        _line(
            console,
            'magenta',
            'state        ',
            f'{path}: {st["a"]}{_error(st["error_a"])} -> '
            f'{st["b"]}{_error(st["error_b"])} ({st["change"]})',
        )
    if entry['timing']:
        t = entry['timing']
        _line(
            console,
            'cyan',
            f'{t["change"]:<13}',
            f'{path}: {t["a"] * 1000:.1f} ms -> {t["b"] * 1000:.1f} ms',
        )


def _final(console: Console, final: dict[str, Any]) -> None:
    """A changed final result and the changes beneath it, deepest first."""
    _line(console, 'bold', 'final result ', f'{final["path"]} changed')
    if not final['because']:
        console.print('  no changed argument or result beneath it')
    for cause in final['because']:
        what = [f'argument {_arg(n)}' for n in cause['args']]
        if cause['result']:
            what.append('result')
        _line(
            console,
            'dim',
            '  because    ',
            f'{cause["path"]}: {", ".join(what)}',
        )
