"""The capture API: :class:`ProvenanceLogging`, the Academy ``LogConfig``.

Pass one to ``Manager.from_exchange_factory(..., log_config=...)``; see
:mod:`provlog.capture.config`. Importing this module loads the capture half
only (:mod:`provlog.capture`), none of the read side.
"""

from __future__ import annotations

from provlog.capture.config import ProvenanceLogging
from provlog.capture.live import FlowceptForwarding

__all__ = ['FlowceptForwarding', 'ProvenanceLogging']
