"""``python -m tests.workflows SHAPE ...``: see :mod:`tests.workflows.shapes`."""

from __future__ import annotations

from tests.workflows.shapes import main

main()
