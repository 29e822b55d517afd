"""The run's on-disk store never harms the run folder or the command.

``provlog query RUN`` and ``provlog why RUN`` keep a store in
``RUN/.provlog-store/`` (:mod:`provlog.query.store`). On real runs of the
example workflow: a link (or a file) in its place is never followed, and
nothing outside the run is written or removed; a store that cannot be
written (a full disk, a run still being written) never fails a read
command, which answers from memory or a temporary folder; a store of
another provlog version is built again; readers that cannot write still
take their shared lock; the library's ``RunGraph`` keeps no store on
disk for a run its graph holds.
"""

from __future__ import annotations

import gc
import os
import resource
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import orjson
import pytest

import provlog
from provlog.cli import main
from provlog.graph import LIMIT_VARIABLE
from provlog.query import storefiles
from provlog.query.store import count_actions
from provlog.query.store import open_store
from provlog.query.store import STORE_DIR
from tests.integration.store_test import _copy
from tests.integration.store_test import _db
from tests.integration.store_test import _query_json
from tests.integration.store_test import _settle
from tests.integration.store_test import COUNT


def _victim(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """A folder outside the run, as a store would look: it must stay."""
    victim = tmp_path / 'victim'
    for name in ('db-important', 'build-important'):
        (victim / name).mkdir(parents=True)
        (victim / name / 'data').write_bytes(b'keep me')
    (victim / 'db-important.lock').write_bytes(b'')
    return victim, _files(victim)


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob('*'))
        if p.is_file()
    }


def _count(out: Any) -> int:
    return int(out['results']['bindings'][0]['n']['value'])


def _query(capsys: pytest.CaptureFixture[str], run_dir: Path) -> str:
    """``provlog query RUN COUNT``: check the count; return stderr."""
    assert main(['query', str(run_dir), COUNT, '--format', 'json']) == 0
    captured = capsys.readouterr()
    assert _count(orjson.loads(captured.out)) > 100
    return captured.err


class TestLinkedStore:
    def test_small_run_answers_from_memory(self, local_run, tmp_path, capsys):
        run_dir = _copy(local_run, tmp_path)
        victim, before = _victim(tmp_path)
        (run_dir / STORE_DIR).symlink_to(victim)
        err = _query(capsys, run_dir)
        assert 'cannot keep a store in' in err
        assert 'answering from memory' in err
        assert err.count('\n') == 1
        assert _files(victim) == before
        assert (run_dir / STORE_DIR).is_symlink()

    def test_large_run_in_a_temporary_folder(
        self, local_run, tmp_path, monkeypatch, capsys
    ):
        run_dir = _copy(local_run, tmp_path)
        victim, before = _victim(tmp_path)
        (run_dir / STORE_DIR).symlink_to(victim)
        tag = max(provlog.load(run_dir).run.actions)
        monkeypatch.setenv(LIMIT_VARIABLE, '3')
        assert main(['why', str(run_dir), tag, '--json']) == 0
        captured = capsys.readouterr()
        assert tag in orjson.loads(captured.out)['id']
        assert 'removed after this command' in captured.err
        temporary = captured.err.split('building it in ')[1].split(',')[0]
        assert not Path(temporary).exists()
        assert _files(victim) == before

    def test_a_file_in_its_place(self, local_run, tmp_path, capsys):
        run_dir = _copy(local_run, tmp_path)
        (run_dir / STORE_DIR).write_bytes(b'not a folder')
        assert _count(_query_json(capsys, str(run_dir), COUNT)) > 100
        assert (run_dir / STORE_DIR).read_bytes() == b'not a folder'

    def test_linked_lock_never_followed(self, local_run, tmp_path, capsys):
        run_dir = _copy(local_run, tmp_path)
        (run_dir / STORE_DIR).mkdir()
        outside = tmp_path / 'outside-lock'
        (run_dir / STORE_DIR / 'lock').symlink_to(outside)
        assert 'answering from memory' in _query(capsys, run_dir)
        assert not outside.exists()

    def test_catalogue_refuses_a_linked_store(
        self, local_run, tmp_path, capsys
    ):
        run_dir = _copy(local_run, tmp_path)
        victim, before = _victim(tmp_path)
        (run_dir.parent / STORE_DIR).symlink_to(victim)
        assert main(['query', str(run_dir.parent), COUNT]) != 0
        err = capsys.readouterr().err
        assert err.count('\n') == 1
        assert 'not a folder' in err
        assert _files(victim) == before

    def test_temporary_store_removed_when_dropped(self, local_run, tmp_path):
        run_dir = _copy(local_run, tmp_path)
        (run_dir / STORE_DIR).symlink_to(tmp_path / 'nowhere')
        opened = open_store(run_dir)
        assert opened is not None
        assert opened.temporary
        folder = opened.path.parent.parent
        assert folder.exists()
        del opened
        gc.collect()
        assert not folder.exists()


def test_another_version_builds_again(local_run, tmp_path):
    run_dir = _copy(local_run, tmp_path)
    with open_store(run_dir) as opened:
        assert opened.built
    manifest_path = run_dir / STORE_DIR / 'manifest.json'
    manifest = orjson.loads(manifest_path.read_bytes())
    assert manifest['provlog'] == provlog.__version__
    manifest['provlog'] = '0.0.0'
    manifest_path.write_bytes(orjson.dumps(manifest))
    with open_store(run_dir) as opened:
        assert opened.built
    with open_store(run_dir) as opened:
        assert not opened.built


class TestCountActions:
    def test_same_count_in_tiny_reads(self, local_run, monkeypatch):
        run_dir = Path(local_run['run_dir'])
        want = count_actions(run_dir)
        assert want == len(provlog.load(run_dir).run.actions)
        for size in (1, 7, 13, 64):
            monkeypatch.setattr(storefiles, '_COUNT_CHUNK', size)
            assert count_actions(run_dir) == want, size

    def test_line_without_newline_in_bounded_memory(self, tmp_path):
        read = storefiles._COUNT_CHUNK
        pattern = b'{"e":"start"'
        # a pattern across each read's edge, in one 3-read line
        data = bytearray(b'x' * (3 * read))
        for edge in (read, 2 * read):
            data[edge - 5 : edge - 5 + len(pattern)] = pattern
        (tmp_path / 'p1.jsonl').write_bytes(bytes(data))
        del data
        tracemalloc.start()
        try:
            assert count_actions(tmp_path) == 2
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 2.5 * read  # one read and the overlap, not the line


def _limited_query(run_dir: Path, limit: int) -> subprocess.CompletedProcess:
    """``provlog query`` in a child that cannot write files over ``limit``.

    As on a full disk: writes past the limit fail (``EFBIG``).
    """

    def limit_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    src = str(Path(provlog.__file__).parent.parent)
    env = dict(
        os.environ,
        PYTHONDONTWRITEBYTECODE='1',
        PYTHONPATH=src + os.pathsep + os.environ.get('PYTHONPATH', ''),
    )
    return subprocess.run(
        [
            sys.executable,
            *('-m', 'provlog', 'query', str(run_dir), COUNT),
            *('--format', 'json'),
        ],
        preexec_fn=limit_files,
        capture_output=True,
        env=env,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize('limit', (1 << 14, 100_000))
def test_store_that_cannot_be_written(local_run, tmp_path, capsys, limit):
    """A full disk (the database, or the N-Triples) never fails a read."""
    run_dir = _copy(local_run, tmp_path)
    want = _count(_query_json(capsys, str(local_run['run_dir']), COUNT))
    done = _limited_query(run_dir, limit)
    assert done.returncode == 0, done.stderr
    assert _count(orjson.loads(done.stdout)) == want
    err = done.stderr.decode()
    assert 'cannot keep a store in' in err
    assert 'answering from memory' in err
    assert err.count('\n') == 1
    assert not (run_dir / STORE_DIR / 'manifest.json').exists()
    assert not [p for p in (run_dir / STORE_DIR).iterdir() if p.name != 'lock']


class TestStillBeingWritten:
    def test_small_run_not_kept(self, local_run, tmp_path, capsys):
        run_dir = _copy(local_run, tmp_path)
        journal = sorted(run_dir.glob('*.jsonl'))[0]
        os.utime(journal)  # written now
        err = _query(capsys, run_dir)
        assert 'still being written' in err
        assert 'answering from memory' in err
        assert not (run_dir / STORE_DIR / 'manifest.json').exists()
        _settle(run_dir)
        _query_json(capsys, str(run_dir), COUNT)
        assert (run_dir / STORE_DIR / 'manifest.json').exists()

    def test_large_run_in_a_temporary_folder(
        self, local_run, tmp_path, capsys, monkeypatch
    ):
        run_dir = _copy(local_run, tmp_path)
        os.utime(sorted(run_dir.glob('*.jsonl'))[0])
        monkeypatch.setenv(LIMIT_VARIABLE, '3')
        err = _query(capsys, run_dir)
        assert 'still being written' in err
        assert 'removed after this command' in err
        assert not (run_dir / STORE_DIR / 'manifest.json').exists()


def test_orphan_locks_removed(local_run, tmp_path):
    run_dir = _copy(local_run, tmp_path)
    folder = run_dir / STORE_DIR
    folder.mkdir()
    (folder / 'db-gone.lock').write_bytes(b'')
    with open_store(run_dir) as opened:
        assert opened.built
    assert not (folder / 'db-gone.lock').exists()
    assert (folder / f'{_db(run_dir)}.lock').exists()


@pytest.fixture
def mounted(local_run: dict[str, Any], tmp_path: Path) -> Any:
    """A copy of the run, and a read-only bind mount of it."""
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
        yield source, mount / source.name
    finally:
        subprocess.run(['umount', str(mount)], check=False)


def test_reader_without_write_permission_holds_its_database(mounted):
    """A build never removes the database a read-only reader has open."""
    source, read_only = mounted
    with open_store(source) as opened:
        assert opened.built
    old = _db(source)
    with open_store(read_only) as reader:
        assert not reader.built
        assert not reader.temporary
        journal = sorted(source.glob('*.jsonl'))[0]
        last = journal.read_bytes().rstrip(b'\n').rsplit(b'\n', 1)[-1]
        with journal.open('ab') as fh:
            fh.write(last + b'\n')
        _settle(source)
        with open_store(source) as rebuilt:
            assert rebuilt.built
        assert (source / STORE_DIR / old).exists()  # held: kept
        assert reader.sparql(COUNT).rows
    with open_store(source) as opened:
        assert not opened.built
    touched = time.time() - 30
    os.utime(journal, (touched, touched))  # a new key: built, old removed
    with open_store(source) as opened:
        assert opened.built
    assert not (source / STORE_DIR / old).exists()


class TestLibraryGraph:
    def test_small_run_keeps_nothing_on_disk(self, local_run, tmp_path):
        run_dir = _copy(local_run, tmp_path)
        graph = provlog.load(run_dir)
        assert graph.sparql(COUNT).rows
        tag = max(graph.run.actions)
        assert (
            graph.why(tag, engine='oxigraph').to_json()
            == graph.why(tag).to_json()
        )
        assert not (run_dir / STORE_DIR).exists()

    def test_large_run_store_released_by_close(self, local_run, tmp_path):
        run_dir = _copy(local_run, tmp_path)
        with provlog.load(run_dir, max_graph_actions=3) as graph:
            assert graph.sparql(COUNT).rows
            opened = graph.disk_store()
            assert opened.store is not None
        assert opened.store is None  # closed
        assert (run_dir / STORE_DIR / 'manifest.json').exists()


def test_negative_limit_refused(local_run, monkeypatch, capsys):
    monkeypatch.setenv(LIMIT_VARIABLE, '-5')
    run = str(local_run['run_dir'])
    assert main(['export', run, '--format', 'xml']) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1
    assert f"{LIMIT_VARIABLE}='-5' is not a number of actions" in err


def test_picture_too_large_says_what_to_use(local_run, monkeypatch, capsys):
    monkeypatch.setenv(LIMIT_VARIABLE, '3')
    # no target: the whole graph's picture (an action's is built alone)
    code = main(['why', str(local_run['run_dir']), '--format', 'dot'])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1
    assert 'without --format dot/svg' in err
    assert 'provlog why/query RUN use it' not in err


def test_catalogue_manifest_never_written_through_a_link(
    local_run, tmp_path, capsys
):
    """A link planted where a temporary manifest was written is not used."""
    run_dir = _copy(local_run, tmp_path)
    folder = run_dir.parent / STORE_DIR
    folder.mkdir()
    victim = tmp_path / 'victim-file'
    victim.write_bytes(b'keep me')
    (folder / f'manifest.json.{os.getpid()}.tmp').symlink_to(victim)
    assert main(['query', str(run_dir.parent), COUNT]) == 0
    assert victim.read_bytes() == b'keep me'
    assert (folder / 'manifest.json').is_file()
    capsys.readouterr()
