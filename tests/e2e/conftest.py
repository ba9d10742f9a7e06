"""Browser fixtures shared by the end-to-end tests: one headless Chromium per module, a fresh
page (context) per test."""

from __future__ import annotations

import pytest

from app.headless import CHROMIUM, REPO

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
