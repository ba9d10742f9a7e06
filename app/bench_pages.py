"""How long the dashboard's page scripts take as data grows: 20 stored runs of 110 cases each
(every variant × 5 sizes × eager/function, like ``python -m profiling run`` with no flags).

    python -m app.bench_pages            # make bench-app

Each page runs through Streamlit's AppTest (the page script itself, no browser or network) in a
fresh data dir, after one visit that loads TensorFlow and the semantics table; "cold" is a run
with every cache of read data and drawn figures emptied (a new selection, new data), "warm" a
rerun with nothing new (a widget change elsewhere). Compare draws only its open tab: the first
(B vs A with two runs or more) for 1, 2 and 20 runs, then each other tab for 20 runs.

Then what a user waits for: ``streamlit run`` on the same store, one visit to the Run page (the
server imports TensorFlow; the bench waits until that page is drawn), and Compare with all 20
runs opened in headless Chromium, timed by the page's own clock from navigation to its title,
its runs picker, its last element (the page script has finished), the chart's container and its
first chart drawn (a painted SVG marker of the B vs A chart): the first such page after the
server started (data read cold), the median fresh page (a new browser context: no cache, a new
user) and the median new tab of a warm browser (a returning user); then the median fresh page
of two runs. Targets: Compare < 2 s (page script; first chart drawn in a fresh page, 20 runs
and 2), Run (with a run's results) < 1 s. A benchmark, not a test: it prints numbers and exits
1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from app.headless import VERSUS_FRAME, VERSUS_MARK, VERSUS_MARKS, versus_chart

ROOT = Path(__file__).resolve().parents[1]
MAIN = ROOT / "app" / "main.py"
SIZES = (1_000, 10_000, 100_000, 1_000_000, 10_000_000)
MODES = ("eager", "function")
TARGETS_S = {"Compare": 2.0, "Run": 1.0, "Chromium": 2.0}
# A drawn marker of the B vs A chart (versus_svg, in its iframe): the first chart with two runs
# or more.
FIRST_CHART = VERSUS_MARKS


def fill_store(data_dir: Path, runs: int, variants: list[str]) -> list[str]:
    """``runs`` complete runs of len(variants) × 5 sizes × 2 modes cases, with samples and a
    time breakdown per case (no trace files); returns their ids, oldest first."""
    from profiling.spec import RunSpec
    from profiling.storage.store import Store

    ids = []
    with Store(data_dir) as store:
        for number in range(runs):
            spec = RunSpec(variants=variants, shapes=[(n,) for n in SIZES], modes=list(MODES),
                           label=f"bench {number}")
            run_id = store.create_run(spec.to_json(), label=spec.label,
                                      n_cases=len(variants) * len(SIZES) * len(MODES))
            index = 0
            for v_index, variant in enumerate(variants):
                for mode in MODES:
                    for numel in SIZES:
                        median = (1 + 0.3 * v_index) * numel * 2e-10 + 8e-6 * (1 + 0.01 * number)
                        row = dict(
                            run_id=run_id, case_id=f"{run_id}-{index:04d}", idx=index,
                            variant=variant, variant_params="{}", label=variant,
                            shape=str(numel), numel=numel, dtype="float32", device="CPU:0",
                            threads=2, allocator="bfc", mode=mode, status="ok", reason="",
                            median_s=median, min_s=median * 0.97, iqr_s=median * 0.04,
                            ci95_low_s=median * 0.98, ci95_high_s=median * 1.03,
                            ci95_s=median * 0.025, n_samples=7, number=100,
                            elements_per_s=numel / median, bytes_per_call=8 * numel,
                            gbps=8 * numel / median / 1e9, peak_gbps=49.0,
                            utilization=8 * numel / median / 1e9 / 49.0,
                            page_faults_per_call=0.0, peak_rss_mb=300.0, kind="profile",
                            **{"pass": "forward"})
                        store.add_case(row, samples=[median * (1 + 0.01 * k) for k in range(7)],
                                       breakdown=dict(compute_us=median * 8e5, memcpy_us=1.0,
                                                      collective_us=0.0, idle_us=2.0,
                                                      other_us=median * 1e5))
                        index += 1
            store.finish_run(run_id, "complete")
            ids.append(run_id)
    return ids


def timed_run(at, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - start)
        if at.exception:
            raise RuntimeError(at.exception[0].value)
    return times


def clear_data_caches() -> None:
    """Forget what was read and drawn (not TensorFlow, the registry or the semantics table)."""
    from app import figure_cache, resources

    for cached in (resources._runs, resources.cases, resources._run, resources._traced,  # noqa: SLF001
                   figure_cache._figure, figure_cache.versus, figure_cache.versus_chart):  # noqa: SLF001
        cached.clear()


def measure(run_ids: list[str], repeats: int) -> dict[str, tuple[float, float]]:
    """{page: (cold median s, warm median s)}."""
    from streamlit.testing.v1 import AppTest

    from app.run_job import Job
    from profiling.storage.store import Store

    def page(name: str, query: dict | None = None, job_of: str | None = None) -> AppTest:
        at = AppTest.from_file(str(MAIN), default_timeout=300)
        at.run()  # the entry page once: imports, TensorFlow, the registry
        at.switch_page(f"views/{name}.py")
        at.query_params.update(query or {})
        if job_of:  # the Run page as it is when this run has just finished
            spec = json.loads(Store(os.environ["RELU_LAB_DATA"]).run(job_of)["spec_json"])
            at.session_state["job"] = Job(total=110, spec=spec, result=job_of, done=110,
                                          finished=True, shown=True)
        return at

    pages = {
        "Compare (1 run)": page("compare", {"runs": run_ids[-1]}),
        "Compare (2 runs)": page("compare", {"runs": ",".join(run_ids[-2:])}),
        "Compare (all 20 runs)": page("compare", {"runs": ",".join(run_ids)}),
        "Run": page("run", job_of=run_ids[-1]),
    }
    for at in pages.values():  # once each: per-process caches (semantics table, devices)
        timed_run(at, 1)
    # Compare draws only its open tab: every other tab of the 20 runs too, as a link opens it.
    tabs = [tab.label for tab in pages["Compare (all 20 runs)"].get("tab")]
    for tab in tabs[1:]:
        at = page("compare", {"runs": ",".join(run_ids), "view": tab})
        timed_run(at, 1)
        if at.session_state["view"] != tab:
            raise RuntimeError(f"?view={tab} did not open the {tab} tab")
        pages[f"Compare (20 runs: {tab})"] = at
    pages["Run"] = pages.pop("Run")  # last in the table
    results = {}
    for name, at in pages.items():
        cold = []
        for _ in range(repeats):
            clear_data_caches()
            cold.extend(timed_run(at, 1))
        warm = timed_run(at, repeats)
        results[name] = (statistics.median(cold), statistics.median(warm))
    return results


# Marks the page itself takes, in ms since navigation start (performance.now()): the first
# time each element is in the DOM, and "chart drawn" one frame after the chart's first SVG mark
# (a symbol of the B vs A chart, not its empty container) was inserted, i.e. once painted.
MARKS = {"title": "h1", "runs picker": "[data-testid=stMultiSelect]",
         "chart container": VERSUS_FRAME, "chart marks": FIRST_CHART}
OBSERVER = """
window.__marks = {};
const selectors = %s;
function find(selector) {  // in the page or in one of its (same-origin) iframes
  if (document.querySelector(selector)) return true;
  for (const frame of document.querySelectorAll('iframe')) {
    const doc = frame.contentDocument;
    if (doc && doc.querySelector(selector)) return true;
  }
  return false;
}
function mark() {
  const marks = window.__marks;
  for (const [name, selector] of Object.entries(selectors)) {
    if (!(name in marks) && find(selector)) marks[name] = performance.now();
  }
  if ('chart marks' in marks && !('chart drawn' in marks) && !window.__painting) {
    window.__painting = true;
    requestAnimationFrame(() => setTimeout(() => { marks['chart drawn'] = performance.now(); }));
  }
  if (!('page done' in marks) && document.body && document.body.innerText.includes('%s')) {
    marks['page done'] = performance.now();
  }
}
new MutationObserver(mark).observe(document, {subtree: true, childList: true});
setInterval(mark, 10);  // an iframe's own document is not observed from here
"""
# The page's last element: once it shows, the page script has finished and all was sent.
LAST_ELEMENT = "Delete runs"
BREAKDOWN = ("title", "runs picker", "page done", "chart container", "chart drawn")


def visit(context, url: str) -> dict[str, float]:
    """Open ``url`` in a new tab of ``context``: seconds from navigation to each mark, and
    "seen" (when Playwright saw the chart: later, when the page is busy after drawing)."""
    page = context.new_page()
    try:
        start = time.perf_counter()
        page.goto(url)
        versus_chart(page).locator(VERSUS_MARK).first.wait_for(timeout=120_000)
        seen = time.perf_counter() - start
        page.wait_for_function(f"() => {json.dumps(BREAKDOWN)}.every(m => m in window.__marks)",
                               timeout=120_000)
        marks = page.evaluate("() => window.__marks")
    finally:
        page.close()
    return {**{name: ms / 1000 for name, ms in marks.items()}, "seen": seen}


def in_chromium(data_dir: Path, run_ids: list[str], repeats: int) -> dict[str, dict[str, float]]:
    """Compare with ``run_ids`` in headless Chromium on a server started on ``data_dir``
    (app.headless), after one visit to the Run page: the first Compare page after the server
    started (its data read cold), the median of ``repeats`` fresh pages (a new browser context
    each: no cache) and of ``repeats`` new tabs in one warm context (a returning user's browser,
    its HTTP and code caches full); then fresh pages of the last two runs.
    {figure: {mark: seconds from navigation}}."""
    from app.headless import chromium, serve

    observer = OBSERVER % (json.dumps(MARKS), LAST_ELEMENT)

    def new_context(browser):
        context = browser.new_context(viewport={"width": 1440, "height": 1100})
        context.add_init_script(observer)
        return context

    def fresh(browser, url: str) -> dict[str, float]:
        context = new_context(browser)
        try:
            return visit(context, url)
        finally:
            context.close()

    def median(visits: list[dict[str, float]]) -> dict[str, float]:
        names = set.intersection(*(set(v) for v in visits))  # a mark one visit missed: left out
        return {name: statistics.median(v[name] for v in visits) for name in visits[0]
                if name in names}

    with serve(data_dir) as url, chromium() as browser:
        context = browser.new_context()
        page = context.new_page()
        page.goto(url)  # the Run page: the server imports TensorFlow and the registry
        # Its Start button needs both; then the page shows the last stored run's results. The
        # first Compare page must not share the CPUs with that page's script (it did: +1-2 s).
        page.get_by_role("button", name="Start").wait_for(timeout=120_000)
        page.wait_for_timeout(3000)
        context.close()
        compare = f"{url}/compare?runs={','.join(run_ids)}"
        first = fresh(browser, compare)
        fresh_pages = median([fresh(browser, compare) for _ in range(repeats)])
        two = f"{url}/compare?runs={','.join(run_ids[-2:])}"
        two_pages = median([fresh(browser, two) for _ in range(repeats)])
        warm = new_context(browser)
        try:
            visit(warm, compare)  # fills its caches
            warm_tabs = median([visit(warm, compare) for _ in range(repeats)])
        finally:
            warm.close()
    runs = f"Compare ({len(run_ids)} runs)"
    return {f"{runs}, first page": first, f"{runs}, fresh page": fresh_pages,
            f"{runs}, new tab, warm browser": warm_tabs, "Compare (2 runs), fresh page": two_pages}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--browser-only", action="store_true",
                        help="only the Chromium measurement (skip the page scripts' timings)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory(prefix="relu_lab_bench_") as tmp:
        os.environ["RELU_LAB_DATA"] = tmp
        from profiling.spec import variant_registry

        variants = list(variant_registry())[:11]
        start = time.perf_counter()
        run_ids = fill_store(Path(tmp), args.runs, variants)
        print(f"stored {args.runs} runs × {len(variants) * len(SIZES) * len(MODES)} cases "
              f"in {time.perf_counter() - start:.1f} s")
        results = {} if args.browser_only else measure(run_ids, args.repeats)
        browser = in_chromium(Path(tmp), run_ids, args.repeats)
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"{os.cpu_count()} CPUs, load average {load}; medians of {args.repeats}")
    print(f"{'page':<34}{'cold (s)':>10}{'warm (s)':>10}{'target':>9}")
    missed = False
    for name, (cold, warm) in results.items():
        target = TARGETS_S[name.split()[0]]
        missed |= cold >= target
        print(f"{name:<34}{cold:>10.3f}{warm:>10.3f}{f'< {target:g} s':>9}")
    print("In Chromium, seconds from navigation (the page's own clock) to: "
          + ", ".join(BREAKDOWN) + "; then when Playwright saw the chart")
    target = TARGETS_S["Chromium"]
    print(f"{'':<44}" + "".join(f"{name:>16}" for name in (*BREAKDOWN, "seen")))
    for name, marks in browser.items():
        # the goal's figures: a fresh page (a new user) on a running server; the first page
        # after the start (the server's caches cold, one visit) and a warm browser are shown
        gated = "fresh page" in name
        missed |= gated and marks["chart drawn"] >= target
        print(f"{name:<44}" + "".join(f"{marks.get(m, math.nan):>16.2f}"
                                      for m in (*BREAKDOWN, "seen"))
              + (f"  target: chart drawn < {target:g} s" if gated else ""))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
