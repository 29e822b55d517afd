"""Replay a run into Flowcept: one complete Flowcept task per Academy action.

``provlog forward`` sends a merged run after the fact: a run captured
without Flowcept, or while the broker was down. The task form of an action
and the channel to Flowcept are those live forwarding uses
(:mod:`provlog.capture.live`); ``docs/flowcept.md`` has the field mapping.

Replaying a run is idempotent: task, workflow and agent ids are the
action tags, the run id and the agent uids, and Flowcept's stores key
documents by them, so sending a run twice replaces rather than duplicates.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from typing import TYPE_CHECKING

import orjson

from provlog.capture.live import Channel
from provlog.capture.live import FlowceptForwarding

if TYPE_CHECKING:
    from provlog.actions.process import Process
    from provlog.mapping.runview import RunView

__all__ = ['FORWARD_RECORD', 'forward_run', 'forwarded_tags']

#: File in the run folder that lists the actions a replay handed over.
FORWARD_RECORD = 'flowcept-forwarded.json'

_HEADER_SKIP = frozenset({'e', 'v', 'run', 't', 'env'})


def _process_context(process: Process) -> dict[str, Any]:
    """One process's context for the workflow message (no package list)."""
    out = {k: v for k, v in process.header.items() if k not in _HEADER_SKIP}
    out.update(
        {
            k: v
            for k, v in process.context.items()
            if k not in {'e', 'packages'}
        },
    )
    return out


def forwarded_tags(run_dir: Path) -> set[str]:
    """Action tags a replay handed to Flowcept, from the run folder."""
    path = run_dir / FORWARD_RECORD
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return set()
    tags = data.get('tags') if isinstance(data, dict) else None
    return (
        {t for t in tags if isinstance(t, str)}
        if isinstance(tags, list)
        else set()
    )


def forward_run(
    run: RunView,
    *,
    settings_path: str | os.PathLike[str] | None = None,
    workflow_name: str | None = None,
    campaign_id: str | None = None,
) -> int:
    """Send every action, agent and the workflow of ``run`` to Flowcept.

    Args:
        run: The merged run.
        settings_path: Flowcept settings YAML (else ``FLOWCEPT_SETTINGS_PATH``
            or Flowcept's own default). Must be set before Flowcept is first
            imported in this process.
        workflow_name: Name of the Flowcept workflow (default: the run id).
        campaign_id: Campaign to file the workflow under.

    Returns:
        The number of task messages handed to Flowcept.
    """
    channel = Channel(
        run.run_id,
        FlowceptForwarding(
            settings_path=None
            if settings_path is None
            else str(settings_path),
            workflow_name=workflow_name,
            campaign_id=campaign_id,
        ),
        [_process_context(p) for p in run.run.processes.values()],
    )
    for uid, info in sorted(run.run.agents.items()):
        channel.agent(uid, info.get('name'), info.get('class'))
    tags = []
    for action in run.run.actions.values():
        channel.task(action)
        tags.append(action.tag)
    channel.close()
    record = run.run.run_dir / FORWARD_RECORD
    previous = forwarded_tags(run.run.run_dir)
    record.write_bytes(
        orjson.dumps(
            {'workflow_id': run.run_id, 'tags': sorted(previous | set(tags))},
        ),
    )
    return len(tags)
