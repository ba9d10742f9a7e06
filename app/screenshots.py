"""``make screenshots``: the README's pictures of the dashboard, taken from a real session.

Starts the dashboard on a fresh data dir, runs a small real profile through the Run page in
headless Chromium, then photographs Run (with its results), Compare, the trace of one case, Compare's B-vs-A view
of a second run against the first, Variants and a small Scenarios run into docs/*.png. Takes about 3 minutes on 2 vCPUs.

    python -m app.screenshots [--out docs]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from app.headless import REPO, VERSUS_MARK, chromium, screenshot, serve, versus_chart

RUN_S = 600
VIEWPORT = {"width": 1280, "height": 900}
MAX_HEIGHT = 1800  # px: enough for a page's main content, small enough for a README


def set_number(page, label: str, value: str) -> None:
    field = page.get_by_label(label, exact=True)
    field.fill(value)
    field.press("Enter")
    page.wait_for_timeout(400)


def add_choice(page, label: str, value: str) -> None:
    """Type ``value`` into the multiselect labelled ``label`` and pick it."""
    box = page.get_by_role("combobox", name=label)
    box.click()
    box.fill(value)
    page.get_by_role("option", name=value).first.click()
    page.keyboard.press("Escape")
    page.wait_for_timeout(400)


def take(page, out: Path, name: str, max_height: int = MAX_HEIGHT) -> None:
    screenshot(page, out / name, max_height=max_height)
    print(f"wrote {out / name}")


def run_page(page, url: str, out: Path) -> str:
    """Run the profile through the form; the form's address (its choices in the query)."""
    page.goto(url)
    page.get_by_role("heading", name="Run a profile").wait_for()
    add_choice(page, "Variants", "custom_op — CustomRelu op")
    custom = page.get_by_role("textbox", name="Custom shapes")
    custom.fill("1e6")
    custom.press("Enter")
    set_number(page, "Min time per repeat (s)", "0.02")
    label = page.get_by_label("Run label")
    label.fill("README screenshots")
    label.press("Enter")
    page.get_by_text("24 cases").wait_for()
    form = page.url
    page.get_by_role("button", name="Start").click()
    page.get_by_text("Profiling…").first.wait_for(timeout=60_000)
    page.get_by_text("complete:").wait_for(timeout=RUN_S * 1000)
    page.locator(".js-plotly-plot").first.wait_for()
    page.locator("[data-testid=stDataFrame]").filter(has_text="./traces?").first.wait_for()
    take(page, out, "run.png", max_height=2600)  # down to the case table
    return form


def compare_page(page, out: Path) -> None:
    page.get_by_text("Open the full comparison").click()
    page.get_by_role("heading", name="Compare runs").wait_for()
    page.locator(".js-plotly-plot").first.wait_for()
    take(page, out, "compare.png")
    page.get_by_role("tab", name="Table").click()
    page.get_by_text("coloured only where the speedup").first.wait_for()
    take(page, out, "compare_table.png")


def traces_page(page, out: Path) -> None:
    """One click on the first case's "open trace" (st.dataframe draws on a canvas)."""
    grid = page.locator("[data-testid=stDataFrame]").filter(has_text="./traces?").first
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    page.mouse.move(box["x"] + 30, box["y"] + 35 + 17)
    page.wait_for_timeout(500)
    with page.context.expect_page() as opened:
        page.mouse.click(box["x"] + 30, box["y"] + 35 + 17)
    trace = opened.value
    trace.set_viewport_size(VIEWPORT)
    trace.get_by_text("Trace of run").wait_for(timeout=60_000)
    trace.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
    trace.get_by_text("Per-op table").wait_for()
    take(trace, out, "traces.png")
    trace.close()


def versus_page(page, url: str, form: str, out: Path, data: Path) -> None:
    """A second run of the same profile (the form's address), then Compare on both: B vs A."""
    page.goto(form)
    page.get_by_role("heading", name="Run a profile").wait_for()
    page.get_by_text("24 cases").wait_for()
    page.get_by_role("button", name="Start").click()
    page.get_by_text("Profiling…").first.wait_for(timeout=60_000)
    page.get_by_text("complete:").wait_for(timeout=RUN_S * 1000)
    from profiling.storage.store import Store

    with Store(data) as store:
        runs = store.list_runs(kind="profile")["run_id"].tolist()[:2][::-1]
    page.goto(f"{url}/compare?runs={','.join(runs)}")
    page.get_by_role("heading", name="Compare runs").wait_for()
    versus_chart(page).locator(VERSUS_MARK).first.wait_for(timeout=120_000)
    page.locator("[data-testid=stDataFrame]").first.wait_for()
    take(page, out, "compare_versus.png")


def variants_page(page, url: str, out: Path) -> None:
    page.goto(f"{url}/variants")
    page.get_by_role("heading", name="Edge-case semantics").wait_for(timeout=120_000)
    page.locator(".js-plotly-plot").first.wait_for(timeout=120_000)
    take(page, out, "variants.png")


def scenarios_page(page, url: str, out: Path) -> None:
    page.goto(f"{url}/scenarios")
    page.get_by_role("heading", name="Scenarios").wait_for()
    set_number(page, "Channels", "4")
    set_number(page, "Repeats", "5")
    set_number(page, "Training steps (loss check)", "5")
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_text("Saved as run").wait_for(timeout=RUN_S * 1000)
    page.locator(".js-plotly-plot").nth(2).wait_for()
    take(page, out, "scenarios.png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Screenshots of the dashboard for the README.")
    parser.add_argument("--out", type=Path, default=REPO / "docs")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="relu_lab_screens_") as data, \
            serve(Path(data)) as url, chromium() as browser:
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.set_default_timeout(60_000)
        form = run_page(page, url, args.out)
        compare_page(page, args.out)
        traces_page(page, args.out)
        versus_page(page, url, form, args.out, Path(data))
        variants_page(page, url, args.out)
        scenarios_page(page, url, args.out)
        context.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
