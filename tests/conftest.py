from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from examples.pipeline import run_workflow


@pytest.fixture(autouse=True)
def _academy_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('ACADEMY_HOME', str(tmp_path / 'academy-home'))


def _run(tmp: Path, mode: str) -> dict[str, Any]:
    return asyncio.run(run_workflow(tmp / 'prov-runs', mode))


@pytest.fixture(scope='session')
def procpool_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The example workflow, agents in a spawn pool over the HTTP exchange."""
    return _run(tmp_path_factory.mktemp('procpool'), 'procpool')


@pytest.fixture(scope='session')
def local_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The example workflow on the local exchange, in this process."""
    return _run(tmp_path_factory.mktemp('local'), 'local')


@pytest.fixture(params=('procpool', 'local'))
def workflow_run(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Each of the two runs in turn."""
    return request.getfixturevalue(f'{request.param}_run')
