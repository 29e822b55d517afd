"""``provlog watch`` at scale: one refresh after the journals gained lines.

Goal: on a run of 1,000,000 actions whose journals gained 1,000 lines, one
refresh takes under 100 ms. The synthetic run is written by a child process
(its generator holds every line in memory), so the peak RSS reported is the
watch's own. The last ``gained`` lines of the journals (spread over all of
them, each journal's ``close`` among them) are held back before the first
refresh and appended afterwards: real events, in the real format.

Usage: ``python benchmarks/bench_watch.py [N_ACTIONS] [GAINED]``
"""

from __future__ import annotations

import io
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

from provlog.views.watch import RunWatch
from provlog.views.watchview import view

HERE = Path(__file__).resolve().parent
GOAL = 0.1  # seconds for one refresh at 1,000,000 actions


def _hold_back(path: Path, n: int) -> bytes:
    """Cut the last ``n`` lines off ``path``; return them."""
    size = path.stat().st_size
    with path.open('r+b') as fh:
        back = 0
        tail = b''
        while tail.count(b'\n') <= n and back < size:
            back = min(size, back + 1024 * 1024)
            fh.seek(size - back)
            tail = fh.read(back)
        lines = tail.splitlines(keepends=True)[-n:]
        held = b''.join(lines)
        fh.truncate(size - len(held))
    return held


def measure(
    n_actions: int = 1_000_000, gained: int = 1000
) -> dict[str, float]:
    """Build a synthetic run, read it whole, then time one refresh."""
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        made = subprocess.run(
            [sys.executable, str(HERE / 'synthetic.py'), tmp, str(n_actions)],
            capture_output=True,
            text=True,
            check=True,
        )
        generate = time.perf_counter() - t0
        run_dir = Path(made.stdout.strip().splitlines()[-1])
        journals = sorted(run_dir.glob('*.jsonl'))
        share, extra = divmod(gained, len(journals))
        held = {
            p: _hold_back(p, share + (i < extra))
            for i, p in enumerate(journals)
        }
        total = sum(p.stat().st_size for p in journals)
        watch = RunWatch(run_dir)
        t0 = time.perf_counter()
        first = watch.refresh()
        initial = time.perf_counter() - t0
        assert first == total
        assert not watch.closed
        for path, data in held.items():
            with path.open('ab') as fh:
                fh.write(data)
        t0 = time.perf_counter()
        got = watch.refresh()
        refresh = time.perf_counter() - t0
        console = Console(file=io.StringIO(), width=100)
        t0 = time.perf_counter()
        console.print(view(watch, time.time()))
        render = time.perf_counter() - t0
        assert got == sum(len(d) for d in held.values())
        assert watch.closed
    return {
        'actions': n_actions,
        'journals': len(journals),
        'journal_mb': (total + got) / 1e6,
        'generate_s': generate,
        'initial_s': initial,
        'gained_lines': sum(d.count(b'\n') for d in held.values()),
        'gained_bytes': got,
        'refresh_s': refresh,
        'render_s': render,
        'ended': watch.ended,
        'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        / 1024,
    }


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    gained = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    r = measure(n, gained)
    print(
        f'{r["actions"]} actions in {r["journals"]} journals '
        f'({r["journal_mb"]:.0f} MB, generated in {r["generate_s"]:.0f} s)\n'
        f'initial refresh (whole run): {r["initial_s"]:.2f} s, '
        f'{r["ended"]} executions ended\n'
        f'one refresh after {r["gained_lines"]} lines '
        f'({r["gained_bytes"] / 1e3:.0f} kB) joined: '
        f'{r["refresh_s"] * 1000:.1f} ms (goal {GOAL * 1000:.0f} ms: '
        f'{"met" if r["refresh_s"] < GOAL else "NOT met"}); '
        f'drawing the view: {r["render_s"] * 1000:.1f} ms\n'
        f'peak RSS of the watching process: {r["peak_rss_mb"]:.0f} MiB',
    )


if __name__ == '__main__':
    main()
