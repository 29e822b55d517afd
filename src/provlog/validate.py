"""``provlog validate``: schema, ordering and completeness of a run.

Three kinds of problem, each a :class:`Problem` with a code and a message:

* ``schema``: the exported PROV-JSON against the W3C PROV-JSON schema
  (shipped inside the ``prov`` wheel); needs ``jsonschema``.
* ``constraint``: PROV-CONSTRAINTS event ordering (30 start precedes end,
  33/34 usage and generation within their activity, 35 communication
  ordering, 37 generation precedes usage) checked on the recorded times
  with a tolerance for clocks of different hosts. Violations are reported,
  never "fixed": the export keeps what each host saw.
* ``completeness``: every gap of :meth:`provlog.merge.MergedRun.gaps`, so
  exactly what ``stats`` lists and the export's ``provlog:Run`` marks:
  capture off or interrupted, events dropped, lost or not encodable,
  damaged lines, cut or unclosed journals, actions that never ended,
  executions or requests never observed.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from provlog.graph import RunGraph

__all__ = ['DEFAULT_TOLERANCE', 'Problem', 'validate_run']

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


def _schema_problems(doc: dict[str, Any]) -> list[Problem]:
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
    schema = orjson.loads(schema_file.read_bytes())
    data = dict(doc)
    if 'wasEndedBy' in data:  # the submission's schema spells it wasEndedby
        data['wasEndedby'] = data.pop('wasEndedBy')
    validator = jsonschema.Draft4Validator(schema)
    return [
        Problem(
            'schema',
            'prov-json',
            f'{"/".join(map(str, e.absolute_path)) or "document"}: '
            f'{e.message[:200]}',
        )
        for e in validator.iter_errors(data)
    ]


def _ordering_problems(  # noqa: C901, PLR0912
    run: RunGraph,
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


def _completeness_problems(run: RunGraph) -> list[Problem]:
    """One problem per gap of the run (:meth:`MergedRun.gaps`)."""
    return [
        Problem('completeness', gap.code, gap.message)
        for gap in run.run.gaps()
    ]


def validate_run(
    run: RunGraph,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    schema: bool = True,
) -> list[Problem]:
    """Every problem found in ``run``; an empty list means valid."""
    problems: list[Problem] = []
    if schema:
        problems += _schema_problems(run.to_provjson())
    problems += _ordering_problems(run, tolerance)
    problems += _completeness_problems(run)
    return problems
