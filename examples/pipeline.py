"""A small multi-agent Academy workflow, captured with provlog.

A client asks a Coordinator agent to run a pipeline. The Coordinator fans
out to WorkerA (squares, in parallel) and WorkerB (summary), catches one
failing call and cancels a slow one; the agents log, print and warn as they
work. The client then makes a call that fails through the Coordinator, one
it cancels itself, and one with a secret keyword argument. Agents run in a ``spawn`` process pool over Academy's
local HTTP exchange (``mode='procpool'``), or in one process on the local
exchange (``mode='local'``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import socket
import statistics
import warnings
from collections.abc import AsyncIterator
from collections.abc import Iterator
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from academy.agent import action
from academy.agent import Agent
from academy.exchange import LocalExchangeFactory
from academy.exchange.cloud import spawn_http_exchange
from academy.handle import Handle
from academy.logging.configs.base import LogConfig
from academy.logging.configs.multi import MultiLogging
from academy.manager import Manager

from provlog.academy import ProvenanceLogging

logger = logging.getLogger('pipeline')


class WorkerA(Agent):
    """Arithmetic on single numbers."""

    @action
    async def square(self, x: float) -> float:
        logger.info('squaring %s', x)
        await asyncio.sleep(0.01)
        return x * x

    @action
    async def invert(self, x: float) -> float:
        return 1 / x


class WorkerB(Agent):
    """Summaries, slow simulations and a store that takes credentials."""

    @action
    async def summarize(self, values: list[float]) -> dict[str, float]:
        mean = statistics.fmean(values)
        print(f'summary of {len(values)} values: mean {mean:.3f}')
        logger.info(
            'summarized %d values', len(values), extra={'n': len(values)}
        )
        return {'mean': mean, 'max': max(values), 'n': len(values)}

    @action
    async def slow_simulation(self, steps: int) -> int:
        await asyncio.sleep(steps)
        return steps

    @action
    async def store(self, record: dict[str, Any], api_key: str) -> str:
        return f'stored {len(record)} fields'


class Coordinator(Agent):
    """Runs the pipeline by calling the two workers."""

    def __init__(
        self, worker_a: Handle[WorkerA], worker_b: Handle[WorkerB]
    ) -> None:
        super().__init__()
        self.worker_a = worker_a
        self.worker_b = worker_b

    @action
    async def run_pipeline(
        self, xs: list[float], scale: float = 1.0
    ) -> dict[str, float]:
        logger.info('pipeline over %d inputs, scale %s', len(xs), scale)
        if scale < 1:
            warnings.warn('scale < 1 shrinks the mean', stacklevel=1)
        squares = await asyncio.gather(*(self.worker_a.square(x) for x in xs))
        summary = await self.worker_b.summarize(list(squares))
        with contextlib.suppress(ZeroDivisionError):
            await self.worker_a.invert(0.0)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.worker_b.slow_simulation(5), 0.2)
        return {'mean': summary['mean'] * scale, 'max': summary['max']}

    @action
    async def validate(self, x: float) -> float:
        return await self.worker_a.invert(x)


def open_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _factory(mode: str) -> Iterator[tuple[Any, ProcessPoolExecutor | None]]:
    if mode == 'local':
        yield LocalExchangeFactory(), None
        return
    if mode != 'procpool':
        raise ValueError(f'unknown mode {mode!r}')
    context = multiprocessing.get_context('spawn')
    with spawn_http_exchange('127.0.0.1', open_port()) as factory:
        with ProcessPoolExecutor(max_workers=3, mp_context=context) as pool:
            yield factory, pool


@contextlib.asynccontextmanager
async def _manager(
    config: LogConfig, mode: str
) -> AsyncIterator[Manager[Any]]:
    with _factory(mode) as (factory, pool):
        async with await Manager.from_exchange_factory(
            factory,
            executors=pool,
            log_config=config,
        ) as manager:
            yield manager


async def run_workflow(
    output_dir: str | Path,
    mode: str = 'procpool',
    *,
    also: Sequence[LogConfig] = (),
    **config_options: Any,
) -> dict[str, Any]:
    """Run the workflow with provlog; return the run folder and outcomes.

    ``also``: other log configs to run beside provlog's (Academy's
    ``MultiLogging``), e.g. Academy's ``JSONPoolLogging``.
    """
    config = ProvenanceLogging(output_dir, **config_options)
    outcome: dict[str, Any] = {'run_dir': config.run_dir}
    both = MultiLogging([*also, config]) if also else config
    async with _manager(both, mode) as manager:
        worker_a = await manager.launch(WorkerA, name='worker-a')
        worker_b = await manager.launch(WorkerB, name='worker-b')
        coordinator = await manager.launch(
            Coordinator,
            args=(worker_a, worker_b),
            name='coordinator',
        )
        outcome['result'] = await coordinator.run_pipeline(
            [1.0, 2.0, 3.0], scale=0.5
        )
        try:
            await coordinator.validate(0.0)
        except ZeroDivisionError as exc:
            outcome['validate_error'] = repr(exc)
        try:
            await asyncio.wait_for(worker_b.slow_simulation(10), 0.3)
        except TimeoutError:
            outcome['cancelled'] = True
        outcome['stored'] = await worker_b.store(
            {'sample': 'A-17', 'temperature': 21.5},
            api_key='sk-demo-0123456789',
        )
        outcome['agents'] = {
            'coordinator': str(coordinator.agent_id.uid),
            'worker-a': str(worker_a.agent_id.uid),
            'worker-b': str(worker_b.agent_id.uid),
        }
    return outcome
