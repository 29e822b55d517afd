"""Argument and result values: snapshot, redact, hash, preview, cap.

Capture happens in two steps so the host pays as little as possible:

1. :func:`freeze` (or one :class:`Snapshot` per event) runs on the caller's
   thread and copies what it needs of a live value into an immutable
   snapshot, bounded in elements and time, never raising and running no
   user-defined Python code on that thread (:mod:`.snapshot`, with
   :mod:`.plans` deciding how each type is read and :mod:`.bounded` running
   a user ``repr`` on a helper thread).
2. :func:`describe` runs on the background writer. It redacts secrets
   (:mod:`.redaction`), computes the content hash (:mod:`.digest`), and
   builds the bounded preview that goes to disk (:mod:`.description`).

:mod:`.text` makes any string JSON-safe. Every public name is re-exported
here, so ``from provlog.capture.values import X`` is the way to import it.
"""

from __future__ import annotations

from provlog.capture.values.bounded import bounded_call
from provlog.capture.values.bounded import MAX_REPR_THREADS
from provlog.capture.values.bounded import REPR_TIMEOUT
from provlog.capture.values.description import describe
from provlog.capture.values.digest import hash_value
from provlog.capture.values.redaction import DEFAULT_REDACT_KEYS
from provlog.capture.values.redaction import REDACTED
from provlog.capture.values.redaction import scrub
from provlog.capture.values.redaction import Scrubber
from provlog.capture.values.redaction import SECRETS
from provlog.capture.values.redaction import ValuePolicy
from provlog.capture.values.snapshot import freeze
from provlog.capture.values.snapshot import Frozen
from provlog.capture.values.snapshot import MAX_DEPTH
from provlog.capture.values.snapshot import MUTABLE_COPY_BYTES
from provlog.capture.values.snapshot import Opaque
from provlog.capture.values.snapshot import Snapshot
from provlog.capture.values.snapshot import SNAPSHOT_SECONDS
from provlog.capture.values.text import json_safe

__all__ = [
    'DEFAULT_REDACT_KEYS',
    'MAX_DEPTH',
    'MAX_REPR_THREADS',
    'MUTABLE_COPY_BYTES',
    'REDACTED',
    'REPR_TIMEOUT',
    'SECRETS',
    'SNAPSHOT_SECONDS',
    'Frozen',
    'Opaque',
    'Scrubber',
    'Snapshot',
    'ValuePolicy',
    'bounded_call',
    'describe',
    'freeze',
    'hash_value',
    'json_safe',
    'scrub',
]
