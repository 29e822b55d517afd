"""``python -m provlog``: the same command line as ``provlog``."""

from __future__ import annotations

import sys

from provlog.cli import main

if __name__ == '__main__':
    sys.exit(main())
