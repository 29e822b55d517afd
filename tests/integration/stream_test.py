"""The streaming exports of real multi-process runs equal the in-memory ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import provlog
from tests.integration import import_test
from tests.streamcheck import same_provjson
from tests.streamcheck import same_provn
from tests.streamcheck import same_rdf

#: A run imported from Academy's JSONPoolLogging logs (and its live twin).
imported = import_test.both


@pytest.mark.parametrize('fmt', ('nt', 'turtle'))
def test_rdf_isomorphic(workflow_run: dict[str, Any], fmt: str) -> None:
    same_rdf(Path(workflow_run['run_dir']), fmt, exact=True)


def test_provn_same_lines(workflow_run: dict[str, Any]) -> None:
    same_provn(Path(workflow_run['run_dir']))


def test_provjson_same_sections(workflow_run: dict[str, Any]) -> None:
    run = Path(workflow_run['run_dir'])
    merge = same_provjson(run)
    memory = provlog.load(run)
    assert merge.actions == len(memory.run.actions)
    assert [g.message for g in merge.run.gaps()] == [
        g.message for g in memory.run.gaps()
    ]
    assert merge.late == 0


def test_damaged_run(procpool_run: dict[str, Any], tmp_path: Path) -> None:
    """Lost beginnings, a stray 1970 time and a lost journal: still equal."""
    from tests.integration.traces_test import _copy_edited

    original = provlog.load(procpool_run['run_dir'])
    no_start = min(
        a.tag for a in original.run.actions.values() if a.name == 'square'
    )

    def edit(event: dict[str, Any]) -> dict[str, Any] | None:
        if (event.get('tag'), event['e']) == (no_start, 'execute_start'):
            return None
        return event

    folder = _copy_edited(procpool_run, tmp_path, edit)
    journals = sorted(folder.glob('*.jsonl'))
    stray = '00000000-0000-4000-8000-000000000001'
    with journals[0].open('ab') as out:
        out.write(
            b'{"e":"execute_success","tag":"%s","t":0}\n' % stray.encode()
        )
    biggest = max(journals, key=lambda p: p.stat().st_size)
    biggest.unlink()  # a process whose journal is gone: gaps
    memory = provlog.load(folder)
    assert not memory.run.complete
    merge = same_provjson(folder)
    assert [g.message for g in merge.run.gaps()] == [
        g.message for g in memory.run.gaps()
    ]
    same_rdf(folder, 'nt', exact=True)


def test_imported_run(imported: dict[str, Any]) -> None:
    """An imported run (no hosts, inferred callers, import gaps): equal."""
    run_dir = imported['imported'].run_dir
    merge = same_provjson(run_dir)
    assert any(g.code == 'imported' for g in merge.run.gaps())
    same_rdf(run_dir, 'nt', exact=True)
    same_provn(run_dir)
