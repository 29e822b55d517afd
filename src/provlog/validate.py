"""``provlog validate``: schema, ordering and completeness of a run.

Three kinds of problem, each a :class:`Problem` with a code and a message:

* ``schema``: the exported PROV-JSON against the W3C PROV-JSON schema
  (shipped inside the ``prov`` wheel); needs ``jsonschema``.
* ``constraint``: PROV-CONSTRAINTS event ordering (30 start precedes end,
  33/34 usage and generation within their activity, 35 communication
  ordering, 37 generation precedes usage) checked on the recorded times
  with a tolerance for clocks of different hosts. Violations are reported,
  never "fixed": the export keeps what each host saw.
* ``completeness``: every gap of :meth:`.MergedRun.gaps`, so exactly what
  ``stats`` lists and the export's ``provlog:Run`` marks: capture off or
  interrupted, events dropped, lost or not encodable, damaged lines, cut or
  unclosed journals, actions that never ended, executions or requests never
  observed.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from typing import TYPE_CHECKING

import orjson

from provlog.mapping.model import PREFIXES
from provlog.mapping.provjson import _record
from provlog.mapping.provjson import RELATIONS

if TYPE_CHECKING:
    from provlog.mapping.runview import RunView

__all__ = ['DEFAULT_TOLERANCE', 'Problem', 'schema_problems', 'validate_run']

#: Seconds by which two timestamps may disagree before an ordering
#: constraint counts as violated (hosts' clocks are rarely closer).
DEFAULT_TOLERANCE = 1.0


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a run."""

    kind: str
    code: str
    message: str

    def to_json(self) -> dict[str, str]:
        """As a plain dict."""
        return {'kind': self.kind, 'code': self.code, 'message': self.message}


def _seconds(iso: Any) -> float | None:
    if not isinstance(iso, str):
        return None
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return None


def schema_problems(doc: dict[str, Any]) -> list[Problem]:
    """The document against the W3C PROV-JSON schema, record by record.

    Formats are not checked (as ``jsonschema`` does by default), so whether
    a record is valid depends only on its keys, its JSON types and its
    arrays' lengths: its *shape*. Records are checked once per shape and the
    verdict reused (a run of 40,000 actions has a few dozen shapes among
    hundreds of thousands of records), which is exact and 20x faster.
    """
    schema = _Schema.make()
    if isinstance(schema, Problem):
        return [schema]
    data = dict(doc)
    sections = {
        key: value
        for key, value in data.items()
        if key != 'prefix' and isinstance(value, dict)
    }
    for section, records in sections.items():
        for ident, record in records.items():
            schema.record(section, ident, record)
    return schema.problems(
        {k: ({} if k in sections else v) for k, v in data.items()}
    )


class _Schema:
    """The PROV-JSON schema, checked one record at a time, by shape."""

    def __init__(self, validator: Any) -> None:
        self.validator = validator
        self.verdicts: dict[tuple[str, Any], bool] = {}
        self.errors: list[tuple[list[Any], str]] = []
        #: ``id`` of a shared value (a ``prov:type``) -> it and its shape
        self.shared: dict[int, tuple[Any, Any]] = {}

    @classmethod
    def make(cls) -> _Schema | Problem:
        """The checker, or the problem that there is none."""
        try:
            import jsonschema  # noqa: PLC0415
        except ImportError:
            return Problem(
                'schema',
                'no-jsonschema',
                'jsonschema is not installed; the schema was not checked',
            )
        schema_file = (
            importlib.resources.files('prov')
            / 'tests'
            / 'schemas'
            / 'prov-json.schema.json'
        )
        return cls(
            jsonschema.Draft4Validator(orjson.loads(schema_file.read_bytes()))
        )

    def record(self, section: str, ident: str, record: Any) -> None:
        """Check one record of ``section``."""
        if section == 'wasEndedBy':  # the submission's schema spells it so
            section = 'wasEndedby'
        shape = self.shape(record)
        valid = self.verdicts.get((section, shape))
        if valid is None:
            sample = {section: {'_': _unshape(shape)}}
            valid = self.validator.is_valid(sample)
            self.verdicts[section, shape] = valid
        if not valid:  # rare: the record itself, for its own values
            self.errors += [
                (list(e.absolute_path), e.message)
                for e in self.validator.iter_errors({section: {ident: record}})
            ]

    def shape(self, record: Any) -> Any:
        """:func:`_shape` of a record; a shared value's shape made once."""
        if type(record) is not dict:
            return _shape(record)
        items = []
        for key, value in record.items():
            leaf = _SCALARS.get(value.__class__)
            if leaf is None:
                known = self.shared.get(id(value))
                if known is None or known[0] is not value:
                    known = (value, _shape(value))
                    if key == 'prov:type':
                        self.shared[id(value)] = known
                leaf = known[1]
            items.append((key, leaf))
        return ('{', tuple(items))

    def problems(self, top: dict[str, Any]) -> list[Problem]:
        """Every problem: of ``top`` (sections left empty), then records."""
        if 'wasEndedBy' in top:
            top['wasEndedby'] = top.pop('wasEndedBy')
        errors = [
            (list(e.absolute_path), e.message)
            for e in self.validator.iter_errors(top)
        ]
        return [
            Problem(
                'schema',
                'prov-json',
                f'{"/".join(map(str, path)) or "document"}: {message[:200]}',
            )
            for path, message in errors + self.errors
        ]


_SCALARS: dict[type, str] = {str: 's', int: 'i', float: 'd', type(None): 'z'}


def _shape(value: Any) -> Any:  # noqa: PLR0911 - one return per JSON type
    """What the schema sees of ``value``: keys, JSON types, array lengths."""
    kind = type(value)
    if kind is dict:
        return ('{', tuple((k, _shape(v)) for k, v in value.items()))
    if kind is list:
        return ('[', tuple(_shape(v) for v in value))
    if kind is str:
        return 's'
    if kind is bool:
        return 't' if value else 'f'
    if kind is int:
        return 'i'
    if kind is float:
        return 'd'
    if value is None:
        return 'z'
    return ('?', repr(value)[:100])


_LEAVES: dict[str, Any] = {
    's': '',
    't': True,
    'f': False,
    'i': 0,
    'd': 0.5,
    'z': None,
}


def _unshape(shape: Any) -> Any:
    """A value of ``shape`` (what :func:`_shape` kept, rebuilt)."""
    if isinstance(shape, str):
        return _LEAVES[shape]
    mark, inner = shape
    if mark == '{':
        return {k: _unshape(v) for k, v in inner}
    if mark == '[':
        return [_unshape(v) for v in inner]
    return inner  # not JSON: its repr, which the schema refuses as well


class _Checker:
    """A :class:`~provlog.mapping.emit.Sink` that checks what it is given.

    The schema, record by record; PROV-CONSTRAINTS ordering from each
    activity's times and each relation's. An activity's own relations
    (its usages and generations, its request) come with it; a request's
    ``wasInformedBy`` its parent execution is checked at the end, when
    every start is known.
    """

    def __init__(self, schema: _Schema | None, tolerance: float) -> None:
        self.schema = schema
        self.tolerance = tolerance
        self.cache: dict[tuple[str, ...], Any] = {}
        self.sections: set[str] = set()
        self.relations = 0
        self.starts: dict[str, float | None] = {}
        self.informed: list[tuple[str, float, str]] = []
        self.nodes: list[Problem] = []
        self.edges: list[Problem] = []

    def add(
        self,
        nodes: dict[str, dict[str, Any]],
        edges: list[tuple[str, str, dict[str, Any]]],
    ) -> None:
        """Check some nodes and edges (the sink's one method)."""
        schema = self.schema
        times: dict[str, tuple[float | None, float | None]] = {}
        for node, data in nodes.items():
            kind = data['kind']
            if schema is not None:
                self.sections.add(kind)
                schema.record(kind, node, _record(data, 'kind', self.cache))
            if kind == 'activity':
                times[node] = self._activity(node, data)
        generated: dict[str, float] = {}
        for u, _, d in edges:
            t = _seconds(d.get('prov:time'))
            if d['rel'] == 'wasGeneratedBy' and t is not None:
                generated[u] = t
        for u, v, d in edges:
            if schema is not None:
                self.relations += 1
                self._schema(u, v, d)
            self._edge(u, v, d, times, generated)

    def _schema(self, u: str, v: str, d: dict[str, Any]) -> None:
        rel = d['rel']
        record = _record(d, 'rel', self.cache)
        src_key, dst_key = RELATIONS[rel]
        record[src_key] = u
        record[dst_key] = v
        self.sections.add(rel)
        assert self.schema is not None
        self.schema.record(rel, f'_:r{self.relations}', record)

    def _activity(
        self, node: str, data: dict[str, Any]
    ) -> tuple[float | None, float | None]:
        start = _seconds(data.get('prov:startTime'))
        end = _seconds(data.get('prov:endTime'))
        self.starts[node] = start
        if (
            start is not None
            and end is not None
            and (end < start - self.tolerance)
        ):
            self.nodes.append(
                Problem(
                    'constraint',
                    '30-start-precedes-end',
                    f'{node} ends {start - end:.3f} s before it starts',
                ),
            )
        return start, end

    def _edge(
        self,
        u: str,
        v: str,
        d: dict[str, Any],
        times: dict[str, tuple[float | None, float | None]],
        generated: dict[str, float],
    ) -> None:
        rel = d['rel']
        t = _seconds(d.get('prov:time'))
        tolerance = self.tolerance
        if rel in {'used', 'wasGeneratedBy'} and t is not None:
            activity = u if rel == 'used' else v
            start, end = times.get(activity, (None, None))
            code = (
                '33-usage-within-activity'
                if rel == 'used'
                else '34-generation-within-activity'
            )
            if start is not None and t < start - tolerance:
                self.edges.append(
                    Problem(
                        'constraint',
                        code,
                        f'{rel} {start - t:.3f} s before {activity} started',
                    ),
                )
            if end is not None and t > end + tolerance:
                self.edges.append(
                    Problem(
                        'constraint',
                        code,
                        f'{rel} at {t - end:.3f} s after {activity} ended',
                    ),
                )
        if rel == 'used' and t is not None and v in generated:
            made = generated[v]
            if t < made - tolerance:
                self.edges.append(
                    Problem(
                        'constraint',
                        '37-generation-precedes-usage',
                        f'{v} used {made - t:.3f} s before it was generated',
                    ),
                )
        if rel == 'wasInformedBy':
            informed_end = times.get(u, (None, None))[1]
            if informed_end is not None:
                self.informed.append((u, informed_end, v))

    def problems(self) -> list[Problem]:
        """Every problem found: the schema's, then the ordering's."""
        found: list[Problem] = []
        if self.schema is not None:
            prefix = {'prefix': dict(PREFIXES)}
            found += self.schema.problems(
                {**prefix, **{k: {} for k in sorted(self.sections)}}
            )
        for u, informed_end, v in self.informed:
            informant_start = self.starts.get(v)
            if (
                informant_start is not None
                and informed_end < informant_start - self.tolerance
            ):
                self.edges.append(
                    Problem(
                        'constraint',
                        '35-wasInformedBy-ordering',
                        f'{u} ended {informant_start - informed_end:.3f} s '
                        f'before its informant {v} started',
                    ),
                )
        return found + self.nodes + self.edges


def _completeness_problems(run: RunView) -> list[Problem]:
    """One problem per gap of the run (:meth:`MergedRun.gaps`)."""
    return [
        Problem('completeness', gap.code, gap.message)
        for gap in run.run.gaps()
    ]


def validate_run(
    run: RunView,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    schema: bool = True,
) -> list[Problem]:
    """Every problem found in ``run``; an empty list means valid.

    The PROV graph is built one action at a time
    (:func:`provlog.mapping.emit.emit_run`) and checked as it comes, so
    memory holds the merged run and one action's part of the graph, never
    the whole graph or its PROV-JSON.
    """
    from provlog.mapping.emit import emit_run  # noqa: PLC0415

    problems: list[Problem] = []
    checker_schema: _Schema | None = None
    if schema:
        made = _Schema.make()
        if isinstance(made, Problem):
            problems.append(made)
        else:
            checker_schema = made
    checker = _Checker(checker_schema, tolerance)
    emit_run(run.run, checker)
    problems += checker.problems()
    problems += _completeness_problems(run)
    return problems
