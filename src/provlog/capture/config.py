"""``ProvenanceLogging``: the Academy ``LogConfig`` that captures provenance.

Pass one to ``Manager.from_exchange_factory(..., log_config=...)``. Academy
pickles it into every worker that runs an agent and calls
:meth:`ProvenanceLogging.init_logging` there, so every process that takes
part writes its own journal into ``<output_dir>/<run_id>/``. A process that
Academy does not start (an agent run by hand or by a batch job, ``Runtime``
used directly) joins the run with ``ProvenanceLogging(..., run_id=...)``.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import os
import threading
import uuid
from collections.abc import Callable
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from academy.agent import Agent
from academy.logging.configs.base import LogConfig

from provlog.capture.inside import Limits
from provlog.capture.inside import run_timed
from provlog.capture.journal import MAX_PENDING
from provlog.capture.live import FlowceptForwarding
from provlog.capture.session import start_session
from provlog.capture.session import WriterOptions
from provlog.capture.values import DEFAULT_REDACT_KEYS
from provlog.capture.values import ValuePolicy

__all__ = ['ProvenanceLogging']


class ProvenanceLogging(LogConfig):
    """Capture every Academy action of a run as W3C PROV provenance.

    The config holds plain attributes only, so it pickles; the handler and
    its writer are created in :meth:`init_logging`, in each process.

    Args:
        output_dir: Folder that holds one sub-folder per run, named by this
            config's ``uuid``. Relative paths are resolved when the config
            is created, so workers write to the same place.
        capture_values: Keep previews of argument and result values. When
            false, values are kept as type, size and content hash only.
        max_value_bytes: Values larger than this (canonical encoding) are
            kept as type, size and hash only.
        preview_chars: Length bound of a value's preview.
        redact_keys: Extra key substrings to mask, on top of the defaults
            (``password``, ``token``, ``api_key``, ``secret``, ...).
        flush_interval: Longest time, in seconds, that an event waits in
            memory before it is written; what a SIGKILL can lose.
        flowcept: Forward completed calls to Flowcept live, from every
            process (``True`` for Flowcept's settings from the environment,
            or a :class:`~provlog.academy.FlowceptForwarding`). Needs the
            ``provlog[flowcept]`` extra; Flowcept is imported only here.
        max_pending: Events that may wait for the journal writer. When it
            falls that far behind, the host waits for it (bounded).
        drop_when_full: Drop (and count) events instead of waiting when
            ``max_pending`` are waiting.
        strict: Raise in ``init_logging`` when the journal cannot be
            created. By default the workflow runs on without capture in
            that process and provlog says so once on stderr.
        capture_logs: Keep the log records, of any logger, that each
            action emits while it executes (its own code and the libraries
            it calls), at ``log_level`` and above.
        log_level: Lowest level of those records (``'INFO'``, or a number).
        capture_output: Keep what each action prints to stdout and stderr
            and the warnings it raises (they still reach the real streams
            unchanged).
        max_action_records: Records, writes and warnings kept per action;
            the rest are counted.
        max_action_chars: Characters of text kept per action.
        run_id: Join this existing run instead of starting a new one: the
            ``run_id`` of the config that started it (a UUID string). For
            processes Academy does not start: an agent run by hand with
            ``Runtime`` or its own ``Manager``, a batch job on another node.
            It becomes the config's ``uuid``, so Academy's ``log_context``
            counts this config and the run's own as one.

    Raises:
        ValueError: An option is out of range, or ``run_id`` is not a UUID.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike[str] = 'prov-runs',
        *,
        capture_values: bool = True,
        max_value_bytes: int = 64 * 1024,
        preview_chars: int = 200,
        redact_keys: Iterable[str] = (),
        flush_interval: float = 0.2,
        flowcept: bool | FlowceptForwarding = False,
        max_pending: int = MAX_PENDING,
        drop_when_full: bool = False,
        strict: bool = False,
        capture_logs: bool = True,
        log_level: int | str = logging.INFO,
        capture_output: bool = True,
        max_action_records: int = 100,
        max_action_chars: int = 64 * 1024,
        run_id: str | uuid.UUID | None = None,
    ) -> None:
        super().__init__()
        if run_id is not None:
            self.uuid = _run_id(run_id)
        if (
            max_value_bytes < 0
            or preview_chars < 1
            or flush_interval <= 0
            or max_pending < 1
        ):
            raise ValueError(
                'max_value_bytes must be >= 0, preview_chars >= 1, '
                'flush_interval > 0 and max_pending >= 1',
            )
        self.output_dir = str(Path(output_dir).resolve())
        self.capture_values = capture_values
        self.max_value_bytes = max_value_bytes
        self.preview_chars = preview_chars
        self.redact_keys = tuple(str(k).lower() for k in redact_keys)
        self.flush_interval = flush_interval
        self.max_pending = max_pending
        self.drop_when_full = drop_when_full
        self.strict = strict
        level = (
            logging.getLevelName(log_level.upper())
            if isinstance(log_level, str)
            else log_level
        )
        if not isinstance(level, int) or max_action_records < 0:
            raise ValueError(
                f'log_level {log_level!r} is not a logging level, or '
                'max_action_records < 0',
            )
        self.limits = Limits(
            level=level,
            records=max_action_records,
            chars=max_action_chars,
            logs=capture_logs,
            output=capture_output,
        )
        self.flowcept: FlowceptForwarding | None = (
            FlowceptForwarding() if flowcept is True else flowcept or None
        )

    @property
    def run_id(self) -> str:
        """The run's id: this config's ``uuid``; pass it to join the run."""
        return self.uuid

    @property
    def run_dir(self) -> Path:
        """The folder this run's journals go to."""
        return Path(self.output_dir) / self.uuid

    def policy(self) -> ValuePolicy:
        """The value policy this config asks for."""
        return ValuePolicy(
            capture=self.capture_values,
            max_bytes=self.max_value_bytes,
            preview_chars=self.preview_chars,
            redact_keys=DEFAULT_REDACT_KEYS | frozenset(self.redact_keys),
        )

    def init_logging(self) -> Callable[[], None]:
        """Start capturing in this process; the callback stops and drains."""
        stop = start_session(
            self.run_dir,
            self.uuid,
            self.policy(),
            WriterOptions(
                self.flush_interval,
                self.max_pending,
                self.drop_when_full,
            ),
            forwarding=self.flowcept,
            strict=self.strict,
            limits=self.limits if self.limits.wanted else None,
        )
        if not self.limits.wanted:
            return stop
        release = _carry_context()

        def stop_all() -> None:
            release()
            stop()

        return stop_all

    def __repr__(self) -> str:
        return (
            f'{type(self).__name__}(output_dir={self.output_dir!r}, '
            f'uuid={self.uuid!r})'
        )


_carry_lock = threading.Lock()
_carry_users: list[Callable[..., Any]] = []


def _carry_context() -> Callable[[], None]:
    """Run ``agent_run_sync`` functions in the calling action's context.

    Academy hands them to a thread pool with ``run_in_executor``, which,
    unlike ``asyncio.to_thread``, does not carry context variables, so
    what the function logs or prints could not be told to belong to its
    action; its thread's CPU time is added to the action's too.
    Reference-counted; the last release puts Academy's method back.
    """
    with _carry_lock:
        if not _carry_users:
            original = Agent.agent_run_sync
            _carry_users.append(original)

            async def agent_run_sync(
                self: Agent,
                function: Callable[..., Any],
                /,
                *args: Any,
                **kwargs: Any,
            ) -> Any:
                context = contextvars.copy_context()

                def in_context(*a: Any, **k: Any) -> Any:
                    return context.run(run_timed, function, *a, **k)

                functools.update_wrapper(in_context, function)
                return await original(self, in_context, *args, **kwargs)

            Agent.agent_run_sync = agent_run_sync  # type: ignore[method-assign]
        else:
            _carry_users.append(_carry_users[0])
    done = threading.Event()

    def release() -> None:
        if done.is_set():
            return
        done.set()
        with _carry_lock:
            original = _carry_users.pop()
            if not _carry_users:
                Agent.agent_run_sync = original  # type: ignore[method-assign]

    return release


def _run_id(value: object) -> str:
    """``value`` as a canonical UUID string (the run folder's name).

    Raises:
        ValueError: ``value`` is not a UUID (one line, the value shortened).
    """
    if isinstance(value, uuid.UUID):
        return str(value)
    if not isinstance(value, str):
        shown = f'a {type(value).__name__}'
    else:
        try:
            return str(uuid.UUID(value))
        except ValueError:
            shown = repr(value[:60])  # repr: one line, whatever it holds
    raise ValueError(
        'run_id must be a UUID string, the run_id of the run to join; '
        f'got {shown}'
    )
