"""Debian's chromium, headless, through Playwright (no browser download)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHROMIUM = Path('/usr/bin/chromium')
#: Headless, and nothing that reaches out on its own (updates, sync, QUIC).
CHROMIUM_ARGS = (
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
)


def missing_reason() -> str | None:
    """Why no browser test can run here, or None when one can.

    On CI (``CI`` set) a missing browser is an error, not a skip.
    """
    if CHROMIUM.exists():
        return None
    reason = f'{CHROMIUM} is missing (apt-get install chromium)'
    if os.environ.get('CI'):
        raise RuntimeError(f'browser tests cannot run on CI: {reason}')
    return reason


@contextlib.contextmanager
def chromium(width: int = 1400, height: int = 900) -> Iterator[Any]:
    """A fresh browser page, closed with its browser afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS)
        )
        try:
            page = browser.new_page(
                viewport={'width': width, 'height': height}
            )
            yield page
        finally:
            browser.close()
