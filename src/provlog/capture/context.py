"""The run's context: what each process was, ran, and ran on.

Two parts, by cost. :func:`header_fields` is cheap (no file is read, no
process started) and goes into the journal header on the host's thread:
Python implementation, platform, executable, user, working directory,
``argv`` and the allow-listed environment variables, both redacted by the
value policy, and the main script's path. :func:`collect` is not cheap
(it lists every installed distribution, hashes the main script and asks
``git`` about the repository holding it) and runs on the journal writer's
thread, which writes its result as the journal's ``context`` line before
any event. It never raises and never waits for ``git`` longer than
:data:`GIT_TIMEOUT` in all; the distribution list is taken once per
process.
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import hashlib
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from provlog.capture.values import json_safe
from provlog.capture.values import REDACTED
from provlog.capture.values import SECRETS
from provlog.capture.values import ValuePolicy
from provlog.vocab import CONTEXT

__all__ = [
    'ENV_ALLOW',
    'GIT_TIMEOUT',
    'collect',
    'header_fields',
    'main_script',
    'packages',
]

#: Environment variables recorded (when set), values redacted by the value
#: policy's secret names: batch job ids, the node, the GPU and thread
#: settings and the Python environment.
ENV_ALLOW = (
    'SLURM_JOB_ID',
    'SLURM_ARRAY_TASK_ID',
    'PBS_JOBID',
    'LSB_JOBID',
    'HOSTNAME',
    'CUDA_VISIBLE_DEVICES',
    'OMP_NUM_THREADS',
    'VIRTUAL_ENV',
    'CONDA_DEFAULT_ENV',
)

#: Longest time, in seconds, all ``git`` calls of one process may take.
GIT_TIMEOUT = 1.0

_SCRIPT_BYTES = 16 * 1024 * 1024  # main scripts larger are not hashed
_SEPARATORS = re.compile(r'[-_.]+')
_HEX_ID = re.compile(r'^[0-9a-f]{40}(?:[0-9a-f]{24})?$')


def _redact_argv(argv: list[str], policy: ValuePolicy) -> list[str]:
    """``argv`` with the values of secret-named options masked.

    ``--api-key=X`` and ``api_key=X`` keep their name; ``--token X`` masks
    the next word. Masked values are learnt by the process's scrubber.
    """
    out: list[str] = []
    hide_next = False
    for raw in argv:
        arg = json_safe(str(raw))
        if hide_next:
            hide_next = False
            SECRETS.learn(arg)
            out.append(REDACTED)
            continue
        name, eq, value = arg.partition('=')
        if eq and policy.is_secret(name):
            SECRETS.learn(value)
            out.append(f'{name}={REDACTED}')
        elif arg.startswith('-') and policy.is_secret(arg):
            out.append(arg)
            hide_next = True
        else:
            out.append(arg)
    return out


def _environment(policy: ValuePolicy) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in ENV_ALLOW:
        value = os.environ.get(name)
        if value is None:
            continue
        if policy.is_secret(name):
            SECRETS.learn(value)
            value = REDACTED
        out[name] = json_safe(value)
    return out


def main_script() -> str | None:
    """Absolute path of the main script (``__main__``'s file), if any.

    In a ``spawn`` child this is the parent's script (multiprocessing runs
    it as ``__mp_main__``); an interactive session or ``python -c`` has
    none.
    """
    main = sys.modules.get('__main__')
    path = getattr(main, '__file__', None)
    if not isinstance(path, str) or not path:
        return None
    with contextlib.suppress(OSError, ValueError):
        return json_safe(os.path.abspath(path))
    return None


def _user() -> str | None:
    try:
        return json_safe(getpass.getuser())
    except Exception:  # noqa: BLE001 - no name for this uid (containers)
        return None


def _cwd() -> str | None:
    try:
        return json_safe(os.getcwd())
    except OSError:  # the directory was removed
        return None


def header_fields(policy: ValuePolicy) -> dict[str, Any]:
    """The cheap part of the process's context, for the journal header.

    Args:
        policy: The run's value policy (secret names for ``argv`` and
            ``env``).
    """
    uname = os.uname() if hasattr(os, 'uname') else None
    return {
        'implementation': platform.python_implementation(),
        'platform': (
            f'{uname.sysname}-{uname.release}-{uname.machine}'
            if uname is not None
            else sys.platform
        ),
        'executable': json_safe(sys.executable or '') or None,
        'user': _user(),
        'cwd': _cwd(),
        'argv': _redact_argv(list(sys.argv), policy),
        'env': _environment(policy),
        'script': main_script(),
    }


def _normal(name: str) -> str:
    """A distribution name in its normalised form (PEP 503)."""
    return _SEPARATORS.sub('-', name).lower()


def _name_version(dist: Any) -> tuple[str, str] | None:
    """Name and version of one distribution, cheaply when possible.

    An installed ``name-version.dist-info`` directory says both in its name
    (PEP 427 escapes ``-`` in either as ``_``), which is a hundred times
    faster than parsing its ``METADATA``; anything else is read.
    """
    path = getattr(dist, '_path', None)  # PathDistribution's directory
    folder = getattr(path, 'name', '')
    if isinstance(folder, str) and folder.endswith('.dist-info'):
        name, sep, version = folder.removesuffix('.dist-info').partition('-')
        if sep and name and version:
            return _normal(name), version
    name = dist.metadata['Name']
    if not isinstance(name, str) or not name:
        return None
    return _normal(name), str(dist.version)


@functools.cache
def packages() -> tuple[tuple[str, ...], str]:
    """Every installed distribution as ``name==version``, and its hash.

    Names are normalised (PEP 503: lower case, runs of ``-_.`` as ``-``),
    the lines sorted by name, duplicates (one distribution on two path entries)
    removed; the hash is the SHA-256 of the lines joined by newlines.
    Taken once per process.
    """
    from importlib.metadata import distributions  # noqa: PLC0415

    found: set[str] = set()
    for dist in distributions():
        try:
            got = _name_version(dist)
        except Exception:  # noqa: BLE001, S112 - a broken metadata file
            continue
        if got is not None:
            found.add(json_safe(f'{got[0]}=={got[1]}'))
    lines = tuple(sorted(found, key=lambda line: line.split('==', 1)))
    digest = hashlib.sha256('\n'.join(lines).encode()).hexdigest()
    return lines, digest


def _file_sha256(path: str) -> str | None:
    try:
        with open(path, 'rb') as fh:
            data = fh.read(_SCRIPT_BYTES + 1)
    except OSError:
        return None
    if len(data) > _SCRIPT_BYTES:
        return None
    return hashlib.sha256(data).hexdigest()


def _run_git(args: list[str], cwd: str, deadline: float) -> str | None:
    """Output of one ``git`` command, or ``None`` (failed, or too slow)."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return None
    env = {
        **os.environ,
        'GIT_OPTIONAL_LOCKS': '0',  # status must not take the index lock
        'GIT_TERMINAL_PROMPT': '0',
        'LC_ALL': 'C',
    }
    try:
        done = subprocess.run(  # noqa: S603 - fixed arguments, no shell
            ['git', *args],  # noqa: S607 - git from PATH, as users run it
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=remaining,
            check=False,
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.decode('utf-8', 'replace')


@functools.cache
def _git(directory: str) -> dict[str, Any] | None:
    """Commit, dirty flag and root of the repository holding ``directory``.

    ``dirty`` is whether tracked files differ from the commit (untracked
    files are not counted); ``None`` when ``git status`` did not answer in
    time. ``None`` altogether when there is no repository or no ``git``.
    """
    deadline = time.monotonic() + GIT_TIMEOUT
    out = _run_git(
        ['rev-parse', 'HEAD', '--show-toplevel'], directory, deadline
    )
    lines = [line.strip() for line in (out or '').splitlines()]
    commits = [line for line in lines if _HEX_ID.match(line)]
    roots = [line for line in lines if line and not _HEX_ID.match(line)]
    if len(commits) != 1 or len(roots) != 1:
        return None
    status = _run_git(
        ['status', '--porcelain', '--untracked-files=no'],
        directory,
        deadline,
    )
    return {
        'commit': commits[0],
        'dirty': None if status is None else bool(status.strip()),
        'root': json_safe(roots[0]),
    }


def collect(script: str | None) -> dict[str, Any]:
    """The costly part of the context, as the journal's ``context`` line.

    Runs on the writer thread. Never raises: a part that fails is left out
    and named in ``errors``.

    Args:
        script: The main script's path (the header's ``script``).
    """
    began = time.perf_counter()
    line: dict[str, Any] = {'e': CONTEXT, 't': time.time()}
    errors: list[str] = []
    try:
        lines, digest = packages()
        line['packages'] = list(lines)
        line['packages_sha256'] = digest
    except Exception as exc:  # noqa: BLE001 - never break the writer
        errors.append(f'packages: {exc!r}'[:200])
    line['script_sha256'] = None
    line['git'] = None
    if script is not None:
        try:
            line['script_sha256'] = _file_sha256(script)
            line['git'] = _git(str(Path(script).parent))
        except Exception as exc:  # noqa: BLE001
            errors.append(f'code: {exc!r}'[:200])
    if errors:
        line['errors'] = errors
    line['took'] = round(time.perf_counter() - began, 6)
    return line
