"""``provlog watch``: a live terminal view of a run while it goes.

The state comes from :class:`provlog.views.watch.RunWatch`; this module draws
it with ``rich`` (a header, a table per agent, the latest failures, the gaps)
and runs the refresh loop until the run is over: every journal closed, none
joining for a grace period.
"""

from __future__ import annotations

import math
import time
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.console import Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from provlog.actions.gaps import Gap
from provlog.journals.reader import show
from provlog.views.watch import AgentCounts
from provlog.views.watch import RunWatch
from provlog.views.watch import WINDOW
from provlog.views.watchlines import cut
from provlog.vocab import GAP

__all__ = ['WatchError', 'gaps', 'grace', 'view', 'watch']

#: Agents, gaps and open processes shown at most (the busiest agents).
MAX_ROWS = 20
MAX_LINES = 10
MAX_OPEN = 6
_ERROR_CHARS = 160


class WatchError(Exception):
    """``provlog watch`` cannot go on; ``code`` is the exit status."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _when(t: float | None) -> str:
    if t is None:
        return 'an unknown time'
    try:
        return datetime.fromtimestamp(t).strftime('%H:%M:%S.%f')[:-3]
    except (OverflowError, OSError, ValueError):
        return repr(t)


def gaps(state: RunWatch, *, final: bool = False) -> list[Gap]:
    """What the run's record lacks so far, with ``provlog validate``'s codes.

    ``final``: the view is the last one (the run or the watch is over), so
    a journal still open is a gap, and its unfinished last line a cut.
    """
    out: list[Gap] = []
    for name, j in state.journals.items():
        where = j.label
        if j.duplicate_of is not None:
            out.append(
                Gap(
                    'journal-duplicate',
                    f'{show(name)}: the same process as '
                    f'{show(j.duplicate_of)} (one is a copy); counted once',
                )
            )
        elif j.problem is not None:
            out.append(
                Gap('journal-unread', f'{show(name)}: {show(j.problem)}')
            )
        if j.capture_gaps > len(j.gaps):
            n = j.capture_gaps - len(j.gaps)
            text = f'{n} earlier capture gaps in process {where}'
            out.append(Gap('capture-gap', text, where, n))
        for g in j.gaps:
            word = 'was interrupted' if g.kind == GAP else 'was off'
            until = '' if g.resumed is None else f' to {_when(g.resumed)}'
            out.append(
                Gap(
                    'capture-gap' if g.kind == GAP else 'capture-off',
                    f'capture {word} in process {where} from '
                    f'{_when(g.since)}{until}: {cut(g.reason, _ERROR_CHARS)}',
                    where,
                )
            )
        for code, n, noun, what in (
            ('events-dropped', j.dropped, 'event', 'dropped (writer lagged)'),
            ('events-lost', j.lost, 'event', 'lost (write failed)'),
            ('encode-error', j.encode_errors, 'event', 'not encoded'),
            ('lines-skipped', j.damaged, 'damaged line', ''),
        ):
            if n:
                words = f'{noun}{"" if n == 1 else "s"} {what}'.rstrip()
                out.append(
                    Gap(code, f'{n} {words} in process {where}', where, n)
                )
        if j.cut or (final and j.tail.pending and not j.closed):
            out.append(
                Gap(
                    'journal-cut', f'the journal of {where} ends in a cut line'
                )
            )
        if final and j.problem is None and not j.closed:
            out.append(
                Gap(
                    'process-not-closed',
                    f'process {where} did not close its journal (killed, '
                    'crashed, or still running)',
                    where,
                )
            )
    return out


def _label(uid: str, counts: AgentCounts) -> str:
    if counts.name:
        return counts.name
    return uid[:8] if uid else '(unknown agent)'


def _running(state: RunWatch) -> str:
    """Started, not ended: ``running`` until every journal is closed."""
    return 'not ended' if state.closed else 'running'


def _table(state: RunWatch) -> Table:
    table = Table(header_style='bold', box=None, pad_edge=False)
    table.add_column('agent')
    for name, style in (
        (_running(state), 'cyan'),
        ('completed', 'green'),
        ('failed', 'red'),
        ('cancelled', 'yellow'),
    ):
        table.add_column(name, justify='right', style=style)
    rows = sorted(
        state.agents.items(),
        key=lambda kv: (
            -(kv[1].running + kv[1].completed + kv[1].failed + kv[1].cancelled)
        ),
    )
    for uid, c in sorted(rows[:MAX_ROWS], key=lambda kv: _label(*kv)):
        table.add_row(
            escape(cut(_label(uid, c))),
            str(c.running),
            str(c.completed),
            str(c.failed),
            str(c.cancelled),
        )
    if len(rows) > MAX_ROWS:
        table.add_row(f'[dim]… {len(rows) - MAX_ROWS} more agents[/]')
    return table


def _header(state: RunWatch, now: float) -> str:
    journals = [j for j in state.journals.values() if j.problem is None]
    closed = sum(1 for j in journals if j.closed)
    a = state.agents.values()
    running = sum(c.running for c in a)
    waiting = sum(len(j.waiting) for j in journals)
    recent, overall = state.rates(now)
    elapsed = 0.0  # over: first to last event; going: wall clock since first
    if state.t_first is not None and state.t_last is not None:
        end = state.t_last if state.closed else max(now, state.t_last)
        elapsed = end - state.t_first
    requests = f'{waiting} request{"" if waiting == 1 else "s"} ' + (
        'never answered' if state.closed else 'waiting for an answer'
    )
    completed = sum(c.completed for c in a)
    failed = sum(c.failed for c in a)
    cancelled = sum(c.cancelled for c in a)
    run = escape(cut(state.run_id or '?'))
    lines = [
        f'[bold]run[/] {run}  [bold]elapsed[/] {elapsed:.1f} s',
        (
            f'[bold]processes[/] {len(journals) - closed} open, {closed} '
            f'closed; {requests}'
        ),
        (
            f'[bold]executions[/] [cyan]{running} {_running(state)}[/], '
            f'[green]{completed} completed[/], [red]{failed} failed[/], '
            f'[yellow]{cancelled} cancelled[/]'
        ),
        (
            f'[bold]throughput[/] {recent:.1f}/s last {WINDOW:.0f} s, '
            f'{overall:.1f}/s overall ({state.ended} ended)'
        ),
    ]
    still = [j.label for j in journals if not j.closed]
    if still:
        more = ', …' if len(still) > MAX_OPEN else ''
        shown = ', '.join(escape(cut(s)) for s in still[:MAX_OPEN])
        lines.append(f'[bold]open[/] {shown}{more}')
    return '\n'.join(lines)


def view(
    state: RunWatch, now: float, *, final: bool = False, status: str = ''
) -> Group:
    """One snapshot: header, agents, latest failures, gaps, ``status``."""
    parts: list[Text | Table | str] = [_header(state, now), _table(state)]
    if state.failures:
        parts.append('[bold red]latest failures[/]')
        for f in reversed(state.failures):
            agent = state.agents.get(f.agent)
            name = _label(f.agent, agent) if agent else _label(f.agent, _NONE)
            error = cut(f.error, _ERROR_CHARS)
            parts.append(
                f'  {_when(f.t)}  {escape(cut(name))}  '
                f'{escape(cut(f.action or "?"))}  [red]{escape(error)}[/]'
            )
    found = gaps(state, final=final)
    if found:
        parts.append(f'[bold yellow]gaps[/] ({len(found)})')
        parts.extend(
            f'  [yellow]{g.code}[/] {escape(g.message)}'
            for g in found[:MAX_LINES]
        )
        if len(found) > MAX_LINES:
            parts.append(f'  [dim]… {len(found) - MAX_LINES} more[/]')
    if status:
        parts.append(f'[dim]{escape(status)}[/]')
    return Group(*parts)


_NONE = AgentCounts(None)


def _unusable(state: RunWatch) -> str:
    path = show(state.path)
    if state.error is not None:
        return state.error
    if not state.path.is_dir():
        return f'{path}: no such run folder'
    return f'{path}: no provlog journals here'


_OVER = 'every journal is closed'


def grace(interval: float) -> float:
    """Seconds every journal must stay closed, none joining, to end."""
    return max(2 * interval, 1.0)


def _loop(
    state: RunWatch,
    console: Console,
    interval: float,
    timeout: float | None,
) -> str:
    """Refresh until the run is over or ``timeout``; the status.

    Over: every journal is closed and none appeared for :func:`grace`
    seconds, for a process may close its journal before the next starts.
    At ``timeout``, a run whose journals are all closed is over too.
    """
    began = time.monotonic()
    wait = grace(interval)
    with Live(console=console, auto_refresh=False, transient=True) as live:
        while True:
            state.refresh()
            if state.error is not None:
                raise WatchError(state.error, 2)
            if state.settled(wait):
                return _OVER
            if timeout is not None and time.monotonic() - began >= timeout:
                return (
                    _OVER if state.closed else f'gave up after {timeout:g} s'
                )
            if state.closed:
                note = (
                    f'every journal is closed; waiting {wait:g} s for '
                    'processes that may still join; Ctrl-C stops'
                )
            elif state.journals:
                note = f'watching {show(state.run_dir)}; Ctrl-C stops'
            else:
                note = f'waiting for journals in {show(state.path)}'
            live.update(view(state, time.time(), status=note), refresh=True)
            left = math.inf
            if timeout is not None:
                left = timeout - (time.monotonic() - began)
            time.sleep(max(0.0, min(interval, left)))


def watch(
    path: Path,
    *,
    once: bool = False,
    interval: float = 0.5,
    timeout: float | None = None,
    console: Console | None = None,
) -> int:
    """Show the run at ``path`` until it is over; the exit status.

    ``once`` prints one snapshot. Ctrl-C stops with the last snapshot
    (130); ``timeout`` seconds without the run ending give up (1). A
    ``console`` given should have ``emoji=False``: names are printed as
    written, and rich markup in them is escaped.

    Raises:
        WatchError: Nothing to watch (exit 2: ``--once`` without journals,
            several runs in the folder) or the watch gave up (exit 1).
    """
    for option, value in (('interval', interval), ('timeout', timeout)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise WatchError(
                f'--{option} {value}: not a number of seconds above 0', 2
            )
    # names are shown as written: no emoji codes, no highlighting; markup
    # only ours, every name and message in it escaped
    console = console or Console(highlight=False, emoji=False)
    state = RunWatch(path)
    if once:
        state.refresh()
        if not state.journals:
            raise WatchError(_unusable(state), 2)
        console.print(view(state, time.time(), final=True))
        return 0
    try:
        status = _loop(state, console, interval, timeout)
    except KeyboardInterrupt:
        final = view(state, time.time(), final=True, status='stopped (Ctrl-C)')
        console.print(final)
        return 130
    if state.journals:
        console.print(view(state, time.time(), final=True, status=status))
    if state.closed:
        return 0
    if not state.journals:
        raise WatchError(f'{status}: {_unusable(state)}', 1)
    still = sum(
        1
        for j in state.journals.values()
        if j.problem is None and not j.closed
    )
    noun = 'journal is' if still == 1 else 'journals are'
    raise WatchError(f'{status}: {still} {noun} still open', 1)
