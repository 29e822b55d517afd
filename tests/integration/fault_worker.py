"""A small local-exchange workflow run in a child process by fault tests.

``python -m tests.integration.fault_worker OUT N FSIZE_LIMIT`` prints the
wall time of N action round trips as JSON. With a limit, the process may
not grow any file past FSIZE_LIMIT bytes (as on a full disk).
"""

from __future__ import annotations

import asyncio
import resource
import signal
import sys
import time

import orjson
from academy.agent import action
from academy.agent import Agent
from academy.exchange import LocalExchangeFactory
from academy.manager import Manager

from provlog.academy import ProvenanceLogging


class Echo(Agent):
    @action
    async def echo(self, x: int) -> int:
        return x


async def main(out: str, n: int) -> dict[str, float | str]:
    config = ProvenanceLogging(out, flush_interval=0.02)
    async with await Manager.from_exchange_factory(
        LocalExchangeFactory(),
        log_config=config,
    ) as manager:
        echo = await manager.launch(Echo)
        for i in range(50):
            await echo.echo(i)
        t0 = time.perf_counter()
        for i in range(n):
            assert await echo.echo(i) == i
        elapsed = time.perf_counter() - t0
    return {'elapsed': elapsed, 'run_dir': str(config.run_dir)}


if __name__ == '__main__':
    out_dir, count, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    if limit:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG, not killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    result = asyncio.run(main(out_dir, count))
    sys.stdout.write(orjson.dumps(result).decode() + '\n')
