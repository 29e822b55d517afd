"""A run with one 500 MB argument among small calls, then it hangs.

``python -m tests.workflows.bigvalue OUTPUT_DIR``: 100 small calls, one
call carrying 500 MB of bytes, 100 small calls; prints ``sent`` and waits
to be killed.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from academy.agent import action
from academy.agent import Agent
from academy.exchange import LocalExchangeFactory
from academy.manager import Manager

from provlog.academy import ProvenanceLogging


class Store(Agent):
    """Takes blobs and numbers."""

    @action
    async def put(self, blob: object) -> int:
        return len(blob) if isinstance(blob, bytes) else 1


async def _main(output_dir: Path) -> None:
    config = ProvenanceLogging(output_dir)
    async with await Manager.from_exchange_factory(
        LocalExchangeFactory(),
        log_config=config,
    ) as manager:
        store = await manager.launch(Store)
        for i in range(100):
            await store.put(i)
        await store.put(b'x' * 500_000_000)
        for i in range(100):
            await store.put(i)
        print('sent', config.run_dir, flush=True)
        time.sleep(600)  # killed before this ends


if __name__ == '__main__':
    asyncio.run(_main(Path(sys.argv[1])))
