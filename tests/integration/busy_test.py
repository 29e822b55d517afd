"""A busy run keeps every action: the host waits for the writer, no drops.

The issue's workload: four agents on the local exchange in one process,
actions issued 200 at a time with ``asyncio.gather``. A small
``max_pending`` below the writer's wake-up backlog (256 events) makes the
writer fall behind on purpose: a burst of 200 calls fills the queue before
anything wakes the writer, so the waiting path is exercised on every run; ``drop_when_full`` keeps the old policy for
users who prefer it, and what it drops is reported.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest
from academy.agent import action
from academy.agent import Agent
from academy.exchange import LocalExchangeFactory
from academy.exchange.cloud import spawn_http_exchange
from academy.handle import Handle
from academy.manager import Manager
from examples.pipeline import open_port

import provlog
from provlog.academy import ProvenanceLogging
from provlog.cli import main

#: Actions in the one-process run: the issue's 100,000 (lower it with
#: PROVLOG_BUSY_ACTIONS to iterate faster).
ACTIONS = int(os.environ.get('PROVLOG_BUSY_ACTIONS', '100000'))
GATHER = 200


class Echo(Agent):
    @action
    async def echo(self, i: int) -> int:
        return i


class Fanout(Agent):
    """In a pool worker: gathers calls to agents beside it, 200 at a time."""

    def __init__(self) -> None:
        super().__init__()
        self.echoes: list[Handle[Echo]] = []

    async def agent_on_startup(self) -> None:
        for _ in range(2):
            self.echoes.append(await self.agent_launch_alongside(Echo))

    @action
    async def drive(self, n: int) -> int:
        done = 0
        for start in range(0, n, GATHER):
            calls = (
                self.echoes[i % 2].echo(i)
                for i in range(start, min(n, start + GATHER))
            )
            done += len(await asyncio.gather(*calls))
        return done


async def _one_process(config: ProvenanceLogging, n: int) -> None:
    async with await Manager.from_exchange_factory(
        LocalExchangeFactory(),
        log_config=config,
    ) as manager:
        agents = [await manager.launch(Echo) for _ in range(4)]
        for start in range(0, n, GATHER):
            calls = (
                agents[i % 4].echo(i)
                for i in range(start, min(n, start + GATHER))
            )
            assert len(await asyncio.gather(*calls)) == min(GATHER, n - start)


async def _pool(config: ProvenanceLogging, n: int) -> None:
    context = multiprocessing.get_context('spawn')
    with (
        spawn_http_exchange('127.0.0.1', open_port()) as factory,
        ProcessPoolExecutor(2, mp_context=context) as pool,
    ):
        async with await Manager.from_exchange_factory(
            factory,
            executors=pool,
            log_config=config,
        ) as manager:
            hosts = [await manager.launch(Fanout) for _ in range(2)]
            done = await asyncio.gather(*(h.drive(n) for h in hosts))
            assert done == [n, n]


def _closes(run_dir: Path) -> list[dict[str, Any]]:
    closes = []
    for journal in run_dir.glob('*.jsonl'):
        for line in journal.read_bytes().splitlines():
            event = orjson.loads(line)
            if event.get('e') == 'close':
                closes.append(event)
    return closes


class TestBusyRun:
    """No action is dropped under sustained load, by default."""

    @pytest.mark.timeout(900)
    @pytest.mark.parametrize(
        ('max_pending', 'n'),
        ((None, ACTIONS), (100, max(ACTIONS // 5, GATHER))),
    )
    def test_one_process_gather_keeps_everything(
        self, tmp_path, max_pending, n
    ):
        options = {} if max_pending is None else {'max_pending': max_pending}
        config = ProvenanceLogging(tmp_path, **options)
        asyncio.run(_one_process(config, n))
        stats = provlog.load(config.run_dir).stats()
        assert stats['events_dropped'] == 0
        assert stats['actions'] == n
        assert stats['states']['completed'] == n
        assert stats['complete'] is True
        if max_pending is not None:
            (close,) = _closes(config.run_dir)
            assert close['waited'] > 0  # the host was slowed, not robbed
            assert close['max_backlog'] <= max_pending

    @pytest.mark.timeout(900)
    def test_pool_workers_keep_everything(self, tmp_path):
        config = ProvenanceLogging(tmp_path, max_pending=100)
        n = max(ACTIONS // 20, GATHER)
        asyncio.run(_pool(config, n))
        stats = provlog.load(config.run_dir).stats()
        assert stats['events_dropped'] == 0
        assert stats['actions'] == 2 * n + 2
        assert stats['complete'] is True
        assert any(c['waited'] > 0 for c in _closes(config.run_dir))

    def test_drop_when_full_is_reported(self, tmp_path, capsys):
        config = ProvenanceLogging(
            tmp_path,
            max_pending=50,
            drop_when_full=True,
        )
        asyncio.run(_one_process(config, 2000))
        stats = provlog.load(config.run_dir).stats()
        assert stats['events_dropped'] > 0
        assert stats['complete'] is False
        assert main(['validate', str(config.run_dir)]) == 1
        assert 'events-dropped' in capsys.readouterr().out
