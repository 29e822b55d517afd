"""An agent started by hand, as a user starts ``python run_agent.py``.

``python -m tests.integration.launch_worker EXCHANGE OUT RUN_ID HELPER``
runs a :class:`HandStarted` agent with Academy's ``Runtime`` (no Manager
launches it) on the exchange ``EXCHANGE`` (``http://host:port`` or
``redis://host:port``), capturing into ``OUT`` with
``ProvenanceLogging(OUT, run_id=RUN_ID)`` (``RUN_ID`` ``-``: a run of its
own). ``HELPER`` is the uid of the client's :class:`Helper` agent. It
prints the agent's uid on one line once the agent runs, and serves until
it is shut down.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from typing import Any

from academy.agent import action
from academy.agent import Agent
from academy.exchange import RedisExchangeFactory
from academy.exchange.cloud.client import HttpExchangeFactory
from academy.handle import Handle
from academy.identifier import AgentId
from academy.logging.helpers import log_context
from academy.manager import Manager
from academy.runtime import Runtime

from provlog.academy import ProvenanceLogging


class Child(Agent):
    """Launched by another agent."""

    @action
    async def double(self, x: int) -> int:
        return 2 * x


class Helper(Agent):
    """The client's agent: it adds, and launches a child of its own."""

    @action
    async def add_one(self, x: int) -> int:
        return x + 1

    @action
    async def spawn(self, x: int) -> int:
        child = await self.agent_launch_alongside(Child)
        return await child.double(x)


class HandStarted(Agent):
    """Started by hand; launches agents alongside and through a Manager."""

    def __init__(self, helper: Handle[Helper], factory: Any) -> None:
        super().__init__()
        self.helper = helper
        self.factory = factory

    @action
    async def work(self, x: int) -> int:
        child = await self.agent_launch_alongside(Child)
        doubled = await child.double(x)
        return await self.helper.add_one(doubled)

    @action
    async def delegate(self, x: int) -> int:
        async with await Manager.from_exchange_factory(self.factory) as own:
            grandchild = await own.launch(Child, name='grandchild')
            return await grandchild.double(x)


def exchange_factory(address: str) -> Any:
    """The exchange factory of ``http://host:port`` or ``redis://...``."""
    if address.startswith('redis://'):
        host, _, port = address.removeprefix('redis://').partition(':')
        return RedisExchangeFactory(host, int(port))
    return HttpExchangeFactory(address)


async def serve(address: str, helper: str) -> None:
    """Register and run the agent until it is shut down."""
    factory = exchange_factory(address)
    client = await factory.create_user_client(start_listener=False)
    registration = await client.register_agent(
        HandStarted, name='hand-started'
    )
    await client.close()
    agent = HandStarted(Handle(AgentId(uid=uuid.UUID(helper))), factory)
    async with Runtime(
        agent, exchange_factory=factory, registration=registration
    ) as runtime:
        sys.stdout.write(f'{registration.agent_id.uid}\n')
        sys.stdout.flush()
        await runtime.wait_shutdown()


def main(argv: list[str]) -> None:
    """Run as ``python -m tests.integration.launch_worker ...``."""
    address, out, run_id, helper = argv
    config = ProvenanceLogging(out, run_id=None if run_id == '-' else run_id)
    with log_context(config):
        asyncio.run(serve(address, helper))


if __name__ == '__main__':
    main(sys.argv[1:])
