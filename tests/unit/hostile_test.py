"""Hostile names and values still give schema-valid PROV-JSON and parseable Turtle."""

from __future__ import annotations

import logging
import math
import uuid
from pathlib import Path
from typing import Any

import orjson
import rdflib
from academy.identifier import AgentId
from academy.identifier import UserId
from hypothesis import given
from hypothesis import HealthCheck
from hypothesis import settings
from hypothesis import strategies as st

import provlog
from provlog.capture.journal import FORMAT_VERSION
from provlog.testing import capture_events
from tests.provcheck import check_provjson

HANDLE = logging.getLogger('academy.handle')
RUNTIME = logging.getLogger('academy.runtime')


class RaisesEverywhere:
    def __repr__(self) -> str:
        raise RuntimeError('no repr')

    def __eq__(self, other: object) -> bool:
        raise RuntimeError('no eq')

    __hash__ = None  # type: ignore[assignment]  # unhashable too


def _cyclic() -> list[Any]:
    x: list[Any] = [1, 'two']
    x.append(x)
    x.append({'self': x})
    return x


names = st.text(
    alphabet=st.characters(codec='utf-8', exclude_categories=('Cs',)),
    max_size=300,
) | st.sampled_from(
    [
        'a b',
        'say "hi"',
        '<tag>',
        'line\nbreak',
        'ünïcødé ☃',
        'x' * 5000,
        '',
        "it's",
        '\\',
    ],
)
plain = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | names
    | st.binary(max_size=64),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(names, children, max_size=5)
        | st.tuples(children, children)
    ),
    max_leaves=25,
)
values = (
    plain
    | st.builds(RaisesEverywhere)
    | st.builds(_cyclic)
    | st.builds(set, st.lists(st.integers(), max_size=3))
)


def _emit(
    action: str,
    agent: AgentId[Any],
    user: UserId,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    result: Any,
) -> None:
    tag = uuid.uuid4()
    base = {'academy.action': action, 'academy.action_tag': tag}
    HANDLE.debug(
        'start',
        extra=base
        | {
            'academy.action_state': 'start',
            'academy.action_args': args,
            'academy.action_kwargs': kwargs,
            'academy.agent_id': agent,
        },
    )
    HANDLE.debug(
        'send',
        extra=base
        | {
            'academy.action_state': 'sending',
            'academy.src': user,
            'academy.dest': agent,
        },
    )
    RUNTIME.debug(
        'exec', extra=base | {'academy.action_state': 'execute_start'}
    )
    RUNTIME.debug(
        'done', extra=base | {'academy.action_state': 'execute_success'}
    )
    HANDLE.debug(
        'ok',
        extra=base
        | {
            'academy.action_state': 'success',
            'academy.result': result,
            'academy.agent_id': agent,
        },
    )


def _journal(folder: Path, events: list[dict[str, Any]]) -> Path:
    run = folder / 'run'
    run.mkdir(parents=True, exist_ok=True)
    header = {
        'e': 'journal',
        'v': FORMAT_VERSION,
        'run': 'hostile-run',
        'process': uuid.uuid4().hex,
        'host': 'h',
        'pid': 1,
        't': 0.0,
    }
    lines = [header, *events, {'e': 'close', 't': 0.0}]
    (run / 'h-1-x.jsonl').write_bytes(
        b''.join(orjson.dumps(line) + b'\n' for line in lines)
    )
    return run


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
    ],
)
@given(
    action=names,
    agent_name=names,
    args=st.lists(values, max_size=3),
    kwargs=st.dictionaries(names, values, max_size=3),
    result=values,
)
def test_hostile_extras_export_valid(
    tmp_path_factory, action, agent_name, args, kwargs, result
):
    agent = AgentId.new(name=agent_name)
    with capture_events() as events:
        _emit(
            action,
            agent,
            UserId.new(name=agent_name),
            tuple(args),
            kwargs,
            result,
        )
    kinds = [e['e'] for e in events]
    assert kinds == [
        'start',
        'sending',
        'execute_start',
        'execute_success',
        'success',
    ]
    run = _journal(tmp_path_factory.mktemp('hostile'), events)
    graph = provlog.load(run)
    assert graph.stats()['actions'] == 1
    check_provjson(graph.to_provjson())
    turtle = graph.serialize('turtle')
    parsed = rdflib.Graph().parse(data=turtle.decode(), format='turtle')
    assert len(parsed) > 10


def test_nan_and_huge_values_are_not_json_values():
    with capture_events() as events:
        _emit(
            'f', AgentId.new(), UserId.new(), (math.nan, 10**30), {}, math.inf
        )
    (start,) = (e for e in events if e['e'] == 'start')
    assert all('value' not in a for a in start['args'])
    (success,) = (e for e in events if e['e'] == 'success')
    assert success['result']['preview'] == 'inf'


def test_dot_names_stay_valid_turtle(tmp_path):
    """Found by hypothesis: a keyword named '.' made invalid Turtle."""
    with capture_events() as events:
        _emit('f', AgentId.new(), UserId.new(), (), {'.': 1, '..': 2}, 3)
    graph = provlog.load(_journal(tmp_path, events))
    check_provjson(graph.to_provjson())
    parsed = rdflib.Graph().parse(
        data=graph.serialize('turtle').decode(), format='turtle'
    )
    assert len(parsed) > 10
