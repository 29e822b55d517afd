"""Snapshots bounded by their budget; hostile values; secrets by name."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import subprocess
import sys
import textwrap
import time
import types
import uuid
from collections import namedtuple
from typing import Any

import attrs
import orjson
import pydantic
import pytest
from academy.agent import action
from academy.agent import Agent
from academy.identifier import AgentId
from academy.identifier import UserId

from provlog.capture.encoder import Encoder
from provlog.capture.encoder import parameter_names
from provlog.capture.records import _error
from provlog.capture.records import format_error
from provlog.capture.values import describe
from provlog.capture.values import freeze
from provlog.capture.values import Frozen
from provlog.capture.values import hash_value
from provlog.capture.values import MUTABLE_COPY_BYTES
from provlog.capture.values import Opaque
from provlog.capture.values import REDACTED
from provlog.capture.values import REPR_TIMEOUT
from provlog.capture.values import Scrubber
from provlog.capture.values import SNAPSHOT_SECONDS
from provlog.capture.values import ValuePolicy
from provlog.testing import capture_events

POLICY = ValuePolicy()
HANDLE = logging.getLogger('academy.handle')
MANAGER = logging.getLogger('academy.manager')
RUNTIME = logging.getLogger('academy.runtime')

_MEASURE = """
import resource, sys, time
from provlog.capture.values import ValuePolicy, describe, freeze
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
value = ['y' * 1_000_000] * 2000
start = time.perf_counter()
desc = describe(freeze(value), ValuePolicy())
took = time.perf_counter() - start
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(took, (after - before) * 1024, desc['capped'], desc['length'])
"""


class TestSharedReferences:
    """A value of shared references costs its distinct size, not expanded."""

    def test_two_gb_expanded_value_in_bounded_time_and_memory(self):
        proc = subprocess.run(
            [sys.executable, '-c', textwrap.dedent(_MEASURE)],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        took, extra, capped, length = proc.stdout.split()
        assert float(took) < 0.5
        assert int(extra) < 200 * 1024 * 1024
        assert capped == 'True'
        assert length == '2000'

    def test_preview_of_shared_references_is_bounded(self):
        value = ['z' * 1000] * 50  # 50 kB expanded, under the size cap
        desc = describe(freeze(value), POLICY)
        assert len(desc['preview']) == POLICY.preview_chars
        assert desc['size'] > 50_000

    def test_shared_child_hashes_like_a_copy(self):
        shared = [1, 2, 3]
        assert hash_value([shared, shared]) == hash_value([[1, 2, 3]] * 2)
        assert hash_value([shared, shared]) == hash_value(
            [[1, 2, 3], [1, 2, 3]],
        )


class TestBigScalars:
    """Huge ints, lone surrogates and big bytes encode, hash once, JSON-safe."""

    @pytest.mark.parametrize(
        'value',
        (10**5000, -(10**5000), '\ud800', 'a\udfffb', {'\ud800': [10**5000]}),
        ids=['int', 'negative-int', 'surrogate', 'inner-surrogate', 'nested'],
    )
    def test_description_is_json(self, value):
        desc = describe(freeze(value), POLICY)
        orjson.dumps(desc)  # raises on a lone surrogate or a > 64-bit int
        assert 'value' not in desc

    def test_huge_int_hash_distinct(self):
        assert hash_value(10**5000) != hash_value(10**5000 + 1)

    def test_start_and_success_lines_keep_tag(self):
        agent = AgentId.new(name='a')
        tag = uuid.uuid4()
        base = {'academy.action': 'f', 'academy.action_tag': tag}
        with capture_events() as events:
            HANDLE.debug(
                'start',
                extra=base
                | {
                    'academy.action_state': 'start',
                    'academy.action_args': (10**5000, '\ud800'),
                    'academy.action_kwargs': {'k': '\udc80x'},
                    'academy.agent_id': agent,
                },
            )
            HANDLE.debug(
                'ok',
                extra=base
                | {
                    'academy.action_state': 'success',
                    'academy.result': 10**5000,
                    'academy.agent_id': agent,
                },
            )
        assert [e['e'] for e in events] == ['start', 'success']
        assert all(e['tag'] == str(tag) for e in events)
        assert len(events[0]['args']) == 2
        for event in events:
            orjson.dumps(event)

    def test_agent_name_with_surrogate_is_json(self):
        agent = AgentId.new(name='\ud800agent')
        with capture_events() as events:
            HANDLE.debug(
                'start',
                extra={
                    'academy.action': 'f',
                    'academy.action_tag': uuid.uuid4(),
                    'academy.action_state': 'start',
                    'academy.action_args': (),
                    'academy.action_kwargs': {},
                    'academy.agent_id': agent,
                },
            )
        orjson.dumps(events)

    def test_large_bytes_hashed_without_copy_or_repr(self):
        big = b'\x00' * (200 * 1024 * 1024)
        start = time.perf_counter()
        desc = describe(freeze(big), POLICY)
        assert time.perf_counter() - start < 2.0
        assert desc['capped'] is True
        assert 'preview' not in desc


class TestMutableBuffers:
    """bytearray and memoryview are copied within a cap on the host."""

    def test_bytearray_copied(self):
        data = bytearray(b'abc')
        frozen = freeze(data)
        data[0] = ord('z')
        desc = describe(frozen, POLICY)
        assert desc['type'] == 'bytearray'
        assert 'abc' in desc['preview']
        assert desc['sha256'] == hash_value(b'abc')  # same content, same hash

    def test_huge_bytearray_prefix_and_length(self):
        data = bytearray(3 * MUTABLE_COPY_BYTES)
        start = time.perf_counter()
        frozen = freeze(data)
        assert time.perf_counter() - start < 0.3
        assert isinstance(frozen, Frozen)
        assert frozen.truncated
        assert frozen.length == len(data)
        assert len(frozen.items[0]) == MUTABLE_COPY_BYTES

    def test_memoryview_and_released_view(self):
        view = memoryview(b'hello world')
        assert describe(freeze(view), POLICY)['sha256'] == hash_value(
            b'hello world',
        )
        view.release()
        assert isinstance(freeze(view), Frozen)


class SlowRepr:
    __slots__ = ()

    def __repr__(self) -> str:
        time.sleep(0.3)
        return 'slow'


def _raising(exc: BaseException) -> object:
    """An object without fields whose ``repr`` raises ``exc``."""

    def fail(self: object) -> str:
        raise exc

    return type('RaisingRepr', (), {'__slots__': (), '__repr__': fail})()


@pytest.fixture
def idle_helpers():
    """Let helper threads stuck in slow reprs of other tests finish."""
    time.sleep(0.35)


class HostileList(list[int]):
    def __iter__(self) -> Any:
        raise SystemExit(4)

    def __len__(self) -> int:
        raise KeyboardInterrupt


class HostileAttrs:
    def __init__(self) -> None:
        self.x = 1

    def __getattribute__(self, name: str) -> Any:
        raise SystemExit(5)

    @property
    def y(self) -> int:
        raise SystemExit(6)


class TestHostBudget:
    """The host's thread waits a bounded time, whatever the value."""

    def test_slow_repr_bounded(self):
        start = time.perf_counter()
        frozen = freeze(SlowRepr())
        assert time.perf_counter() - start < REPR_TIMEOUT + 0.05
        assert isinstance(frozen, Opaque)
        assert frozen.text == '<repr timed out>'

    def test_many_slow_reprs_bounded_by_time_budget(self):
        start = time.perf_counter()
        frozen = freeze([SlowRepr() for _ in range(50)])
        took = time.perf_counter() - start
        assert took < SNAPSHOT_SECONDS + REPR_TIMEOUT + 0.2
        assert isinstance(frozen, Frozen)

    def test_million_strings_frozenset(self):
        big = frozenset(str(n) for n in range(1_000_000))
        start = time.perf_counter()
        frozen = freeze(big)
        # budget 50 ms (unbounded it took 1.9 s); the rest is a noisy host
        assert time.perf_counter() - start < 0.25
        assert isinstance(frozen, Frozen)
        assert frozen.truncated
        assert frozen.length == len(big)

    def test_object_with_a_million_fields(self):
        value = types.SimpleNamespace(**{f'f{n}': n for n in range(10**6)})
        start = time.perf_counter()
        frozen = freeze(value)
        # budget 50 ms; the rest is a noisy host
        assert time.perf_counter() - start < 0.25
        assert isinstance(frozen, Frozen)
        assert frozen.truncated

    def test_set_hash_independent_of_order(self):
        assert hash_value({'a', 'b', 'c'}) == hash_value(
            frozenset(['c', 'b', 'a']),
        )


class TestHostileUserCode:
    """No exception of any class raised by user code reaches the host."""

    @pytest.mark.parametrize(
        'exc',
        (
            SystemExit(3),
            KeyboardInterrupt(),
            asyncio.CancelledError(),
            GeneratorExit(),
            RuntimeError('no'),
        ),
    )
    def test_repr_raising(self, exc, idle_helpers):
        frozen = freeze(_raising(exc))
        assert isinstance(frozen, Opaque)
        assert type(exc).__name__ in frozen.text

    def test_overridden_container_methods_not_called(self):
        frozen = freeze(HostileList([1, 2]))
        assert isinstance(frozen, Frozen)
        assert frozen.items == (1, 2)

    def test_getattribute_and_properties_not_called(self):
        frozen = freeze(HostileAttrs())
        assert isinstance(frozen, Frozen)
        assert frozen.items == (('x', 1),)

    def test_metaclass_eq_and_hash_not_called(self):
        class Meta(type):
            def __eq__(cls, other: object) -> bool:
                raise SystemExit(8)

            def __hash__(cls) -> int:
                raise SystemExit(9)

        class Odd(metaclass=Meta):
            def __init__(self) -> None:
                self.a = 1

        frozen = freeze([Odd()])
        assert isinstance(frozen, Frozen)
        assert frozen.items[0].items == (('a', 1),)

    def test_error_with_hostile_str(self, idle_helpers):
        class Hostile(Exception):  # noqa: N818
            def __str__(self) -> str:
                raise SystemExit(7)

        try:
            raise Hostile
        except Hostile:
            record = logging.LogRecord(
                'x', logging.DEBUG, 'f', 1, 'm', None, sys.exc_info()
            )
        error = _error(record)
        assert error is not None
        text = format_error(error)
        assert 'SystemExit' in text['message']
        assert 'Traceback' in text['traceback']

    def test_error_with_slow_str_bounded(self, idle_helpers):
        class SlowError(Exception):
            def __str__(self) -> str:
                time.sleep(2)
                return 'late'

        try:
            raise SlowError
        except SlowError:
            record = logging.LogRecord(
                'x', logging.DEBUG, 'f', 1, 'm', None, sys.exc_info()
            )
        start = time.perf_counter()
        error = _error(record)
        assert time.perf_counter() - start < REPR_TIMEOUT + 0.05
        assert error is not None
        assert 'timeout' in error['message']

    def test_chained_traceback_formatted(self):
        try:
            try:
                raise KeyError('inner')
            except KeyError as inner:
                raise ValueError('outer') from inner
        except ValueError:
            record = logging.LogRecord(
                'x', logging.DEBUG, 'f', 1, 'm', None, sys.exc_info()
            )
        error = _error(record)
        assert error is not None
        text = format_error(error)['traceback']
        assert text.index("KeyError: 'inner'") < text.index(
            'ValueError: outer',
        )
        assert 'direct cause' in text
        assert "raise KeyError('inner')" in text  # source read on the writer


@dataclasses.dataclass
class Point:
    x: int
    token: str


class Settings(pydantic.BaseModel):
    name: str
    password: str


@attrs.define
class Conn:
    host: str
    secret_key: str


Pair = namedtuple('Pair', ['user', 'passwd'])


class Color(enum.Enum):
    RED = 1


class TestFields:
    """Objects are described by their fields, so names redact them."""

    @pytest.mark.parametrize(
        ('value', 'preview'),
        (
            (Point(1, 's3cret-1'), '{"x":1,"token":"[REDACTED]"}'),
            (
                Settings(name='n', password='s3cret-2'),
                '{"name":"n","password":"[REDACTED]"}',
            ),
            (Conn('h', 's3cret-3'), '{"host":"h","secret_key":"[REDACTED]"}'),
            (Pair('u', 's3cret-4'), '{"user":"u","passwd":"[REDACTED]"}'),
            (
                types.SimpleNamespace(a=1, api_key='s3cret-5'),
                '{"a":1,"api_key":"[REDACTED]"}',
            ),
        ),
    )
    def test_secret_field_redacted(self, value, preview):
        desc = describe(freeze(value), POLICY)
        assert desc['preview'] == preview
        assert desc['redacted'] is True
        assert 's3cret' not in orjson.dumps(desc).decode()

    def test_hash_agrees_with_capture(self):
        value = Point(1, 'x')
        desc = describe(freeze(value), ValuePolicy(redact_keys=frozenset()))
        assert desc['sha256'] == hash_value(value)
        assert hash_value(Point(1, 'x')) != hash_value(Point(2, 'x'))

    def test_safe_reprs(self):
        frozen = freeze(Color.RED)
        assert isinstance(frozen, Opaque)
        assert frozen.text.endswith('Color.RED')
        uid = uuid.UUID(int=1)
        assert freeze(uid) == Opaque('uuid.UUID', repr(uid))


class TestPairsAndBytesKeys:
    """Key-value pairs in sequences and bytes keys are redacted by name."""

    def test_header_list(self):
        value = [('Authorization', 'Bearer abc123'), ('Accept', 'x')]
        desc = describe(freeze(value), POLICY)
        assert 'abc123' not in orjson.dumps(desc).decode()
        assert desc['members'][0][1]['redacted'] is True
        assert 'redacted' not in desc['members'][1][1]

    def test_bytes_key(self):
        desc = describe(freeze({b'Password': b'hunter22'}), POLICY)
        assert b'hunter22' not in orjson.dumps(desc)
        assert desc['redacted'] is True


class TestScrubber:
    """A value redacted once is masked in later text of the same process."""

    def test_learnt_value_masked_everywhere(self):
        scrubber = Scrubber()
        describe(freeze({'password': 'pa"ss-42'}), POLICY, scrubber=scrubber)
        assert scrubber.scrub('x pa"ss-42 y') == f'x {REDACTED} y'
        assert scrubber.scrub('x pa\\"ss-42 y') == f'x {REDACTED} y'
        desc = describe(
            freeze(['pa"ss-42', 'about pa"ss-42']),
            POLICY,
            scrubber=scrubber,
        )
        assert 'ss-42' not in orjson.dumps(desc).decode()
        assert desc['members'][0][1]['sha256'] == hash_value(REDACTED)

    def test_many_secrets_scanned_fast(self):
        scrubber = Scrubber()
        keys = [f'{n:08x}-secret-{n}' for n in range(5000)]
        start = time.perf_counter()
        for key in keys:
            scrubber.learn(key)
            scrubber.scrub('warm')
        text = f'a {keys[4999]} b {keys[3000]} c'
        assert scrubber.scrub(text) == f'a {REDACTED} b {REDACTED} c'
        assert time.perf_counter() - start < 1.0

    def test_short_values_not_learnt(self):
        scrubber = Scrubber()
        scrubber.learn('admin')
        assert scrubber.scrub('admin') == 'admin'

    def test_secret_cut_at_preview_end_still_masked(self):
        scrubber = Scrubber()
        scrubber.learn('S' * 30)
        desc = describe('x' * 190 + 'S' * 30, ValuePolicy(), scrubber=scrubber)
        assert 'SSSS' not in desc['preview']


class Keeper(Agent):
    @action
    async def store(self, name: str, password: str, *rest: str) -> None:
        """Keep nothing."""

    @staticmethod
    def helper(secret: str) -> None:
        """Not an action."""


class TestParameterNames:
    """Positional arguments are redacted by the action's parameter names."""

    def test_names(self):
        assert parameter_names(Keeper, 'store') == (
            ('name', 'password'),
            'rest',
        )
        assert parameter_names(Keeper, 'helper') == (('secret',), None)
        assert parameter_names(Keeper, 'missing') == ((), None)

    def test_positional_secret_after_launch_record(self):
        agent = AgentId.new(name='keeper')
        tag = uuid.uuid4()
        level = MANAGER.level
        MANAGER.setLevel(logging.INFO)
        try:
            with capture_events() as events:
                MANAGER.info(
                    'Launched agent',
                    extra={
                        'academy.agent_id': agent,
                        'academy.agent': Keeper,
                    },
                )
                HANDLE.debug(
                    'start',
                    extra={
                        'academy.action': 'store',
                        'academy.action_tag': tag,
                        'academy.action_state': 'start',
                        'academy.action_args': ('n', 'pw-42-secret', 'more'),
                        'academy.action_kwargs': {},
                        'academy.agent_id': agent,
                        'academy.src': UserId.new(),
                    },
                )
        finally:
            MANAGER.setLevel(level)
        (start,) = (e for e in events if e['e'] == 'start')
        assert [a.get('redacted', False) for a in start['args']] == [
            False,
            True,
            False,
        ]
        assert 'pw-42-secret' not in orjson.dumps(events).decode()

    def test_encoder_error_scrubbed(self):
        scrubber = Scrubber()
        scrubber.learn('pw-43-secret')
        encoder = Encoder(POLICY, scrubber)
        line = encoder(
            (
                'execute_exception',
                uuid.uuid4(),
                0.0,
                {
                    'error': {
                        'type': 'ValueError',
                        'message': 'bad pw-43-secret',
                        'traceback': 'ValueError: bad pw-43-secret\n',
                    },
                },
            ),
        )
        assert line is not None
        assert 'pw-43-secret' not in orjson.dumps(line).decode()
