"""Every run under a folder, newest first: what ``provlog runs`` lists.

The counts of a run (actions by state, agents, processes, completeness)
are :meth:`provlog.graph.RunGraph.stats` of the merged run, so each run is
merged once and its summary cached in ``<run>/.provlog-summary.json``,
keyed by the name, size and mtime of every journal: the summary is
recomputed when a journal appears, grows or changes, and reused otherwise.
The read side only reads ``*.jsonl``, so the cache file is invisible to
every other command. A folder whose cache cannot be written (read-only)
is merged again each time.

The start of a run is its earliest journal header ``t`` and its end the
latest ``t`` of the journals' last lines (read from the end of each file);
the main script is the ``script`` (else ``argv0``) of the earliest header.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from provlog.actions.merge import journal_key
from provlog.actions.merge import JOURNAL_SUFFIX
from provlog.actions.merge import newest_first
from provlog.actions.merge import run_folders
from provlog.actions.merge import run_start
from provlog.graph import load
from provlog.graph import RunGraph
from provlog.journals.reader import JournalError
from provlog.journals.reader import show

__all__ = [
    'SUMMARY_FILE',
    'journal_key',
    'list_runs',
    'remember_summary',
    'summarize',
]

SUMMARY_FILE = '.provlog-summary.json'
_CACHE_VERSION = 1
_TAIL_BYTES = 1 << 16
_UUID_CHARS = 36
_MIN_WIDTH = 110


def list_runs(folder: Path) -> list[dict[str, Any]]:
    """One summary per run folder in ``folder``, newest first.

    Raises:
        JournalError: ``folder`` is not a folder that can be listed.
    """
    if not folder.is_dir():
        raise JournalError(f'{folder}: no such folder')
    try:
        runs = run_folders(folder)
    except OSError as exc:
        raise JournalError(f'{folder}: {exc.strerror or exc}') from None
    return [summarize(run) for run in newest_first(runs)]


def summarize(run_dir: Path) -> dict[str, Any]:
    """The summary of one run: from the cache when its journals are unchanged.

    A run that cannot be read gives a summary with ``error`` (one line)
    and ``None`` for the counts.
    """
    try:
        key = journal_key(run_dir)
    except OSError as exc:
        return _failed(run_dir, f'{run_dir}: {exc.strerror or exc}')
    cache = run_dir / SUMMARY_FILE
    cached = _read_cache(cache, key)
    if cached is not None:
        return cached
    summary = _compute(run_dir)
    _write_cache(cache, key, summary)
    return summary


def _read_cache(cache: Path, key: list[list[Any]]) -> dict[str, Any] | None:
    try:
        data = orjson.loads(cache.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    if (
        isinstance(data, dict)
        and data.get('v') == _CACHE_VERSION
        and data.get('journals') == key
        and isinstance(data.get('summary'), dict)
    ):
        summary: dict[str, Any] = data['summary']
        summary['dir'] = str(cache.parent)
        return summary
    return None


def _write_cache(
    cache: Path, key: list[list[Any]], summary: dict[str, Any]
) -> None:
    tmp = cache.with_name(f'{cache.name}.{os.getpid()}.tmp')
    data = {'v': _CACHE_VERSION, 'journals': key, 'summary': summary}
    try:
        tmp.write_bytes(orjson.dumps(data))
        tmp.replace(cache)
    except OSError:
        tmp.unlink(missing_ok=True)


def _failed(run_dir: Path, error: str) -> dict[str, Any]:
    return {
        'run': run_dir.name,
        'dir': str(run_dir),
        'start': run_start(run_dir),
        'end': None,
        'duration': None,
        'actions': None,
        'states': None,
        'agents': None,
        'processes': None,
        'hosts': None,
        'complete': None,
        'script': None,
        'error': show(error),
    }


def remember_summary(
    run_dir: Path, key: list[list[Any]], graph: RunGraph
) -> None:
    """Cache the summary of a run another command has just loaded.

    ``key`` is :func:`journal_key` taken before the run was read, so a
    journal that changed meanwhile makes the next listing merge again.
    """
    _write_cache(run_dir / SUMMARY_FILE, key, _summary(run_dir, graph))


def _compute(run_dir: Path) -> dict[str, Any]:
    try:
        graph = load(run_dir)
        return _summary(run_dir, graph)
    except (JournalError, ValueError) as exc:
        return _failed(run_dir, str(exc))
    except OSError as exc:
        where = exc.filename if exc.filename is not None else run_dir
        return _failed(run_dir, f'{where}: {exc.strerror or exc}')
    except RecursionError:
        return _failed(run_dir, f'{run_dir}: input nested too deeply')


def _summary(run_dir: Path, graph: RunGraph) -> dict[str, Any]:
    stats = graph.stats()
    headers = sorted(
        (p.header for p in graph.run.processes.values()),
        key=lambda h: h.get('t', 0.0),
    )
    start = headers[0].get('t') if headers else None
    end = _end(run_dir)
    script = next(
        (
            str(h.get('script') or h.get('argv0'))
            for h in headers
            if h.get('script') or h.get('argv0')
        ),
        None,
    )
    hosts = sorted(
        {str(p.host) for p in graph.run.processes.values() if p.host}
    )
    return {
        'run': stats['run'],
        'dir': str(run_dir),
        'start': start,
        'end': end,
        'duration': None
        if start is None or end is None
        else max(end - start, 0.0),
        'actions': stats['actions'],
        'states': stats['states'],
        'agents': stats['agents'],
        'processes': stats['processes'],
        'hosts': hosts,
        'complete': stats['complete'],
        'script': script,
        'error': None,
    }


def _end(run_dir: Path) -> float | None:
    """The latest ``t`` of the journals' last whole lines."""
    end: float | None = None
    for path in run_dir.glob(f'*{JOURNAL_SUFFIX}'):
        t = _last_time(path)
        if t is not None:
            end = t if end is None else max(end, t)
    return end


def _last_time(path: Path) -> float | None:
    try:
        with path.open('rb') as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(size - _TAIL_BYTES, 0))
            tail = fh.read()
    except OSError:
        return None
    for line in reversed(tail.splitlines()):
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        t = obj.get('t') if isinstance(obj, dict) else None
        if isinstance(t, (int, float)) and not isinstance(t, bool):
            return float(t)
    return None


def print_runs(rows: list[dict[str, Any]]) -> None:
    """The runs as a table for people (``provlog runs``)."""
    import datetime  # noqa: PLC0415

    from rich.console import Console  # noqa: PLC0415
    from rich.markup import escape  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    table = Table(box=None, pad_edge=False)
    columns = 'run,start (UTC),took,acts,ok,fail,canc,open,agents,procs'
    for name in (*columns.split(','), 'hosts', 'whole', 'script'):
        table.add_column(name, no_wrap=name != 'script')
    errors: list[str] = []
    for row in rows:
        start = row['start']
        when = (
            datetime.datetime.fromtimestamp(start, datetime.UTC).strftime(
                '%m-%d %H:%M:%S'
            )
            if isinstance(start, (int, float))
            else '?'
        )
        name = escape(_short_id(row['run']))
        if row['error'] is not None:
            table.add_row(name, when, *[''] * 9, '[red]error[/]')
            errors.append(f'{name}: [red]{escape(row["error"])}[/]')
            continue
        s = row['states']
        took = row['duration']
        table.add_row(
            name,
            when,
            '?' if took is None else f'{took:.1f} s',
            str(row['actions']),
            str(s['completed']),
            str(s['failed']),
            str(s['cancelled']),
            str(s['not_ended']),
            str(row['agents']),
            str(row['processes']),
            escape(', '.join(row['hosts'])),
            'yes' if row['complete'] else '[yellow]no[/]',
            escape(Path(row['script']).name if row['script'] else ''),
        )
    console = Console()
    console.width = max(console.width, _MIN_WIDTH)
    console.print(table)
    for line in errors:  # whole, below the table, one line each
        console.print(line, soft_wrap=True)


def _short_id(name: str) -> str:
    """A run id's first 8 characters (enough to name it: ``DIR/2230f830``)."""
    return name[:8] if len(name) == _UUID_CHARS else name
