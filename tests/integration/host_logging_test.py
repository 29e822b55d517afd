"""The host's logging is untouched: same output with provlog as without.

Each workflow runs as a user runs it, a ``python`` process of its own,
once without provlog and once with it, under one host logging set-up; the
two runs must print the same lines (identifiers and times aside) and exit
the same way, and the captured run must pass ``provlog validate``.
"""

from __future__ import annotations

import collections
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from academy.logging.configs.multi import MultiLogging

from provlog.academy import ProvenanceLogging
from provlog.capture.taps import CAPTURE_LOGGERS
from provlog.cli import main

ROOT = Path(__file__).resolve().parents[2]

_IDS = [
    (
        re.compile(
            r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'
        ),
        '<uuid>',
    ),
    (re.compile(r'<[0-9a-f]{8}>'), '<id>'),
    (re.compile(r'0x[0-9a-f]+'), '0x?'),
    (re.compile(r'\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d([.,]\d+)?'), '<time>'),
]
_NUMBERS = re.compile(r'\d+(\.\d+)?')


def workflow_env() -> dict[str, str]:
    """The environment a user's shell would give: the venv on PATH."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [str(ROOT), *filter(None, [env.get('PYTHONPATH')])],
    )
    env['PATH'] = os.pathsep.join(
        [str(Path(sys.executable).parent), env.get('PATH', '')],
    )
    return env


def run_shape(
    shape: str, setup: str, tmp: Path, *, provlog: bool
) -> subprocess.CompletedProcess[str]:
    """Run one workflow shape in its own process."""
    args = [sys.executable, '-m', 'tests.workflows', shape, '--logging', setup]
    if provlog:
        args += ['--provlog', str(tmp / 'prov-runs')]
    if shape == 'parsl':
        args += ['--parsl-dir', str(tmp / ('parsl-p' if provlog else 'parsl'))]
    return subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=tmp,
        env=workflow_env(),
    )


def lines(text: str, *, numbers: bool) -> collections.Counter[str]:
    """The lines of ``text`` with identifiers (and numbers) masked."""
    for pattern, mask in _IDS:
        text = pattern.sub(mask, text)
    if numbers:
        text = _NUMBERS.sub('N', text)
    return collections.Counter(text.splitlines())


CASES = (
    ('actor', 'bare'),
    ('actor', 'basic-warning'),
    ('actor', 'basic-info'),
    ('actor', 'dictconfig'),
    ('actor', 'console'),
    ('actor', 'recommended'),
    ('loop', 'bare'),
    ('loop', 'basic-warning'),
    ('loop', 'console'),
    ('chain', 'basic-info'),
    ('chain', 'recommended'),
    ('procpool', 'basic-warning'),
    ('procpool', 'console'),
    ('parsl', 'bare'),
    ('chatty', 'bare'),
    ('chatty', 'basic-warning'),
    ('chatty', 'basic-info'),
    ('chatty', 'console'),
    ('chatty', 'console-late'),
    ('chatty', 'recommended'),
    ('actor', 'console-late'),
)


class TestSameOutputWithProvlog:
    """Every other handler sees exactly what it saw without provlog."""

    @pytest.mark.parametrize(('shape', 'setup'), CASES)
    def test_same_output_and_valid(self, shape, setup, tmp_path):
        without = run_shape(shape, setup, tmp_path, provlog=False)
        with_ = run_shape(shape, setup, tmp_path, provlog=True)
        assert with_.returncode == without.returncode, with_.stderr[-3000:]
        assert lines(with_.stdout, numbers=False) == lines(
            without.stdout, numbers=False
        )
        assert lines(with_.stderr, numbers=True) == lines(
            without.stderr, numbers=True
        )
        assert 'done' in with_.stdout or shape == 'loop'
        (run,) = (tmp_path / 'prov-runs').iterdir()
        assert main(['validate', str(run)]) == 0

    def test_bare_host_still_sees_academy_errors(self, tmp_path):
        # no handler anywhere: Python's last-resort handler prints them
        with_ = run_shape('loop', 'bare', tmp_path, provlog=True)
        assert "Error in loop 'fail_once'" in with_.stderr
        assert 'Failure running agent on worker' in with_.stderr

    def test_warning_host_sees_no_debug_line(self, tmp_path):
        with_ = run_shape('actor', 'basic-warning', tmp_path, provlog=True)
        assert with_.stderr == ''
        assert with_.stdout == 'count: 6\ndone\n'


def _levels() -> dict[str, tuple[int, bool, list[object]]]:
    return {
        n: (
            logging.getLogger(n).level,
            logging.getLogger(n).disabled,
            list(logging.getLogger(n).filters),
        )
        for n in ('academy', *CAPTURE_LOGGERS)
    }


class TestLevelsRestored:
    """Two provlog configs in MultiLogging leave nothing behind, any order."""

    @pytest.mark.parametrize('order', ((0, 1), (1, 0)))
    def test_nested_configs(self, tmp_path, order):
        before = _levels()
        root = logging.getLogger()
        root_state = (root.level, list(root.handlers))
        configs = [ProvenanceLogging(tmp_path), ProvenanceLogging(tmp_path)]
        stops = [c.init_logging() for c in configs]
        assert _levels() != before
        for i in order:
            stops[i]()
        assert _levels() == before
        assert (root.level, list(root.handlers)) == root_state

    def test_multilogging_restores(self, tmp_path):
        before = _levels()
        multi = MultiLogging(
            [ProvenanceLogging(tmp_path), ProvenanceLogging(tmp_path)],
        )
        multi.init_logging()()
        assert _levels() == before

    def test_host_level_set_meanwhile_is_kept(self, tmp_path):
        logger = logging.getLogger('academy.handle')
        saved = logger.level
        stop = ProvenanceLogging(tmp_path).init_logging()
        try:
            logger.setLevel(logging.ERROR)  # the host's decision
        finally:
            stop()
        try:
            assert logger.level == logging.ERROR
        finally:
            logger.setLevel(saved)
