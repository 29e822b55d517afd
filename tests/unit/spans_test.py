"""spans: calls nest by the execution that made them; lanes never overlap."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from provlog.actions.merge import MergedRun
from provlog.actions.merge import Process
from provlog.actions.spans import lanes
from provlog.actions.spans import timeline
from provlog.vocab import Action

CLIENT = str(uuid.UUID(int=1))
COORD = str(uuid.UUID(int=2))
WORKER = str(uuid.UUID(int=3))
PROCS = {'client': 1, 'coord': 2, 'worker': 3}


def _tag(n: int) -> str:
    return str(uuid.UUID(int=1000 + n))


def _ident(uid: str) -> dict[str, Any]:
    return {'uid': uid, 'role': 'agent'}


def _call(
    n: int,
    *,
    caller: tuple[str, str],
    callee: tuple[str, str],
    times: tuple[float, float, float, float],
    parent: int | None = None,
    kinds: tuple[str, ...] = (
        'start',
        'success',
        'execute_start',
        'execute_success',
    ),
) -> Action:
    """An action: request from ``caller`` (uid, process), run by ``callee``."""
    tag = _tag(n)
    (caller_uid, caller_proc), (callee_uid, callee_proc) = caller, callee
    fields: dict[str, dict[str, Any]] = {
        'start': {
            't': times[0],
            'action': f'a{n}',
            'callee': _ident(callee_uid),
            'caller': _ident(caller_uid),
            'parent': None if parent is None else _tag(parent),
            '_process': caller_proc,
        },
        'sending': {
            't': times[0],
            'src': _ident(caller_uid),
            '_process': caller_proc,
        },
        'success': {'t': times[3], '_process': caller_proc},
        'execute_start': {
            't': times[1],
            'action': f'a{n}',
            'agent': _ident(callee_uid),
            'res': {'thread': 'MainThread'},
            '_process': callee_proc,
        },
        'execute_success': {'t': times[2], '_process': callee_proc},
    }
    return Action(tag, {k: {'e': k, 'tag': tag, **fields[k]} for k in kinds})


def _run(*actions: Action, opened: float | None = None) -> MergedRun:
    """A run of ``actions``; ``opened`` is when every journal's header says
    its process started (no header time when None)."""
    header = {} if opened is None else {'t': opened}
    processes = {
        key: Process(key, 'h', pid, [], True, 0, 0, False, dict(header))
        for key, pid in PROCS.items()
    }
    agents = {uid: {'uid': uid, 'role': 'agent'} for uid in (COORD, WORKER)}
    return MergedRun(
        Path('.'), 'run', {a.tag: a for a in actions}, agents, processes
    )


def _nested_run() -> MergedRun:
    """0: client -> coordinator; it calls 1 and 2 on the worker; 1 calls 3."""
    client, coord, worker = (
        (CLIENT, 'client'),
        (COORD, 'coord'),
        (WORKER, 'worker'),
    )
    return _run(
        _call(0, caller=client, callee=coord, times=(0, 1, 9, 10)),
        _call(2, caller=coord, callee=worker, times=(5, 6, 7, 8), parent=0),
        _call(1, caller=coord, callee=worker, times=(2, 3, 4, 4.5), parent=0),
        _call(
            3,
            caller=worker,
            callee=coord,
            times=(3.1, 3.2, 3.3, 3.4),
            parent=1,
        ),
        _call(
            4, caller=coord, callee=worker, times=(11, 12, 13, 14), parent=99
        ),
    )


class TestNesting:
    """Views draw the call tree from ``parent``, ``children`` and ``roots``."""

    def test_children_in_start_order_across_processes(self):
        tl = timeline(_nested_run())
        calls = tl.calls
        assert calls[_tag(0)].children == [_tag(1), _tag(2)]
        assert calls[_tag(1)].children == [_tag(3)]
        assert calls[_tag(3)].parent == _tag(1)
        assert calls[_tag(3)].execution is not None
        assert calls[_tag(3)].execution.process == 'coord'
        assert calls[_tag(3)].request is not None
        assert calls[_tag(3)].request.process == 'worker'

    def test_roots_are_top_level_and_orphan_calls(self):
        tl = timeline(_nested_run())
        # 4 names a parent no journal holds: still a root, never lost
        assert tl.roots == [_tag(0), _tag(4)]
        assert [c.tag for c in tl.walk()] == [_tag(n) for n in (0, 1, 3, 2, 4)]

    def test_run_bounds(self):
        tl = timeline(_nested_run())
        assert (tl.start, tl.end) == (0, 14)
        assert tl.processes == {
            'client': 'h:1',
            'coord': 'h:2',
            'worker': 'h:3',
        }


class TestCycle:
    """Journals naming each other's calls as parents still show every call."""

    def test_cycle_broken_at_earliest(self):
        a = (COORD, 'coord')
        run = _run(
            _call(1, caller=a, callee=a, times=(1, 2, 3, 4), parent=2),
            _call(2, caller=a, callee=a, times=(2, 2.5, 2.6, 3), parent=1),
        )
        tl = timeline(run)
        assert tl.roots == [_tag(1)]
        assert [c.tag for c in tl.walk()] == [_tag(1), _tag(2)]


class TestPartialSides:
    """A call the journals kept only a piece of still has a side to draw."""

    def test_sending_only(self):
        run = _run(
            _call(
                1,
                caller=(CLIENT, 'client'),
                callee=(COORD, 'coord'),
                times=(1, 2, 3, 4),
                kinds=('sending',),
            ),
            _call(
                2,
                caller=(CLIENT, 'client'),
                callee=(COORD, 'coord'),
                times=(5, 6, 7, 8),
            ),
        )
        tl = timeline(run)
        call = tl.calls[_tag(1)]
        assert call.execution is None
        assert call.request is not None
        assert call.request.process == 'client'
        assert not call.request.ended
        assert call.request.end == 8  # drawn to the run's last time
        assert call.state == 'not_ended'

    def test_execution_not_ended(self):
        run = _run(
            _call(
                1,
                caller=(CLIENT, 'client'),
                callee=(COORD, 'coord'),
                times=(1, 2, 3, 4),
                kinds=('start', 'execute_start'),
            ),
            _call(
                2,
                caller=(CLIENT, 'client'),
                callee=(COORD, 'coord'),
                times=(5, 6, 7, 9),
            ),
        )
        call = timeline(run).calls[_tag(1)]
        assert call.execution is not None
        assert call.execution.thread == 'MainThread'
        assert (call.execution.ended, call.execution.end) == (False, 9)

    def test_end_only_is_not_started(self):
        run = _run(
            _call(
                1,
                caller=(CLIENT, 'client'),
                callee=(COORD, 'coord'),
                times=(1, 2, 3, 4),
                kinds=('execute_success',),
            ),
            _call(
                2,
                caller=(CLIENT, 'client'),
                callee=(COORD, 'coord'),
                times=(5, 6, 7, 8),
            ),
        )
        tl = timeline(run)
        only_end = tl.calls[_tag(1)].execution
        assert tl.calls[_tag(1)].request is None
        assert only_end is not None
        assert (only_end.started, only_end.ended) == (False, True)
        assert only_end.start == only_end.end == 3
        whole = tl.calls[_tag(2)]
        assert all(side.started for side in whole.sides())


T = 1_700_000_000.0
CALLS_AT_T = (
    _call(
        1,
        caller=(CLIENT, 'client'),
        callee=(COORD, 'coord'),
        times=(T + 1, T + 2, T + 3, T + 4),
    ),
    _call(
        2,
        caller=(CLIENT, 'client'),
        callee=(COORD, 'coord'),
        times=(T + 5, T + 6, T + 7, T + 8),
    ),
)


class TestClockWindow:
    """One stray clock neither stretches the run nor loses its call."""

    def test_time_zero(self):
        stray = _call(
            3,
            caller=(CLIENT, 'client'),
            callee=(WORKER, 'worker'),
            times=(0, 0, 0, 0),
            kinds=('execute_success',),
        )
        tl = timeline(_run(*CALLS_AT_T, stray, opened=T))
        assert (tl.start, tl.end) == (T + 1, T + 8)
        side = tl.calls[_tag(3)].execution
        assert side is not None
        assert side.clock_suspect
        assert not side.started
        assert side.start == side.end == T + 1  # clamped to the run's start
        for n in (1, 2):
            assert not any(s.clock_suspect for s in tl.calls[_tag(n)].sides())

    def test_year_9999(self):
        late = _call(
            3,
            caller=(CLIENT, 'client'),
            callee=(WORKER, 'worker'),
            times=(T + 2, T + 3, 253_402_300_799.0, T + 6),
        )
        tl = timeline(_run(*CALLS_AT_T, late, opened=T))
        assert (tl.start, tl.end) == (T + 1, T + 8)
        call = tl.calls[_tag(3)]
        assert call.execution is not None
        assert call.execution.clock_suspect
        assert (call.execution.start, call.execution.end) == (T + 3, T + 8)
        assert call.request is not None
        assert not call.request.clock_suspect

    def test_times_before_the_journals_opened(self):
        # a day before the earliest header is still believed (clocks of
        # hosts disagree); more than that is not
        def early(before: float) -> Action:
            t = T - before
            return _call(
                3,
                caller=(CLIENT, 'client'),
                callee=(WORKER, 'worker'),
                times=(t, t + 1, t + 2, t + 3),
            )

        tl = timeline(_run(*CALLS_AT_T, early(3600), opened=T))
        assert tl.start == T - 3600
        assert not any(s.clock_suspect for s in tl.calls[_tag(3)].sides())
        tl = timeline(_run(*CALLS_AT_T, early(90_000), opened=T))
        assert tl.start == T + 1
        assert all(s.clock_suspect for s in tl.calls[_tag(3)].sides())


_INTERVAL = st.tuples(
    st.integers(min_value=0, max_value=50),
    st.integers(min_value=0, max_value=20),
).map(lambda p: (p[0], p[0] + p[1]))


class TestLanes:
    """A row holds only nested or disjoint intervals, so viewers draw it."""

    def test_examples(self):
        assert lanes([(0, 10), (1, 5), (2, 3), (6, 9)]) == [0, 0, 0, 0]
        assert lanes([(0, 10), (5, 15)]) == [0, 1]
        assert lanes([(0, 5), (5, 8)]) == [0, 0]
        assert lanes([(0, 10), (2, 12), (11, 13)]) == [0, 1, 0]

    @settings(max_examples=300, deadline=None)
    @given(st.lists(_INTERVAL, max_size=30))
    def test_rows_only_nest_or_are_disjoint(self, found):
        found.sort(key=lambda i: (i[0], -i[1]))
        rows = lanes(found)
        assert len(rows) == len(found)
        for i, (s1, e1) in enumerate(found):
            for j in range(i + 1, len(found)):
                s2, e2 = found[j]
                if rows[i] != rows[j]:
                    continue
                nested = s1 <= s2 and e2 <= e1
                disjoint = e1 <= s2
                assert nested or disjoint, (found[i], found[j])
