"""A run whose host reconfigures logging half-way, as hosts do.

``python -m tests.workflows.midrun CHANGE OUTPUT_DIR`` calls a Counter 20
times, applies CHANGE (``disable``, ``dictconfig``, ``fileconfig``,
``level`` or ``none``), calls it 20 times more, undoes what it can and
calls it 20 times again. Prints the count.
"""

from __future__ import annotations

import asyncio
import logging
import logging.config
import sys
import tempfile
from pathlib import Path

from academy.exchange import LocalExchangeFactory
from academy.manager import Manager

from provlog.academy import ProvenanceLogging
from tests.workflows.shapes import Counter

_FILECONFIG = """
[loggers]
keys=root
[handlers]
keys=h
[formatters]
keys=f
[logger_root]
level=WARNING
handlers=h
[handler_h]
class=StreamHandler
level=WARNING
formatter=f
args=(sys.stderr,)
[formatter_f]
format=%(levelname)s %(name)s %(message)s
"""


def _change(change: str) -> None:
    if change == 'disable':
        logging.disable(logging.INFO)
    elif change == 'dictconfig':
        logging.config.dictConfig({'version': 1})
    elif change == 'fileconfig':
        with tempfile.NamedTemporaryFile('w', suffix='.ini') as f:
            f.write(_FILECONFIG)
            f.flush()
            logging.config.fileConfig(f.name)
    elif change == 'level':
        logging.getLogger('academy.handle').setLevel(logging.WARNING)
    elif change != 'none':
        raise ValueError(change)


def _undo(change: str) -> None:
    logging.disable(logging.NOTSET)
    for name in (
        'academy',
        'academy.handle',
        'academy.runtime',
        'academy.manager',
    ):
        logging.getLogger(name).disabled = False
    if change == 'level':
        logging.getLogger('academy.handle').setLevel(logging.NOTSET)


async def _main(change: str, output_dir: Path) -> None:
    config = ProvenanceLogging(output_dir, flush_interval=0.05)
    async with await Manager.from_exchange_factory(
        LocalExchangeFactory(),
        log_config=config,
    ) as manager:
        counter = await manager.launch(Counter)
        for step in (None, _change, _undo):
            if step is not None:
                step(change)
                await asyncio.sleep(0.3)  # several flush intervals
            for _ in range(20):
                await counter.increment()
        print('count:', await counter.get_count())


if __name__ == '__main__':
    asyncio.run(_main(sys.argv[1], Path(sys.argv[2])))
