"""End to end in real headless Chromium: `streamlit run app/main.py`, a small profile through
the UI, the charts, a trace upload (good and bad), the HTML report opened offline.

Screenshots land in test-artifacts/ (gitignored)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
STARTUP_S = 90
RUN_S = 180

sync_api = pytest.importorskip("playwright.sync_api")


def fixtures_dir() -> Path:
    return Path(os.environ.get("RELU_LAB_FIXTURES") or REPO.parent / "shared" / "fixtures")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"streamlit exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"streamlit did not answer within {STARTUP_S} s: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    data = tmp_path_factory.mktemp("relu_lab_data")
    log = data / "streamlit.log"
    port = free_port()
    env = dict(os.environ, RELU_LAB_DATA=str(data), TF_CPP_MIN_LOG_LEVEL="2")
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.port", str(port),
             "--server.headless", "true", "--server.address", "127.0.0.1"],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed (make browser)")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 1100}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        yield page
    finally:
        context.close()


def set_number(page, label: str, value: str) -> None:
    field = page.get_by_label(label, exact=True)
    field.fill(value)
    field.press("Enter")
    page.wait_for_timeout(300)


def screenshot(page, name: str) -> None:
    """Whole page: Streamlit scrolls inside its own container, so grow the viewport first."""
    height = page.evaluate(
        "() => { const main = document.querySelector('[data-testid=stMainBlockContainer]');"
        " return main ? main.scrollHeight + 120 : document.body.scrollHeight; }")
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": min(max(height, 800), 6000)})
    page.wait_for_timeout(1500)
    page.screenshot(path=ARTIFACTS / name)
    page.set_viewport_size(size)


def assert_no_traceback(page) -> None:
    assert page.locator("text=Traceback").count() == 0


def test_profile_compare_report_offline(app_url, page, browser):
    page.goto(app_url)
    page.get_by_role("heading", name="Run a profile").wait_for()
    set_number(page, "Min time per repeat (s)", "0.002")
    page.get_by_text("cases").first.wait_for()
    page.get_by_role("button", name="Start").click()
    page.get_by_text("Profiling…").first.wait_for(timeout=30_000)
    page.screenshot(path=ARTIFACTS / "run_progress.png")
    page.get_by_text("complete:").wait_for(timeout=RUN_S * 1000)
    page.locator(".js-plotly-plot").first.wait_for()
    assert_no_traceback(page)
    screenshot(page, "run_done.png")

    page.get_by_text("Open the full comparison").click()
    page.get_by_role("heading", name="Compare runs").wait_for()
    page.locator(".js-plotly-plot").first.wait_for()
    page.wait_for_url("**/compare?runs=*")
    page.wait_for_function("() => window.location.search.includes('baseline=nn_relu')")
    shared_url = page.url
    assert_no_traceback(page)
    screenshot(page, "compare.png")
    page.get_by_role("tab", name="Speedup").click()
    page.wait_for_timeout(500)
    screenshot(page, "compare_speedup.png")
    page.get_by_role("tab", name="Table").click()
    page.get_by_text("Median µs per call").wait_for()
    screenshot(page, "compare_table.png")

    with page.expect_download(timeout=120_000) as download:
        page.get_by_role("button", name="Download HTML report").click()
    report = ARTIFACTS / "report.html"
    download.value.save_as(report)
    assert report.stat().st_size > 1_000_000  # plotly.js is inside

    # The shared link reproduces the view in a fresh browser context.
    fresh = browser.new_context(viewport={"width": 1440, "height": 1100})
    try:
        other = fresh.new_page()
        other.goto(shared_url)
        other.get_by_role("heading", name="Compare runs").wait_for(timeout=60_000)
        other.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
    finally:
        fresh.close()

    # The report works with the network off.
    offline = browser.new_context(viewport={"width": 1280, "height": 1000}, offline=True)
    try:
        view = offline.new_page()
        view.goto(report.as_uri())
        view.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=30_000)
        assert view.locator(".js-plotly-plot").count() >= 5
        view.screenshot(path=ARTIFACTS / "report_offline.png", full_page=True)
    finally:
        offline.close()


def test_trace_upload_good_and_bad(app_url, page):
    trace = fixtures_dir() / "pytorch_cpu_trace.json"
    if not trace.exists():
        pytest.skip(f"PyTorch trace fixture not found at {trace} (set RELU_LAB_FIXTURES)")
    page.goto(f"{app_url}/traces")
    page.get_by_role("heading", name="Traces").wait_for()
    page.locator("input[type=file]").set_input_files(str(trace))
    page.locator(".js-plotly-plot").first.wait_for()
    page.get_by_text("Per-op table").wait_for()
    assert_no_traceback(page)
    screenshot(page, "traces.png")

    page.locator("input[type=file]").set_input_files(
        files=[{"name": "broken.json", "mimeType": "application/json", "buffer": b"{oops"}])
    page.get_by_text("Could not read broken.json").wait_for()
    assert page.locator(".js-plotly-plot").count() == 0
    assert_no_traceback(page)
    page.screenshot(path=ARTIFACTS / "traces_bad_upload.png")


def test_variants_page_shows_the_semantics_matrix(app_url, page):
    page.goto(f"{app_url}/variants")
    page.get_by_role("heading", name="Edge-case semantics").wait_for(timeout=120_000)
    page.locator(".js-plotly-plot").first.wait_for(timeout=120_000)
    assert_no_traceback(page)
    screenshot(page, "variants.png")
