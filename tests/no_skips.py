"""A pytest plugin: in CI (the CI variable set, as .ci/run sets it) a skipped test fails, so
nothing is skipped silently. The one exception is a test that needs a GPU on a machine without
one (its skip reason names the GPU)."""

from __future__ import annotations

import os

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if (report.skipped and os.environ.get("CI") and not hasattr(report, "wasxfail")
            and "GPU" not in str(report.longrepr)):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where no test may skip: {report.longrepr}"
