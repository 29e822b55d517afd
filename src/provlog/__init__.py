"""provlog: W3C PROV provenance from agentic workflows, through ``logging``.

Capture with :class:`provlog.academy.ProvenanceLogging` (an Academy
``LogConfig``), then read a run back with :func:`load`.

The package has two halves. :mod:`provlog.capture` runs inside the host's
processes and imports only the standard library and ``orjson``; the rest
(merge, the PROV graph, exports, queries, views) is the read side. The
names below load their half on first use, so ``import provlog.academy``
loads no part of the read side.
"""

from __future__ import annotations

import importlib
from typing import Any
from typing import TYPE_CHECKING

from provlog._version import __version__

if TYPE_CHECKING:
    from provlog.capture.handler import ProvenanceHandler
    from provlog.capture.values import hash_value
    from provlog.graph import load
    from provlog.graph import RunGraph
    from provlog.graph import RunTooLargeError
    from provlog.journals.reader import JournalError
    from provlog.query.store import open_store
    from provlog.query.store import RunStore

__all__ = [
    'JournalError',
    'ProvenanceHandler',
    'RunGraph',
    'RunStore',
    'RunTooLargeError',
    '__version__',
    'hash_value',
    'load',
    'open_store',
]

#: Public name -> the module that defines it, imported on first use.
_LAZY = {
    'JournalError': 'provlog.journals.reader',
    'ProvenanceHandler': 'provlog.capture.handler',
    'RunGraph': 'provlog.graph',
    'hash_value': 'provlog.capture.values',
    'load': 'provlog.graph',
    'open_store': 'provlog.query.store',
    'RunStore': 'provlog.query.store',
    'RunTooLargeError': 'provlog.graph',
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once: later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
