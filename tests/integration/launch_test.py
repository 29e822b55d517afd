"""Who launched whom, and processes that join a run by its id.

The multi-process scenario: a client captures with ``ProvenanceLogging``
and launches a ``Helper`` agent through its Manager; an agent started by
hand in a separate ``python`` process (``Runtime`` directly, see
:mod:`tests.integration.launch_worker`) joins the run with
``run_id=config.run_id`` on the HTTP exchange or Redis. The client calls
it, it calls the client's ``Helper``, and both launch agents of their own:
alongside themselves from an action, and through a Manager an agent holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pyshacl
import pytest
import rdflib
from academy.exchange import RedisExchangeFactory
from academy.exchange.cloud import spawn_http_exchange
from academy.identifier import AgentId
from academy.logging.helpers import log_context
from academy.manager import Manager

import provlog
from provlog.academy import ProvenanceLogging
from provlog.cli import main
from provlog.mapping.model import PROVLOG_NS
from provlog.testing import free_port
from provlog.testing import start_redis
from tests.integration.host_logging_test import workflow_env
from tests.integration.launch_worker import Helper

ROOT = Path(__file__).resolve().parents[2]
ONTOLOGY = ROOT / 'ontologies' / 'provlog.ttl'
SHAPES = ROOT / 'ontologies' / 'provlog-shapes.ttl'


# ------------------------------------------------------------- scenario


@contextlib.asynccontextmanager
async def _exchange(kind: str) -> AsyncIterator[tuple[str, Any]]:
    """An exchange on 127.0.0.1: its address and the client's factory."""
    port = free_port()
    if kind == 'redis':
        server = start_redis(port)
        try:
            yield (
                f'redis://127.0.0.1:{port}',
                RedisExchangeFactory('127.0.0.1', port),
            )
        finally:
            server.terminate()
            server.wait(10)
        return
    with spawn_http_exchange('127.0.0.1', port) as factory:
        yield f'http://127.0.0.1:{port}', factory


async def _scenario(tmp: Path, kind: str, *, join: bool) -> dict[str, Any]:
    out = tmp / 'prov-runs'
    config = ProvenanceLogging(out)
    results: dict[str, int] = {}
    async with _exchange(kind) as (address, factory):
        async with await Manager.from_exchange_factory(
            factory, log_config=config
        ) as manager:
            helper = await manager.launch(Helper, name='helper')
            worker = subprocess.Popen(
                [
                    sys.executable,
                    '-m',
                    'tests.integration.launch_worker',
                    address,
                    str(out),
                    config.run_id if join else '-',
                    str(helper.agent_id.uid),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=tmp,
                env=workflow_env(),
            )
            try:
                assert worker.stdout is not None
                line = await asyncio.wait_for(
                    asyncio.to_thread(worker.stdout.readline), 120
                )
                if not line.strip():
                    _, err = worker.communicate(timeout=30)
                    raise AssertionError(f'worker did not start: {err}')
                handle = manager.get_handle(
                    AgentId(uid=uuid.UUID(line.strip()), name='hand-started')
                )
                results['work'] = await handle.work(3)
                results['delegate'] = await handle.delegate(5)
                results['spawn'] = await helper.spawn(4)
                await handle.shutdown()
                _, err = await asyncio.to_thread(worker.communicate, None, 60)
            finally:
                if worker.poll() is None:
                    worker.kill()
                    worker.wait()
    return {
        'run_dir': config.run_dir,
        'out': out,
        'results': results,
        'returncode': worker.returncode,
        'stderr': err,
    }


@pytest.fixture(scope='module', params=('http', 'redis'))
def joined(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The scenario, the hand-started agent joining the client's run."""
    if request.param == 'redis' and shutil.which('redis-server') is None:
        pytest.skip('redis-server is not installed')
    tmp = tmp_path_factory.mktemp(f'joined-{request.param}')
    return asyncio.run(_scenario(tmp, request.param, join=True))


def _rows(run: provlog.RunGraph) -> list[dict[str, str]]:
    return [
        {k: v['value'] for k, v in row.items()}
        for row in run.sparql('@who-launched').rows
    ]


def _time(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


# ---------------------------------------------------------------- run_id


class TestRunId:
    """Any process joins a run by its id; anything else is refused."""

    def test_run_id_is_the_uuid(self, tmp_path):
        config = ProvenanceLogging(tmp_path)
        assert config.run_id == config.uuid
        assert str(uuid.UUID(config.run_id)) == config.run_id

    def test_joining_takes_the_run_and_its_folder(self, tmp_path):
        first = ProvenanceLogging(tmp_path)
        joined = ProvenanceLogging(tmp_path, run_id=first.run_id)
        assert joined.uuid == joined.run_id == first.run_id
        assert joined.run_dir == first.run_dir
        assert pickle.loads(pickle.dumps(joined)).run_id == first.run_id
        upper = ProvenanceLogging(tmp_path, run_id=first.run_id.upper())
        assert upper.run_id == first.run_id
        as_uuid = ProvenanceLogging(tmp_path, run_id=uuid.UUID(first.run_id))
        assert as_uuid.run_id == first.run_id

    def test_academy_counts_the_joined_config_as_the_same(self, tmp_path):
        first = ProvenanceLogging(tmp_path)
        joined = ProvenanceLogging(tmp_path, run_id=first.run_id)
        with log_context(first), log_context(joined):
            pass
        journals = list(first.run_dir.glob('*.jsonl'))
        assert len(journals) == 1  # one session, started once

    @pytest.mark.parametrize(
        'bad',
        (
            'not-a-uuid',
            '',
            'x' * 500,
            '0123\n4567',
            42,
            b'0123456789abcdef0123456789abcdef',
        ),
    )
    def test_not_a_uuid_is_refused_in_one_line(self, tmp_path, bad):
        with pytest.raises(ValueError, match='run_id must be a UUID') as err:
            ProvenanceLogging(tmp_path, run_id=bad)
        message = str(err.value)
        assert '\n' not in message
        assert len(message) < 160


# ------------------------------------------------------- client launches


class TestClientLaunches:
    """Agents a client launches, in a spawn pool or its own event loop."""

    def test_each_agent_launched_by_the_client(self, workflow_run):
        run = provlog.load(workflow_run['run_dir'])
        rows = {r['agent']: r for r in _rows(run)}
        assert set(rows) == {'worker-a', 'worker-b', 'coordinator'}
        launchers = {r.get('launcher') for r in rows.values()}
        assert len(launchers) == 1
        assert next(iter(launchers)).startswith('client')
        for row in rows.values():
            assert row['launcherKind'] == 'client'
            assert 'inAction' not in row
            assert row['state'] == 'shutdown'
            assert row['host']
            assert row['class'].rsplit('.')[-1] in {
                'WorkerA',
                'WorkerB',
                'Coordinator',
            }
            launched = _time(row['launched'])
            started = _time(row['started'])
            ended = _time(row['ended'])
            assert launched <= started + 1.0 <= ended + 1.0

    def test_launch_and_lifetime_in_their_own_journals(self, procpool_run):
        launches: dict[str, int] = {}
        lives: dict[str, set[str]] = {}
        pids: dict[str, int] = {}
        for path in procpool_run['run_dir'].glob('*.jsonl'):
            lines = [orjson.loads(x) for x in path.read_bytes().splitlines()]
            pid = lines[0]['pid']
            for line in lines:
                uid = line.get('agent', {}).get('uid')
                if line['e'] == 'launch':
                    launches[uid] = pid
                elif line['e'] == 'lifecycle':
                    lives.setdefault(uid, set()).add(line['state'])
                    pids[uid] = pid
        assert set(launches) == set(lives)
        assert len(launches) == 3
        for uid, states in lives.items():
            assert states == {'starting', 'running', 'stopping', 'shutdown'}
            assert pids[uid] != launches[uid]  # a worker of the pool

    def test_prov_relations(self, procpool_run):
        g = provlog.load(procpool_run['run_dir']).nx
        lifetimes = [
            n
            for n, d in g.nodes(data=True)
            if d.get('prov:type') == ('provlog:AgentLifetime',)
        ]
        assert len(lifetimes) == 3
        for life in lifetimes:
            uid = life.removeprefix('plid:').removesuffix('/lifetime')
            agent = f'uuid:{uid}'
            launch = f'plid:{uid}/launch'
            assert g[life][agent]['wasAssociatedWith']['prov:role'] == 'agent'
            assert 'wasInformedBy' in g[life][launch]
            (launcher,) = (
                v
                for _, v, d in g.out_edges(launch, data=True)
                if d.get('prov:role') == 'launcher'
            )
            assert g.nodes[launcher]['prov:type'] == ('provlog:Client',)
            delegation = g[agent][launcher]['actedOnBehalfOf']
            assert delegation['prov:type'] == ('provlog:Launch',)


# ------------------------------------------- a process that joins the run


class TestJoinFromAnotherProcess:
    """An agent started by hand elsewhere joins the run: nothing is missing."""

    def test_worker_ran(self, joined):
        assert joined['returncode'] == 0, joined['stderr'][-3000:]
        assert joined['results'] == {'work': 7, 'delegate': 10, 'spawn': 8}
        assert [p.name for p in joined['out'].iterdir()] == [
            joined['run_dir'].name
        ]

    def test_both_sides_of_every_call(self, joined):
        run = provlog.load(joined['run_dir'])
        assert len(run.run.processes) == 2
        actions = run.run.actions.values()
        names = sorted(a.name or '' for a in actions)
        # double: on the child of work, the grandchild, the child of spawn
        assert names == [
            'add_one',
            'delegate',
            'double',
            'double',
            'double',
            'spawn',
            'work',
        ]
        for action in actions:
            assert action.has_caller_side, action.name
            assert action.has_execution_side, action.name
        assert [g.code for g in run.run.gaps()] == []
        assert main(['validate', str(joined['run_dir'])]) == 0

    def test_who_launched_whom(self, joined):
        run = provlog.load(joined['run_dir'])
        rows = _rows(run)
        by_agent = {r['agent']: r for r in rows}
        assert by_agent['helper']['launcherKind'] == 'client'
        assert 'inAction' not in by_agent['helper']
        hand = by_agent['hand-started']
        assert 'launcher' not in hand
        assert 'launched' not in hand  # started by hand: no launch
        grandchild = by_agent['grandchild']
        assert grandchild['launcher'] == 'hand-started'
        assert grandchild['launcherKind'] == 'agent'
        assert grandchild['inAction'] == 'delegate'
        children = sorted(
            (r['launcher'], r['inAction'])
            for r in rows
            if r['class'].endswith('.Child') and r['agent'] != 'grandchild'
        )
        assert children == [('hand-started', 'work'), ('helper', 'spawn')]
        assert len(rows) == 5
        for row in rows:
            assert row['state'] == 'shutdown', row
            assert _time(row['started']) <= _time(row['ended'])
            if 'launched' in row:
                assert _time(row['launched']) <= _time(row['started'])

    def test_manager_held_by_an_agent(self, joined):
        g = provlog.load(joined['run_dir']).nx
        (grandchild,) = (
            n
            for n, d in g.nodes(data=True)
            if d.get('provlog:agentName') == 'grandchild'
        )
        launch = grandchild.replace('uuid:', 'plid:') + '/launch'
        roles = {
            d['prov:role']: v
            for _, v, d in g.out_edges(launch, data=True)
            if d['rel'] == 'wasAssociatedWith'
        }
        assert g.nodes[roles['launcher']]['prov:label'] == 'hand-started'
        assert g.nodes[roles['manager']]['prov:type'] == ('provlog:Client',)
        assert 'actedOnBehalfOf' in g[grandchild][roles['launcher']]

    def test_export_meets_shapes_and_ontology(self, joined):
        run = provlog.load(joined['run_dir'])
        data = rdflib.Graph().parse(data=run.serialize('turtle').decode())
        conforms, _, report = pyshacl.validate(
            data, shacl_graph=rdflib.Graph().parse(SHAPES)
        )
        assert conforms, report
        ontology = rdflib.Graph().parse(ONTOLOGY)
        used = {
            str(term)
            for triple in data
            for term in triple
            if str(term).startswith(PROVLOG_NS)
        }
        assert f'{PROVLOG_NS}AgentLifetime' in used
        assert f'{PROVLOG_NS}launchedDuring' in used
        for term in sorted(used):
            iri = rdflib.URIRef(term)
            assert (iri, rdflib.RDFS.label, None) in ontology, term
            assert (iri, rdflib.RDFS.comment, None) in ontology, term


class TestWithoutRunId:
    """Without ``run_id`` the hand-started agent's side is missing."""

    def test_executions_not_observed(self, tmp_path):
        outcome = asyncio.run(_scenario(tmp_path, 'http', join=False))
        assert outcome['returncode'] == 0, outcome['stderr'][-3000:]
        assert len(list(outcome['out'].iterdir())) == 2
        run = provlog.load(outcome['run_dir'])
        assert 'execution-not-observed' in {g.code for g in run.run.gaps()}
        assert main(['validate', str(outcome['run_dir'])]) != 0
        assert 'hand-started' not in {r['agent'] for r in _rows(run)}
