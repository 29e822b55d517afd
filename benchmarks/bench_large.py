"""``make bench-large``: merge and PROV-JSON export at 1,000,000 actions.

Goal: both together in under 3 minutes within 8 GiB. Writes
docs/benchmarks-large.md.
"""

from __future__ import annotations

import datetime
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import provlog
from provlog.provjson import write_provjson
from synthetic import make_run


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run_dir = make_run(Path(tmp), n)
        generate = time.perf_counter() - t0
        t0 = time.perf_counter()
        graph = provlog.load(run_dir)
        merge = time.perf_counter() - t0
    t0 = time.perf_counter()
    data = write_provjson(graph.nx)
    export = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    total = merge + export
    text = (
        '# Benchmark at 1,000,000 actions\n\n'
        f'Measured by `make bench-large` on {datetime.date.today().isoformat()} '
        f'(synthetic run as in [benchmarks.md](benchmarks.md)).\n\n'
        f'| actions | generate s | merge s | PROV-JSON s | merge + export s | '
        f'PROV-JSON MB | peak RSS GiB |\n|---|---|---|---|---|---|---|\n'
        f'| {len(graph.run.actions)} | {generate:.0f} | {merge:.0f} | {export:.0f} | '
        f'{total:.0f} | {len(data) / 1e6:.0f} | {peak / 2**30:.1f} |\n\n'
        f'Goal: merge and PROV-JSON export together under 180 s within 8 GiB: '
        f'{"met" if total < 180 and peak < 8 * 2**30 else "**not met**"}.\n'
    )
    out = (
        Path(__file__).resolve().parent.parent / 'docs' / 'benchmarks-large.md'
    )
    out.write_text(text)
    print(text)


if __name__ == '__main__':
    main()
