"""``provlog import jsonpool`` on logs written by Academy's own JSONHandler.

The logs are written here by ``academy.logging.helpers.JSONHandler`` (the
handler ``JSONPoolLogging`` installs) from records with the extras Academy
logs, then damaged in the ways a killed or broken writer damages them.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path

import orjson
import pytest
from academy.identifier import AgentId
from academy.identifier import UserId
from academy.logging.helpers import JSONHandler

from provlog.actions.merge import merge_run
from provlog.cli import main
from provlog.journals.importers.pool import import_config
from provlog.journals.importers.pool import PoolImportError

CONFIG = '0b6a3f1e-3d1c-4c55-9d1f-2f8f0a6b7c10'


def _write_log(path: Path, payload: str = '(3.0,)') -> dict[str, str]:
    """One client call of ``square`` on ``worker``, as Academy logs it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = JSONHandler(path)
    logger = logging.getLogger(f'academy.handle.{uuid.uuid4().hex}')
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    user, agent = UserId.new(), AgentId.new(name='worker')
    tag = uuid.uuid4()
    base = {'academy.action': 'square', 'academy.action_tag': tag}
    try:
        logger.info(
            'Entered manager context (%s)',
            user,
            extra={'academy.user_id': user},
        )
        logger.debug(
            'Invoking action %s with tag id %s',
            'square',
            tag,
            extra={
                **base,
                'academy.action_state': 'start',
                'academy.action_args': payload,
                'academy.action_kwargs': {'api_key': 'sk-unit-secret-42'},
                'academy.agent_id': agent,
            },
        )
        logger.debug(
            'Sending action request from %s to %s (action=%r)',
            user,
            agent,
            'square',
            extra={
                **base,
                'academy.action_state': 'sending',
                'academy.src': user,
            },
        )
        logger.debug(
            'Successfully completed action %s with tag id %s',
            'square',
            tag,
            extra={
                **base,
                'academy.action_state': 'success',
                'academy.result': 9.0,
                'academy.agent_id': agent,
            },
        )
    finally:
        logger.removeHandler(handler)
        handler.close()
    return {'tag': str(tag), 'user': str(user.uid), 'agent': str(agent.uid)}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An Academy home with one config folder holding one log."""
    _write_log(tmp_path / 'home' / 'logs' / CONFIG / f'{uuid.uuid4()}.jsonlog')
    return tmp_path / 'home'


def _log(home: Path) -> Path:
    return next((home / 'logs' / CONFIG).glob('*.jsonlog'))


def _run(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _gaps(run_dir: Path) -> dict[str, int]:
    return {g.code: g.count for g in merge_run(run_dir).gaps()}


class TestGood:
    def test_call(self, home: Path, tmp_path: Path) -> None:
        done = import_config(home / 'logs' / CONFIG, tmp_path / 'out')
        run = merge_run(done.run_dir)
        assert len(run.actions) == 1
        action = next(iter(run.actions.values()))
        assert action.state == 'completed'
        start = action.get('start')
        assert start is not None
        assert start['callee']['name'] == 'worker'
        assert action.get('sending')['src']['role'] == 'user'  # type: ignore[index]
        assert start['kwargs']['api_key']['redacted'] is True
        text = b''.join(p.read_bytes() for p in done.run_dir.glob('*.jsonl'))
        assert b'sk-unit-secret-42' not in text
        assert (done.run_dir.stat().st_mode & 0o777) == 0o700

    @pytest.mark.parametrize('where', ('home', 'logs', 'config'))
    def test_logdir_forms(
        self,
        home: Path,
        tmp_path: Path,
        where: str,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        logdir = {
            'home': home,
            'logs': home / 'logs',
            'config': home / 'logs' / CONFIG,
        }
        code, out, _ = _run(
            [
                'import',
                'jsonpool',
                str(logdir[where]),
                '-o',
                str(tmp_path / 'o'),
            ],
            capsys,
        )
        assert code == 0
        assert out.count('\n') == 1
        assert '1 journals, 1 actions' in out
        assert (tmp_path / 'o' / CONFIG).is_dir()

    def test_several_configs_and_default_home(
        self,
        home: Path,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        other = str(uuid.uuid4())
        _write_log(home / 'logs' / other / 'a.jsonlog')
        monkeypatch.setenv('ACADEMY_HOME', str(home))
        code, out, _ = _run(
            ['import', 'jsonpool', '-o', str(tmp_path / 'o')], capsys
        )
        assert code == 0
        assert out.count('\n') == 2
        assert {p.name for p in (tmp_path / 'o').iterdir()} == {CONFIG, other}

    def test_nothing_executed(self, tmp_path: Path) -> None:
        marker = tmp_path / 'pwned'
        payload = f"(__import__('os').system('touch {marker}'),)"
        _write_log(tmp_path / 'logs' / CONFIG / 'x.jsonlog', payload)
        done = import_config(tmp_path / 'logs' / CONFIG, tmp_path / 'out')
        action = next(iter(merge_run(done.run_dir).actions.values()))
        arg = action.get('start')['args'][0]  # type: ignore[index]
        assert arg['preview'].startswith("__import__('os')")
        assert arg['str_form'] is True
        assert not marker.exists()


class TestBadInput:
    def _refused(
        self,
        home: Path,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        want: str,
    ) -> None:
        out = tmp_path / 'out'
        code, _, err = _run(
            ['import', 'jsonpool', str(home), '-o', str(out)], capsys
        )
        assert code == 2
        assert err.count('\n') == 1, err
        assert want in err, err
        assert not out.exists() or not list(out.iterdir())

    def test_non_json_line(
        self, home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        log = _log(home)
        lines = log.read_bytes().splitlines(keepends=True)
        log.write_bytes(
            lines[0]
            + b'{"name": "academy.handle", "cut\n'
            + b''.join(lines[1:])
        )
        self._refused(home, tmp_path, capsys, f'{log}:2: ')

    def test_not_an_object(
        self, home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        log = _log(home)
        log.write_bytes(log.read_bytes() + b'[1, 2]\n')
        self._refused(home, tmp_path, capsys, ':5: not a JSON object')

    def test_lenient_counts(
        self, home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        log = _log(home)
        log.write_bytes(b'garbage\n' + log.read_bytes())
        out = tmp_path / 'out'
        code, printed, _ = _run(
            ['import', 'jsonpool', str(home), '-o', str(out), '--lenient'],
            capsys,
        )
        assert code == 0
        assert '1 damaged lines skipped' in printed
        gaps = _gaps(out / CONFIG)
        assert gaps['import-lines-skipped'] == 1
        assert len(merge_run(out / CONFIG).actions) == 1

    def test_truncated_last_line(
        self, home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        log = _log(home)
        data = log.read_bytes()
        log.write_bytes(data[: len(data) - 40])  # the writer was killed
        out = tmp_path / 'out'
        code, printed, _ = _run(
            ['import', 'jsonpool', str(home), '-o', str(out)], capsys
        )
        assert code == 0
        assert '1 cut lines' in printed
        gaps = _gaps(out / CONFIG)
        assert gaps['import-lines-cut'] == 1
        assert 'process-not-closed' in gaps
        action = next(iter(merge_run(out / CONFIG).actions.values()))
        assert action.state == 'not_ended'  # the success record was cut

    def test_huge_line(self, home: Path, tmp_path: Path) -> None:
        log = _log(home)
        log.write_bytes(
            log.read_bytes() + b'{"msg": "' + b'x' * 5000 + b'"}\n'
        )
        with pytest.raises(
            PoolImportError, match=r':5: line longer than 4000 bytes'
        ):
            import_config(
                home / 'logs' / CONFIG, tmp_path / 'out', max_line=4000
            )
        assert not (tmp_path / 'out').exists()  # failed before writing

    def test_empty_dir(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        (tmp_path / 'empty').mkdir()
        self._refused(
            tmp_path / 'empty', tmp_path, capsys, 'no JSONPoolLogging logs'
        )

    def test_not_a_dir(
        self, home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        self._refused(_log(home), tmp_path, capsys, 'not a folder')
        self._refused(tmp_path / 'nope', tmp_path, capsys, 'no such folder')

    def test_fifo_refused(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        config = tmp_path / 'logs' / CONFIG
        config.mkdir(parents=True)
        os.mkfifo(config / 'a.jsonlog')
        code, _, err = _run(
            ['import', 'jsonpool', str(tmp_path), '-o', str(tmp_path / 'o')],
            capsys,
        )
        assert code == 2
        assert 'a FIFO' in err
        assert err.count('\n') == 1


def test_header_says_imported(home: Path, tmp_path: Path) -> None:
    done = import_config(home / 'logs' / CONFIG, tmp_path / 'out')
    journal = next(done.run_dir.glob('*.jsonl'))
    header = orjson.loads(journal.read_bytes().split(b'\n', 1)[0])
    assert header['imported']['from'] == 'jsonpool'
    assert header['host'] == 'host-not-logged'
    assert header['pid'] == os.getpid()
    assert 'imported' in _gaps(done.run_dir)


def test_write_failure_leaves_nothing(home: Path, tmp_path: Path) -> None:
    """A write that fails mid-run (file size limit) leaves no partial run."""
    out = tmp_path / 'out'
    out.mkdir()
    script = (
        'import resource, signal, sys\n'
        'signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n'
        'resource.setrlimit(resource.RLIMIT_FSIZE, (1500, 1500))\n'
        'from provlog.cli import main\n'
        'sys.exit(main(sys.argv[1:]))\n'
    )
    argv = ['import', 'jsonpool', str(home), '-o', str(out)]
    done = subprocess.run(
        [sys.executable, '-c', script, *argv],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.count('\n') == 1, done.stderr
    assert 'File too large' in done.stderr
    assert list(out.iterdir()) == []


def test_unusable_records_counted(home: Path, tmp_path: Path) -> None:
    """An action record with no time or no tag is left out, and counted."""
    log = _log(home)
    records = [orjson.loads(line) for line in log.read_bytes().splitlines()]
    records[1]['created'] = 'soon'  # the start record
    records[3]['academy.action_tag'] = 'None'  # the success record
    records[3]['args'] = "('square', None)"
    log.write_bytes(b''.join(orjson.dumps(r) + b'\n' for r in records))
    done = import_config(home / 'logs' / CONFIG, tmp_path / 'out')
    assert _gaps(done.run_dir)['import-records-unusable'] == 2
