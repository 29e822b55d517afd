"""provlog: W3C PROV provenance from agentic workflows, through ``logging``.

Capture with :class:`provlog.academy.ProvenanceLogging` (an Academy
``LogConfig``), then read a run back with :func:`load`.
"""

from __future__ import annotations

__version__ = '0.1.0'

from provlog.graph import load
from provlog.graph import RunGraph
from provlog.handler import ProvenanceHandler
from provlog.reader import JournalError
from provlog.values import hash_value

__all__ = [
    'JournalError',
    'ProvenanceHandler',
    'RunGraph',
    '__version__',
    'hash_value',
    'load',
]
