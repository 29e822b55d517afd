"""Helpers for tests: capture provenance events in memory.

>>> with capture_events() as events:
...     ...  # run agents on the local exchange
>>> [e['e'] for e in events]

Events are journal lines (dicts), encoded on the caller's thread so a test
sees them as soon as the record is logged.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from provlog.capture.encoder import Encoder
from provlog.capture.handler import ProvenanceHandler
from provlog.capture.records import RawEvent
from provlog.capture.taps import install_handler
from provlog.capture.values import ValuePolicy

__all__ = [
    'ListSink',
    'capture_events',
    'flowcept_settings',
    'free_port',
    'start_redis',
]


class ListSink:
    """A sink that encodes events at once and keeps them in a list."""

    __slots__ = ('encoder', 'events')

    def __init__(self, policy: ValuePolicy | None = None) -> None:
        self.encoder = Encoder(policy or ValuePolicy())
        self.events: list[dict[str, Any]] = []

    def put(self, item: RawEvent) -> None:
        """Encode and keep ``item``."""
        line = self.encoder(item)
        if line is not None:
            self.events.append(line)

    def flush(self, timeout: float = 5.0) -> bool:
        """Nothing to flush."""
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Nothing to close."""


@contextlib.contextmanager
def capture_events(
    policy: ValuePolicy | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """Capture Academy provenance events of this process into a list."""
    sink = ListSink(policy)
    handler = ProvenanceHandler(sink)
    remove = install_handler(handler)
    try:
        yield sink.events
    finally:
        remove()


# ---------------------------------------------------------------- Flowcept


def flowcept_settings(
    path: Path,
    *,
    redis_port: int | None = None,
    lmdb_path: Path | None = None,
) -> Path:
    """Write a Flowcept settings file for tests and benchmarks; return it.

    Without ``redis_port``: offline mode, messages dumped to
    ``<path's folder>/buffer.jsonl``. With it: online mode publishing to
    Redis on 127.0.0.1 (and an LMDB store at ``lmdb_path`` for a keeper).
    JSON is valid YAML, which is what Flowcept reads.
    """
    import orjson  # noqa: PLC0415

    lmdb = {'enabled': lmdb_path is not None}
    if lmdb_path is not None:
        lmdb['path'] = str(lmdb_path)  # type: ignore[assignment]
    settings: dict[str, Any] = {
        'log': {'log_file_level': 'disable', 'log_stream_level': 'disable'},
        'project': {
            'db_flush_mode': 'offline',
            'dump_buffer': {
                'enabled': True,
                'path': str(path.parent / 'buffer.jsonl'),
                'delete_previous_file': False,
            },
            'enrich_messages': False,
        },
        'telemetry_capture': {},
        'mq': {'enabled': False},
        'kv_db': {'enabled': False},
        'databases': {'mongodb': {'enabled': False}, 'lmdb': lmdb},
        'db_buffer': {'insertion_buffer_time_secs': 0.5, 'buffer_size': 50},
    }
    if redis_port is not None:
        settings['project'] = {
            'db_flush_mode': 'online',
            'enrich_messages': False,
        }
        settings['mq'] = {
            'enabled': True,
            'type': 'redis',
            'host': '127.0.0.1',
            'port': redis_port,
            'channel': 'interception',
            'buffer_size': 50,
            'insertion_buffer_time_secs': 0.2,
        }
        settings['kv_db'] = {
            'enabled': True,
            'host': '127.0.0.1',
            'port': redis_port,
        }
    path.write_bytes(orjson.dumps(settings))
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return int(s.getsockname()[1])


def start_redis(port: int, timeout: float = 10.0) -> subprocess.Popen[bytes]:
    """Start ``redis-server`` on 127.0.0.1:``port`` (no persistence).

    Raises:
        RuntimeError: redis-server is not installed or did not start.
    """
    exe = shutil.which('redis-server')
    if exe is None:
        raise RuntimeError('redis-server is not installed')
    args = ['--port', str(port), '--bind', '127.0.0.1', '--save', '']
    proc = subprocess.Popen(  # noqa: S603 - a fixed local binary
        [exe, *args, '--appendonly', 'no'],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(('127.0.0.1', port)) == 0:
                return proc
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f'redis-server did not start on port {port}')
