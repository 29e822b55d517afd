"""Questions across runs at scale: a synthetic catalogue of many runs.

A few distinct synthetic runs (``synthetic.py``) are written, then copied
under new run ids (the id lives in each journal's header) until the folder
holds ``RUNS`` runs of ``ACTIONS`` actions. Measured, each part in its own
process:

- ``build``: the first ``provlog query DIR`` loads every run into the
  store (seconds, and the store's size on disk);
- ``runs``: ``provlog runs DIR`` once the store exists (the command as a
  user runs it, interpreter start included);
- ``incremental``: ``provlog query DIR`` after one new run was added (it
  loads that run only);
- ``users``: ``provlog query DIR @runs-using-value`` for a value only the
  new run used, and for one that every run used (rows counted).

Usage: ``python benchmarks/bench_catalogue.py all RUNS ACTIONS`` prints one
JSON object; ``python benchmarks/bench_catalogue.py PART DIR`` runs one part
on a catalogue ``all`` left (``--keep DIR``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from synthetic import make_run  # noqa: E402

#: Distinct runs written; the others are copies under new ids.
DISTINCT = 4
#: A value every synthetic run uses (its preview).
COMMON_INPUT = '3.0'


def build_folder(folder: Path, runs: int, actions: int) -> dict[str, Any]:
    """Write ``runs`` runs of about ``actions`` actions into ``folder``."""
    t0 = time.perf_counter()
    bases = [make_run(folder, actions) for _ in range(min(DISTINCT, runs))]
    for n in range(runs - len(bases)):
        _copy(bases[n % len(bases)], folder)
    return {'generate_s': time.perf_counter() - t0}


def _copy(base: Path, folder: Path) -> Path:
    """``base`` under a new run id: only the journal headers name it."""
    run = str(uuid.uuid4())
    out = folder / run
    out.mkdir()
    for journal in base.glob('*.jsonl'):
        data = journal.read_bytes()
        header, rest = data.split(b'\n', 1)
        header = orjson.loads(header)
        header['run'] = run
        (out / journal.name).write_bytes(orjson.dumps(header) + b'\n' + rest)
    return out


def _provlog(*args: str) -> tuple[float, bytes]:
    """Seconds for ``provlog ARGS`` as a user runs it, and its stdout."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, '-m', 'provlog', *args],
        capture_output=True,
        check=False,
        env={**os.environ, 'COLUMNS': '200'},
    )
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f'provlog {args} failed:\n{proc.stderr[-2000:]!r}')
    return took, proc.stdout


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob('*') if p.is_file())


def part_build(folder: Path) -> dict[str, Any]:
    """The first query: every run loaded into a new store."""
    from provlog.catalog import open_catalogue
    from provlog.catalog import STORE_DIR

    t0 = time.perf_counter()
    with open_catalogue(folder) as catalogue:
        update = catalogue.update()
    took = time.perf_counter() - t0
    return {
        'build_s': took,
        'loaded': len(update.loaded),
        'failed': len(update.failed),
        'store_bytes': _size(folder / STORE_DIR),
        'journal_bytes': sum(
            p.stat().st_size for p in folder.glob('*/*.jsonl')
        ),
    }


def part_runs(folder: Path) -> dict[str, Any]:
    """``provlog runs DIR`` (the table) with the store and summaries there."""
    times = []
    for _ in range(3):
        took, out = _provlog('runs', str(folder))
        times.append(took)
    return {'runs_s': statistics.median(times), 'rows': out.count(b'\n') - 1}


def part_incremental(folder: Path, actions: int) -> dict[str, Any]:
    """One new run, with an input no other run has; the next query."""
    with tempfile.TemporaryDirectory(dir=folder.parent) as tmp:
        new = make_run(Path(tmp), actions)
        target = folder / new.name
        shutil.move(new, target)
    # a value only this run used: one input's hash, replaced everywhere
    old = _hash_of(target, COMMON_INPUT)
    unique = hashlib.sha256(target.name.encode()).hexdigest()
    for journal in target.glob('*.jsonl'):
        journal.write_bytes(journal.read_bytes().replace(old, unique.encode()))
    took, _ = _provlog('query', str(folder), 'ASK { ?s ?p ?o }')
    again, _ = _provlog('query', str(folder), 'ASK { ?s ?p ?o }')
    return {'incremental_s': took, 'unchanged_s': again, 'unique': unique}


def _hash_of(run_dir: Path, preview: str) -> bytes:
    """The content hash of the value shown as ``preview`` in ``run_dir``."""
    pattern = re.compile(
        rb'"sha256":"([0-9a-f]{64})"[^{}]*"preview":"'
        + re.escape(preview.encode())
        + rb'"',
    )
    for journal in sorted(run_dir.glob('*.jsonl')):
        found = pattern.search(journal.read_bytes())
        if found:
            return found.group(1)
    raise SystemExit(f'no value {preview} in {run_dir}')


def part_users(folder: Path, sha256: str) -> dict[str, Any]:
    """Who used a value, across every run."""
    times = []
    rows = 0
    for _ in range(3):
        took, out = _provlog(
            'query',
            str(folder),
            '@runs-using-value',
            '--bind',
            f'sha256="{sha256}"',
            '-f',
            'json',
        )
        times.append(took)
        rows = len(orjson.loads(out)['results']['bindings'])
    return {'users_s': statistics.median(times), 'rows': rows}


def run_all(runs: int, actions: int, keep: Path | None) -> dict[str, Any]:
    """Every part, each in its own process, on a new catalogue."""
    base = Path(tempfile.mkdtemp(prefix='provlog-catalogue-'))
    folder = keep if keep is not None else base / 'runs'
    folder.mkdir(parents=True)
    try:
        out: dict[str, Any] = {'runs': runs, 'actions': actions}
        out.update(build_folder(folder, runs, actions))
        out['build'] = _child('build', folder)
        out['list'] = _child('runs', folder)
        inc = out['incremental'] = _child('incremental', folder, actions)
        out['users_one'] = _child('users', folder, inc['unique'])
        common = _hash_of(next(folder.iterdir()), COMMON_INPUT).decode()
        out['users_all'] = _child('users', folder, common)
        return out
    finally:
        shutil.rmtree(base, ignore_errors=True)
        if keep is None:
            shutil.rmtree(folder, ignore_errors=True)


def _child(part: str, folder: Path, *extra: object) -> dict[str, Any]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, part, str(folder), *map(str, extra)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f'{part} failed:\n{proc.stderr[-3000:]}')
    print(f'  catalogue {part}: {time.perf_counter() - t0:.0f} s', flush=True)
    return dict(orjson.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('part')
    parser.add_argument('args', nargs='*')
    parser.add_argument('--keep', type=Path, help='build the catalogue here')
    args = parser.parse_args()
    if args.part == 'all':
        runs, actions = (int(a) for a in args.args)
        out = run_all(runs, actions, args.keep)
    else:
        folder = Path(args.args[0])
        parts = {
            'build': lambda: part_build(folder),
            'runs': lambda: part_runs(folder),
            'incremental': lambda: part_incremental(folder, int(args.args[1])),
            'users': lambda: part_users(folder, args.args[1]),
        }
        out = parts[args.part]()
        out['peak_rss_bytes'] = (
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        )
    sys.stdout.write(orjson.dumps(out).decode() + '\n')


if __name__ == '__main__':
    main()
