"""Argument and result values: secrets, size caps, objects that do not serialise."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

import pytest
from academy.agent import action
from academy.agent import Agent
from academy.exchange import LocalExchangeFactory
from academy.manager import Manager

import provlog
from provlog.academy import ProvenanceLogging
from tests.provcheck import check_provjson

SECRET = 'sk-live-7f3a9c-NEVER-ON-DISK'
BIG = b'x' * (50 * 1024 * 1024)


class Unpicklable:
    """Holds a lock, so neither pickle nor JSON can encode it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def __repr__(self) -> str:
        return '<Unpicklable holding a lock>'


class BrokenRepr:
    def __repr__(self) -> str:
        raise RuntimeError('no repr for you')


class Echo(Agent):
    @action
    async def take(self, *args: Any, **kwargs: Any) -> int:
        return len(args) + len(kwargs)

    @action
    async def give(self) -> dict[str, Any]:
        return {'token': SECRET, 'ok': True}


def _all_bytes(run_dir: Path) -> bytes:
    return b''.join(p.read_bytes() for p in sorted(run_dir.glob('*.jsonl')))


def _entities(
    graph: provlog.RunGraph, action_name: str
) -> list[dict[str, Any]]:
    """Per execution of ``action_name``, in start order: role -> entity."""
    g = graph.nx
    found = []
    for node, data in g.nodes(data=True):
        if data.get('provlog:actionName') != action_name:
            continue
        if 'provlog:ActionExecution' not in data['prov:type']:
            continue
        ents = {}
        for _, ent, edge in g.out_edges(node, data=True):
            if edge['rel'] == 'used':
                ents[edge['prov:role']] = g.nodes[ent]
        for ent, _, edge in g.in_edges(node, data=True):
            if edge['rel'] == 'wasGeneratedBy':
                ents['result'] = g.nodes[ent]
        found.append((data['prov:startTime'], ents))
    return [ents for _, ents in sorted(found, key=lambda f: f[0])]


@pytest.fixture(scope='module')
def values_run(tmp_path_factory: pytest.TempPathFactory) -> provlog.RunGraph:
    import asyncio

    out = tmp_path_factory.mktemp('values')
    config = ProvenanceLogging(out)

    async def main() -> None:
        async with await Manager.from_exchange_factory(
            LocalExchangeFactory(),
            log_config=config,
        ) as manager:
            echo = await manager.launch(Echo, name='echo')
            assert (
                await echo.take(
                    {
                        'user': 'ada',
                        'password': SECRET,
                        'nested': {'api_key': SECRET},
                    },
                    api_key=SECRET,
                    db_password=SECRET,
                )
                == 3
            )
            assert await echo.take(BIG) == 1
            assert await echo.take(Unpicklable(), BrokenRepr()) == 2
            assert (await echo.give())['ok'] is True

    asyncio.run(main())
    return provlog.load(config.run_dir)


class TestSecrets:
    """A secret-looking key never reaches the disk, and the entity says so."""

    def test_secret_not_in_run_folder(self, values_run):
        assert SECRET.encode() not in _all_bytes(values_run.run.run_dir)

    def test_secret_not_in_export(self, values_run):
        assert SECRET not in values_run.serialize().decode()

    def test_redaction_recorded(self, values_run):
        ents = _entities(values_run, 'take')[0]
        assert ents['api_key']['provlog:redacted'] is True
        assert ents['db_password']['provlog:redacted'] is True
        assert ents['arg0']['provlog:redacted'] is True  # nested dict keys
        assert 'ada' in ents['arg0']['provlog:preview']

    def test_secret_in_result_redacted(self, values_run):
        result = _entities(values_run, 'give')[0]['result']
        assert result['provlog:redacted'] is True
        assert '[REDACTED]' in result['provlog:preview']


class TestLargeAndOpaqueValues:
    """Big values are kept as type, size and hash; odd objects by type and repr."""

    def test_50mb_argument_capped(self, values_run):
        ents = {}
        g = values_run.nx
        for _node, data in g.nodes(data=True):
            if data.get('provlog:capped'):
                ents[data['prov:label']] = data
        (big,) = ents.values()
        assert big['provlog:pythonType'] == 'bytes'
        assert big['provlog:size'] > len(BIG)
        assert 'provlog:preview' not in big
        assert (
            big['provlog:sha256']
            == hashlib.sha256(
                b'b%d:' % len(BIG) + BIG,
            ).hexdigest()
        )
        assert len(_all_bytes(values_run.run.run_dir)) < 1_000_000

    def test_unserialisable_object_recorded_by_type_and_repr(self, values_run):
        g = values_run.nx
        previews = {
            d.get('provlog:pythonType'): d
            for _, d in g.nodes(data=True)
            if d.get('provlog:opaque')
        }
        assert (
            previews['tests.integration.values_test.Unpicklable'][
                'provlog:preview'
            ]
            == '<Unpicklable holding a lock>'
        )
        broken = previews['tests.integration.values_test.BrokenRepr']
        assert 'unrepresentable' in broken['provlog:preview']

    def test_all_actions_completed_and_export_valid(self, values_run):
        assert values_run.stats()['states']['completed'] == 4
        check_provjson(values_run.to_provjson())
