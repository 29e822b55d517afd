"""Load: 16 agents in 4 processes, thousands of actions each, nested calls."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import orjson
import pytest
from academy.agent import action
from academy.agent import Agent
from academy.exchange.cloud import spawn_http_exchange
from academy.handle import Handle
from academy.manager import Manager
from examples.pipeline import open_port

import provlog
from provlog.academy import ProvenanceLogging

#: Actions each agent executes (the issue's figure; lower it locally with
#: PROVLOG_LOAD_PER_AGENT to iterate faster).
PER_AGENT = int(os.environ.get('PROVLOG_LOAD_PER_AGENT', '5000'))
BATCH = 100
#: The writer's backlog must stay far below its hard bound (200,000 events).
BACKLOG_BOUND = 50_000


class Leaf(Agent):
    @action
    async def work(self, i: int) -> int:
        return i + 1


class Host(Agent):
    """Runs in a pool worker and launches three Leaf agents beside itself."""

    def __init__(self) -> None:
        super().__init__()
        self.leaves: list[Handle[Leaf]] = []

    async def agent_on_startup(self) -> None:
        for _ in range(3):
            self.leaves.append(await self.agent_launch_alongside(Leaf))

    @action
    async def work(self, i: int) -> int:
        return i + 1

    @action
    async def drive(self, n: int) -> int:
        """n nested calls to each of the three leaves."""
        done = 0
        for leaf in self.leaves:
            for start in range(0, n, BATCH):
                calls = (
                    leaf.work(i) for i in range(start, min(n, start + BATCH))
                )
                done += len(await asyncio.gather(*calls))
        return done


async def _run(out: Path, n: int) -> ProvenanceLogging:
    config = ProvenanceLogging(out)
    context = multiprocessing.get_context('spawn')
    with (
        spawn_http_exchange('127.0.0.1', open_port()) as factory,
        ProcessPoolExecutor(4, mp_context=context) as pool,
    ):
        async with await Manager.from_exchange_factory(
            factory,
            executors=pool,
            log_config=config,
        ) as manager:
            hosts = [await manager.launch(Host) for _ in range(4)]

            async def client_calls(host: Handle[Host]) -> None:
                for start in range(0, n, BATCH):
                    calls = (
                        host.work(i)
                        for i in range(start, min(n, start + BATCH))
                    )
                    await asyncio.gather(*calls)

            results = await asyncio.gather(
                *(host.drive(n) for host in hosts),
                *(client_calls(host) for host in hosts),
            )
            assert results[:4] == [3 * n] * 4
    return config


@pytest.mark.timeout(1800)
def test_every_action_once_under_load(tmp_path: Path) -> None:
    n = PER_AGENT
    config = asyncio.run(_run(tmp_path, n))
    graph = provlog.load(config.run_dir)
    stats = graph.stats()
    issued = 16 * n + 4  # n per agent, plus the four drive calls
    assert stats['actions'] == issued
    assert stats['states']['completed'] == issued
    assert stats['agents'] == 16
    assert stats['processes'] == 5  # the client's and four workers
    assert stats['complete'] is True
    g = graph.nx
    per_agent = Counter()
    nested = 0
    for node, data in g.nodes(data=True):
        if 'provlog:ActionExecution' not in data.get('prov:type', ()):
            continue
        for _, agent, edge in g.out_edges(node, data=True):
            if edge['rel'] == 'wasAssociatedWith':
                per_agent[agent] += 1
        for _, request, edge in g.out_edges(node, data=True):
            if edge['rel'] == 'wasInformedBy':
                nested += any(
                    e['rel'] == 'wasInformedBy'
                    for _, _, e in g.out_edges(request, data=True)
                )
    assert sorted(per_agent.values()) == [n] * 12 + [n + 1] * 4
    assert nested == 12 * n  # every leaf call points at its drive
    # the handler's memory: the writer's backlog stayed bounded
    backlogs = []
    for journal in Path(config.run_dir).glob('*.jsonl'):
        for line in journal.read_bytes().splitlines():
            event = orjson.loads(line)
            if event.get('e') == 'close':
                backlogs.append(event['max_backlog'])
    assert len(backlogs) == 5
    assert max(backlogs) < BACKLOG_BOUND, backlogs
    print(
        f'\nload: {issued} actions, max writer backlog {max(backlogs)} events'
    )
