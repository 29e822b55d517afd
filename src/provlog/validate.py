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
    try:
        import jsonschema  # noqa: PLC0415
    except ImportError:
        return [
            Problem(
                'schema',
                'no-jsonschema',
                'jsonschema is not installed; the schema was not checked',
            ),
        ]
    schema_file = (
        importlib.resources.files('prov')
        / 'tests'
        / 'schemas'
        / 'prov-json.schema.json'
    )
    validator = jsonschema.Draft4Validator(
        orjson.loads(schema_file.read_bytes()),
    )
    data = dict(doc)
    if 'wasEndedBy' in data:  # the submission's schema spells it wasEndedby
        data['wasEndedby'] = data.pop('wasEndedBy')
    errors: list[tuple[list[Any], str]] = []
    sections = {
        key: value
        for key, value in data.items()
        if key != 'prefix' and isinstance(value, dict)
    }
    top = {k: ({} if k in sections else v) for k, v in data.items()}
    errors += [
        (list(e.absolute_path), e.message) for e in validator.iter_errors(top)
    ]
    verdicts: dict[tuple[str, Any], bool] = {}
    for section, records in sections.items():
        for ident, record in records.items():
            shape = _shape(record)
            valid = verdicts.get((section, shape))
            if valid is None:
                sample = {section: {'_': _unshape(shape)}}
                valid = validator.is_valid(sample)
                verdicts[section, shape] = valid
            if not valid:  # rare: the record itself, for its own values
                errors += [
                    (list(e.absolute_path), e.message)
                    for e in validator.iter_errors({section: {ident: record}})
                ]
    return [
        Problem(
            'schema',
            'prov-json',
            f'{"/".join(map(str, path)) or "document"}: {message[:200]}',
        )
        for path, message in errors
    ]


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


def _ordering_problems(  # noqa: C901, PLR0912
    run: RunView,
    tolerance: float,
) -> list[Problem]:
    g = run.nx
    problems: list[Problem] = []
    times: dict[str, tuple[float | None, float | None]] = {}
    for node, data in g.nodes(data=True):
        if data['kind'] != 'activity':
            continue
        start = _seconds(data.get('prov:startTime'))
        end = _seconds(data.get('prov:endTime'))
        times[node] = (start, end)
        if start is not None and end is not None and end < start - tolerance:
            problems.append(
                Problem(
                    'constraint',
                    '30-start-precedes-end',
                    f'{node} ends {start - end:.3f} s before it starts',
                ),
            )
    generated: dict[str, float] = {}
    for u, _, d in g.edges(data=True):
        t = _seconds(d.get('prov:time'))
        if d['rel'] == 'wasGeneratedBy' and t is not None:
            generated[u] = t
    for u, v, d in g.edges(data=True):
        rel = d['rel']
        t = _seconds(d.get('prov:time'))
        if rel in {'used', 'wasGeneratedBy'} and t is not None:
            activity = u if rel == 'used' else v
            start, end = times.get(activity, (None, None))
            code = (
                '33-usage-within-activity'
                if rel == 'used'
                else ('34-generation-within-activity')
            )
            if start is not None and t < start - tolerance:
                problems.append(
                    Problem(
                        'constraint',
                        code,
                        f'{rel} {start - t:.3f} s before {activity} started',
                    ),
                )
            if end is not None and t > end + tolerance:
                problems.append(
                    Problem(
                        'constraint',
                        code,
                        f'{rel} at {t - end:.3f} s after {activity} ended',
                    ),
                )
        if rel == 'used' and t is not None and v in generated:
            made = generated[v]
            if t < made - tolerance:
                problems.append(
                    Problem(
                        'constraint',
                        '37-generation-precedes-usage',
                        f'{v} used {made - t:.3f} s before it was generated',
                    ),
                )
        if rel == 'wasInformedBy':
            informant_start = times.get(v, (None, None))[0]
            informed_end = times.get(u, (None, None))[1]
            if (
                informant_start is not None
                and informed_end is not None
                and informed_end < informant_start - tolerance
            ):
                problems.append(
                    Problem(
                        'constraint',
                        '35-wasInformedBy-ordering',
                        f'{u} ended {informant_start - informed_end:.3f} s '
                        f'before its informant {v} started',
                    ),
                )
    return problems


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
    """Every problem found in ``run``; an empty list means valid."""
    problems: list[Problem] = []
    if schema:
        problems += schema_problems(run.to_provjson())
    problems += _ordering_problems(run, tolerance)
    problems += _completeness_problems(run)
    return problems
