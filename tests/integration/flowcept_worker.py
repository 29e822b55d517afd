"""Child-process workflows for the live Flowcept tests.

``python -m tests.integration.flowcept_worker pipeline OUT SETTINGS``
runs the example workflow with live forwarding; ``... outage OUT SETTINGS
REDIS_PID N`` makes N calls, stops the broker (SIGTERM to REDIS_PID) half
way, and prints per-call latencies before and after.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import sys
import time

import orjson
from academy.agent import action
from academy.agent import Agent
from academy.exchange import LocalExchangeFactory
from academy.manager import Manager
from examples.pipeline import run_workflow

from provlog.academy import FlowceptForwarding
from provlog.academy import ProvenanceLogging


class Echo(Agent):
    @action
    async def echo(self, x: int) -> int:
        return x


async def outage(out: str, settings: str, redis_pid: int, n: int) -> dict:
    config = ProvenanceLogging(
        out,
        flowcept=FlowceptForwarding(settings_path=settings),
    )
    before: list[float] = []
    after: list[float] = []
    async with await Manager.from_exchange_factory(
        LocalExchangeFactory(),
        log_config=config,
    ) as manager:
        echo = await manager.launch(Echo, name='echo')
        for i in range(n):
            if i == n // 2:
                os.kill(redis_pid, signal.SIGTERM)  # the broker goes away
                await asyncio.sleep(0.5)
            t0 = time.perf_counter()
            assert await echo.echo(i) == i
            (before if i < n // 2 else after).append(time.perf_counter() - t0)
    return {
        'run_dir': str(config.run_dir),
        'before_ms': statistics.median(before) * 1e3,
        'after_ms': statistics.median(after) * 1e3,
    }


async def host(out: str, settings: str, host_workflow: str) -> dict:
    """A host application with its own Flowcept, and provlog beside it."""
    from flowcept import Flowcept
    from flowcept import FlowceptTask

    flowcept = Flowcept(
        workflow_id=host_workflow,
        start_persistence=False,
        check_safe_stops=False,
    )
    flowcept.start()
    FlowceptTask(task_id='host-before', workflow_id=host_workflow).end(
        generated={'step': 1},
    )
    config = ProvenanceLogging(
        out,
        flowcept=FlowceptForwarding(settings_path=settings),
    )
    async with await Manager.from_exchange_factory(
        LocalExchangeFactory(),
        log_config=config,
    ) as manager:
        echo = await manager.launch(Echo, name='echo')
        for i in range(20):
            assert await echo.echo(i) == i
        FlowceptTask(task_id='host-during', workflow_id=host_workflow).end(
            generated={'step': 2},
        )
    # provlog's session has stopped; the host's Flowcept must still work
    FlowceptTask(task_id='host-after', workflow_id=host_workflow).end(
        generated={'step': 3},
    )
    flowcept.stop()
    return {'run_dir': str(config.run_dir)}


if __name__ == '__main__':
    mode, out, settings = sys.argv[1:4]
    if mode == 'host':
        os.environ['FLOWCEPT_SETTINGS_PATH'] = settings
        result = asyncio.run(host(out, settings, sys.argv[4]))
    elif mode == 'pipeline':
        result = asyncio.run(
            run_workflow(
                out,
                'procpool',
                flowcept=FlowceptForwarding(settings_path=settings),
            ),
        )
        result = {k: str(v) for k, v in result.items()}
    else:
        result = asyncio.run(
            outage(out, settings, int(sys.argv[4]), int(sys.argv[5])),
        )
    sys.stdout.write(orjson.dumps(result).decode() + '\n')
