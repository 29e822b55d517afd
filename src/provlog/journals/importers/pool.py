"""``provlog import jsonpool``: Academy ``JSONPoolLogging`` logs to runs.

``JSONPoolLogging`` writes ``<home>/logs/<config uuid>/<uuid4>.jsonlog``, one
file per process (per ``init_logging``). Each config folder becomes one run,
``OUTPUT_DIR/<config uuid>/``, with one journal per ``.jsonlog`` (its records
turned into journal lines by
:class:`provlog.journals.importers.jsonpool.Converter`). The journals' headers
say ``imported`` (from where, and what could not be carried), which
:func:`provlog.actions.gaps.find_gaps` reports, so ``stats`` and ``validate``
say the run was imported and what it lacks.

Files are streamed a line at a time (lines longer than ``max_line`` are
damage), read twice (identities first, then lines), written into a hidden
folder that is renamed into place when every file is done: an error leaves
no run behind. A damaged line is an error naming file and line unless
``lenient``, which skips and counts it; an unfinished last line (the
process was killed mid-write) is counted, never an error.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from provlog import __version__
from provlog.capture.journal import FORMAT_VERSION
from provlog.capture.values import Scrubber
from provlog.capture.values import ValuePolicy
from provlog.journals.importers.jsonpool import Converter
from provlog.journals.importers.pyrepr import Identities
from provlog.journals.reader import _lines
from provlog.journals.reader import _open
from provlog.journals.reader import _TOO_LONG
from provlog.journals.reader import JournalError
from provlog.journals.reader import show

__all__ = [
    'HOST_PLACEHOLDER',
    'MAX_LINE_BYTES',
    'Imported',
    'PoolImportError',
    'add_parser',
    'default_home',
    'find_configs',
    'import_config',
    'run_command',
]

#: The longest log line read (16 MiB); a longer one is damage.
MAX_LINE_BYTES = 16 * 1024 * 1024
#: The header's ``host``: Academy's JSON records do not carry the host.
HOST_PLACEHOLDER = 'host-not-logged'
SUFFIX = '.jsonlog'
#: What an imported run can never hold, said in every header.
LIMITS = (
    (
        "values only as their str() text (type 'unknown', str_form: true); "
        'their sha256 is of that text, not of the original values'
    ),
    (
        'no host name, resource use, software context, or what actions '
        'logged, printed or warned'
    ),
    (
        'callers, parents and executing agents inferred from record order '
        'in each process'
    ),
)


class PoolImportError(JournalError):
    """Logs that cannot be imported; the message names file and line."""


@dataclass
class Imported:
    """One imported run."""

    source: Path
    run_dir: Path
    journals: int
    actions: int
    skipped: int
    cut: int


def default_home() -> Path:
    """Academy's home: ``$ACADEMY_HOME``, else the default (or the old one).

    Academy 1.0 uses ``~/.local/share/academy``; releases up to 0.5 wrote
    JSONPool logs to ``~/local/share/academy`` (no dot).
    """
    env = os.environ.get('ACADEMY_HOME')
    if env:
        return Path(env)
    home = Path.home()
    new, old = home / '.local/share/academy', home / 'local/share/academy'
    return old if not new.exists() and old.exists() else new


def _has_logs(folder: Path) -> bool:
    return any(True for _ in folder.glob(f'*{SUFFIX}'))


def find_configs(logdir: Path) -> list[Path]:
    """The config folders under ``logdir``, by name.

    ``logdir`` may be one config folder (it holds ``.jsonlog`` files),
    the ``logs`` folder, or the Academy home (it holds ``logs``).

    Raises:
        PoolImportError: ``logdir`` is not a folder or holds no logs.
    """
    where = show(logdir)
    if not logdir.is_dir():
        what = 'no such folder' if not logdir.exists() else 'not a folder'
        raise PoolImportError(f'{where}: {what}')
    if _has_logs(logdir):
        return [logdir]
    logs = logdir / 'logs'
    base = logs if logs.is_dir() else logdir
    found = sorted(p for p in base.iterdir() if p.is_dir() and _has_logs(p))
    if not found:
        raise PoolImportError(
            f'{where}: no JSONPoolLogging logs (*{SUFFIX}) here, in its '
            'logs folder or in its config folders',
        )
    return found


@dataclass
class _Options:
    policy: ValuePolicy
    scrubber: Scrubber
    lenient: bool
    max_line: int


def _records(
    path: Path, options: _Options, stats: dict[str, int]
) -> Iterator[dict[str, Any]]:
    """The records of one file, a line at a time; damage per ``lenient``."""
    where = show(path)
    max_line = options.max_line
    with _open(path) as fh:
        for lineno, raw, complete in _lines(fh, max_line):
            problem = None
            record: object = None
            if raw is _TOO_LONG:
                problem = f'line longer than {max_line} bytes'
            else:
                try:
                    record = orjson.loads(raw)  # type: ignore[arg-type]
                except orjson.JSONDecodeError as exc:
                    problem = show(str(exc).split('\n', 1)[0])
                if problem is None and not isinstance(record, dict):
                    problem = 'not a JSON object'
            if problem is None and isinstance(record, dict):
                yield record
            elif not complete:
                stats['cut'] += 1  # the last write, unfinished
            elif options.lenient:
                stats['skipped'] += 1
            else:
                raise PoolImportError(f'{where}:{lineno}: {problem}')


def _process_id(path: Path) -> str:
    try:
        return uuid.UUID(path.stem).hex
    except ValueError:
        return uuid.uuid5(uuid.NAMESPACE_URL, path.name).hex


def _header(
    run_id: str, path: Path, first: dict[str, Any] | None, note: dict[str, Any]
) -> dict[str, Any]:
    pid = first.get('process') if first else None
    header: dict[str, Any] = {
        'e': 'journal',
        'v': FORMAT_VERSION,
        'run': run_id,
        'process': _process_id(path),
        'host': HOST_PLACEHOLDER,
        'pid': int(pid) if isinstance(pid, str) and pid.isdigit() else None,
        'python': None,
        'academy': None,
        'provlog': __version__,
        'argv0': None,
        'capture_values': True,
        'imported': note,
    }
    created = first.get('created') if first else None
    with contextlib.suppress(ValueError):
        header['t'] = float(str(created))
    return header


def _convert(
    path: Path,
    out: Path,
    run_id: str,
    known: Identities,
    options: _Options,
) -> tuple[int, int, set[str]]:
    """Write the journal of one file; return skipped, cut lines and tags."""
    stats = {'skipped': 0, 'cut': 0}
    converter = Converter(known, options.policy, options.scrubber)
    body = out.with_suffix('.body')
    first: dict[str, Any] | None = None
    last_t: float | None = None
    tags: set[str] = set()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    with os.fdopen(os.open(body, flags, 0o600), 'wb') as fh:
        for record in _records(path, options, stats):
            first = first or record
            lines = converter.feed(record)
            for line in lines:
                fh.write(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
                last_t = line.get('t', last_t)
                if 'tag' in line:
                    tags.add(line['tag'])
        for line in converter.finish():
            fh.write(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
            tags.add(line['tag'])
        if not stats['cut'] and first is not None:
            close = {'e': 'close', 't': last_t or first.get('created')}
            close['events'] = converter.counts.records
            fh.write(orjson.dumps(close, option=orjson.OPT_APPEND_NEWLINE))
    counts = converter.counts
    note = {
        'from': 'jsonpool',
        'file': path.name,
        'records': counts.records,
        'lines_skipped': stats['skipped'],
        'lines_cut': stats['cut'],
        'parents_ambiguous': counts.parents_ambiguous,
        'callers_unknown': counts.callers_unknown,
        'records_unusable': counts.unusable,
        'identities_unresolved': sorted(counts.unresolved)[:20],
        'limits': list(LIMITS),
    }
    with os.fdopen(os.open(out, flags, 0o600), 'wb') as fh:
        fh.write(
            orjson.dumps(
                _header(run_id, path, first, note),
                option=orjson.OPT_APPEND_NEWLINE,
            ),
        )
        with body.open('rb') as src:
            shutil.copyfileobj(src, fh)
    body.unlink()
    return stats['skipped'], stats['cut'], tags


def import_config(
    config_dir: Path,
    output_dir: Path,
    *,
    lenient: bool = False,
    max_line: int = MAX_LINE_BYTES,
    policy: ValuePolicy | None = None,
) -> Imported:
    """Import one config folder of ``.jsonlog`` files as one run.

    Args:
        config_dir: ``<home>/logs/<config uuid>``.
        output_dir: Where the run folder ``<config uuid>`` is made.
        lenient: Skip and count damaged lines instead of failing.
        max_line: The longest line read, in bytes.
        policy: Redaction and preview bounds (the live defaults).

    Returns:
        What was imported.

    Raises:
        PoolImportError: A file cannot be read, has a damaged line (unless
            ``lenient``), or the run folder exists already.
    """
    files = sorted(config_dir.glob(f'*{SUFFIX}'))  # a FIFO is refused
    if not files:
        raise PoolImportError(f'{show(config_dir)}: no *{SUFFIX} files')
    run_id = config_dir.name
    run_dir = output_dir / run_id
    if run_dir.exists():
        raise PoolImportError(f'{show(run_dir)}: exists already; not replaced')
    options = _Options(policy or ValuePolicy(), Scrubber(), lenient, max_line)
    known = Identities()
    for path in files:  # first pass: identities, classes, callees
        for record in _records(path, options, {'skipped': 0, 'cut': 0}):
            known.learn(record)
    output_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = output_dir / f'.{run_id}.importing-{os.getpid()}'
    partial.mkdir(mode=0o700)
    skipped = cut = 0
    tags: set[str] = set()
    try:
        for path in files:
            out = partial / f'{path.stem}.jsonl'
            s, c, t = _convert(path, out, run_id, known, options)
            skipped, cut = skipped + s, cut + c
            tags |= t
        partial.rename(run_dir)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return Imported(config_dir, run_dir, len(files), len(tags), skipped, cut)


def add_parser(sub: Any) -> None:
    """Add ``import jsonpool`` to the ``provlog`` subcommands ``sub``."""
    parser = sub.add_parser('import', help='turn other logs into runs')
    kinds = parser.add_subparsers(dest='source', required=True)
    pool = kinds.add_parser(
        'jsonpool',
        help='Academy JSONPoolLogging logs (<home>/logs/<uuid>/*.jsonlog)',
    )
    pool.add_argument(
        'logdir',
        type=Path,
        nargs='?',
        help='the Academy home, its logs folder, or one config folder '
        '(default: $ACADEMY_HOME, else ~/.local/share/academy)',
    )
    pool.add_argument(
        '-o', '--output', type=Path, required=True, help='folder of runs'
    )
    pool.add_argument(
        '--lenient',
        action='store_true',
        help='skip and count damaged lines instead of failing',
    )


def run_command(args: argparse.Namespace) -> int:
    """``provlog import jsonpool``: one line per run imported.

    Raises:
        JournalError: A log cannot be imported, or a run exists already.
        OSError: A file cannot be read or written; names the file.
    """
    logdir = args.logdir if args.logdir is not None else default_home()
    configs = find_configs(logdir)
    for config in configs:
        target = args.output / config.name
        if target.exists():
            raise PoolImportError(f'{target}: exists already')
    for config in configs:
        done = import_config(config, args.output, lenient=args.lenient)
        extra = ''
        if done.skipped or done.cut:
            extra = (
                f', {done.skipped} damaged lines skipped, {done.cut} cut lines'
            )
        print(
            f'{show(done.run_dir)}  {done.journals} journals, '
            f'{done.actions} actions{extra} (from {show(config)})'
        )
    return 0
