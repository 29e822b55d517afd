"""What users wait for: ``provlog stats``, ``validate`` and ``why`` on one run.

Each command runs as users run it, in a fresh process, on a synthetic run
of N actions (``synthetic.py``); its wall time and its peak resident set
size come from the operating system (``wait4``), not from estimates.
``why`` asks for the deepest call: the last round of the first chain,
whose lineage spans the whole chain. Each command is timed twice: cold,
the first command on the run (it merges the journals and stores the
merged form in ``<run>/.provlog-cache``), and warm, a later one (it reads
the stored form). Prints one JSON object.

Usage: ``python benchmarks/bench_commands.py N``

The run is made in a child process: on Linux a command's peak RSS
(``wait4``) counts the peak of the process that started it, so the
process that starts the commands must stay small.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from provlog.actions import stored
from provlog.actions.merge import merge_run
from synthetic import make_run

#: Rounds per chain in :func:`synthetic.make_run`.
CHAIN = 50


def deepest_call(run_dir: Path) -> str:
    """The tag of the last ``run_pipeline`` call of the first chain."""
    run = merge_run(run_dir, cache=False)
    rounds = sorted(
        (min(e['t'] for e in a.events.values()), a.tag)
        for a in run.actions.values()
        if a.name == 'run_pipeline'
    )
    return rounds[min(CHAIN, len(rounds)) - 1][1]


def timed(args: list[str]) -> dict[str, float]:
    """Run ``provlog ARGS``; its wall seconds and peak RSS in MiB."""
    exe = [sys.executable, '-m', 'provlog', *args]
    t0 = time.perf_counter()
    proc = subprocess.Popen(exe, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):  # validate says 1 for problems
        raise SystemExit(f'provlog {" ".join(args)}: exit {proc.returncode}')
    return {'s': seconds, 'peak_rss_mb': usage.ru_maxrss / 1024}


def _prepare(folder: str, n: int) -> None:
    """Write the run and print its folder and deepest call (in a child)."""
    run_dir = make_run(Path(folder), n)
    sys.stdout.write(
        orjson.dumps([str(run_dir), deepest_call(run_dir)]).decode() + '\n'
    )


def main() -> None:
    if sys.argv[1] == '--prepare':
        _prepare(sys.argv[2], int(sys.argv[3]))
        return
    n = int(sys.argv[1])
    with tempfile.TemporaryDirectory(prefix='provlog-commands-') as tmp:
        # made in a child: Linux counts the peak of the process that
        # starts a command in that command's peak (fork, then exec), so
        # this one stays small
        made = subprocess.run(
            [sys.executable, __file__, '--prepare', tmp, str(n)],
            capture_output=True,
            check=True,
        )
        run, deepest = orjson.loads(made.stdout)
        run_dir = Path(run)
        out: dict[str, Any] = {'actions': n}
        commands = {
            'stats': ['stats', run],
            'validate': ['validate', run],
            'why': ['why', run, deepest],
        }
        time.sleep(stored.SETTLED)  # a run that has finished
        for name, args in commands.items():
            shutil.rmtree(run_dir / stored.CACHE_DIR, ignore_errors=True)
            out[name] = {'cold': timed(args), 'warm': timed(args)}
    sys.stdout.write(orjson.dumps(out).decode() + '\n')


if __name__ == '__main__':
    main()
