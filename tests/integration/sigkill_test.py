"""A worker killed with SIGKILL mid-run: what it wrote still merges."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest
from academy.agent import action
from academy.agent import Agent
from academy.exchange.cloud import spawn_http_exchange
from academy.logging.helpers import initialized_log_contexts
from academy.manager import Manager
from examples.pipeline import open_port

import provlog
from provlog.academy import ProvenanceLogging
from tests.provcheck import check_provjson


class Victim(Agent):
    @action
    async def pid(self) -> int:
        return os.getpid()

    @action
    async def work(self, i: int) -> int:
        return i * 2

    @action
    async def hang(self) -> None:
        await asyncio.sleep(60)


class Bystander(Agent):
    @action
    async def ping_value(self, i: int) -> int:
        return i + 1


async def _drive(manager: Manager, pids: list[int]) -> None:
    async with manager:
        victim = await manager.launch(Victim, name='victim')
        bystander = await manager.launch(Bystander, name='bystander')
        pid = await victim.pid()
        assert pid != os.getpid()
        pids.append(pid)
        for i in range(5):
            assert await victim.work(i) == 2 * i
            assert await bystander.ping_value(i) == i + 1
        hanging = asyncio.ensure_future(victim.hang())
        await asyncio.sleep(1.0)  # the worker has journalled execute_start
        os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(hanging), 1.0)
        hanging.cancel()
        with contextlib.suppress(BaseException):
            await hanging


async def _run(out: Path) -> tuple[ProvenanceLogging, int]:
    config = ProvenanceLogging(out, flush_interval=0.05)
    context = multiprocessing.get_context('spawn')
    pids: list[int] = []
    with (
        spawn_http_exchange('127.0.0.1', open_port()) as factory,
        ProcessPoolExecutor(2, mp_context=context) as pool,
    ):
        manager = await Manager.from_exchange_factory(
            factory,
            executors=pool,
            log_config=config,
        )
        # the broken pool makes the manager's exit raise; that is expected
        with contextlib.suppress(BrokenProcessPool):
            await asyncio.wait_for(_drive(manager, pids), 60)
    # Academy's log_context skips the uninit callback when its body raises
    ref = initialized_log_contexts.pop(config.uuid, None)
    if ref is not None:
        ref.uninit()
    return config, pids[0]


@pytest.mark.timeout(120)
def test_sigkilled_worker_journal_merges(tmp_path: Path) -> None:
    config, pid = asyncio.run(_run(tmp_path))
    graph = provlog.load(config.run_dir)
    stats = graph.stats()
    # the killed worker's complete lines are there
    victim_journal = [p for p in graph.run.processes.values() if p.pid == pid]
    assert len(victim_journal) == 1
    assert not victim_journal[0].closed
    assert any(str(pid) in name for name in stats['processes_not_closed'])
    g = graph.nx
    hang = [
        d
        for _, d in g.nodes(data=True)
        if d.get('provlog:actionName') == 'hang'
        and 'provlog:ActionExecution' in d['prov:type']
    ]
    assert len(hang) == 1
    assert 'prov:startTime' in hang[0]  # execute_start reached the disk
    assert 'prov:endTime' not in hang[0]
    assert hang[0]['provlog:executionState'] == 'not_ended'
    works = [
        d
        for _, d in g.nodes(data=True)
        if d.get('provlog:actionName') in {'work', 'ping_value'}
        and 'provlog:ActionExecution' in d['prov:type']
    ]
    assert len(works) == 10
    assert all(d['provlog:state'] == 'completed' for d in works)
    assert all('prov:endTime' in d for d in works)
    check_provjson(graph.to_provjson())
