"""``make demo`` runs ``examples/demo.py``: the README's first command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class TestDemo:
    """The demo is what a new user runs first: it must run to its end."""

    def test_runs_and_shows_the_run(self, tmp_path: Path) -> None:
        done = subprocess.run(
            [
                sys.executable,
                str(ROOT / 'examples' / 'demo.py'),
                '--output-dir',
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        out = done.stdout
        assert 'PROV nodes' in out
        assert 'ZeroDivisionError' in out  # the failed call, in the lineage
        runs = [p for p in tmp_path.iterdir() if p.is_dir()]
        assert len(runs) == 1
        assert len(list(runs[0].glob('*.jsonl'))) == 4  # four processes
        assert list(tmp_path.glob('*.provjson'))
        assert list(tmp_path.glob('*.html'))
