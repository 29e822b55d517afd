"""Make ``docs/report.png``: the report of a run, as a browser shows it.

Usage: ``python docs/make_screenshot.py RUN [-o docs/report.png]``
(RUN: a run folder, e.g. from ``make demo``). Uses Debian's chromium
headless through Playwright; selects the first failure so the details
pane shows an action.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image
from tests.browser import chromium

import provlog
from provlog.views.report import write_report


def main() -> int:
    """Write the screenshot; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('run', type=Path)
    parser.add_argument(
        '-o', '--output', type=Path, default=Path('docs/report.png')
    )
    parser.add_argument('--width', type=int, default=1400)
    parser.add_argument('--height', type=int, default=900)
    args = parser.parse_args()
    graph = provlog.load(args.run)
    with tempfile.TemporaryDirectory() as tmp:
        page_path = write_report(graph, Path(tmp) / 'report.html')
        with chromium(args.width, args.height) as page:
            page.goto(page_path.resolve().as_uri())
            page.wait_for_selector('body[data-ready]')
            failed = page.locator('.bar.exec.st-failed').first
            if failed.count():
                failed.click()
            page.mouse.move(5, 5)  # no tooltip in the picture
            page.evaluate('window.scrollTo(0, 0)')
            png = page.screenshot()
    image = Image.open(io.BytesIO(png)).convert('RGB')
    # a palette of 256 colours keeps the PNG small and the text sharp
    image = image.quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    image.save(args.output, optimize=True)
    print(f'{args.output}: {args.output.stat().st_size // 1024} KiB')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
