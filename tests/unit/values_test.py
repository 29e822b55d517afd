"""Snapshots, canonical hashes, previews, caps and redaction."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from provlog.capture.values import describe
from provlog.capture.values import freeze
from provlog.capture.values import Frozen
from provlog.capture.values import hash_value
from provlog.capture.values import Opaque
from provlog.capture.values import REDACTED
from provlog.capture.values import Snapshot
from provlog.capture.values import ValuePolicy

POLICY = ValuePolicy()


class TestFreeze:
    """freeze() copies what it keeps and never raises."""

    def test_scalars_kept(self):
        for value in (1, 1.5, 'a', b'b', None, True):
            assert freeze(value) is value

    def test_containers_copied(self):
        data = {'a': [1, 2]}
        frozen = freeze(data)
        data['a'].append(3)
        assert describe(frozen, POLICY)['preview'] == '{"a":[1,2]}'

    def test_cycle_cut(self):
        data: list[object] = [1]
        data.append(data)
        frozen = freeze(data)
        assert isinstance(frozen, Frozen)
        assert isinstance(frozen.items[1], Opaque)
        assert frozen.items[1].text == '<cycle>'

    def test_budget_truncates(self):
        frozen = freeze(list(range(100)), budget=10)
        assert isinstance(frozen, Frozen)
        assert frozen.truncated
        assert frozen.length == 100
        assert describe(frozen, POLICY)['truncated'] is True

    def test_repr_that_raises(self):
        class Bad:
            def __repr__(self) -> str:
                raise ValueError('no')

        frozen = freeze(Bad())
        assert isinstance(frozen, Opaque)
        assert 'unrepresentable' in frozen.text

    def test_eq_and_hash_that_raise_in_sets(self):
        class Weird:
            def __eq__(self, other: object) -> bool:
                raise TypeError('no eq')

            __hash__ = object.__hash__

        frozen = freeze({Weird(), Weird()})
        assert isinstance(frozen, Frozen)


class TestHash:
    """Content hashes match across containers that serialisation conflates."""

    def test_list_and_tuple_equal(self):
        assert hash_value([1, 2.0, 'x']) == hash_value((1, 2.0, 'x'))

    def test_dict_order_irrelevant(self):
        assert hash_value({'a': 1, 'b': 2}) == hash_value({'b': 2, 'a': 1})

    def test_int_and_float_differ(self):
        assert hash_value(1) != hash_value(1.0)

    def test_str_and_bytes_differ(self):
        assert hash_value('a') != hash_value(b'a')

    @given(
        st.recursive(
            st.none()
            | st.booleans()
            | st.integers()
            | st.floats(allow_nan=False)
            | st.text()
            | st.binary(),
            lambda children: (
                st.lists(children, max_size=4)
                | st.dictionaries(st.text(max_size=5), children, max_size=4)
            ),
            max_leaves=20,
        ),
    )
    def test_hash_matches_describe(self, value):
        desc = describe(freeze(value), ValuePolicy(redact_keys=frozenset()))
        assert desc['sha256'] == hash_value(value)


class TestPolicy:
    """Redaction happens before hashing; big values keep type, size and hash."""

    def test_nested_secret_masked(self):
        desc = describe(
            freeze({'user': 'ada', 'auth': {'API-Key': 's3cret'}}),
            POLICY,
        )
        assert desc['redacted'] is True
        assert 's3cret' not in str(desc)
        assert REDACTED in desc['preview']

    def test_secret_keyword_masked_whole(self):
        desc = describe('s3cret', POLICY, secret=True)
        assert desc['redacted'] is True
        assert 's3cret' not in str(desc)
        assert desc['sha256'] == hash_value(REDACTED)

    def test_cap(self):
        desc = describe('x' * 100, ValuePolicy(max_bytes=50))
        assert desc['capped'] is True
        assert 'preview' not in desc
        assert desc['sha256'] == hash_value('x' * 100)

    def test_no_capture_keeps_hash_only(self):
        desc = describe(freeze([1, 2]), ValuePolicy(capture=False))
        assert 'preview' not in desc
        assert 'sha256' in desc

    def test_huge_int_not_a_json_value(self):
        desc = describe(10**30, POLICY)
        assert 'value' not in desc
        assert desc['preview'] == str(10**30)

    def test_members(self):
        desc = describe(freeze([1, 'a']), POLICY)
        assert [m[0] for m in desc['members']] == ['0', '1']
        assert desc['members'][1][1]['value'] == 'a'


_SPECIAL_FLOATS = [
    0.0,
    -0.0,
    math.inf,
    -math.inf,
    math.nan,
    1e300,
    5e-324,
    0.1,
]


def _bulk_cases() -> list[object]:
    """Sequences the bulk paths take, or try and leave to the slow ones."""
    return [
        [k * 0.1 for k in range(100)],
        _SPECIAL_FLOATS * 4,
        [2**63 - 1, -(2**63), *range(-20, 20)],
        [*range(30), 2**63],  # past 64 bits: element by element
        [*range(30), True],
        [*(k * 0.5 for k in range(20)), 3],
        tuple(range(30)),
        set(range(40)),
        frozenset(k * 0.5 for k in range(40)),
        list(range(10_001)),  # one past the budget
        ['a'] * 20,
        [b'x', 'y', 1, 2.0, None, True, 1j] * 5,
        {'a': [1.5] * 40, 'b': list(range(40))},
        [[0.5] * 17] * 3,
        # long enough to be remembered by content: must never be confused
        [0.0] * 2000,
        [-0.0] * 2000,
        [k * 0.5 for k in range(2000)],
        tuple(k * 0.5 for k in range(2000)),
        {k * 0.5 for k in range(2000)},
        [*range(1999), 2**63],
    ]


def test_bulk_paths_match_element_by_element(monkeypatch):
    """Scalars copied and hashed in bulk give exactly what one by one does."""
    from provlog.capture.values import digest
    from provlog.capture.values import snapshot

    def figures() -> list[str]:
        out = []
        for value in _bulk_cases():
            frozen = freeze(value)
            snap = Snapshot(100)
            parts = (snap.take(value), snap.take([1.0] * 20))
            spent = (snap._left, snap._count)
            out.append(
                repr(
                    (
                        frozen,
                        describe(frozen, POLICY),
                        hash_value(value),
                        parts,
                        spent,
                    )
                )
            )
        return out

    bulk = figures()
    assert figures() == bulk  # the second time from digests remembered
    monkeypatch.setattr(snapshot, '_BULK', 10**9)
    monkeypatch.setattr(digest, '_BULK', 10**9)
    assert figures() == bulk
