"""`provlog validate`: schema, ordering with a tolerance, completeness."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson

import provlog
from provlog.cli import main
from provlog.validate import schema_problems
from tests.provcheck import check_provjson


def _copy(run: dict, tmp_path: Path) -> Path:
    dst = tmp_path / run['run_dir'].name
    shutil.copytree(run['run_dir'], dst)
    return dst


def _shift_agent_clocks(run_dir: Path, seconds: float) -> None:
    """Rewrite every journal except the client's as if its host's clock ran off."""
    for journal in run_dir.glob('*.jsonl'):
        lines = journal.read_bytes().splitlines()
        events = [orjson.loads(line) for line in lines]
        if any(e.get('e') == 'sending' for e in events):
            continue  # the client process
        for event in events:
            if isinstance(event.get('t'), float):
                event['t'] += seconds
        journal.write_bytes(b''.join(orjson.dumps(e) + b'\n' for e in events))


class TestValidate:
    """A clean run validates; skewed clocks and gaps are reported, not hidden."""

    def test_clean_run_is_valid(self, workflow_run, capsys):
        assert main(['validate', str(workflow_run['run_dir'])]) == 0
        assert capsys.readouterr().out.strip().endswith(': valid')

    def test_skewed_clocks_reported_within_tolerance(
        self, procpool_run, tmp_path, capsys
    ):
        run_dir = _copy(procpool_run, tmp_path)
        _shift_agent_clocks(run_dir, -5.0)  # agents' hosts 5 s behind
        assert main(['validate', str(run_dir), '--json']) == 1
        report = orjson.loads(capsys.readouterr().out)
        codes = {p['code'] for p in report['problems']}
        assert '35-wasInformedBy-ordering' in codes
        assert all(p['kind'] == 'constraint' for p in report['problems'])
        # a tolerance wider than the skew accepts it
        assert main(['validate', str(run_dir), '--tolerance', '6']) == 0
        capsys.readouterr()
        # the export stays what the hosts saw, and stays valid PROV-JSON
        graph = provlog.load(run_dir)
        check_provjson(graph.to_provjson())

    def test_incomplete_run_reported(self, procpool_run, tmp_path, capsys):
        run_dir = _copy(procpool_run, tmp_path)
        journal = max(run_dir.glob('*.jsonl'), key=lambda p: p.stat().st_size)
        lines = journal.read_bytes().splitlines(keepends=True)
        # the process was killed: no close line, the last actions cut off
        kept = [line for line in lines if b'"e":"close"' not in line]
        journal.write_bytes(b''.join(kept[: len(kept) * 2 // 3]))
        assert main(['validate', str(run_dir), '--json']) == 1
        codes = {
            p['code']
            for p in orjson.loads(capsys.readouterr().out)['problems']
        }
        assert 'process-not-closed' in codes

    def test_dropped_events_mark_export_incomplete(
        self, procpool_run, tmp_path, capsys
    ):
        run_dir = _copy(procpool_run, tmp_path)
        journal = sorted(run_dir.glob('*.jsonl'))[0]
        with journal.open('ab') as fh:
            fh.write(b'{"e":"dropped","n":7,"t":1.0}\n')
        graph = provlog.load(run_dir)
        doc = graph.to_provjson()
        (run_entity,) = (
            e
            for e in doc['entity'].values()
            if e['prov:type']
            == {'$': 'provlog:Run', 'type': 'prov:QUALIFIED_NAME'}
        )
        assert run_entity['provlog:complete'] is False
        assert run_entity['provlog:eventsDropped'] == 7
        assert main(['validate', str(run_dir), '--json']) == 1
        codes = {
            p['code']
            for p in orjson.loads(capsys.readouterr().out)['problems']
        }
        assert 'events-dropped' in codes


_NOT_VALID = 'is not valid under any of the given schemas'
_BOGUS = "Additional properties are not allowed ('bogus' was unexpected)"


class TestSchemaByShape:
    """Records are checked once per shape, and a bad one is still named."""

    def test_each_bad_record_named_with_its_own_value(self, workflow_run):
        doc = provlog.load(workflow_run['run_dir']).to_provjson()
        assert schema_problems(doc) == []
        first, second = list(doc['entity'])[-2:]  # after valid ones
        doc['entity'][first]['bad'] = {'x': 41}  # same shape twice: both
        doc['entity'][second]['bad'] = {'x': 42}
        used = list(doc['used'])[-1]
        del doc['used'][used]['prov:entity']
        doc['bogus'] = 1
        found = sorted(p.message for p in schema_problems(doc))
        assert found == sorted(
            [
                f'document: {_BOGUS}',
                f"entity/{first}/bad: {{'x': 41}} {_NOT_VALID}",
                f"entity/{second}/bad: {{'x': 42}} {_NOT_VALID}",
                f"used/{used}: 'prov:entity' is a required property",
            ],
        )
