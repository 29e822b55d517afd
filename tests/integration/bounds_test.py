"""The report and the traces stay small and whole, whatever the journals hold.

A workflow can name, log or return anything, and a damaged journal can
hold a list where a string belongs, nested a thousand deep. Every field a
view writes is bounded (:mod:`provlog.clip`); these runs put a megabyte
into every field, or a deep list into the ones that were once ``str()``-ed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

import provlog
from provlog.views.report import page_data
from provlog.views.report import render_report

#: A megabyte, added to a field.
BIG = 1_000_000
#: What the merge needs as it is: line kinds, record kinds, ids it parses.
_KEEP = frozenset({'e', 'k', 'tag', 'uid', 'v', 't'})
#: Fields swollen in every line, not only the first (names are compared).
_EVERY = frozenset({'action'})


def _swell(src: Path, dst: Path) -> Path:
    """``src`` with a megabyte added to every field, in a run of 11 actions.

    Each string at each place of each kind of line (``start``'s
    ``args[].type``, an ``agent``'s ``name``, a log record's ``msg``...)
    grows in its first occurrence, action names in every one; each header
    gets a megabyte run id (the same in all), host and process key (a pid
    that is not an integer is refused by the reader, file:line);
    one kwarg a megabyte name; one journal loses its ``close`` line, so
    the run has a gap whose message names that process.
    """
    seen: set[tuple[str, ...]] = set()

    def swell(value: Any, path: tuple[str, ...]) -> Any:
        if isinstance(value, dict):
            return {
                k: v if k in _KEEP else swell(v, (*path, k))
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [swell(v, (*path, '[]')) for v in value]
        if isinstance(value, str) and (path not in seen or path[-1] in _EVERY):
            seen.add(path)
            return value + 'Z' * BIG
        return value

    dst.mkdir()
    journals = sorted(src.glob('*.jsonl'))
    renamed = False
    for n, journal in enumerate(journals):
        lines = []
        for raw in journal.read_bytes().splitlines():
            event = orjson.loads(raw)
            kind = event['e']
            if kind == 'close' and n == 0:
                continue
            if kind == 'journal':
                event['run'] += 'R' * BIG
                event['host'] = f'host{n}' + 'H' * BIG
                event['process'] += 'Q' * BIG
            else:
                kwargs = event.get('kwargs')
                if kind == 'start' and kwargs and not renamed:
                    kwargs['K' * BIG] = next(iter(kwargs.values()))
                    renamed = True
                event = swell(event, (kind,))
            lines.append(orjson.dumps(event))
        (dst / journal.name).write_bytes(b'\n'.join(lines) + b'\n')
    assert renamed
    return dst


@pytest.fixture(scope='module')
def swollen(
    procpool_run: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> provlog.RunGraph:
    src = procpool_run['run_dir']
    return provlog.load(_swell(src, tmp_path_factory.mktemp('big') / 'run'))


class TestMegabyteFields:
    """11 actions with a megabyte in every field: pages of kilobytes."""

    def test_report(self, swollen: provlog.RunGraph) -> None:
        assert len(swollen.run.actions) == 11
        page = render_report(swollen)
        assert len(page) < 1_000_000
        data = page_data(page)
        assert len(data['run']) <= 100
        assert all(len(p['label']) <= 400 for p in data['procs'])
        assert all(len(h) <= 200 for h in data['summary']['hosts'])
        gaps = data['summary']['gaps']
        assert any(g['code'] == 'process-not-closed' for g in gaps)
        assert all(len(g['message']) <= 2000 for g in gaps)
        values = [
            v for c in data['calls'] for _, v in c.get('in', ()) if v
        ] + [c['out'] for c in data['calls'] if c.get('out')]
        assert any('Z' in v.get('t', '') for v in values)
        assert all(len(v.get('t', '')) <= 200 for v in values)
        assert all(len(v.get('h', '')) <= 64 for v in values)
        notes = [d[2] for c in data['calls'] for d in c.get('der', ())]
        assert all(len(note) <= 403 for note in notes)

    def test_perfetto(self, swollen: provlog.RunGraph) -> None:
        trace = swollen.serialize('perfetto')
        assert len(trace) < 2_000_000
        doc = orjson.loads(trace)
        names = [e['name'] for e in doc['traceEvents'] if e['ph'] == 'X']
        assert len(names) == 22
        assert any('Z' in n for n in names)

    def test_otlp(self, swollen: provlog.RunGraph) -> None:
        request = swollen.serialize('otlp')
        assert len(request) < 2_000_000
        doc = orjson.loads(request)
        spans = [
            s
            for r in doc['resourceSpans']
            for scope in r['scopeSpans']
            for s in scope['spans']
        ]
        assert len(spans) == 22
        stacks = [
            a['value']['stringValue']
            for s in spans
            for e in s.get('events', ())
            for a in e['attributes']
            if a['key'] == 'exception.stacktrace'
        ]
        assert stacks
        assert all(len(s) <= 16_000 for s in stacks)


# ------------------------------------------------------------- deep nesting

_DEEP = b'[' * 1010 + b']' * 1010
_MARK = '\u0000deep'


def _deepen(
    src: Path, dst: Path, edit: Callable[[dict[str, Any]], bool]
) -> Path:
    """``src`` with a list nested 1010 deep where ``edit`` puts ``_MARK``.

    ``edit`` changes one event in place and says whether it did; only the
    first event it changes is kept changed.
    """
    dst.mkdir()
    done = False
    for journal in sorted(src.glob('*.jsonl')):
        lines = []
        for raw in journal.read_bytes().splitlines():
            event = orjson.loads(raw)
            if not done and edit(event):
                done = True
                mark = orjson.dumps(_MARK)
                lines.append(orjson.dumps(event).replace(mark, _DEEP))
            else:
                lines.append(raw)
        (dst / journal.name).write_bytes(b'\n'.join(lines) + b'\n')
    assert done
    return dst


def _log_message(event: dict[str, Any]) -> bool:
    inside = event.get('inside')
    records = inside.get('records') if isinstance(inside, dict) else None
    for record in records or ():
        if record.get('k') == 'log':
            record['msg'] = record['level'] = record['logger'] = _MARK
            return True
    return False


def _result_preview(event: dict[str, Any]) -> bool:
    if event['e'] != 'success' or not isinstance(event.get('result'), dict):
        return False
    event['result']['preview'] = _MARK
    return True


def _arg_preview(event: dict[str, Any]) -> bool:
    if event['e'] != 'start' or not event.get('args'):
        return False
    event['args'][0]['preview'] = _MARK
    return True


class TestDeepNesting:
    """A list 1010 deep is shown as ``<list>``, never turned into text."""

    @pytest.mark.parametrize(
        'edit', (_log_message, _result_preview, _arg_preview)
    )
    def test_report_and_traces(
        self,
        procpool_run: dict[str, Any],
        tmp_path: Path,
        edit: Callable[[dict[str, Any]], bool],
    ) -> None:
        run = _deepen(procpool_run['run_dir'], tmp_path / 'run', edit)
        graph = provlog.load(run)
        data = page_data(render_report(graph))
        for fmt in ('perfetto', 'otlp'):
            assert orjson.loads(graph.serialize(fmt))
        texts = orjson.dumps(data).decode()
        if edit is _log_message:
            lines = [line for c in data['calls'] for line in c.get('logs', ())]
            assert ['<list>'] * 3 in [line[2:] for line in lines]
        else:
            assert '"p":"<list>"' not in texts  # a preview must be a string
            assert '<list>' in graph.serialize('otlp').decode()

    def test_host_in_the_traces(self, procpool_run: dict[str, Any]) -> None:
        graph = provlog.load(procpool_run['run_dir'])
        deep: Any = []
        for _ in range(1010):
            deep = [deep]
        for process in graph.run.processes.values():
            process.host = deep
        assert all(
            label.startswith('<list>:')
            for label in graph.timeline.processes.values()
        )
        perfetto = orjson.loads(graph.serialize('perfetto'))
        names = [
            e['args']['name']
            for e in perfetto['traceEvents']
            if e['name'] == 'process_name'
        ]
        assert all('<list>:' in name for name in names)
        otlp = orjson.loads(graph.serialize('otlp'))
        hosts = {
            a['value']['stringValue']
            for r in otlp['resourceSpans']
            for a in r['resource']['attributes']
            if a['key'] == 'host.name'
        }
        assert hosts == {'<list>'}
