"""Two runs side by side: which actions were added, went missing or changed.

Actions are matched by what they are, not by tag (tags are random per
run): the path of ``(action name, callee agent class)`` keys from the root
call down, and among siblings with the same key their order by start
time. When a sibling group has as many calls in both runs they pair in
order; when the counts differ, calls with the same arguments (content
hashes) pair first, so one call dropped from a fan-out reports that call
missing rather than every later sibling changed.

For each matched pair :func:`diff_runs` compares the arguments (per
position and keyword, by ``sha256``), the caller's result, the state
(with the execution's error) and the duration, and for every root call
whose result or state changed lists the matched calls beneath it whose
arguments or results changed, deepest first: the inputs the change of a
final result came through.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from provlog import clip
from provlog.actions.spans import Call
from provlog.actions.spans import Timeline
from provlog.graph import RunGraph
from provlog.vocab import FAILED
from provlog.vocab import START
from provlog.vocab import SUCCESS

__all__ = ['DiffResult', 'Threshold', 'diff_runs']

SCHEMA = 1


@dataclass(frozen=True, slots=True)
class Threshold:
    """A duration changed when both bounds are exceeded."""

    ratio: float = 0.5  # relative to run A's duration
    seconds: float = 0.010


@dataclass(slots=True)
class _Node:
    tag: str
    path: str
    depth: int


@dataclass
class DiffResult:
    """What :func:`diff_runs` found; :meth:`to_json` is the whole of it."""

    runs: tuple[dict[str, str], dict[str, str]]
    threshold: Threshold
    matched: int = 0
    #: Every pair, in walk order: ``path``, ``tag_a``, ``tag_b``.
    pairs: list[dict[str, str]] = field(default_factory=list)
    added: list[dict[str, Any]] = field(default_factory=list)
    missing: list[dict[str, Any]] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)
    lineage: list[dict[str, Any]] = field(default_factory=list)

    def count(self, what: str) -> int:
        """Matched calls with a change of ``what`` (``args``, ``timing``)."""
        return sum(1 for c in self.changed if c.get(what))

    def summary(self) -> dict[str, int]:
        """The counts the summary line shows."""
        timing = [c['timing']['change'] for c in self.changed if c['timing']]
        return {
            'matched': self.matched,
            'added': len(self.added),
            'missing': len(self.missing),
            'changed_args': self.count('args'),
            'changed_results': self.count('result'),
            'state_changes': self.count('state'),
            'slower': timing.count('slower'),
            'faster': timing.count('faster'),
        }

    @property
    def different(self) -> bool:
        """Whether anything differs (timing beyond the threshold counts)."""
        return any(v for k, v in self.summary().items() if k != 'matched')

    def to_json(self) -> dict[str, Any]:
        """Everything, JSON-ready, in a stable shape (``schema``)."""
        return {
            'schema': SCHEMA,
            'a': self.runs[0],
            'b': self.runs[1],
            'threshold': asdict(self.threshold),
            'different': self.different,
            'summary': self.summary(),
            'matched': self.pairs,
            'added': self.added,
            'missing': self.missing,
            'changed': self.changed,
            'lineage': self.lineage,
        }


def _class(tl: Timeline, call: Call) -> str:
    info = tl.agents.get(call.callee or '', {})
    for key in ('class', 'name'):
        if info.get(key):
            return str(info[key]).rsplit('.', 1)[-1]
    return '?'


def _key(tl: Timeline, call: Call) -> tuple[str, str]:
    return call.action, _class(tl, call)


def _digest(desc: object) -> str | None:
    if isinstance(desc, dict) and isinstance(desc.get('sha256'), str):
        return str(desc['sha256'])
    return None


def _value(desc: object) -> dict[str, Any]:
    """What the diff shows of a value: its hash, type and preview."""
    got = desc if isinstance(desc, dict) else {}
    return {
        k: clip.cut(got[k], limit) if isinstance(got.get(k), str) else None
        for k, limit in (
            ('sha256', clip.HASH_CHARS),
            ('type', clip.NAME_CHARS),
            ('preview', clip.MESSAGE_CHARS),
        )
    }


def _arguments(graph: RunGraph, tag: str) -> dict[int | str, Any] | None:
    """Argument position (int) or keyword -> description; None unknown."""
    start = graph.run.actions[tag].get(START)
    if start is None:
        return None
    out: dict[int | str, Any] = {}
    args, kwargs = start.get('args'), start.get('kwargs')
    if isinstance(args, list):
        out.update(enumerate(args))
    if isinstance(kwargs, dict):
        out.update(
            {clip.cut(k, clip.NAME_CHARS): d for k, d in kwargs.items()}
        )
    return out


def _result(graph: RunGraph, tag: str) -> object:
    success = graph.run.actions[tag].get(SUCCESS)
    return None if success is None else success.get('result')


def _signature(graph: RunGraph, tag: str) -> tuple[str | None, ...]:
    args = _arguments(graph, tag) or {}
    return tuple(_digest(d) for d in args.values())


def _duration(call: Call) -> float | None:
    for side in (call.request, call.execution):
        if side is not None and side.started and side.ended:
            return side.duration
    return None


class _Differ:
    def __init__(self, a: RunGraph, b: RunGraph, threshold: Threshold):
        self.a, self.b = a, b
        self.ta, self.tb = a.timeline, b.timeline
        self.result = DiffResult(
            runs=(_run_info(a), _run_info(b)), threshold=threshold
        )

    def run(self) -> DiffResult:
        """Walk both call trees depth first, pairing siblings.

        A call without a partner is added or missing, and so is every
        call beneath it (its children are paired with nothing).
        """
        stack = list(
            reversed(list(self._match('', 0, self.ta.roots, self.tb.roots)))
        )
        while stack:
            na, nb = stack.pop()
            if na is not None and nb is not None:
                self._compare(na, nb)
            elif na is not None:
                self.result.missing.append(_lost(self.ta, na))
            elif nb is not None:
                self.result.added.append(_lost(self.tb, nb))
            node = na or nb
            if node is None:  # pragma: no cover - _match pairs a call
                continue
            below = self._match(
                node.path,
                node.depth + 1,
                self.ta.calls[na.tag].children if na else [],
                self.tb.calls[nb.tag].children if nb else [],
            )
            stack.extend(reversed(list(below)))
        self._lineage()
        return self.result

    def _groups(
        self, tl: Timeline, tags: list[str]
    ) -> dict[tuple[str, str], list[str]]:
        groups: dict[tuple[str, str], list[str]] = {}
        ordered = sorted(
            (tl.calls[t] for t in tags if t in tl.calls),
            key=lambda c: (c.start, c.tag),
        )
        for call in ordered:
            groups.setdefault(_key(tl, call), []).append(call.tag)
        return groups

    def _match(
        self, prefix: str, depth: int, tags_a: list[str], tags_b: list[str]
    ) -> Iterator[tuple[_Node | None, _Node | None]]:
        ga, gb = self._groups(self.ta, tags_a), self._groups(self.tb, tags_b)
        for key in list(ga) + [k for k in gb if k not in ga]:
            la, lb = ga.get(key, []), gb.get(key, [])
            name = f'{prefix} / ' if prefix else ''
            name += f'{key[1]}.{key[0]}'

            def node(tag: str, i: int, name: str = name) -> _Node:
                return _Node(tag, f'{name}[{i}]', depth)

            for i, j in _align(self, la, lb):
                yield (
                    None if i is None else node(la[i], i),
                    None if j is None else node(lb[j], j),
                )

    def _compare(self, na: _Node, nb: _Node) -> None:
        self.result.matched += 1
        self.result.pairs.append(
            {'path': na.path, 'tag_a': na.tag, 'tag_b': nb.tag}
        )
        ca, cb = self.ta.calls[na.tag], self.tb.calls[nb.tag]
        entry: dict[str, Any] = {
            'path': na.path,
            'tag_a': na.tag,
            'tag_b': nb.tag,
            'action': ca.action,
            'class': _class(self.ta, ca),
            'depth': na.depth,
            'args': self._args(na.tag, nb.tag),
            'result': None,
            'state': None,
            'timing': self._timing(ca, cb),
        }
        ra, rb = _result(self.a, na.tag), _result(self.b, nb.tag)
        if ra is not None and rb is not None and _digest(ra) != _digest(rb):
            entry['result'] = {'a': _value(ra), 'b': _value(rb)}
        if ca.state != cb.state or (
            ca.state == FAILED and _err(ca) != _err(cb)
        ):
            entry['state'] = {
                'a': ca.state,
                'b': cb.state,
                'error_a': _err(ca),
                'error_b': _err(cb),
                'change': _state_change(ca.state, cb.state),
            }
        if any(entry[k] for k in ('args', 'result', 'state', 'timing')):
            self.result.changed.append(entry)

    def _args(self, tag_a: str, tag_b: str) -> list[dict[str, Any]]:
        aa, ab = _arguments(self.a, tag_a), _arguments(self.b, tag_b)
        if aa is None or ab is None:
            return []
        out = []
        for name in list(aa) + [k for k in ab if k not in aa]:
            da, db = aa.get(name), ab.get(name)
            if da is None or db is None or _digest(da) != _digest(db):
                out.append(
                    {
                        'arg': name,
                        'a': None if da is None else _value(da),
                        'b': None if db is None else _value(db),
                    }
                )
        return out

    def _timing(self, ca: Call, cb: Call) -> dict[str, Any] | None:
        da, db = _duration(ca), _duration(cb)
        if da is None or db is None:
            return None
        delta = db - da
        th = self.result.threshold
        if abs(delta) <= th.seconds or abs(delta) <= th.ratio * da:
            return None
        return {
            'a': da,
            'b': db,
            'change': 'slower' if delta > 0 else 'faster',
        }

    def _lineage(self) -> None:
        """Per changed root result: the changed matched calls beneath it."""
        changed = {c['tag_a']: c for c in self.result.changed}
        for root in self.ta.roots:
            entry = changed.get(root)
            if entry is None or not (entry['result'] or entry['state']):
                continue
            because = []
            for call in self.ta.walk([root]):
                found = changed.get(call.tag)
                if found is None or not (found['args'] or found['result']):
                    continue
                if call.tag == root and not found['args']:
                    continue
                because.append(
                    {
                        'path': found['path'],
                        'depth': found['depth'],
                        'args': [a['arg'] for a in found['args']],
                        # the root's own result is the effect, not a cause
                        'result': found['result'] is not None
                        and call.tag != root,
                    }
                )
            because.sort(key=lambda d: -d['depth'])  # stable: walk order
            self.result.lineage.append(
                {
                    'path': entry['path'],
                    'result': entry['result'],
                    'state': entry['state'],
                    'because': because,
                }
            )


def _lost(tl: Timeline, node: _Node) -> dict[str, Any]:
    """An added or missing call, named by its path."""
    call = tl.calls[node.tag]
    return {
        'path': node.path,
        'tag': node.tag,
        'action': call.action,
        'class': _class(tl, call),
        'state': call.state,
        'depth': node.depth,
    }


def _align(
    differ: _Differ, la: list[str], lb: list[str]
) -> Iterator[tuple[int | None, int | None]]:
    """Pairs of indexes of one sibling group (None: no partner)."""
    if len(la) == len(lb):
        yield from ((i, i) for i in range(len(la)))
        return
    sa = [_signature(differ.a, t) for t in la]
    sb = [_signature(differ.b, t) for t in lb]
    matcher = difflib.SequenceMatcher(None, sa, sb, autojunk=False)
    for _op, i1, i2, j1, j2 in matcher.get_opcodes():
        n = min(i2 - i1, j2 - j1)
        yield from ((i1 + k, j1 + k) for k in range(n))
        yield from ((i, None) for i in range(i1 + n, i2))
        yield from ((None, j) for j in range(j1 + n, j2))


def _err(call: Call) -> dict[str, str] | None:
    if call.error is None:
        return None
    return {k: v for k, v in call.error.items() if k in {'type', 'message'}}


def _state_change(a: str, b: str) -> str:
    if b == FAILED and a != FAILED:
        return 'failure appeared'
    if a == FAILED and b != FAILED:
        return 'failure went away'
    return 'changed'


def _run_info(graph: RunGraph) -> dict[str, str]:
    return {
        'run': clip.text(graph.run.run_id, clip.ID_CHARS),
        'dir': str(graph.run.run_dir),
    }


def diff_runs(
    a: RunGraph, b: RunGraph, threshold: Threshold | None = None
) -> DiffResult:
    """Match the actions of ``a`` and ``b`` and compare each pair."""
    return _Differ(a, b, threshold or Threshold()).run()
