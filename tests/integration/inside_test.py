"""What each action logged, printed and warned, attributed to it exactly."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import re
import subprocess
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest
from academy.exchange import LocalExchangeFactory
from academy.exchange.cloud import spawn_http_exchange
from academy.manager import Manager
from examples.pipeline import open_port

import provlog
from provlog.academy import ProvenanceLogging
from tests.workflows.chatty import Chatty

CALLS = 20


async def _calls(
    config: ProvenanceLogging, *, pool: bool, secret: str = 'none'
) -> list[int]:
    if pool:
        context = multiprocessing.get_context('spawn')
        with (
            spawn_http_exchange('127.0.0.1', open_port()) as factory,
            ProcessPoolExecutor(1, mp_context=context) as executor,
        ):
            return await _gather(config, factory, executor, secret)
    return await _gather(config, LocalExchangeFactory(), None, secret)


async def _gather(
    config: ProvenanceLogging, factory: Any, executor: Any, secret: str
) -> list[int]:
    async with await Manager.from_exchange_factory(
        factory,
        executors=executor,
        log_config=config,
    ) as manager:
        chatty = await manager.launch(Chatty)
        return list(
            await asyncio.gather(
                *(chatty.work(n, password=secret) for n in range(CALLS)),
            ),
        )


async def _noisy(config: ProvenanceLogging, lines: int) -> None:
    """One action on the local exchange that logs ``lines`` INFO lines."""
    async with await Manager.from_exchange_factory(
        LocalExchangeFactory(),
        log_config=config,
    ) as manager:
        chatty = await manager.launch(Chatty)
        await chatty.noisy(lines)


def _insides(run_dir: Path) -> dict[int, list[dict[str, Any]]]:
    """Each call's records, by the call number its start line carries."""
    starts: dict[str, int] = {}
    ends: dict[str, list[dict[str, Any]]] = {}
    for journal in run_dir.glob('*.jsonl'):
        for raw in journal.read_bytes().splitlines():
            line = orjson.loads(raw)
            if line.get('e') == 'start' and line.get('action') == 'work':
                starts[line['tag']] = line['args'][0]['value']
            if line.get('e', '').startswith('execute_') and 'inside' in line:
                ends[line['tag']] = line['inside']['records']
    return {starts[tag]: records for tag, records in ends.items()}


_OURS = re.compile(r'call \d+ (starts|ends)|thread work for call \d+')


def _ours(messages: list[str]) -> list[str]:
    """The lines the test's actions logged, without the runtime's own."""
    return [m for m in messages if _OURS.fullmatch(m)]


def _own(n: int, records: list[dict[str, Any]]) -> None:
    """Exactly the lines, output and warning call ``n`` produced."""

    def texts(kind: str) -> list[str]:
        return [r.get('msg') or r['text'] for r in records if r['k'] == kind]

    # the runtime may log about this execution too (a busy machine:
    # "Thread-pool executor ... is overloaded"); that is the call's own
    logs = [r for r in records if r['k'] == 'log']
    assert all(
        r['logger'] == 'tests.chatty' or r['logger'].startswith('academy')
        for r in logs
    ), logs
    assert _ours([r['msg'] for r in logs]) == [
        f'call {n} starts',
        f'call {n} ends',
        f'thread work for call {n}',
    ]
    assert ''.join(texts('stdout')) == (
        f'print from call {n}\nthread print {n}\n'
    )
    assert ''.join(texts('stderr')).startswith(f'stderr from call {n}\n')
    assert texts('warning') == [f'warning from call {n}']


@pytest.fixture(scope='module', params=('local', 'pool'))
def chatty_run(request, tmp_path_factory):
    """Twenty concurrent calls on one agent, each logging between awaits."""
    out = tmp_path_factory.mktemp(request.param)
    config = ProvenanceLogging(out)
    with warnings.catch_warnings():
        warnings.simplefilter('always')  # as a plain interpreter shows them
        results = asyncio.run(
            _calls(
                config,
                pool=request.param == 'pool',
                secret='s3cr3t-pass',
            ),
        )
    assert results == [2 * n for n in range(CALLS)]
    return config.run_dir


class TestAttribution:
    """Concurrent calls keep exactly their own lines, prints and warnings."""

    def test_each_call_keeps_its_own(self, chatty_run):
        insides = _insides(chatty_run)
        assert sorted(insides) == list(range(CALLS))
        for n, records in insides.items():
            _own(n, records)

    def test_levels_and_extras(self, chatty_run):
        insides = _insides(chatty_run)
        first = insides[0][0]
        assert first['k'] == 'log'
        assert first['level'] == 'INFO'
        assert first['logger'] == 'tests.chatty'
        assert first['extra'] == {'call': '0', 'token': '[REDACTED]'}
        # DEBUG is below the default level
        assert not any(
            'debug detail' in str(r) for rs in insides.values() for r in rs
        )

    def test_secret_never_written(self, chatty_run):
        for journal in chatty_run.glob('*.jsonl'):
            assert b's3cr3t-pass' not in journal.read_bytes()
        graph = provlog.load(chatty_run)
        assert b's3cr3t-pass' not in graph.serialize('turtle')

    def test_in_the_graph_and_sparql(self, chatty_run):
        graph = provlog.load(chatty_run)
        rows = graph.sparql(
            """
            SELECT ?exec ?msg WHERE {
              ?log a provlog:LogRecord ; provlog:message ?msg ;
                   prov:wasGeneratedBy ?exec .
            }
            """,
        ).rows
        assert len(_ours([r['msg']['value'] for r in rows])) == 3 * CALLS
        assert main_ok(graph)


def main_ok(graph: Any) -> bool:
    """The run with its log entities still validates."""
    return not [p for p in graph.validate() if p.kind != 'completeness']


class TestCapsAndOptions:
    """Caps cut and count; the options turn capture off."""

    def test_cap_counts_what_was_cut(self, tmp_path):
        config = ProvenanceLogging(tmp_path, max_action_records=5)
        asyncio.run(_noisy(config, 50))
        (inside,) = _all_insides(config.run_dir)
        assert len(inside['records']) == 5
        assert inside['cut_records'] == 45

    def test_off_leaves_streams_and_logging_alone(self, tmp_path):
        config = ProvenanceLogging(
            tmp_path, capture_logs=False, capture_output=False
        )
        handle = logging.Logger.handle
        stdout = sys.stdout
        stop = config.init_logging()
        try:
            assert logging.Logger.handle is handle
            assert sys.stdout is stdout
        finally:
            stop()

    def test_hooks_removed_after_the_run(self, tmp_path):
        handle = logging.Logger.handle
        stdout, stderr = sys.stdout, sys.stderr
        root_level = logging.getLogger().level
        stop = ProvenanceLogging(tmp_path).init_logging()
        assert sys.stdout is not stdout
        stop()
        assert logging.Logger.handle is handle
        assert (sys.stdout, sys.stderr) == (stdout, stderr)
        assert logging.getLogger().level == root_level

    def test_debug_level_option(self, tmp_path):
        config = ProvenanceLogging(tmp_path, log_level='DEBUG')
        asyncio.run(_calls(config, pool=False))
        assert any(
            r.get('msg') == 'call 3 debug detail'
            for r in _insides(config.run_dir)[3]
        )


def _all_insides(run_dir: Path) -> list[dict[str, Any]]:
    out = []
    for journal in run_dir.glob('*.jsonl'):
        for raw in journal.read_bytes().splitlines():
            line = orjson.loads(raw)
            if 'inside' in line:
                out.append(line['inside'])
    return out


class TestFlowcept:
    """The forwarded task carries the execution's stdout, stderr and logs."""

    def test_outputs_forwarded(self, chatty_run, tmp_path):
        from provlog.testing import flowcept_settings

        settings = flowcept_settings(tmp_path / 'settings.yaml')
        provlog_cli = Path(sys.executable).parent / 'provlog'
        subprocess.run(
            [
                str(provlog_cli),
                'forward',
                str(chatty_run),
                '--to',
                'flowcept',
                '--settings',
                str(settings),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        messages = [
            orjson.loads(line)
            for line in (tmp_path / 'buffer.jsonl').read_bytes().splitlines()
        ]
        tasks = [
            m
            for m in messages
            if m.get('type') == 'task' and m.get('activity_id') == 'work'
        ]
        assert len(tasks) == CALLS
        workflow = next(m for m in messages if m.get('type') == 'workflow')
        contexts = workflow['custom_metadata']['provlog']['context']
        assert contexts
        assert all('packages_sha256' in c and 'pid' in c for c in contexts)
        for task in tasks:
            assert task['telemetry_at_end']['process']['cpu_times']['user']
            assert task['telemetry_at_start']['thread']['cpu_time'] is not None
            n = int(task['stdout'].split()[3])
            assert task['stdout'] == f'print from call {n}\nthread print {n}\n'
            assert task['stderr'].startswith(f'stderr from call {n}\n')
            logs = task['custom_metadata']['provlog']['logs']
            assert _ours([x['msg'] for x in logs]) == [
                f'call {n} starts',
                f'call {n} ends',
                f'thread work for call {n}',
            ]


class TestWhyShowsIt:
    """``provlog why`` shows each execution's lines, bounded, and its cost."""

    def _why(self, run_dir: Path, tag: str, *extra: str) -> str:
        out = subprocess.run(
            [
                str(Path(sys.executable).parent / 'provlog'),
                'why',
                str(run_dir),
                tag,
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
            env={**os.environ, 'COLUMNS': '200'},
        )
        return out.stdout

    def test_lines_and_cost(self, chatty_run):
        starts = {
            line['args'][0]['value']: line['tag']
            for journal in chatty_run.glob('*.jsonl')
            for line in map(orjson.loads, journal.read_bytes().splitlines())
            if line.get('e') == 'start' and line.get('action') == 'work'
        }
        text = self._why(chatty_run, starts[7])
        assert 'INFO tests.chatty: call 7 starts' in text
        assert 'stdout: print from call 7' in text
        assert 'warning UserWarning: warning from call 7' in text
        assert 'call 8' not in text
        assert 'cpu ' in text
        assert ' pid ' in text

    def test_bounded_unless_verbose(self, tmp_path):
        config = ProvenanceLogging(tmp_path)
        asyncio.run(_noisy(config, 12))
        (tag,) = provlog.load(config.run_dir).run.actions
        short = self._why(config.run_dir, tag)
        assert 'line 4' in short
        assert 'line 5' not in short
        assert '7 more (--verbose)' in short
        full = self._why(config.run_dir, tag, '--verbose')
        assert 'line 11' in full
