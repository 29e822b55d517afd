"""The run's on-disk store: built once, reused, rebuilt, and equal.

``provlog query RUN`` and ``provlog why RUN`` read the PROV-O from
``RUN/.provlog-store/`` (:mod:`provlog.query.store`). On real runs of the
example workflow, the store must answer every shipped question as the
in-memory store does and give the same ``why`` trees as the graph; it
must be built once and reused, rebuilt when a journal grows or the store
is damaged, kept in a temporary folder when the run folder is read-only;
and the graph must refuse a run above its limit with a message that says
what to use instead.
"""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pyoxigraph
import pytest

import provlog
from provlog.cli import main
from provlog.graph import LIMIT_VARIABLE
from provlog.graph import RunTooLargeError
from provlog.mapping.rdf import load_store
from provlog.query.sparql import canned_queries
from provlog.query.sparql import run_sparql
from provlog.query.store import open_store
from provlog.query.store import STORE_DIR
from provlog.query.storewhy import why_in_store

COUNT = 'SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }'


def _copy(run: dict[str, Any], tmp_path: Path) -> Path:
    """A copy of a session run, free to change."""
    source = Path(run['run_dir'])
    target = tmp_path / 'runs' / source.name
    shutil.copytree(source, target, ignore=shutil.ignore_patterns('.*'))
    _settle(target)
    return target


def _settle(run_dir: Path) -> None:
    """Journals last written a minute ago: the store may be kept."""
    old = time.time() - 60
    for path in run_dir.glob('*.jsonl'):
        os.utime(path, (old, old))


def _db(run_dir: Path) -> str:
    manifest = orjson.loads(
        (run_dir / STORE_DIR / 'manifest.json').read_bytes()
    )
    return str(manifest['db'])


def _query_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    assert main(['query', *args, '--format', 'json']) == 0
    return orjson.loads(capsys.readouterr().out)


_DOUBLE = 'http://www.w3.org/2001/XMLSchema#double'


def _term(term: dict[str, Any]) -> Any:
    """A term as compared: blank nodes unnamed, doubles to 12 digits.

    A ``SUM`` of doubles depends on the order the store reads them in
    (``0.034214`` or ``0.034213999999999994``): the same answer.
    """
    if term['type'] == 'bnode':
        return 'bnode'
    if term.get('datatype') == _DOUBLE:
        return {**term, 'value': f'{float(term["value"]):.12g}'}
    return term


def _rows(result: Any) -> list[bytes]:
    """Rows without blank node labels, in a fixed order."""
    return sorted(
        orjson.dumps({k: _term(v) for k, v in sorted(row.items())})
        for row in result.rows
    )


class TestBuiltOnceAndReused:
    def test_second_command_does_not_build(self, local_run, tmp_path, capsys):
        run_dir = _copy(local_run, tmp_path)
        first = _query_json(capsys, str(run_dir), COUNT)
        db = run_dir / STORE_DIR / _db(run_dir)
        built = db.stat().st_mtime_ns
        second = _query_json(capsys, str(run_dir), COUNT)
        assert first == second
        assert _db(run_dir) == db.name
        assert db.stat().st_mtime_ns == built
        with open_store(run_dir) as opened:
            assert not opened.built
        assert [p.name for p in (run_dir / STORE_DIR).iterdir()].count(
            db.name
        ) == 1

    def test_rebuilt_when_a_journal_grows(self, local_run, tmp_path):
        run_dir = _copy(local_run, tmp_path)
        with open_store(run_dir) as opened:
            assert opened.built
            before = opened.path.parent.name
        journal = sorted(run_dir.glob('*.jsonl'))[0]
        last = journal.read_bytes().rstrip(b'\n').rsplit(b'\n', 1)[-1]
        with journal.open('ab') as fh:  # a repeated last line: the same run
            fh.write(last + b'\n')
        _settle(run_dir)
        with open_store(run_dir) as opened:
            assert opened.built
            assert opened.path.parent.name != before
        assert not (run_dir / STORE_DIR / before).exists()  # old one gone
        with open_store(run_dir) as opened:
            assert not opened.built

    def test_two_commands_build_once(self, local_run, tmp_path):
        run_dir = _copy(local_run, tmp_path)
        stores: list[Any] = []

        def ask() -> None:
            stores.append(open_store(run_dir))

        threads = [threading.Thread(target=ask) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(s.built for s in stores) == [False, True]
        assert {s.path for s in stores} == {stores[0].path}
        for opened in stores:
            opened.close()


class TestSameAnswers:
    def test_every_shipped_query_as_in_memory(self, workflow_run):
        graph = provlog.load(workflow_run['run_dir'])
        memory = load_store(graph.nx)
        with open_store(workflow_run['run_dir']) as opened:
            for name, text in sorted(canned_queries().items()):
                bindings = (
                    {'target': f'urn:uuid:{next(iter(graph.run.actions))}'}
                    if '?target' in text
                    else None
                )
                got = opened.sparql(text, bindings=bindings)
                want = run_sparql(memory, text, bindings=bindings)
                assert _rows(got) == _rows(want), name

    def test_built_in_pieces_as_in_memory(
        self, local_run, tmp_path, monkeypatch
    ):
        """Small pieces: blank nodes never split, the compaction runs."""
        from provlog.mapping import streamwrite
        from provlog.query import storebuild

        monkeypatch.setattr(streamwrite, '_CHUNK', 1 << 12)  # writes
        monkeypatch.setattr(storebuild, '_CHUNK_BYTES', 1 << 14)  # pieces
        passed = []
        hand_over = storebuild._Chunks._pass

        def counted(chunks: Any) -> None:
            passed.append(chunks.count)
            hand_over(chunks)

        monkeypatch.setattr(storebuild._Chunks, '_pass', counted)
        run_dir = _copy(local_run, tmp_path)
        graph = provlog.load(run_dir)
        memory = load_store(graph.nx)
        text = canned_queries()['call-tree']
        with open_store(run_dir) as opened:
            assert opened.built
            for query in (
                COUNT,
                text,
                'SELECT ?q ?p ?o WHERE { ?q a prov:Usage ; ?p ?o }',
            ):
                assert _rows(opened.sparql(query)) == _rows(
                    run_sparql(memory, query)
                )
            tag = max(graph.run.actions)
            assert opened.why(tag).to_json() == graph.why(tag).to_json()
        assert len(passed) > 3

    def test_why_as_the_graph(self, workflow_run):
        graph = provlog.load(workflow_run['run_dir'])
        with open_store(workflow_run['run_dir']) as opened:
            for tag in sorted(graph.run.actions):
                for depth in (None, 1):
                    want = graph.why(tag, depth=depth).to_json()
                    got, _ = why_in_store(
                        opened.store, opened.run_id, tag, depth=depth
                    )
                    assert got.to_json() == want, tag
            value = {'mean': 2.3333333333333335, 'max': 9.0}
            assert (
                opened.why(value=value).to_json()
                == graph.why(value=value).to_json()
            )
        assert (
            graph.why(tag, engine='oxigraph').to_json()
            == graph.why(tag).to_json()
        )

    def test_cli_why_on_the_store_as_on_the_graph(
        self, local_run, tmp_path, capsys
    ):
        run_dir = _copy(local_run, tmp_path)
        graph = provlog.load(run_dir)
        tag = max(graph.run.actions)
        assert main(['why', str(run_dir), tag, '--json']) == 0
        walked = capsys.readouterr().out
        assert not (run_dir / STORE_DIR).exists()  # small: the graph
        assert (
            main(['why', str(run_dir), tag, '--json', '--engine', 'oxigraph'])
            == 0
        )
        assert capsys.readouterr().out == walked
        assert (run_dir / STORE_DIR).exists()
        # built now: the default reads it
        assert main(['why', str(run_dir), tag, '--json']) == 0
        assert capsys.readouterr().out == walked


class TestTooLargeForTheGraph:
    def test_nx_refuses_and_says_what_to_use(self, local_run):
        graph = provlog.load(local_run['run_dir'], max_graph_actions=3)
        with pytest.raises(RunTooLargeError) as caught:
            graph.nx  # noqa: B018 - the property is the test
        message = str(caught.value)
        actions = len(graph.run.actions)
        assert caught.value.actions == actions
        assert caught.value.limit == 3
        assert f'{actions:,} actions, more than the 3 ' in message
        for hint in ('open_store', 'export RUN --format nt', LIMIT_VARIABLE):
            assert hint in message
        # what works on the store still does, and stats never needed nx
        assert graph.stats()['actions'] == actions
        assert graph.sparql(COUNT).rows

    def test_cli_why_uses_the_store(self, local_run, tmp_path, monkeypatch):
        run_dir = _copy(local_run, tmp_path)
        tag = max(provlog.load(run_dir).run.actions)
        monkeypatch.setenv(LIMIT_VARIABLE, '3')
        assert main(['why', str(run_dir), tag, '--json']) == 0
        assert (run_dir / STORE_DIR / 'manifest.json').exists()
        code = main(['export', str(run_dir), '--format', 'xml'])
        assert code == 2  # in memory only: the one-line message

    def test_cli_export_says_too_large(self, local_run, monkeypatch, capsys):
        monkeypatch.setenv(LIMIT_VARIABLE, '3')
        run = str(local_run['run_dir'])
        assert main(['export', run, '--format', 'xml']) == 2
        err = capsys.readouterr().err
        assert 'more than the 3 the in-memory graph' in err
        assert err.count('\n') == 1


@pytest.fixture
def read_only(local_run: dict[str, Any], tmp_path: Path) -> Any:
    """A copy of the run on a read-only bind mount."""
    if os.geteuid() != 0:
        pytest.skip('a read-only bind mount needs root')
    source = _copy(local_run, tmp_path)
    mount = tmp_path / 'ro'
    mount.mkdir()
    subprocess.run(
        ['mount', '--bind', str(source.parent), str(mount)], check=True
    )
    subprocess.run(['mount', '-o', 'remount,ro,bind', str(mount)], check=True)
    try:
        yield mount / source.name
    finally:
        subprocess.run(['umount', str(mount)], check=False)


class TestReadOnlyFolder:
    def test_small_run_in_memory(self, read_only, capsys):
        out = _query_json(capsys, str(read_only), COUNT)
        assert int(out['results']['bindings'][0]['n']['value']) > 100
        assert not (read_only / STORE_DIR).exists()

    def test_large_run_in_a_temporary_folder(
        self, read_only, capsys, monkeypatch
    ):
        monkeypatch.setenv(LIMIT_VARIABLE, '3')
        tag = max(provlog.load(read_only).run.actions)
        assert main(['why', str(read_only), tag, '--json']) == 0
        captured = capsys.readouterr()
        assert tag in orjson.loads(captured.out)['id']
        assert 'cannot keep a store in' in captured.err
        assert 'removed after this command' in captured.err
        temporary = captured.err.split('building it in ')[1].split(',')[0]
        assert not Path(temporary).exists()
        assert not (read_only / STORE_DIR).exists()


class TestDamagedStore:
    @pytest.mark.parametrize(
        'damage', ('manifest', 'database', 'files', 'emptied')
    )
    def test_rebuilt(self, local_run, tmp_path, capsys, damage):
        run_dir = _copy(local_run, tmp_path)
        want = _query_json(capsys, str(run_dir), COUNT)
        folder = run_dir / STORE_DIR
        db = folder / _db(run_dir) / 'data'
        if damage == 'manifest':
            (folder / 'manifest.json').write_bytes(b'{"v": 1, "db": "../x"')
        elif damage == 'database':
            (db / 'CURRENT').write_bytes(b'garbage\n')
        elif damage == 'files':
            for path in db.glob('*.sst'):
                path.unlink()
        else:  # a database that opens, without the run
            shutil.rmtree(db)
            pyoxigraph.Store(str(db)).flush()
            gc.collect()
        assert _query_json(capsys, str(run_dir), COUNT) == want
        assert folder / _db(run_dir) / 'data' != db
