"""Drive the dashboard in headless Chromium: start ``streamlit run app/main.py`` on a data dir,
wait until it answers, take whole-page screenshots. Shared by the browser test
(tests/e2e/test_browser.py) and ``make screenshots`` (app/screenshots.py)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
STARTUP_S = 90
# Compare's B vs A chart (profiling.presentation.versus_svg, in its own iframe on the page) and
# one of its drawn markers.
VERSUS_CHART, VERSUS_MARK = "svg.versus-chart", "g.case .marker"
VERSUS_MARKS = f"{VERSUS_CHART} {VERSUS_MARK}"
VERSUS_FRAME = "iframe[srcdoc*=versus-chart]"


def versus_chart(page):
    """The B vs A chart of the Compare page open in ``page`` (a Playwright locator)."""
    return page.frame_locator(VERSUS_FRAME).locator(VERSUS_CHART)


class DashboardError(RuntimeError):
    """The dashboard did not start (the message ends with its log)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen, log: Path) -> None:
    """Return once ``url`` answers /_stcore/health; DashboardError if it exits or times out."""
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DashboardError(f"streamlit exited with {process.returncode}: "
                                 f"{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise DashboardError(f"streamlit did not answer within {STARTUP_S} s: {log.read_text()[-2000:]}")


@contextlib.contextmanager
def serve(data_dir: Path) -> Iterator[str]:
    """The dashboard on a free local port with RELU_LAB_DATA=``data_dir``; yields its URL."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "streamlit.log"
    port = free_port()
    env = dict(os.environ, RELU_LAB_DATA=str(data_dir), TF_CPP_MIN_LOG_LEVEL="2")
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.port", str(port),
             "--server.headless", "true", "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false"],
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


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    """A headless Chromium (Debian's /usr/bin/chromium) driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page, path: Path, settle_ms: int = 1500, max_height: int = 6000) -> None:
    """Whole page (up to ``max_height`` px): Streamlit scrolls inside its own container, so grow
    the viewport first."""
    height = page.evaluate(
        "() => { const main = document.querySelector('[data-testid=stMainBlockContainer]');"
        " return main ? main.scrollHeight + 120 : document.body.scrollHeight; }")
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": min(max(height, 800), max_height)})
    page.wait_for_timeout(settle_ms)
    page.screenshot(path=path)
    page.set_viewport_size(size)
