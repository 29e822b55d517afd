"""Where and at what cost each execution ran; the run's context in export."""

from __future__ import annotations

import asyncio
import hashlib
import json
import multiprocessing
import os
import resource
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import networkx as nx
import orjson
import pyshacl
import pytest
import rdflib
from academy.agent import action
from academy.agent import Agent
from academy.exchange.cloud import spawn_http_exchange
from academy.manager import Manager
from examples.pipeline import open_port

import provlog
from provlog.academy import ProvenanceLogging
from provlog.capture import context
from provlog.capture.values import REDACTED
from provlog.capture.values import ValuePolicy

ROOT = Path(__file__).resolve().parents[2]
SHAPES = ROOT / 'ontologies' / 'provlog-shapes.ttl'
BURN = 0.3  # CPU seconds each burning action spends
MIB = 128  # memory the allocating action touches above the inherited peak


def _allocation_mib() -> int:
    """Enough to raise the worker's peak: Linux carries the parent's peak
    resident size across fork and exec into a spawned worker."""
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak_kib // 1024 + MIB


_RES_KEYS = {'tid', 'thread', 'cpu_user', 'cpu_sys', 'maxrss', 'thread_cpu'}


def _spin(seconds: float) -> int:
    """Spend ``seconds`` of this thread's CPU time."""
    end = time.thread_time() + seconds
    n = 0
    while time.thread_time() < end:
        n += 1
    return n


class Burner(Agent):
    """Spends CPU on its event loop or in a thread, and touches memory."""

    @action
    async def burn(self, seconds: float) -> int:
        return _spin(seconds)

    @action
    async def burn_in_thread(self, seconds: float) -> int:
        return await self.agent_run_sync(_spin, seconds)

    @action
    async def allocate(self, mib: int) -> int:
        block = bytearray(b'\x01') * (mib * 1024 * 1024)  # every page written
        return len(block)


async def _burner_workflow(output_dir: Path) -> dict[str, Any]:
    config = ProvenanceLogging(output_dir)
    mp_context = multiprocessing.get_context('spawn')
    with (
        spawn_http_exchange('127.0.0.1', open_port()) as factory,
        ProcessPoolExecutor(max_workers=1, mp_context=mp_context) as pool,
    ):
        async with await Manager.from_exchange_factory(
            factory, executors=pool, log_config=config
        ) as manager:
            burner = await manager.launch(Burner, name='burner')
            await burner.burn(BURN)
            await burner.burn_in_thread(BURN)
            await burner.allocate(_allocation_mib())
    return {'run_dir': config.run_dir, 'client_pid': os.getpid()}


@pytest.fixture(scope='module')
def burner_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One Burner agent in a spawn worker over the HTTP exchange."""
    out = tmp_path_factory.mktemp('burner') / 'prov-runs'
    return asyncio.run(_burner_workflow(out))


def _journals(run_dir: Path) -> list[list[dict[str, Any]]]:
    return [
        [orjson.loads(line) for line in path.read_bytes().splitlines()]
        for path in sorted(run_dir.glob('*.jsonl'))
    ]


def _executions(g: nx.MultiDiGraph) -> dict[str, dict[str, Any]]:
    return {
        n: d
        for n, d in g.nodes(data=True)
        if 'provlog:ActionExecution' in d.get('prov:type', ())
    }


def _by_action(g: nx.MultiDiGraph) -> dict[str, dict[str, Any]]:
    return {d['provlog:actionName']: d for d in _executions(g).values()}


def _out(g: nx.MultiDiGraph, node: str, rel: str) -> list[tuple[str, dict]]:
    return [
        (v, d) for _, v, d in g.out_edges(node, data=True) if d['rel'] == rel
    ]


class TestJournalResources:
    """Each execute_* line says where it ran and the usage at that moment."""

    def test_execute_lines_carry_res(self, workflow_run):
        seen = 0
        for lines in _journals(workflow_run['run_dir']):
            header = lines[0]
            for line in lines[1:]:
                if not line['e'].startswith('execute_'):
                    continue
                seen += 1
                res = line['res']
                assert set(res) == _RES_KEYS, line
                assert isinstance(res['tid'], int)
                assert isinstance(res['thread'], str)
                assert res['cpu_user'] >= 0
                assert res['cpu_sys'] >= 0
                assert res['maxrss'] > 1024 * 1024  # bytes, not KiB
                assert res['thread_cpu'] >= 0
                assert header['pid'] > 0
        assert seen >= 22  # 11 actions, start and end each

    def test_usage_grows_from_start_to_end(self, procpool_run):
        for lines in _journals(procpool_run['run_dir']):
            starts = {
                line['tag']: line['res']
                for line in lines
                if line['e'] == 'execute_start'
            }
            for line in lines:
                if line['e'] not in {
                    'execute_success',
                    'execute_exception',
                    'execute_cancelled',
                }:
                    continue
                before, after = starts[line['tag']], line['res']
                for key in ('cpu_user', 'cpu_sys', 'maxrss'):
                    assert after[key] >= before[key], (key, line)
                assert after['tid'] == before['tid']  # the agent's loop


class TestExecutionCost:
    """The model turns the samples into the execution's CPU and memory."""

    def test_cpu_on_the_loop_thread(self, burner_run):
        burn = _by_action(provlog.load(burner_run['run_dir']).nx)['burn']
        assert burn['provlog:threadCpu'] >= 0.9 * BURN
        cpu = burn['provlog:cpuUser'] + burn['provlog:cpuSystem']
        assert cpu >= 0.9 * BURN
        assert burn['provlog:thread'] == 'MainThread'

    def test_thread_work_counts_in_process_cpu_only(self, burner_run):
        sync = _by_action(provlog.load(burner_run['run_dir']).nx)[
            'burn_in_thread'
        ]
        cpu = sync['provlog:cpuUser'] + sync['provlog:cpuSystem']
        assert cpu >= 0.9 * BURN
        assert sync['provlog:threadCpu'] < 0.5 * BURN  # the loop waited
        # the worker thread's own CPU time, carried to the action
        assert sync['provlog:syncThreadCpu'] >= 0.9 * BURN

    def test_memory_growth(self, burner_run):
        allocate = _by_action(provlog.load(burner_run['run_dir']).nx)[
            'allocate'
        ]
        assert allocate['provlog:maxRssGrowth'] >= MIB // 2 * 1024 * 1024
        assert allocate['provlog:maxRss'] >= MIB * 1024 * 1024

    def test_heaviest_tasks(self, burner_run):
        result = provlog.load(burner_run['run_dir']).sparql('@heaviest-tasks')
        actions = result.column('action')
        # touching hundreds of MB costs CPU too (page faults): the three
        # heavy actions come first, in an order the machine decides
        assert sorted(actions[:3]) == ['allocate', 'burn', 'burn_in_thread']
        rows = {r['action']['value']: r for r in result.rows}
        assert int(rows['allocate']['rssGrowth']['value']) >= 64 * 2**20
        assert {r['agent']['value'] for r in result.rows} == {'burner'}


class TestWhere:
    """Executions name the host, process and thread that ran them."""

    def test_pid_and_host_of_each_execution(self, procpool_run):
        graph = provlog.load(procpool_run['run_dir'])
        g = graph.nx
        processes = {p.pid: p for p in graph.run.processes.values()}
        pids_by_agent: dict[str, set[int]] = {}
        for node, data in _executions(g).items():
            pid = data['provlog:pid']
            assert pid != os.getpid()  # not the client's process
            assert data['provlog:host'] == processes[pid].host
            assert isinstance(data['provlog:threadId'], int)
            ((agent, assoc),) = _out(g, node, 'wasAssociatedWith')
            assert assoc['prov:role'] == 'executor'
            assert assoc['prov:plan'].startswith('plid:code/')
            pids_by_agent.setdefault(g.nodes[agent]['prov:label'], set()).add(
                pid
            )
            # the agent acted through the process that ran the execution
            # (and, as a launched agent, on behalf of its launcher)
            (process,) = (
                p
                for p, _ in _out(g, agent, 'actedOnBehalfOf')
                if 'provlog:Process' in g.nodes[p].get('prov:type', ())
            )
            assert g.nodes[process]['provlog:pid'] == pid
        assert all(len(p) == 1 for p in pids_by_agent.values())
        assert len(set.union(*pids_by_agent.values())) == 3  # spawn workers

    def test_where_query(self, procpool_run):
        result = provlog.load(procpool_run['run_dir']).sparql('@where')
        rows = [
            (
                int(r['pid']['value']),
                r.get('agent', {}).get('value'),
                r.get('action', {}).get('value'),
                int(r['count']['value']),
            )
            for r in result.rows
        ]
        (client,) = (r for r in rows if r[0] == os.getpid())
        assert client[1].startswith('client')
        assert client[2:] == (None, 0)
        done = {(agent, act): n for _, agent, act, n in rows if act}
        assert done[('worker-a', 'square')] == 3
        assert done[('coordinator', 'run_pipeline')] == 1
        pids = {pid for pid, _, act, _ in rows if act}
        assert len(pids) == 3
        assert os.getpid() not in pids


def _git_head(path: str) -> str | None:
    try:
        out = subprocess.run(
            ['git', 'rev-parse', 'HEAD'],
            cwd=os.path.dirname(path),
            capture_output=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.decode().strip()


class TestProcessContext:
    """Each journal says what its process was and ran, once."""

    def test_header_and_context_line(self, procpool_run):
        for lines in _journals(procpool_run['run_dir']):
            header, ctx = lines[0], lines[1]
            assert header['implementation'] == 'CPython'
            assert header['argv'] == [
                a for a in header['argv'] if isinstance(a, str)
            ]
            assert header['cwd'] == os.getcwd()
            assert header['script'] == os.path.abspath(
                sys.modules['__main__'].__file__ or ''
            )
            assert ctx['e'] == 'context'
            packages = ctx['packages']
            assert packages == sorted(packages, key=lambda s: s.split('=='))
            assert f'provlog=={provlog.__version__}' in packages
            assert any(p.startswith('academy-py==') for p in packages)
            digest = hashlib.sha256('\n'.join(packages).encode()).hexdigest()
            assert ctx['packages_sha256'] == digest
            head = _git_head(header['script'])
            assert (ctx['git'] or {}).get('commit') == head

    def test_export_models_processes_software_and_code(self, workflow_run):
        graph = provlog.load(workflow_run['run_dir'])
        g = graph.nx
        processes = [
            n
            for n, d in g.nodes(data=True)
            if d.get('prov:type') == ('provlog:Process',)
        ]
        assert len(processes) == len(graph.run.processes)
        software = {g.nodes[p]['provlog:software']['$'] for p in processes}
        assert len(software) == 1  # one Python, one set of packages
        sw = g.nodes[software.pop()]
        assert sw['provlog:pythonVersion'] == '.'.join(
            map(str, sys.version_info[:3])
        )
        assert sw['provlog:packageCount'] == len(
            sw['provlog:packages'].split('\n')
        )
        codes = {g.nodes[p]['provlog:program']['$'] for p in processes}
        (code,) = codes
        assert 'prov:Plan' in g.nodes[code]['prov:type']
        head = _git_head(g.nodes[code]['provlog:script'])
        assert g.nodes[code].get('provlog:gitCommit') == head
        # in PROV-O the plan is the executor association's hadPlan
        rdf = graph.to_rdflib()
        prov = rdflib.Namespace('http://www.w3.org/ns/prov#')
        plans = set(rdf.objects(None, prov.hadPlan))
        assert plans == {rdflib.URIRef(provlog.mapping.rdf.expand(code))}

    def test_software_query(self, procpool_run):
        result = provlog.load(procpool_run['run_dir']).sparql('@software')
        assert len(result.rows) == 4  # the client and three workers
        assert {int(r['pid']['value']) for r in result.rows} >= {os.getpid()}
        assert len(set(result.column('packagesSha256'))) == 1
        assert set(result.column('python')) == {
            f'CPython {".".join(map(str, sys.version_info[:3]))}'
        }

    def test_shacl_conforms(self, burner_run):
        data = rdflib.Graph().parse(
            data=provlog.load(burner_run['run_dir'])
            .serialize('turtle')
            .decode(),
            format='turtle',
        )
        conforms, _, report = pyshacl.validate(
            data, shacl_graph=rdflib.Graph().parse(SHAPES)
        )
        assert conforms, report


class TestContextParts:
    """argv and environment are allow-listed and redacted; git never fails."""

    def test_argv_and_env_redacted(self, monkeypatch):
        monkeypatch.setattr(
            sys,
            'argv',
            ['run.py', '--api-key=abc123456', '--token', 'xyz987654', 'x=1'],
        )
        monkeypatch.setenv('OMP_NUM_THREADS', '3')
        monkeypatch.setenv('PROVLOG_TEST_SECRET_TOKEN', 'hunter22222')
        monkeypatch.setenv('PROVLOG_TEST_OTHER', 'not recorded')
        monkeypatch.setattr(
            context,
            'ENV_ALLOW',
            (*context.ENV_ALLOW, 'PROVLOG_TEST_SECRET_TOKEN'),
        )
        fields = context.header_fields(ValuePolicy())
        assert fields['argv'] == [
            'run.py',
            f'--api-key={REDACTED}',
            '--token',
            REDACTED,
            'x=1',
        ]
        assert fields['env']['OMP_NUM_THREADS'] == '3'
        assert fields['env']['PROVLOG_TEST_SECRET_TOKEN'] == REDACTED
        assert 'PROVLOG_TEST_OTHER' not in fields['env']
        assert 'abc123456' not in json.dumps(fields)

    @pytest.mark.skipif(shutil.which('git') is None, reason='needs git')
    def test_git_commit_and_dirty(self, tmp_path):
        repo = tmp_path / 'repo'
        (repo / 'src').mkdir(parents=True)
        script = repo / 'src' / 'main.py'
        script.write_text('print(1)\n')

        def git(*args: str) -> str:
            return subprocess.run(
                ['git', *args],
                cwd=repo,
                check=True,
                capture_output=True,
                env={
                    **os.environ,
                    'GIT_AUTHOR_NAME': 't',
                    'GIT_AUTHOR_EMAIL': 't@example.invalid',
                    'GIT_COMMITTER_NAME': 't',
                    'GIT_COMMITTER_EMAIL': 't@example.invalid',
                },
            ).stdout.decode()

        git('init', '-q')
        git('add', '.')
        git('commit', '-qm', 'one')
        head = git('rev-parse', 'HEAD').strip()
        clean = context.collect(str(script))
        assert clean['git'] == {
            'commit': head,
            'dirty': False,
            'root': str(repo.resolve()),
        }
        assert (
            clean['script_sha256']
            == hashlib.sha256(script.read_bytes()).hexdigest()
        )
        script.write_text('print(2)\n')
        context._git.cache_clear()
        assert context.collect(str(script))['git']['dirty'] is True

    def test_no_repository_no_git(self, tmp_path):
        script = tmp_path / 'alone.py'
        script.write_text('pass\n')
        line = context.collect(str(script))
        assert line['git'] is None
        assert 'errors' not in line
        assert line['took'] < 5
