"""Merging journals: order-free, duplicate-proof, damage named."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import networkx as nx
import orjson
import pytest

import provlog
from provlog.cli import main


def _copy(run: dict[str, Any], tmp_path: Path) -> Path:
    src = run['run_dir']
    dst = tmp_path / 'runs' / src.name
    shutil.copytree(src, dst)
    return dst


def _signature(graph: provlog.RunGraph) -> tuple[Any, ...]:
    g: nx.MultiDiGraph = graph.nx
    nodes = sorted(
        (n, sorted(map(str, d.items()))) for n, d in g.nodes(data=True)
    )
    edges = sorted(
        (u, v, k, sorted(map(str, d.items())))
        for u, v, k, d in g.edges(keys=True, data=True)
    )
    return (nodes, edges)


class TestMerge:
    """The merged graph does not depend on file names, order or copies."""

    def test_file_order_irrelevant(self, procpool_run, tmp_path):
        run_dir = _copy(procpool_run, tmp_path)
        before = _signature(provlog.load(run_dir))
        files = sorted(run_dir.glob('*.jsonl'))
        for n, f in enumerate(reversed(files)):  # reverse the name order
            f.rename(run_dir / f'{n:02d}-{f.name}')
        assert _signature(provlog.load(run_dir)) == before

    def test_duplicate_and_partial_copies_add_nothing(
        self, procpool_run, tmp_path
    ):
        run_dir = _copy(procpool_run, tmp_path)
        graph = provlog.load(run_dir)
        before, stats = _signature(graph), graph.stats()
        biggest = max(run_dir.glob('*.jsonl'), key=lambda p: p.stat().st_size)
        shutil.copy(biggest, run_dir / 'copy-of-a-journal.jsonl')
        data = biggest.read_bytes()
        (run_dir / 'half-a-journal.jsonl').write_bytes(data[: len(data) // 2])
        graph = provlog.load(run_dir)
        assert _signature(graph) == before
        assert graph.stats()['actions'] == stats['actions']
        assert graph.stats()['processes'] == stats['processes']

    def test_mixed_runs_rejected(self, procpool_run, local_run, tmp_path):
        run_dir = _copy(procpool_run, tmp_path)
        other = next(local_run['run_dir'].glob('*.jsonl'))
        shutil.copy(other, run_dir / other.name)
        with pytest.raises(provlog.JournalError, match='runs mixed'):
            provlog.load(run_dir)


class TestCli:
    """`provlog export` and `provlog stats` as the README shows them."""

    def test_stats_json(self, procpool_run, capsys):
        assert main(['stats', str(procpool_run['run_dir']), '--json']) == 0
        stats = orjson.loads(capsys.readouterr().out)
        assert stats['actions'] == 11
        assert stats['states'] == {
            'completed': 6,
            'failed': 3,
            'cancelled': 2,
            'not_ended': 0,
        }
        assert stats['agents'] == 3
        assert stats['processes'] == 4

    def test_stats_text(self, procpool_run, capsys):
        assert main(['stats', str(procpool_run['run_dir'])]) == 0
        out = capsys.readouterr().out
        assert 'actions    11' in out

    def test_export_from_parent_folder(self, procpool_run, tmp_path):
        out = tmp_path / 'run.provjson'
        parent = procpool_run['run_dir'].parent
        assert (
            main(
                ['export', str(parent), '--format', 'provjson', '-o', str(out)]
            )
            == 0
        )
        doc = orjson.loads(out.read_bytes())
        assert doc['prefix']['provlog'] == 'https://w3id.org/provlog/ns#'
        # a request and an execution per action (11), a launch and a
        # lifetime per agent (3)
        assert len(doc['activity']) == 2 * 11 + 2 * 3

    @pytest.mark.parametrize(
        'fmt',
        ('provn', 'provxml', 'turtle', 'jsonld', 'nt', 'xml'),
    )
    def test_export_formats(self, local_run, tmp_path, fmt):
        out = tmp_path / f'run.{fmt}'
        args = ['export', str(local_run['run_dir']), '-f', fmt, '-o', str(out)]
        assert main(args) == 0
        assert out.stat().st_size > 1000
        assert b'provlog' in out.read_bytes()

    def test_damaged_journal_one_line_error(
        self, procpool_run, tmp_path, capsys
    ):
        run_dir = _copy(procpool_run, tmp_path)
        victim = sorted(run_dir.glob('*.jsonl'))[0]
        lines = victim.read_bytes().split(b'\n')
        lines.insert(2, b'{"e": "start", "tag": oops}')
        victim.write_bytes(b'\n'.join(lines))
        assert main(['stats', str(run_dir)]) == 2
        err = capsys.readouterr().err.strip()
        assert '\n' not in err
        assert f'{victim}:3:' in err
        assert main(['stats', str(run_dir), '--lenient', '--json']) == 0
        stats = orjson.loads(capsys.readouterr().out)
        assert stats['lines_skipped'] == 1
        assert stats['complete'] is False

    def test_bad_tag_names_line(self, procpool_run, tmp_path, capsys):
        run_dir = _copy(procpool_run, tmp_path)
        victim = sorted(run_dir.glob('*.jsonl'))[0]
        with victim.open('ab') as fh:
            fh.write(b'{"e": "start", "tag": "../../etc/passwd", "t": 1.0}\n')
        assert main(['export', str(run_dir)]) == 2
        assert 'is not a UUID' in capsys.readouterr().err

    def test_lenient_counts_a_rejected_event(
        self, procpool_run, tmp_path, capsys
    ):
        """An event --lenient leaves out is a gap, not a silent loss."""
        run_dir = _copy(procpool_run, tmp_path)
        victim = sorted(run_dir.glob('*.jsonl'))[0]
        with victim.open('ab') as fh:
            fh.write(b'{"e": "execute_start", "tag": "nope", "t": 1.0}\n')
        assert main(['stats', str(run_dir), '--lenient', '--json']) == 0
        stats = orjson.loads(capsys.readouterr().out)
        assert stats['lines_skipped'] == 1
        assert stats['complete'] is False
        assert [g['code'] for g in stats['gaps']] == ['lines-skipped']

    def test_missing_folder(self, tmp_path, capsys):
        assert main(['stats', str(tmp_path / 'nope')]) == 2
        err = capsys.readouterr().err
        assert f"{tmp_path}: no run folder starts with 'nope'" in err

    def test_two_runs_need_a_name(
        self, procpool_run, local_run, tmp_path, capsys
    ):
        parent = tmp_path / 'both'
        for run in (procpool_run, local_run):
            shutil.copytree(run['run_dir'], parent / run['run_dir'].name)
        assert main(['stats', str(parent)]) == 2
        assert 'holds 2 runs' in capsys.readouterr().err
