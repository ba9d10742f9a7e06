"""End to end: a stored case's trace opens in XProf's own UI from the Traces page and from the
Compare page's case table, served by the xprof server the dashboard starts on demand (offline,
real Chromium, real xprof); and a click on a timeline bar shows that event's details."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from app.headless import REPO, serve
from app.headless import screenshot as full_screenshot


def screenshot(page, name: str) -> None:
    full_screenshot(page, REPO / "test-artifacts" / name)


@pytest.fixture(scope="module")
def app_with_a_run(tmp_path_factory):
    """The dashboard over a data dir holding one real run with a stored trace per case."""
    data = tmp_path_factory.mktemp("relu_lab_xprof_data")
    env = dict(os.environ, RELU_LAB_DATA=str(data), TF_CPP_MIN_LOG_LEVEL="2")
    run = subprocess.run([sys.executable, "-m", "profiling", "run", "--variants", "nn_relu",
                          "--sizes", "1000", "--modes", "eager", "--repeats", "5", "--quiet",
                          "--json"], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=300, check=True)
    run_id = json.loads(run.stdout)["run_id"]
    with serve(data) as url:
        yield url, run_id, data


def test_stored_case_opens_in_xprof(app_with_a_run, page):  # noqa: F811 - fixture
    url, run_id, data = app_with_a_run
    page.goto(f"{url}/traces?run={run_id}")
    page.get_by_role("heading", name="Traces").wait_for()
    page.get_by_role("button", name="Open in XProf").click()
    link = page.get_by_role("link", name="Open XProf ↗")
    link.wait_for(timeout=120_000)
    href = link.get_attribute("href")
    assert href.startswith("http://127.0.0.1:") and "?run=" in href
    screenshot(page, "traces_xprof_link.png")
    page.goto(href)
    page.get_by_text("Sessions (1)").wait_for(timeout=90_000)
    page.get_by_text("Performance Summary").wait_for(timeout=90_000)
    body = page.inner_text("body")
    assert "XProf" in body and href.rsplit("=", 1)[-1] in body
    screenshot(page, "xprof.png")
    # the logdir xprof serves is the layout it reads: plugins/profile/<run>/<host>.xplane.pb
    assert list((data / "xprof" / "plugins" / "profile").glob("*/*.xplane.pb"))


def test_compare_case_table_opens_xprof(app_with_a_run, page):  # noqa: F811 - fixture
    """The case table's "open in XProf" link lands on the Traces page with XProf started for
    that case (no button to press), and its link opens XProf's UI."""
    url, run_id, _ = app_with_a_run
    page.goto(f"{url}/compare?runs={run_id}")
    page.get_by_role("tab", name="Table").click()
    grid = page.locator("[data-testid=stDataFrame]").filter(has_text="xprof=1").first
    grid.wait_for(timeout=120_000)
    # st.dataframe draws cells on a canvas; its accessible copy holds the link's target
    target = re.search(r"\./traces\?run=[^&\s]+&case=([^&\s]+)&xprof=1", grid.text_content())
    assert target, grid.text_content()[:300]
    screenshot(page, "compare_xprof_links.png")
    page.goto(f"{url}/{target.group(0)[2:]}")
    link = page.get_by_role("link", name="Open XProf ↗")
    link.wait_for(timeout=120_000)
    assert page.get_by_role("button", name="Open in XProf").count() == 0
    assert "xprof=1" not in page.url  # pressed once, not on every visit
    page.goto(link.get_attribute("href"))
    page.get_by_text("Performance Summary").wait_for(timeout=90_000)
    assert "XProf" in page.inner_text("body")


def test_clicking_a_timeline_bar_shows_the_event(app_with_a_run, page):  # noqa: F811 - fixture
    url, run_id, _ = app_with_a_run
    page.goto(f"{url}/traces?run={run_id}")
    page.get_by_text("Activation audit").wait_for(timeout=120_000)
    bars = page.locator(".js-plotly-plot").first.locator("g.point path")
    bars.first.wait_for()
    bars.first.click(force=True)
    details = page.locator("[data-testid=stJson]").first
    details.wait_for(timeout=60_000)
    text = details.inner_text()
    assert '"name"' in text and '"duration_us"' in text and '"args"' in text
    screenshot(page, "traces_event_details.png")
