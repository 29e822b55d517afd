"""``python -m provlog``: the ``provlog`` command."""

from provlog.cli import main

raise SystemExit(main())
