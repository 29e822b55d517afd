"""Sides known only by their end, and stray clocks, in every view.

A side whose beginning no journal holds is drawn at its end and says so
(``started`` false); a time far outside the journals' own (a clock reset
to 1970) neither moves the run's start nor loses its call: the side is
drawn clamped and flagged ``clock_suspect``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

import provlog
from provlog.views.report import page_data
from provlog.views.report import render_report
from tests import browser
from tests.integration.traces_test import _copy_edited

_SKIP = browser.missing_reason()
needs_browser = pytest.mark.skipif(_SKIP is not None, reason=_SKIP or '')


class Edited:
    """The procpool run, damaged twice.

    ``no_start``'s execution lost its ``execute_start``; ``stray`` is a
    call known only by an ``execute_success`` at ``"t": 0`` (1970).
    """

    stray = '00000000-0000-4000-8000-000000000001'

    def __init__(self, run: dict[str, Any], tmp: Path) -> None:
        self.original = provlog.load(run['run_dir'])
        self.no_start = min(
            a.tag
            for a in self.original.run.actions.values()
            if a.name == 'square'
        )

        def edit(event: dict[str, Any]) -> dict[str, Any] | None:
            if (event.get('tag'), event['e']) == (
                self.no_start,
                'execute_start',
            ):
                return None
            return event

        self.folder = _copy_edited(run, tmp, edit)
        journal = min(self.folder.glob('*.jsonl'))
        line = {'e': 'execute_success', 'tag': self.stray, 't': 0}
        with journal.open('ab') as out:
            out.write(orjson.dumps(line) + b'\n')
        self.graph = provlog.load(self.folder)


@pytest.fixture(scope='module')
def edited(
    procpool_run: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Edited:
    return Edited(procpool_run, tmp_path_factory.mktemp('clock'))


def test_run_keeps_its_start(edited: Edited) -> None:
    tl, before = edited.graph.timeline, edited.original.timeline
    assert tl.start == before.start
    assert tl.end == before.end
    assert len(tl.calls) == len(before.calls) + 1


def test_perfetto_args(edited: Edited) -> None:
    doc = orjson.loads(edited.graph.serialize('perfetto'))
    assert doc['metadata']['origin-unix-s'] == edited.original.timeline.start
    args = {
        e['args']['tag']: e['args']
        for e in doc['traceEvents']
        if e['ph'] == 'X' and e['cat'] == 'execution'
    }
    assert args[edited.no_start]['started'] is False
    assert 'clock_suspect' not in args[edited.no_start]
    assert args[edited.stray]['clock_suspect'] is True
    assert args[edited.stray]['started'] is False
    others = set(args) - {edited.no_start, edited.stray}
    assert not any(
        'started' in args[t] or 'clock_suspect' in args[t] for t in others
    )


def test_otlp_attributes(edited: Edited) -> None:
    doc = orjson.loads(edited.graph.serialize('otlp'))
    flags: dict[str, dict[str, Any]] = {}
    for resource in doc['resourceSpans']:
        for scope in resource['scopeSpans']:
            for span in scope['spans']:
                if span['kind'] != 2:  # SERVER: the execution
                    continue
                attrs = {a['key']: a['value'] for a in span['attributes']}
                tag = attrs['academy.action_tag']['stringValue']
                flags[tag] = {
                    k: v for k, v in attrs.items() if k.startswith('provlog.')
                }
    assert flags[edited.no_start]['provlog.started'] == {'boolValue': False}
    assert flags[edited.stray]['provlog.clock_suspect'] == {'boolValue': True}
    assert 'provlog.clock_suspect' not in flags[edited.no_start]
    start = int(edited.original.timeline.start * 1e6) * 1000
    assert all(
        int(span['startTimeUnixNano']) >= start - 1000
        for r in doc['resourceSpans']
        for s in r['scopeSpans']
        for span in s['spans']
    )


def test_report_data(edited: Edited) -> None:
    data = page_data(render_report(edited.graph))
    assert data['t0'] == edited.original.timeline.start
    sides = {c['tag']: c['ex'] for c in data['calls'] if 'ex' in c}
    assert sides[edited.no_start][6:] == [False, False]
    assert sides[edited.stray][6:] == [False, True]
    assert sides[edited.stray][0] == 0  # drawn at the run's start
    assert sum(1 for s in sides.values() if s[6:] != [True, False]) == 2


@needs_browser
def test_report_details(edited: Edited, tmp_path: Path) -> None:
    path = tmp_path / 'clock.html'
    path.write_bytes(render_report(edited.graph))
    with browser.chromium() as page:
        errors: list[str] = []
        page.on('pageerror', lambda e: errors.append(str(e)))
        page.goto(path.resolve().as_uri())
        page.wait_for_selector('body[data-ready]', state='attached')
        pane = page.locator('#details')
        page.click(f'#timeline .bar.exec[data-tag="{edited.no_start}"]')
        assert 'not journalled (drawn from its end)' in pane.inner_text()
        page.click(f'#timeline .bar.exec[data-tag="{edited.stray}"]')
        assert 'suspect' in pane.inner_text()
        assert errors == []
