"""End to end in headless Chromium: upload a small .keras model on the Model page, run two
rewrites, read the per-layer table and the speedup chart, and open one trace."""

from __future__ import annotations

import keras
import pytest

from app.headless import REPO
from app.headless import screenshot as full_screenshot
from profiling.models.load import randomise_batchnorm

ARTIFACTS = REPO / "test-artifacts"
RUN_S = 420


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    inp = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False, name="conv1")(inp)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.Activation("relu", name="act1")(x)
    model = keras.Model(inp, x, name="tiny_cbr")
    randomise_batchnorm(model)
    path = tmp_path_factory.mktemp("models") / "tiny_cbr.keras"
    model.save(path)
    return path


def test_upload_a_model_run_two_rewrites_and_open_a_trace(app_url, page, model_file):
    page.goto(app_url + "/model")
    page.get_by_role("heading", name="Model").wait_for()
    page.locator("input[type=file]").set_input_files(str(model_file))
    page.get_by_text("tiny_cbr.keras").wait_for()
    field = page.get_by_label("Repeats", exact=True)
    field.fill("3")
    field.press("Enter")
    page.wait_for_timeout(300)
    field = page.get_by_label("Seconds per repeat", exact=True)
    field.fill("0.01")
    field.press("Enter")
    page.wait_for_timeout(300)
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_text("Activation layers").wait_for(timeout=RUN_S * 1000)
    page.get_by_text("Stored as run").wait_for()  # drawn last: the whole result is on the page
    body = page.inner_text("body")
    assert "tiny_cbr" in body and "Stored as run" in body
    grid = page.locator("[data-testid=stDataFrame]")
    grid.nth(1).wait_for()  # the rewrites and the layers
    page.locator(".js-plotly-plot").first.wait_for()
    assert "Speedup of each rewrite" in page.locator(".js-plotly-plot").first.inner_text()
    full_screenshot(page, ARTIFACTS / "model_page.png")
    href = page.get_by_role("link", name="original").first.get_attribute("href")
    assert href.startswith("./traces?run=")
    page.goto(app_url + href[1:])
    page.get_by_role("heading", name="Traces").wait_for()
    caption = page.get_by_text("Trace of run").first
    caption.wait_for(timeout=120_000)
    run_id = href.split("run=")[1].split("&")[0]
    assert f"Trace of run {run_id}, case original" in caption.inner_text()
    page.locator(".js-plotly-plot").first.wait_for(timeout=120_000)  # its timeline is drawn
