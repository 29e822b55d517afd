"""The handler on the host's thread: ignores, never raises, never recurses."""

from __future__ import annotations

import logging
import statistics
import time
import uuid
from typing import Any

import pytest

from provlog.capture.handler import ProvenanceHandler
from provlog.testing import capture_events
from provlog.testing import ListSink


class CountingSink(ListSink):
    def __init__(self) -> None:
        super().__init__()
        self.puts = 0

    def put(self, item: Any) -> None:
        self.puts += 1
        super().put(item)


class RaisingSink:
    def put(self, item: Any) -> None:
        raise RuntimeError('sink is broken')

    def flush(self, timeout: float = 5.0) -> bool:
        raise RuntimeError('sink is broken')

    def close(self, timeout: float = 5.0) -> None:
        raise RuntimeError('sink is broken')


class NoopHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        pass


@pytest.fixture
def logger() -> logging.Logger:
    log = logging.getLogger(f'provlog-test-{uuid.uuid4().hex}')
    log.setLevel(logging.DEBUG)
    log.propagate = False
    return log


def _start_record(logger: logging.Logger) -> None:
    logger.debug(
        'Invoking action %s with tag id %s',
        'f',
        'x',
        extra={
            'academy.action': 'f',
            'academy.action_tag': uuid.uuid4(),
            'academy.action_state': 'start',
            'academy.action_args': (1, [2, 3]),
            'academy.action_kwargs': {'k': 'v'},
        },
    )


class TestIgnoresOtherRecords:
    """Records without provenance extras cost about as much as a no-op handler."""

    def _time(self, logger: logging.Logger, handler: logging.Handler) -> float:
        logger.addHandler(handler)
        try:
            runs = []
            for _ in range(7):
                t0 = time.perf_counter()
                for i in range(5000):
                    logger.debug('plain record %d', i, extra={'other': i})
                runs.append(time.perf_counter() - t0)
            return statistics.median(runs)
        finally:
            logger.removeHandler(handler)

    def test_no_event_and_no_visible_cost(self, logger):
        sink = CountingSink()
        handler = ProvenanceHandler(sink)
        noop = self._time(logger, NoopHandler())
        ours = self._time(logger, handler)
        assert sink.puts == 0
        # the record itself dominates; the handler's check adds under 30 %
        assert ours < noop * 1.3, (ours, noop)


class TestNeverRaises:
    """A broken sink or extractor never reaches the host."""

    def test_broken_sink(self, logger):
        handler = ProvenanceHandler(RaisingSink())  # type: ignore[arg-type]
        logger.addHandler(handler)
        _start_record(logger)
        handler.flush()
        handler.close()
        logger.removeHandler(handler)
        assert handler.errors == 3

    def test_broken_extract(self, logger):
        def extract(record: logging.LogRecord) -> Any:
            raise ValueError('bad record')

        handler = ProvenanceHandler(ListSink(), extract)
        logger.addHandler(handler)
        logger.debug('x')
        logger.removeHandler(handler)
        assert handler.errors == 1


class TestNoRecursion:
    """A filter or sink that logs while the handler works does not recurse."""

    def test_filter_that_logs(self, logger):
        sink = CountingSink()
        handler = ProvenanceHandler(sink)
        calls = []

        def chatty(record: logging.LogRecord) -> bool:
            calls.append(record)
            _start_record(logger)  # logs into the same handler
            return True

        handler.addFilter(chatty)
        logger.addHandler(handler)
        _start_record(logger)
        logger.removeHandler(handler)
        assert len(calls) == 1
        assert sink.puts == 1

    def test_sink_that_logs(self, logger):
        class LoggingSink(CountingSink):
            def put(self, item: Any) -> None:
                super().put(item)
                _start_record(logger)

        sink = LoggingSink()
        handler = ProvenanceHandler(sink)
        logger.addHandler(handler)
        _start_record(logger)
        logger.removeHandler(handler)
        assert sink.puts == 1


class TestSnapshot:
    """Values are snapshotted on the caller's thread: later mutation is not seen."""

    def test_mutation_after_logging(self, logger):
        class DeferredSink(ListSink):
            # keeps raw events, encodes later, as the background writer does
            def __init__(self) -> None:
                super().__init__()
                self.raw: list[Any] = []

            def put(self, item: Any) -> None:
                self.raw.append(item)

        sink = DeferredSink()
        handler = ProvenanceHandler(sink)
        logger.addHandler(handler)
        data = [1, 2, 3]
        logger.debug(
            'start',
            extra={
                'academy.action': 'f',
                'academy.action_tag': uuid.uuid4(),
                'academy.action_state': 'start',
                'academy.action_args': (data,),
                'academy.action_kwargs': {},
            },
        )
        data.append(4)
        logger.removeHandler(handler)
        for item in sink.raw:
            ListSink.put(sink, item)
        (event,) = sink.events
        assert event['args'][0]['preview'] == '[1,2,3]'


class TestExecutionScope:
    """An execution logged on one thread's context ends there: no stray parent."""

    def test_later_call_has_no_parent(self):
        runtime = logging.getLogger('academy.runtime')
        handle = logging.getLogger('academy.handle')
        executed = uuid.uuid4()
        later = uuid.uuid4()
        with capture_events() as events:
            for state in ('execute_start', 'execute_success'):
                runtime.debug(
                    state,
                    extra={
                        'academy.action': 'f',
                        'academy.action_tag': executed,
                        'academy.action_state': state,
                    },
                )
            handle.debug(
                'start',
                extra={
                    'academy.action': 'g',
                    'academy.action_tag': later,
                    'academy.action_state': 'start',
                    'academy.action_args': (),
                    'academy.action_kwargs': {},
                },
            )
        (start,) = (e for e in events if e['e'] == 'start')
        assert start['tag'] == str(later)
        assert start.get('parent') is None
