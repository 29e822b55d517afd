"""``provlog report``: the HTML page, driven in Debian's headless chromium."""

from __future__ import annotations

import html
import io
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from benchmarks.synthetic import make_run
from PIL import Image
from PIL import ImageStat

import provlog
from provlog.cli import main
from provlog.views.report import page_data
from provlog.views.report import render_report
from provlog.views.report import write_report
from tests import browser
from tests.integration.badinput_test import _deep_run

_SKIP = browser.missing_reason()  # raises on CI when chromium is missing
needs_browser = pytest.mark.skipif(_SKIP is not None, reason=_SKIP or '')


@pytest.fixture(scope='module')
def graph(procpool_run: dict[str, Any]) -> provlog.RunGraph:
    return provlog.load(procpool_run['run_dir'])


@pytest.fixture(scope='module')
def report(
    graph: provlog.RunGraph, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    return write_report(
        graph, tmp_path_factory.mktemp('report') / 'report.html'
    )


class Page:
    """A report open in the browser, with what it logged and requested."""

    def __init__(self, page: Any, url: str) -> None:
        self.page = page
        self.url = url
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.on(
            'console',
            lambda m: (
                self.errors.append(m.text) if m.type == 'error' else None
            ),
        )
        page.on('pageerror', lambda e: self.errors.append(str(e)))
        page.on('request', lambda r: self.requests.append(r.url))
        page.goto(url)
        page.wait_for_selector('body[data-ready]', state='attached')

    def view(self) -> tuple[float, float]:
        """The timeline's visible range, seconds since the run began."""
        node = self.page.locator('#timeline')
        return (
            float(node.get_attribute('data-view-start')),
            float(node.get_attribute('data-view-end')),
        )

    def frame(self) -> None:
        """Wait for the next drawn frame."""
        self.page.evaluate(
            'new Promise(r => requestAnimationFrame(() => '
            'requestAnimationFrame(r)))'
        )


@pytest.fixture
def opened(report: Path) -> Iterator[Page]:
    with browser.chromium() as page:
        yield Page(page, report.resolve().as_uri())


def _call(graph: provlog.RunGraph, name: str) -> Any:
    return next(c for c in graph.timeline.calls.values() if c.action == name)


@needs_browser
class TestOpensOffline:
    """The page must work from a file alone: an attachment, a login node."""

    def test_no_errors_and_no_requests_but_the_file(
        self, opened: Page
    ) -> None:
        assert opened.errors == []
        assert opened.requests == [opened.url]

    def test_policy_forbids_any_connection(self, report: Path) -> None:
        head = html.unescape(report.read_text()[:2000])
        assert "default-src 'none'" in head
        assert "connect-src 'none'" in head


@needs_browser
class TestOneBarPerExecution:
    """Every execution the journals hold is drawn, exactly once."""

    def test_bars_are_the_executions(
        self, opened: Page, graph: provlog.RunGraph
    ) -> None:
        tags = opened.page.eval_on_selector_all(
            '#timeline .bar.exec', 'bars => bars.map(b => b.dataset.tag)'
        )
        executed = {
            c.tag
            for c in graph.timeline.calls.values()
            if c.execution is not None
        }
        assert len(tags) == len(set(tags))
        assert set(tags) == executed


@needs_browser
class TestFailuresFirst:
    """People open a report to see what went wrong: it comes first."""

    def test_failures_follow_the_summary(self, opened: Page) -> None:
        ids = opened.page.eval_on_selector_all(
            'main > section', 'sections => sections.map(s => s.id)'
        )
        assert ids[:2] == ['summary', 'failures']

    def test_every_failure_with_its_error_type(
        self, opened: Page, graph: provlog.RunGraph
    ) -> None:
        failed = {
            c.tag for c in graph.timeline.calls.values() if c.state == 'failed'
        }
        assert failed
        shown = opened.page.eval_on_selector_all(
            '#failures .failure [data-tag]',
            'chips => chips.map(c => c.dataset.tag)',
        )
        assert set(shown) == failed
        types = opened.page.locator('#failures .failure .etype')
        assert set(types.all_inner_texts()) == {'ZeroDivisionError'}


@needs_browser
class TestDetailsPane:
    """A bar leads to its action's data: tag, arguments, where it ran."""

    def test_click_a_bar(self, opened: Page, graph: provlog.RunGraph) -> None:
        call = _call(graph, 'run_pipeline')
        opened.page.click(f'#timeline .bar.exec[data-tag="{call.tag}"]')
        pane = opened.page.locator('#details')
        assert pane.get_attribute('data-tag') == call.tag
        text = pane.inner_text()
        assert call.tag in text
        assert '[1.0,2.0,3.0]' in text
        assert 'scale' in text
        assert graph.timeline.processes[call.execution.process] in text
        assert graph.timeline.processes[call.request.process] in text


@needs_browser
class TestCallTreeFolds:
    """Deep runs stay readable: the calls a call made open on demand."""

    def test_open_and_close(
        self, opened: Page, graph: provlog.RunGraph
    ) -> None:
        call = _call(graph, 'run_pipeline')
        node = opened.page.locator(f'#tree .node[data-tag="{call.tag}"]')
        toggle = node.locator('.toggle')
        kids = opened.page.locator(
            f'#tree .node[data-parent-tag="{call.tag}"]'
        )
        assert kids.count() == 0  # drawn when first opened
        toggle.click()
        assert toggle.get_attribute('aria-expanded') == 'true'
        assert kids.count() == len(call.children)
        assert all(k.is_visible() for k in kids.all())
        toggle.click()
        assert toggle.get_attribute('aria-expanded') == 'false'
        assert not any(k.is_visible() for k in kids.all())


@needs_browser
class TestDeepRun:
    """Thousands of nested calls open in the tree without hurting the browser."""

    def test_expand_all(self, tmp_path: Path) -> None:
        run = tmp_path / 'deep'
        _deep_run(run, 3000)
        path = write_report(provlog.load(run), tmp_path / 'deep.html')
        with browser.chromium() as page:
            opened = Page(page, path.resolve().as_uri())
            page.click('#tree button:text("Expand all")')
            assert page.locator('#tree .node:visible').count() == 3000
            page.locator('#tree .line').nth(2999).click()
            assert page.locator('#details h2').inner_text() == 'dive'
            assert opened.errors == []


@needs_browser
class TestLineage:
    """How the final results came about is drawn as a graph."""

    def test_final_result_lineage_has_nodes(
        self, opened: Page, graph: provlog.RunGraph
    ) -> None:
        call = _call(graph, 'run_pipeline')
        nodes = opened.page.locator('#lineage svg .lnode')
        assert nodes.count() > 5
        assert opened.page.locator('#lineage svg .ledge').count() > 5
        tags = set(
            opened.page.eval_on_selector_all(
                '#lineage .lnode.k-x', 'ns => ns.map(n => n.dataset.tag)'
            )
        )
        # the pipeline and the calls it made, squares and summary included
        assert {call.tag, *call.children} <= tags


@needs_browser
class TestZoomAndPan:
    """A long run's detail is only visible zoomed in, and moved to."""

    def test_buttons_zoom(self, opened: Page) -> None:
        a0, b0 = opened.view()
        opened.page.click('#timeline button[title="zoom in"]')
        a1, b1 = opened.view()
        assert b1 - a1 < (b0 - a0) * 0.9
        opened.page.click('#timeline button[title^="show the whole run"]')
        a2, b2 = opened.view()
        span = float(opened.page.get_attribute('#timeline', 'data-span'))
        assert a2 <= 0
        assert b2 >= span

    def test_wheel_zooms(self, opened: Page) -> None:
        a0, b0 = opened.view()
        box = opened.page.locator('#timeline .tl-body').bounding_box()
        opened.page.mouse.move(box['x'] + box['width'] * 0.7, box['y'] + 10)
        opened.page.mouse.wheel(0, -400)
        opened.frame()
        a1, b1 = opened.view()
        assert b1 - a1 < (b0 - a0) * 0.9

    def test_drag_pans(self, opened: Page) -> None:
        opened.page.click('#timeline button[title="zoom in"]')
        a0, b0 = opened.view()
        box = opened.page.locator('#timeline .tl-body').bounding_box()
        x, y = box['x'] + box['width'] * 0.6, box['y'] + 12
        opened.page.mouse.move(x, y)
        opened.page.mouse.down()
        opened.page.mouse.move(x + 200, y, steps=5)
        opened.page.mouse.up()
        a1, b1 = opened.view()
        assert a1 < a0
        assert b1 - a1 == pytest.approx(b0 - a0)


@needs_browser
class TestDrawsSomething:
    """A page that loads without errors may still draw nothing."""

    def test_screenshot_is_not_blank(self, opened: Page) -> None:
        image = Image.open(io.BytesIO(opened.page.screenshot())).convert('RGB')
        assert max(ImageStat.Stat(image).stddev) > 20
        assert len(image.getcolors(1 << 20) or ()) > 100


@needs_browser
class TestHostileValues:
    """Values are whatever the workflow returned: shown as text, never run."""

    _EVIL = '</script><img src=x onerror="document.title=\'pwned\'"><!--'

    def test_markup_in_values_stays_text(
        self, procpool_run: dict[str, Any], tmp_path: Path
    ) -> None:
        run = tmp_path / 'run'
        shutil.copytree(procpool_run['run_dir'], run)
        for journal in run.glob('*.jsonl'):
            lines = []
            for raw in journal.read_bytes().splitlines():
                line = orjson.loads(raw)
                if line.get('e') == 'success' and isinstance(
                    line.get('result'), dict
                ):
                    line['result']['preview'] = self._EVIL
                if line.get('e') == 'agent':
                    line['name'] = self._EVIL
                lines.append(orjson.dumps(line))
            journal.write_bytes(b'\n'.join(lines) + b'\n')
        path = write_report(provlog.load(run), tmp_path / 'evil.html')
        assert b'</script><img' not in path.read_bytes()
        with browser.chromium() as page:
            opened = Page(page, path.resolve().as_uri())
            page.click('#timeline .bar.exec >> nth=0')
            assert page.title().startswith('provlog report')
            assert page.locator('img').count() == 0
            assert self._EVIL in page.locator('#timeline').inner_html() or (
                self._EVIL in page.locator('body').inner_text()
            )
            assert opened.errors == []


class TestLargeRunSampled:
    """A large run's report stays small and quick, and keeps every failure."""

    def test_sampled_within_bounds(self, tmp_path: Path) -> None:
        folder = make_run(tmp_path, 8_000)
        graph = provlog.load(folder)
        page = render_report(graph, max_bars=5000)
        data = page_data(page)
        sample = data['sample']
        assert sample is not None
        assert sample['total'] == len(graph.timeline.calls)
        assert b'This report draws' in page  # said without the script too
        bars = [c for c in data['calls'] if 'ex' in c]
        assert 0 < len(bars) <= 5000
        kept = {c['tag'] for c in data['calls']}
        failed = {
            c.tag for c in graph.timeline.calls.values() if c.state == 'failed'
        }
        assert failed
        assert failed <= kept
        assert len(page) < 5_000_000

    @pytest.fixture(scope='class')
    @classmethod
    def few_bars(cls, tmp_path_factory: pytest.TempPathFactory) -> bytes:
        """A run with more failures than the report has bars for."""
        folder = make_run(tmp_path_factory.mktemp('few'), 2_000)
        return render_report(provlog.load(folder), max_bars=30)

    def test_notice_says_what_was_kept(self, few_bars: bytes) -> None:
        failed = page_data(few_bars)['sample']['states']['failed']
        assert 0 < failed['kept'] < failed['total']
        text = html.unescape(few_bars.decode())
        kept = f'{failed["kept"]:,} of {failed["total"]:,} failures'
        assert f'It keeps {kept}' in text
        assert 'every failure' not in text

    @needs_browser
    def test_failures_say_how_many_are_not_drawn(
        self, few_bars: bytes, tmp_path: Path
    ) -> None:
        failed = page_data(few_bars)['sample']['states']['failed']
        path = tmp_path / 'few.html'
        path.write_bytes(few_bars)
        with browser.chromium() as page:
            opened = Page(page, path.resolve().as_uri())
            counts = page.locator('#failures .failure .ecount')
            shown = sum(int(t.split()[0]) for t in counts.all_inner_texts())
            assert shown == failed['kept']
            notes = page.locator('#failures > .not-drawn')
            assert notes.count() == 1
            note = notes.inner_text()
            more = failed['total'] - failed['kept']
            assert note == f'+{more:,} more not drawn in this report'
            assert opened.errors == []

    def test_small_run_is_not_sampled(self, graph: provlog.RunGraph) -> None:
        data = page_data(render_report(graph))
        assert data['sample'] is None
        assert len(data['calls']) == len(graph.timeline.calls)


class TestCommand:
    """``provlog report RUN`` writes the page next to the journals, or -o."""

    def test_default_path_is_in_the_run_folder(
        self,
        procpool_run: dict[str, Any],
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        run = shutil.copytree(procpool_run['run_dir'], tmp_path / 'run')
        assert main(['report', str(run)]) == 0
        target = run / 'report.html'
        assert str(target) in capsys.readouterr().out
        assert (
            page_data(target.read_bytes())['run'] == provlog.load(run).run_id
        )

    def test_output_option(
        self, procpool_run: dict[str, Any], tmp_path: Path
    ) -> None:
        target = tmp_path / 'elsewhere.html'
        assert (
            main(['report', str(procpool_run['run_dir']), '-o', str(target)])
            == 0
        )
        assert page_data(target.read_bytes())['calls']
