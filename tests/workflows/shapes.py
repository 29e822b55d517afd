"""Workflows of the shapes of Academy's examples, run as users run them.

``python -m tests.workflows SHAPE --logging SETUP [--provlog DIR]``
runs one shape under one host logging set-up, with provlog or without it,
and prints what a user's script prints. The tests run each twice and
compare everything written to stdout and stderr.

Shapes: ``actor`` (a client calls an actor), ``loop`` (an agent loop, one
loop that fails), ``chain`` (an agent calls agents), ``procpool`` (a spawn
pool over the HTTP exchange), ``parsl`` (agents run by Parsl's executor)
and ``chatty`` (an agent that logs, prints, writes stderr and warns inside
its actions, also from ``agent_run_sync``). Set-ups: ``bare`` (no logging
configuration), ``basic-warning`` and ``basic-info``
(``logging.basicConfig``), ``dictconfig``, ``console`` (Academy's
``ConsoleLogging`` inside ``MultiLogging``, after provlog's config for
``console-late``) and ``recommended``
(``recommended_logging()``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import logging.config
import multiprocessing
import sys
import warnings
from collections.abc import AsyncIterator
from collections.abc import Iterator
from concurrent.futures import Executor
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from academy.agent import action
from academy.agent import Agent
from academy.agent import loop
from academy.exchange import LocalExchangeFactory
from academy.handle import Handle
from academy.logging.configs.base import LogConfig
from academy.logging.configs.console import ConsoleLogging
from academy.logging.configs.multi import MultiLogging
from academy.manager import Manager

from provlog.testing import free_port

SHAPES = ('actor', 'loop', 'chain', 'procpool', 'parsl', 'chatty')
SETUPS = (
    'bare',
    'basic-warning',
    'basic-info',
    'dictconfig',
    'console',
    'console-late',
    'recommended',
)


class Counter(Agent):
    """The actor of Academy's first example."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    @action
    async def increment(self, value: int = 1) -> None:
        self.count += value

    @action
    async def get_count(self) -> int:
        return self.count


class Ticker(Agent):
    """An agent loop that counts ticks, and one loop that fails."""

    def __init__(self) -> None:
        super().__init__()
        self.ticks = 0

    @loop
    async def tick(self, shutdown: asyncio.Event) -> None:
        while not shutdown.is_set():
            self.ticks += 1
            await asyncio.sleep(0.01)

    @loop
    async def fail_once(self, shutdown: asyncio.Event) -> None:
        await asyncio.sleep(0.3)
        raise RuntimeError('the sensor went away')

    @action
    async def get_ticks(self) -> int:
        return self.ticks


class Lowerer(Agent):
    """Lower-cases text."""

    @action
    async def lower(self, text: str) -> str:
        return text.lower()


class Reverser(Agent):
    """Reverses text."""

    @action
    async def reverse(self, text: str) -> str:
        return text[::-1]


class Pipeline(Agent):
    """Calls the two agents above, as Academy's agent-to-agent example."""

    def __init__(
        self, lowerer: Handle[Lowerer], reverser: Handle[Reverser]
    ) -> None:
        super().__init__()
        self.lowerer = lowerer
        self.reverser = reverser

    @action
    async def process(self, text: str) -> str:
        text = await self.lowerer.lower(text)
        return await self.reverser.reverse(text)


def _host_logging(setup: str) -> LogConfig | None:
    """Configure logging as the host would; a LogConfig for Academy's own."""
    if setup == 'basic-warning':
        logging.basicConfig(level=logging.WARNING)
    elif setup == 'basic-info':
        logging.basicConfig(level=logging.INFO)
    elif setup == 'dictconfig':
        logging.config.dictConfig(
            {
                'version': 1,
                'formatters': {'f': {'format': '%(levelname)s %(name)s'}},
                'handlers': {
                    'h': {
                        'class': 'logging.StreamHandler',
                        'formatter': 'f',
                        'stream': 'ext://sys.stdout',
                    },
                },
                'loggers': {'academy': {'level': 'INFO', 'handlers': ['h']}},
            },
        )
    elif setup in {'console', 'console-late'}:
        return ConsoleLogging(level=logging.INFO, color=False)
    elif setup == 'recommended':
        from academy.logging.recommended import recommended_logging

        return recommended_logging(color=False)
    elif setup != 'bare':
        raise ValueError(f'unknown logging set-up {setup!r}')
    return None


def _log_config(setup: str, provlog_dir: str | None) -> LogConfig | None:
    host = _host_logging(setup)
    if provlog_dir is None:
        return None if host is None else MultiLogging([host])
    from provlog.academy import ProvenanceLogging

    configs: list[LogConfig] = [ProvenanceLogging(provlog_dir)]
    if host is not None:  # Academy's configs first, or provlog first
        configs.insert(len(configs) if setup == 'console-late' else 0, host)
    return MultiLogging(configs)


@contextlib.contextmanager
def _executors(shape: str) -> Iterator[tuple[Any, Executor | None]]:
    if shape == 'procpool':
        from academy.exchange.cloud import spawn_http_exchange

        context = multiprocessing.get_context('spawn')
        with spawn_http_exchange('127.0.0.1', free_port()) as factory:
            with ProcessPoolExecutor(3, mp_context=context) as pool:
                yield factory, pool
    elif shape == 'parsl':
        from academy.exchange.cloud import spawn_http_exchange
        from parsl.concurrent import ParslPoolExecutor
        from parsl.config import Config
        from parsl.executors import HighThroughputExecutor
        from parsl.providers import LocalProvider

        config = Config(
            executors=[
                # Each agent holds one worker for its whole life: the
                # chain shape needs 3 at once. HTEX spawns at most
                # cores / cores_per_worker workers (2 on a 2-core machine
                # with the default 1.0), and the third agent then waits
                # for a free worker forever.
                HighThroughputExecutor(
                    label='agents',
                    max_workers_per_node=3,
                    cores_per_worker=0.1,
                    address='127.0.0.1',
                    provider=LocalProvider(init_blocks=1, max_blocks=1),
                ),
            ],
            run_dir=sys.argv[sys.argv.index('--parsl-dir') + 1],
            initialize_logging=False,
        )
        # Academy's Manager shuts its executors down with
        # cancel_futures=True, which Parsl answers with a UserWarning on
        # every run; the chain shape prints nothing of the kind.
        warnings.filterwarnings(
            'ignore',
            message='Canceling on-going tasks is not supported in Parsl',
            category=UserWarning,
        )
        with spawn_http_exchange('127.0.0.1', free_port()) as factory:
            with ParslPoolExecutor(config) as pool:
                yield factory, pool
    else:
        yield LocalExchangeFactory(), None


@contextlib.asynccontextmanager
async def _manager(
    shape: str, config: LogConfig | None
) -> AsyncIterator[Manager[Any]]:
    with _executors(shape) as (factory, pool):
        async with await Manager.from_exchange_factory(
            factory,
            executors=pool,
            log_config=config,
        ) as manager:
            yield manager


async def _actor(manager: Manager[Any]) -> None:
    counter = await manager.launch(Counter)
    for value in (1, 2, 3):
        await counter.increment(value)
    print('count:', await counter.get_count())


async def _loop(manager: Manager[Any]) -> None:
    ticker = await manager.launch(Ticker)
    await asyncio.sleep(0.1)
    print('ticking:', await ticker.get_ticks() > 0)
    await manager.wait([ticker], timeout=30)
    print('ticker stopped after its loop failed')


async def _chain(manager: Manager[Any]) -> None:
    lowerer = await manager.launch(Lowerer)
    reverser = await manager.launch(Reverser)
    pipeline = await manager.launch(Pipeline, args=(lowerer, reverser))
    for text in ('Hello', 'Academy Agents'):
        print(text, '->', await pipeline.process(text))


async def _chatty(manager: Manager[Any]) -> None:
    from tests.workflows.chatty import Chatty

    chatty = await manager.launch(Chatty)
    # one call at a time: concurrent agent_run_sync calls make Academy warn
    # about its thread pool or not, depending on timing
    results = [await chatty.work(n) for n in range(3)]
    print('results:', results)


_RUN = {
    'actor': _actor,
    'loop': _loop,
    'chain': _chain,
    'procpool': _chain,
    'parsl': _chain,
    'chatty': _chatty,
}


async def run(shape: str, setup: str, provlog_dir: str | None) -> None:
    """Run ``shape`` under the ``setup`` logging, with provlog or without."""
    config = _log_config(setup, provlog_dir)
    async with _manager(shape, config) as manager:
        await _RUN[shape](manager)
    print('done')


def main() -> None:
    """Parse the command line and run."""
    parser = argparse.ArgumentParser()
    parser.add_argument('shape', choices=SHAPES)
    parser.add_argument('--logging', choices=SETUPS, default='bare')
    parser.add_argument('--provlog')
    parser.add_argument('--parsl-dir')
    args = parser.parse_args()
    asyncio.run(run(args.shape, args.logging, args.provlog))


if __name__ == '__main__':
    main()
