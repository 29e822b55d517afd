"""Agents that log, print and warn inside their actions."""

from __future__ import annotations

import asyncio
import logging
import sys
import warnings

from academy.agent import action
from academy.agent import Agent

logger = logging.getLogger('tests.chatty')


def _blocking(n: int) -> int:
    logger.info('thread work for call %d', n)
    print(f'thread print {n}')
    return n * 2


class Chatty(Agent):
    """Each call logs, prints, writes stderr and warns, with awaits between."""

    @action
    async def work(self, n: int, password: str = 'none') -> int:
        logger.info('call %d starts', n, extra={'call': n, 'token': password})
        await asyncio.sleep(0.005 * (n % 4))
        logger.debug('call %d debug detail', n)
        print(f'print from call {n}')
        await asyncio.sleep(0)
        sys.stderr.write(f'stderr from call {n}\n')
        warnings.warn(f'warning from call {n}', UserWarning, stacklevel=1)
        logger.warning('call %d ends', n)
        return await self.agent_run_sync(_blocking, n)

    @action
    async def noisy(self, lines: int) -> int:
        for i in range(lines):
            logger.info('line %d', i)
        return lines
