"""Capture cost inside a real Academy workflow, one configuration per process.

``python benchmarks/bench_capture.py CONFIG EXCHANGE VARIANT N [PAYLOAD]``
runs N sequential action round trips (after a warm-up) and prints the
per-call latencies' median and the throughput in microseconds as JSON
(``make bench`` calls :func:`measure` in a fresh process per run instead).
CONFIG is one of:

A  no log config; Academy's loggers at WARNING (what users have today)
B  the loggers provlog raises set to DEBUG, with a handler that does nothing
   (the cost of the log records themselves: the floor)
C  Academy's own JSONPoolLogging
D  provlog capture, values captured (the default)
E  D with live Flowcept forwarding, Flowcept in offline mode (JSONL file)
F  D with live Flowcept forwarding to a Redis broker on 127.0.0.1
   (port in PROVLOG_BENCH_REDIS_PORT; publish-only, as a producer does)

EXCHANGE is ``local`` (LocalExchangeFactory, agents in the event loop) or
``http`` (a spawn process pool over Academy's HTTP exchange on 127.0.0.1).
VARIANT is ``trivial`` (client -> agent), ``nested`` (the action calls a
second agent) or ``chatty`` (the action logs three records at INFO and
prints one line; stdout goes to /dev/null in every configuration).
PAYLOAD is what each call passes and gets back (:data:`PAYLOADS`): ``int``
(the call's index, the default), ``dict`` (a small dict: a list of 3 floats
and a string) or ``floats100k`` (a list of 12,800 floats, 100 KiB of
doubles; provlog's snapshot keeps its first 10,000 elements).

Each run reports the per-call median and the throughput: the whole loop's
time, plus the drain of what provlog still holds for the journal at its
end, divided by the calls (what a workflow of N calls pays; the median
leaves out the writer thread's work), and ``cpu_us``, the process's CPU
time over the same span per call (steadier than wall time on a busy
machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import orjson
from academy.agent import action
from academy.agent import Agent
from academy.exchange import LocalExchangeFactory
from academy.exchange.cloud import spawn_http_exchange
from academy.handle import Handle
from academy.logging.configs.base import LogConfig
from academy.logging.configs.jsonpool import JSONPoolLogging
from academy.manager import Manager

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from examples.pipeline import open_port

from provlog.academy import FlowceptForwarding
from provlog.academy import ProvenanceLogging
from provlog.capture.session import flush_all
from provlog.capture.taps import install_handler
from provlog.testing import flowcept_settings

#: Warm-up calls per run, discarded: enough to reach a steady per-call time
#: (an HTTP call costs 15x a local one, so fewer reach the same state)
WARMUP = {'local': 200, 'http': 50}

#: The payloads a call passes and gets back, by name.
PAYLOADS = ('int', 'dict', 'floats100k')

_FLOATS = 100 * 1024 // 8


def payload(name: str, i: int) -> Any:
    """The argument of call ``i``: a fresh value, as a workflow would pass."""
    if name == 'int':
        return i
    if name == 'dict':
        return {'xyz': [i * 0.5, 1.25, -3.0], 'label': f'sample-{i}'}
    if name == 'floats100k':
        return [i + k * 0.001 for k in range(_FLOATS)]
    raise SystemExit(f'unknown payload {name}')


class Leaf(Agent):
    @action
    async def echo(self, x: Any) -> Any:
        return x


class Middle(Agent):
    def __init__(self, leaf: Handle[Leaf] | None) -> None:
        super().__init__()
        self.leaf = leaf

    @action
    async def echo(self, x: Any) -> Any:
        return x

    @action
    async def nested(self, x: Any) -> Any:
        assert self.leaf is not None
        return await self.leaf.echo(x)

    @action
    async def chatty(self, x: Any) -> Any:
        _log.info('chatty call %s', type(x).__name__)
        _log.info('working on it', extra={'step': 1})
        print('chatty call')
        _log.info('done with %s', type(x).__name__)
        return x


_log = logging.getLogger('bench.chatty')


class _Noop(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        pass


class FloorLogging(LogConfig):
    """Config B: the records provlog enables, handled by a no-op handler.

    Academy's lifecycle records, and records of any logger at INFO (the
    level provlog captures inside actions), are created and dispatched.
    """

    def init_logging(self) -> Any:
        remove = install_handler(_Noop())
        root = logging.getLogger()
        saved = root.level
        root.setLevel(logging.INFO)

        def undo() -> None:
            root.setLevel(saved)
            remove()

        return undo


def _config(name: str, out: Path) -> LogConfig | None:
    if name == 'A':
        return None
    if name == 'B':
        return FloorLogging()
    if name == 'C':
        os.environ['ACADEMY_HOME'] = str(out / 'academy-home')
        return JSONPoolLogging()
    if name == 'D':
        return ProvenanceLogging(out / 'prov-runs')
    if name in {'E', 'F'}:
        settings = _flowcept_settings(out, name)
        return ProvenanceLogging(
            out / 'prov-runs',
            flowcept=FlowceptForwarding(settings_path=str(settings)),
        )
    raise SystemExit(f'unknown config {name}')


def _flowcept_settings(out: Path, name: str) -> Path:
    port = None
    if name == 'F':
        port = int(os.environ['PROVLOG_BENCH_REDIS_PORT'])
    return flowcept_settings(out / f'flowcept-{name}.yaml', redis_port=port)


@contextlib.contextmanager
def _exchange(kind: str) -> Iterator[tuple[Any, ProcessPoolExecutor | None]]:
    if kind == 'local':
        yield LocalExchangeFactory(), None
        return
    context = multiprocessing.get_context('spawn')
    with spawn_http_exchange('127.0.0.1', open_port()) as factory:
        with ProcessPoolExecutor(2, mp_context=context) as pool:
            yield factory, pool


async def _run(
    config: str, kind: str, variant: str, n: int, what: str
) -> tuple[list[float], float, float]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        _exchange(kind) as (factory, pool),
    ):
        log_config = _config(config, Path(tmp))
        async with await Manager.from_exchange_factory(
            factory,
            executors=pool,
            log_config=log_config,
        ) as manager:
            leaf = await manager.launch(Leaf) if variant == 'nested' else None
            middle = await manager.launch(Middle, args=(leaf,))
            call = getattr(middle, variant if variant != 'trivial' else 'echo')
            # made before the loop: building them is not the call's cost
            args = [payload(what, i) for i in range(min(n, 50))]
            for i in range(WARMUP[kind]):
                await call(args[i % len(args)])
            flush_all(60)
            latencies = []
            cpu = time.process_time()
            began = time.perf_counter_ns()
            for i in range(n):
                x = args[i % len(args)]
                t0 = time.perf_counter_ns()
                await call(x)
                latencies.append((time.perf_counter_ns() - t0) / 1000)
            flush_all(60)  # what the writer still holds is part of the cost
            loop_us = (time.perf_counter_ns() - began) / 1000 / n
            cpu_us = (time.process_time() - cpu) * 1e6 / n
    return latencies, loop_us, cpu_us


def measure(
    config: str, kind: str, variant: str, n: int, what: str = 'int'
) -> dict[str, Any]:
    """One run: per-call latency figures of ``n`` round trips (us)."""
    logging.getLogger().setLevel(logging.WARNING)
    with open(os.devnull, 'w') as devnull:
        stdout, sys.stdout = sys.stdout, devnull
        try:
            latencies, loop_us, cpu_us = asyncio.run(
                _run(config, kind, variant, n, what)
            )
        finally:
            sys.stdout = stdout
    return {
        'config': config,
        'exchange': kind,
        'variant': variant,
        'payload': what,
        'median_us': statistics.median(latencies),
        'mean_us': statistics.fmean(latencies),
        'loop_us': loop_us,
        'cpu_us': cpu_us,
    }


def main() -> None:
    config, kind, variant, n = sys.argv[1:5]
    what = sys.argv[5] if len(sys.argv) > 5 else 'int'
    figures = measure(config, kind, variant, int(n), what)
    sys.stdout.write(orjson.dumps(figures).decode() + '\n')


if __name__ == '__main__':
    main()
