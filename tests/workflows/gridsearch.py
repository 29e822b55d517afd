"""A perceptron grid search whose calls pass on parts of earlier results.

The client asks a Planner for the search (``prepare_gridsearch`` returns
``{'dataset_config': {...}, 'grid': [...]}``), then passes the result's
``dataset_config`` to ``generate_dataset`` and its ``grid`` inside the
``settings`` of ``train``, as users write it; ``publish`` gets a secret of
its own while the search result holds another. Two calls pass equal content
that the caller had not received: the client's first ``generate_dataset``
(before the search was prepared) and a Sweep agent's (it never received
the search). Agents run in a spawn pool over the HTTP exchange
(``mode='procpool'``) or in this process (``mode='local'``); with
``observe_agents=False`` the pool's processes run without the config, so
only the client's journal is written.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import random
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from academy.agent import action
from academy.agent import Agent
from academy.exchange import LocalExchangeFactory
from academy.exchange.cloud import spawn_http_exchange
from academy.handle import Handle
from academy.manager import Manager
from examples.pipeline import open_port

from provlog.academy import ProvenanceLogging

#: What ``prepare_gridsearch`` returns as ``dataset_config``.
DATASET_CONFIG = {'samples': 40, 'features': 2, 'seed': 7}
#: What ``prepare_gridsearch`` returns as ``grid``.
GRID = [0.1, 0.03, 0.01]


class Planner(Agent):
    """Plans the search."""

    @action
    async def prepare_gridsearch(self) -> dict[str, Any]:
        return {
            'dataset_config': dict(DATASET_CONFIG),
            'grid': list(GRID),
            'token': 'tok-planner-0123456789',
        }


class Trainer(Agent):
    """Makes a data set and trains a perceptron on it."""

    @action
    async def generate_dataset(
        self, config: dict[str, int]
    ) -> list[list[float]]:
        rng = random.Random(config['seed'])
        rows = []
        for _ in range(config['samples']):
            x = [
                round(rng.uniform(-1, 1), 3) for _ in range(config['features'])
            ]
            rows.append([*x, 1.0 if sum(x) > 0 else -1.0])
        return rows

    @action
    async def train(
        self, dataset: list[list[float]], settings: dict[str, Any]
    ) -> dict[str, float]:
        best = (-1.0, 0.0)
        for lr in settings['learning_rates']:
            w = [0.0] * (len(dataset[0]) - 1)
            for _ in range(settings['epochs']):
                for *x, y in dataset:
                    if y * sum(a * b for a, b in zip(w, x, strict=True)) <= 0:
                        w = [a + lr * y * b for a, b in zip(w, x, strict=True)]
            hits = sum(
                1
                for *x, y in dataset
                if y * sum(a * b for a, b in zip(w, x, strict=True)) > 0
            )
            best = max(best, (hits / len(dataset), lr))
        return {'accuracy': best[0], 'learning_rate': best[1]}

    @action
    async def publish(self, report: dict[str, float], api_key: str) -> str:
        return f'published {len(report)} fields'


class Sweep(Agent):
    """Asks for the same data set without having received the search."""

    def __init__(self, trainer: Handle[Trainer]) -> None:
        super().__init__()
        self.trainer = trainer

    @action
    async def rerun(self) -> int:
        rows = await self.trainer.generate_dataset(dict(DATASET_CONFIG))
        return len(rows)


@contextlib.asynccontextmanager
async def _manager(
    mode: str, config: ProvenanceLogging | None
) -> AsyncIterator[Manager[Any]]:
    if mode == 'local':
        async with await Manager.from_exchange_factory(
            LocalExchangeFactory(), log_config=config
        ) as manager:
            yield manager
        return
    context = multiprocessing.get_context('spawn')
    with (
        spawn_http_exchange('127.0.0.1', open_port()) as factory,
        ProcessPoolExecutor(max_workers=3, mp_context=context) as pool,
    ):
        async with await Manager.from_exchange_factory(
            factory, executors=pool, log_config=config
        ) as manager:
            yield manager


async def run_gridsearch(
    output_dir: str | Path,
    mode: str = 'procpool',
    *,
    observe_agents: bool = True,
) -> dict[str, Any]:
    """Run the grid search with provlog; return the run folder and results."""
    config = ProvenanceLogging(output_dir)
    outcome: dict[str, Any] = {'run_dir': config.run_dir}
    stop = None if observe_agents else config.init_logging()
    try:
        async with _manager(mode, config if observe_agents else None) as m:
            planner = await m.launch(Planner, name='planner')
            trainer = await m.launch(Trainer, name='trainer')
            sweep = await m.launch(Sweep, args=(trainer,), name='sweep')
            # equal content, sent before the search was prepared
            await trainer.generate_dataset(dict(DATASET_CONFIG))
            search = await planner.prepare_gridsearch()
            dataset = await trainer.generate_dataset(search['dataset_config'])
            outcome['best'] = await trainer.train(
                dataset,
                settings={'learning_rates': search['grid'], 'epochs': 3},
            )
            # a secret of its own: masked, it hashes as the result's token
            outcome['published'] = await trainer.publish(
                outcome['best'], api_key='sk-trainer-9876543210'
            )
            outcome['rows'] = await sweep.rerun()
    finally:
        if stop is not None:
            stop()
    return outcome
