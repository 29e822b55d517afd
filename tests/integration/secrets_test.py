"""Secrets and hostile values against real Academy agents (issue 11 D, E)."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import textwrap
import time
import types
from collections import namedtuple
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pydantic
import pytest
from academy.agent import action
from academy.agent import Agent
from academy.exchange import LocalExchangeFactory
from academy.manager import Manager

import provlog
from provlog.academy import ProvenanceLogging
from tests.provcheck import check_provjson

ROOT = Path(__file__).resolve().parents[2]
SECRET = 'hunter2-sk-live-POSITIONAL'
FIELD = 'sk-field-DATACLASS-7f3a'
MODEL = 'sk-field-PYDANTIC-9c1e'
TUPLE = 'sk-field-NAMEDTUPLE-44aa'
SPACE = 'sk-field-NAMESPACE-0b0b'
BEARER = 'Bearer sk-header-LIST-5e5e'
BYTES = b'sk-bytes-KEY-8d8d'
EXPORTS = ('provjson', 'provn', 'turtle', 'jsonld', 'nt')
ALL = (SECRET, FIELD, MODEL, TUPLE, SPACE, BEARER, BYTES.decode())


@dataclass
class Login:
    user: str
    password: str


class Model(pydantic.BaseModel):
    user: str
    api_token: str


Creds = namedtuple('Creds', ['user', 'secret'])


class SlowRepr:
    """A value whose ``repr`` takes 5 s (and that has no fields)."""

    __slots__ = ()

    def __repr__(self) -> str:
        time.sleep(5)
        return 'SlowRepr()'


class CancelRepr:
    """A value whose ``repr`` raises ``CancelledError``."""

    __slots__ = ()

    def __repr__(self) -> str:
        raise asyncio.CancelledError


class Vault(Agent):
    @action
    async def login(self, user: str, password: str) -> str:
        return f'welcome {user}'

    @action
    async def take(self, *args: Any, **kwargs: Any) -> int:
        return len(args) + len(kwargs)

    @action
    async def check(self, user: str, password: str) -> None:
        raise ValueError(f'bad password {password} for {user}')


def _run_bytes(run_dir: Path) -> bytes:
    return b''.join(p.read_bytes() for p in sorted(run_dir.rglob('*.jsonl')))


@pytest.fixture(scope='module')
def secrets_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp('secrets')
    config = ProvenanceLogging(out)
    timings: dict[str, float] = {}
    # The launcher learns the agent's class from the Manager's INFO record
    # 'Launched agent'; make sure a WARNING root does not filter it out.
    manager_logger = logging.getLogger('academy.manager')
    level = manager_logger.level
    manager_logger.setLevel(logging.INFO)

    async def main() -> None:
        async with await Manager.from_exchange_factory(
            LocalExchangeFactory(),
            log_config=config,
        ) as manager:
            vault = await manager.launch(Vault, name='vault')
            assert await vault.login('ada', SECRET) == 'welcome ada'
            assert (
                await vault.take(
                    Login('ada', FIELD),
                    Model(user='ada', api_token=MODEL),
                    Creds('ada', TUPLE),
                    types.SimpleNamespace(user='ada', password=SPACE),
                    [('Authorization', BEARER), ('Accept', 'text/plain')],
                    {b'password': BYTES, b'user': b'ada'},
                )
                == 6
            )
            with pytest.raises(Exception, match='bad password'):
                await vault.check('ada', SECRET)
            start = time.perf_counter()
            assert await vault.take(SlowRepr()) == 1
            timings['slow_repr'] = time.perf_counter() - start
            assert await vault.take(CancelRepr()) == 1
            assert await vault.take(10**5000, '\ud800', key='\udc80') == 3
            start = time.perf_counter()
            assert await vault.take(['y' * 1_000_000] * 2000) == 1
            timings['shared'] = time.perf_counter() - start

    try:
        asyncio.run(main())
    finally:
        manager_logger.setLevel(level)
    return {
        'run_dir': config.run_dir,
        'graph': provlog.load(config.run_dir),
        'timings': timings,
    }


class TestSecretsNeverWritten:
    """A secret passed by position, in fields, pairs or bytes keys, or
    echoed by an exception, is masked in the journal and every export."""

    def test_not_in_run_folder(self, secrets_run):
        data = _run_bytes(secrets_run['run_dir'])
        assert b'welcome ada' in data or b'ada' in data
        for secret in ALL:
            assert secret.encode() not in data, secret

    @pytest.mark.parametrize('fmt', EXPORTS)
    def test_not_in_exports(self, secrets_run, fmt):
        text = secrets_run['graph'].serialize(fmt)
        for secret in ALL:
            assert secret.encode() not in text, (fmt, secret)

    def test_positional_secret_masked_by_parameter_name(self, secrets_run):
        data = _run_bytes(secrets_run['run_dir'])
        starts = [
            orjson.loads(line)
            for line in data.splitlines()
            if b'"e":"start"' in line and b'"action":"login"' in line
        ]
        (start,) = starts
        assert start['args'][0]['value'] == 'ada'
        assert start['args'][1]['redacted'] is True

    def test_exception_message_masked(self, secrets_run):
        data = _run_bytes(secrets_run['run_dir'])
        errors = [
            orjson.loads(line)['error']
            for line in data.splitlines()
            if b'"e":"execute_exception"' in line
        ]
        (error,) = errors
        assert error['type'] == 'ValueError'
        assert error['message'] == 'bad password [REDACTED] for ada'
        assert 'bad password [REDACTED]' in error['traceback']
        assert 'raise ValueError' in error['traceback']

    def test_fields_previewed_without_secrets(self, secrets_run):
        data = _run_bytes(secrets_run['run_dir'])
        starts = [
            orjson.loads(line)
            for line in data.splitlines()
            if b'"e":"start"' in line and b'"action":"take"' in line
        ]
        args = max(starts, key=lambda s: len(s['args']))['args']
        assert [a['preview'] for a in args] == [
            '{"user":"ada","password":"[REDACTED]"}',
            '{"user":"ada","api_token":"[REDACTED]"}',
            '{"user":"ada","secret":"[REDACTED]"}',
            '{"user":"ada","password":"[REDACTED]"}',
            '[["Authorization","[REDACTED]"],["Accept","text/plain"]]',
            '{"b\'password\'":"[REDACTED]","b\'user\'":"b\'ada\'"}',
        ]
        assert all(a['redacted'] for a in args)

    def test_export_valid(self, secrets_run):
        graph = secrets_run['graph']
        assert graph.stats()['states']['completed'] == 6
        assert graph.stats()['states']['failed'] == 1
        check_provjson(graph.to_provjson())


class TestHostileReprDoesNotBlockTheHost:
    """A slow or raising ``__repr__`` costs the host a bounded wait only."""

    def test_slow_repr_round_trip_fast(self, secrets_run):
        assert secrets_run['timings']['slow_repr'] < 0.5

    def test_slow_repr_recorded_as_timed_out(self, secrets_run):
        data = _run_bytes(secrets_run['run_dir'])
        assert b'<repr timed out>' in data

    def test_cancelled_error_in_repr_recorded(self, secrets_run):
        data = _run_bytes(secrets_run['run_dir'])
        assert b'<unrepresentable' in data
        assert b'CancelledError' in data


def _lines(run_dir: Path, kind: str) -> list[dict[str, Any]]:
    return [
        orjson.loads(line)
        for line in _run_bytes(run_dir).splitlines()
        if f'"e":"{kind}"'.encode() in line
    ]


class TestAnyValueEncodes:
    """Huge ints, lone surrogates and shared references make proper lines."""

    def test_no_encode_error(self, secrets_run):
        assert not _lines(secrets_run['run_dir'], 'encode_error')

    def test_big_int_and_surrogates_start_line(self, secrets_run):
        starts = [
            s
            for s in _lines(secrets_run['run_dir'], 'start')
            if s['args'] and s['args'][0]['type'] == 'int'
        ]
        (start,) = starts
        assert start['tag']
        assert [a['type'] for a in start['args']] == ['int', 'str']
        assert start['args'][0]['preview'] == '<int of 16610 bits>'
        assert start['args'][1]['preview'] == '\\ud800'
        assert list(start['kwargs']) == ['key']

    def test_shared_references_fast_and_capped(self, secrets_run):
        assert secrets_run['timings']['shared'] < 1.0
        (start,) = (
            s
            for s in _lines(secrets_run['run_dir'], 'start')
            if s['args'] and s['args'][0].get('length') == 2000
        )
        assert start['args'][0]['capped'] is True
        assert start['args'][0]['size'] > 2_000_000_000


_SYSTEM_EXIT = """
import asyncio, sys
from academy.agent import Agent, action
from academy.exchange import LocalExchangeFactory
from academy.manager import Manager
from provlog.academy import ProvenanceLogging

class Exits:
    __slots__ = ()
    def __repr__(self):
        raise SystemExit(3)

class Echo(Agent):
    @action
    async def take(self, value):
        return 7

async def main():
    async with await Manager.from_exchange_factory(
        LocalExchangeFactory(), log_config=ProvenanceLogging(sys.argv[1])
    ) as manager:
        echo = await manager.launch(Echo)
        print('result', await echo.take(Exits()), flush=True)

asyncio.run(main())
print('end', flush=True)
"""


class TestSystemExitInRepr:
    """``SystemExit`` raised by a ``__repr__`` never ends the host."""

    def test_exit_code_unchanged(self, tmp_path):
        proc = subprocess.run(
            [sys.executable, '-c', textwrap.dedent(_SYSTEM_EXIT), tmp_path],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=ROOT,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stdout.split() == ['result', '7', 'end']
        graph = provlog.load(next(tmp_path.iterdir()))
        assert graph.stats()['states']['completed'] == 1
