"""The views' costs: trace exports beside PROV-JSON, the report, ``watch``.

Each export starts from the same merged run and a fresh ``RunGraph``, so
PROV-JSON pays for building its PROV graph and the trace formats for
building their timeline: the same work a user's ``provlog export`` does
after the merge. Prints one JSON object.

Usage: ``python benchmarks/bench_views.py exports|report|watch N``; each
part runs in its own process so its peak RSS is its own.
"""

from __future__ import annotations

import gc
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_watch import measure as measure_watch
from provlog.actions.merge import merge_run
from provlog.graph import RunGraph
from synthetic import make_run

FORMATS = ('provjson', 'perfetto', 'otlp')


def _export(run: Any, fmt: str, repeat: int = 3) -> tuple[float, int]:
    times = []
    size = 0
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        size = len(RunGraph(run).serialize(fmt))
        times.append(time.perf_counter() - t0)
    return statistics.median(times), size


def exports(n: int) -> dict[str, Any]:
    """Seconds per action and bytes of each format at ``n`` actions."""
    with tempfile.TemporaryDirectory() as tmp:
        run = merge_run(make_run(Path(tmp), n))
    out: dict[str, Any] = {'actions': len(run.actions)}
    for fmt in FORMATS:
        seconds, size = _export(run, fmt)
        out[fmt] = {'s': seconds, 'bytes': size}
    return out


def report(n: int) -> dict[str, Any]:
    """Seconds to write the report of an ``n``-action run, and its size.

    The time is what ``provlog report`` costs after reading the journals:
    the merge is timed apart.
    """
    from provlog.views.report import render_report

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = make_run(Path(tmp), n)
        t0 = time.perf_counter()
        run = merge_run(run_dir)
        merge = time.perf_counter() - t0
        t0 = time.perf_counter()
        data = render_report(RunGraph(run))
        took = time.perf_counter() - t0
        out = Path(tmp) / 'report.html'
        out.write_bytes(data)
    return {
        'actions': len(run.actions),
        'merge_s': merge,
        'report_s': took,
        'bytes': len(data),
    }


def main() -> None:
    part, n = sys.argv[1], int(sys.argv[2])
    parts = {
        'exports': exports,
        'report': report,
        'watch': lambda n: measure_watch(n, 1000),
    }
    out = dict(parts[part](n))
    out['peak_rss_bytes'] = (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    )
    sys.stdout.write(orjson.dumps(out).decode() + '\n')


if __name__ == '__main__':
    main()
