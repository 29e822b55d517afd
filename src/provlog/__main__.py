"""``python -m provlog``: the ``provlog`` command."""

from __future__ import annotations

from provlog.cli import main

raise SystemExit(main())
