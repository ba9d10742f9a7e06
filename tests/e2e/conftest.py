"""Browser fixtures shared by the end-to-end tests: one headless Chromium per module, a fresh
page (context) per test."""

from __future__ import annotations

import pytest

from app.headless import CHROMIUM, REPO, DashboardError, serve

ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed (make browser)")
    ARTIFACTS.mkdir(exist_ok=True)
    from app.headless import chromium

    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 1100}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    """A dashboard (`streamlit run app/main.py`) on a fresh data dir, for one test module."""
    try:
        with serve(tmp_path_factory.mktemp("relu_lab_data")) as url:
            yield url
    except DashboardError as error:
        pytest.fail(str(error))
