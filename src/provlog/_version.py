"""The version of provlog, in a module that imports nothing.

Kept apart from :mod:`provlog` so that any stage of the read side can
name it (the stored merged form is keyed by it) without importing the
package, which names the later stages.
"""

from __future__ import annotations

__version__ = '0.1.0'
