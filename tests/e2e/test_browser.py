"""End to end in real headless Chromium: `streamlit run app/main.py`, a small profile through
the UI, the charts, a trace upload (good and bad), the HTML report opened offline, and a stored
and an uploaded trace opened in Perfetto's UI served by the dashboard (no request leaves
127.0.0.1).

Screenshots land in test-artifacts/ (gitignored)."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request

import pytest

from app.headless import REPO, VERSUS_MARK, DashboardError, serve, versus_chart
from app.headless import screenshot as full_screenshot

ARTIFACTS = REPO / "test-artifacts"
RUN_S = 180

pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("relu_lab_data")


@pytest.fixture(scope="module")
def app_url(data_dir):
    try:
        with serve(data_dir) as url:
            yield url
    except DashboardError as error:
        pytest.fail(str(error))


def set_number(page, label: str, value: str) -> None:
    field = page.get_by_label(label, exact=True)
    field.fill(value)
    field.press("Enter")
    page.wait_for_timeout(300)


def screenshot(page, name: str) -> None:
    full_screenshot(page, ARTIFACTS / name)


def click_first_trace_link(page) -> None:
    """Click "open trace" in the first row of the case table. st.dataframe draws on a canvas,
    so click where the cell is: the link column is first, rows are 35 px under a 35 px header."""
    grid = page.locator("[data-testid=stDataFrame]").filter(has_text="./traces?").first
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    # The grid finds the link under the pointer on hover; a click without one is a cell click.
    page.mouse.move(box["x"] + 30, box["y"] + 35 + 17)
    page.wait_for_timeout(500)
    page.mouse.click(box["x"] + 30, box["y"] + 35 + 17)


def open_in_perfetto(page, browser, screenshot_name: str) -> None:
    """Press the Traces page's "Open in Perfetto", then open its link in a context where every
    request beyond 127.0.0.1 is refused, and see Perfetto's UI load that trace: its title names
    the served file and a process of the trace is drawn as a track."""
    page.get_by_role("button", name="Open in Perfetto").click()
    link = page.get_by_role("link", name="Open Perfetto ↗")
    link.wait_for(timeout=120_000)
    href = link.get_attribute("href")
    assert href.startswith("http://127.0.0.1:") and "#!/?url=" in href, href
    served = urllib.parse.unquote(href.split("url=", 1)[1])
    with urllib.request.urlopen(served, timeout=30) as reply:
        events = json.loads(reply.read())["traceEvents"]
    # Perfetto drops xprof's leading "/" ("/host:CPU" is drawn as "host:CPU")
    processes = {str(e["args"]["name"]).strip("/") for e in events
                 if e.get("ph") == "M" and e.get("name") == "process_name"}
    assert processes
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    outside = []

    def local_only(route) -> None:
        if urllib.parse.urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", local_only)
    try:
        viewer = context.new_page()
        viewer.goto(href)
        name = served.rsplit("/", 1)[-1]
        viewer.wait_for_function("name => document.title.startsWith(name)", arg=name,
                                 timeout=120_000)
        assert viewer.title().endswith("Perfetto UI")
        viewer.wait_for_function(
            "names => names.some(n => document.body.innerText.includes(n))",
            arg=sorted(processes), timeout=60_000)
        viewer.screenshot(path=ARTIFACTS / screenshot_name)
    finally:
        context.close()
    # Perfetto asks Google once whether the user is internal; nothing it needs is remote
    assert all("is_internal_user" in url for url in outside), outside


def chosen(page, label: str) -> list[str]:
    """The chips of the multiselect labelled ``label``."""
    widget = page.locator(".stMultiSelect").filter(has=page.get_by_text(label, exact=True))
    return [tag.get_attribute("aria-label") for tag in widget.locator("[data-tag]").all()]


def assert_form(page, variants: list[str], label: str, repeats: str) -> None:
    page.get_by_role("heading", name="Run a profile").wait_for()
    page.get_by_label("Run label").wait_for()
    assert [v.split(" — ")[0] for v in chosen(page, "Variants")] == variants
    from playwright.sync_api import expect

    # expect() retries: a fresh page draws the inputs before the query's values reach them
    expect(page.get_by_label("Run label")).to_have_value(label, timeout=30_000)
    expect(page.get_by_label("Repeats", exact=True)).to_have_value(repeats, timeout=30_000)


def test_run_form_survives_other_pages_and_a_fresh_browser(app_url, page, browser):
    page.goto(app_url)
    page.get_by_role("heading", name="Run a profile").wait_for()
    page.get_by_role("button", name="Remove where — tf.where (teaching)").click()
    page.wait_for_timeout(300)
    label = page.get_by_label("Run label")
    label.fill("my laptop baseline")
    label.press("Enter")
    set_number(page, "Repeats", "3")
    page.wait_for_function("() => location.search.includes('repeats=3')"
                           " && location.search.includes('label=')")
    link = page.url
    nav = page.locator("[data-testid=stSidebarNav]")
    nav.get_by_role("link", name="Variants").click()
    page.get_by_role("heading", name="Variants").first.wait_for()
    nav.get_by_role("link", name="Run").click()
    assert_form(page, ["nn_relu", "maximum"], "my laptop baseline", "3")
    assert_no_traceback(page)

    fresh = browser.new_context(viewport={"width": 1440, "height": 1100})
    try:
        other = fresh.new_page()
        other.set_default_timeout(60_000)
        other.goto(link)
        assert_form(other, ["nn_relu", "maximum"], "my laptop baseline", "3")
    finally:
        fresh.close()


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

    # One click on a result row opens that case's trace, named by its run and case.
    run_id = page.get_by_text("complete:").first.inner_text().split("`")[0].split()[1]
    with page.context.expect_page() as opened:
        click_first_trace_link(page)
    trace = opened.value
    trace.get_by_text("Trace of run").wait_for()
    caption = trace.get_by_text("Trace of run").inner_text()
    assert run_id in caption and "nn_relu" in caption, caption
    trace.locator(".js-plotly-plot").first.wait_for()
    assert "/traces?" in trace.url and f"run={run_id}" in trace.url
    assert_no_traceback(trace)
    screenshot(trace, "trace_from_run.png")
    open_in_perfetto(trace, browser, "perfetto_stored_trace.png")
    trace.close()

    page.get_by_text("Open the full comparison").click()
    page.get_by_role("heading", name="Compare runs").wait_for()
    page.locator(".js-plotly-plot").first.wait_for()
    page.wait_for_url("**/compare?runs=*")
    page.wait_for_function("() => window.location.search.includes('baseline=nn_relu')")
    shared_url = page.url
    assert_no_traceback(page)
    screenshot(page, "compare.png")
    # Only the open tab is drawn: a click reruns the page for the new tab and puts it in the URL.
    assert page.get_by_text("coloured only where the speedup").count() == 0
    page.get_by_role("tab", name="Speedup").click()
    page.wait_for_url("**view=Speedup*")
    page.locator(".js-plotly-plot").filter(has_text="Speedup vs nn_relu").wait_for()
    screenshot(page, "compare_speedup.png")
    page.get_by_role("tab", name="Table").click()
    page.wait_for_url("**view=Table*")
    page.get_by_text("coloured only where the speedup").first.wait_for()
    table_url = page.url
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
        other.goto(table_url)  # a link to a tab opens that tab
        other.get_by_text("coloured only where the speedup").first.wait_for(timeout=60_000)
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


def grid_rows(page, columns: int) -> list[list[str]]:
    """The rows of the first st.dataframe that holds a "faster"/"slower"/"not resolved" cell,
    read from the grid's accessibility table (the grid itself is drawn on a canvas)."""
    cells = page.evaluate("() => Array.from(document.querySelectorAll("
                          "'[data-testid=stDataFrame] [role=gridcell]')).map(e => e.innerText)")
    return [cells[i:i + columns] for i in range(0, len(cells), columns)]


def test_two_runs_b_vs_a_table_report_and_csv(app_url, data_dir, page):
    """Two stored runs: the Compare page opens on B vs A; its table, the downloaded report and
    the downloaded CSV give the same speedups, CIs and verdicts."""
    import csv
    import io
    import re

    from helpers import store_timed_run

    from profiling.presentation.units import format_speedup
    from profiling.storage.store import Store

    with Store(data_dir) as store:
        a = store_timed_run(store, {"nn_relu": 100e-6, "where": 80e-6, "maximum": 97e-6}, "A")
        b = store_timed_run(store, {"nn_relu": 100e-6, "where": 40e-6, "maximum": 99e-6}, "B")
    page.goto(f"{app_url}/compare?runs={a},{b}")
    page.get_by_role("heading", name="Compare runs").wait_for()
    chart = versus_chart(page).filter(has_text="Speedup over A per case")
    chart.locator(VERSUS_MARK).first.wait_for()
    page.get_by_role("tab", name="B vs A", selected=True).wait_for()
    # Drawn: a marker per matched case, filled only where the verdict is a change (where: 2x).
    markers = chart.locator(VERSUS_MARK)
    assert markers.count() == 3
    filled = {g.get_attribute("data-case"): g.locator(".marker").get_attribute("fill")
              for g in chart.locator("g.case").all()}
    assert filled["where · 1000000"] != "white", filled
    assert filled["maximum · 1000000"] == filled["nn_relu · 1000000"] == "white", filled
    labels = {t.text_content() for t in chart.locator("text").all()}
    assert {"where · 1000000", "maximum · 1000000"} <= labels
    box = markers.first.bounding_box()
    assert box and box["width"] > 4 and box["height"] > 4  # painted, not only in the DOM
    page.locator("[data-testid=stDataFrame] [role=gridcell]").first.wait_for(state="attached")
    shown = grid_rows(page, 6)
    where = format_speedup(2.0, 80 * 0.98 / (40 * 1.02), 80 * 1.02 / (40 * 0.98))
    assert shown[0] == ["B", "where · 1000000", "80.0 µs", "40.0 µs", where, "faster"]
    verdicts = {row[1]: (row[4], row[5]) for row in shown}
    assert verdicts["maximum · 1000000"][1] == "not resolved"
    assert len(shown) == 3
    assert_no_traceback(page)
    screenshot(page, "compare_b_vs_a.png")

    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("button", name="Download B vs A (CSV)").click()
    rows = list(csv.DictReader(io.StringIO(download.value.path().read_text())))
    from_csv = {f"{r['label']} · {r['shape']}": (format_speedup(
        float(r["speedup"]), float(r["speedup_ci95_low"]), float(r["speedup_ci95_high"])),
        r["verdict"]) for r in rows}
    assert from_csv == verdicts
    assert {r["run_a"] for r in rows} == {a} and {r["run_b"] for r in rows} == {b}

    with page.expect_download(timeout=120_000) as download:
        page.get_by_role("button", name="Download HTML report").click()
    document = download.value.path().read_text()
    versus = document[document.index('<div class="versus">'):]
    versus = versus[:versus.index("</div>")]
    cells = [re.findall(r'<td class="name">(.*?)</td>', row)
             for row in re.findall(r"<tr>(.*?)</tr>", versus)]
    assert [c for c in cells if c] == shown


def test_trace_upload_good_and_bad(app_url, page, browser, pytorch_trace):
    trace = pytorch_trace
    page.goto(f"{app_url}/traces")
    page.get_by_role("heading", name="Traces").wait_for()
    # the explorer's uploader (the diff tab's two are in the page too, not shown), once drawn:
    # a file given to it before then can be lost (a clean-clone run timed out so, once)
    page.locator("[data-testid=stFileUploaderDropzone]").first.wait_for()
    explorer = page.locator("input[type=file]").first
    explorer.set_input_files(str(trace))
    page.locator(".js-plotly-plot").first.wait_for()
    page.get_by_text("Per-op table").wait_for()
    assert_no_traceback(page)
    screenshot(page, "traces.png")
    open_in_perfetto(page, browser, "perfetto_upload.png")

    explorer.set_input_files(
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
