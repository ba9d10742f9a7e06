"""Compare page: runs side by side against a baseline, exportable and shareable by URL."""

from __future__ import annotations

import json
from collections.abc import Iterator

import streamlit as st

from app import (
    case_links,
    figure_cache,
    machine_filter,
    noise_panel,
    resources,
    run_again,
    share,
    tables,
)
from app.figure_cache import charts
from app.guard import one_line, page_guard
from profiling.presentation import noise_text, report, units, versus
from profiling.presentation.versus_svg import MAX_RUNS, b_runs, drawn_runs, svg_height
from profiling.storage.bundle import MAX_BUNDLE_BYTES, BundleError, export_bundle, import_bundle
from profiling.traces import TraceError
from profiling.traces.chrome import decode_json

FILTER_COLUMNS = ("dtype", "device", "threads", "mode", "pass")
TABS = ["Latency", "Bandwidth", "Speedup", "Roofline", "Utilization", "Page faults", "Breakdown",
        "Fusion", "Semantics", "Table"]
VERSUS_TAB = "B vs A"  # first, so the default, when two or more runs are selected


def drawn(container) -> Iterator[None]:
    """Enter a tab or an expander once if it is open, else not at all: ``for _ in
    drawn(tab):`` is a ``with tab:`` whose body runs only for the tab on screen. A closed
    expander's content is not sent either: the browser would fetch and run the scripts of
    its widgets (file uploader, JSON viewer, checkbox) before it draws the page's chart."""
    if container.open is not False:  # None: containers that track no state (all drawn)
        with container:
            yield


def run_titles(runs) -> dict[str, str]:
    """run id -> its title in a run picker (one pass: a lookup per option cost 0.2 s at 20 runs)."""
    titles = {}
    for row in runs.to_dict("records"):
        label = f" · {row['label']}" if row.get("label") else ""
        label += f" · {row['machine']}" if row.get("machine") else ""
        titles[row["run_id"]] = (f"{row['run_id']}{label} · {row['created_at']} · "
                                 f"{row['n_cases']} cases · {row['status']}")
    return titles


def pick_runs(runs) -> list[str]:
    known = list(runs["run_id"])
    wanted = share.keep_known(share.read_list("runs"), known)
    if not wanted:
        complete = runs[runs["status"] == "complete"]["run_id"]
        wanted = list(complete[:1]) or known[:1]
    share.seed_widget("compare_runs", known, wanted)
    return st.multiselect("Runs", known, key="compare_runs",
                          format_func=run_titles(runs).get)


def pick_baseline(variants: list[str]) -> str:
    wanted = share.read("baseline", "nn_relu")
    if wanted not in variants:
        wanted = "nn_relu" if "nn_relu" in variants else variants[0]
    share.seed_widget("compare_baseline", variants, wanted)
    return st.selectbox("Baseline variant", variants, key="compare_baseline")


def pick_base_run(run_ids: list[str], titles: dict[str, str]) -> str:
    """Run A, the one every other selected run (B) is set against: the first selected unless
    the link or the user chose another."""
    wanted = share.read("base", run_ids[0])
    share.seed_widget("compare_base_run", run_ids, wanted if wanted in run_ids else run_ids[0])
    return st.selectbox("Baseline run (A)", run_ids, key="compare_base_run",
                        format_func=lambda run_id: titles.get(run_id, run_id))


def pick_threshold() -> float:
    """The smallest change (a fraction) a verdict or a colour calls one; 5% unless the link
    says otherwise (a bad value in a link falls back to 5%)."""
    try:
        wanted = float(share.read("threshold", "5"))
    except ValueError:
        wanted = 5.0
    if not 0 <= wanted < 100:
        wanted = 5.0
    if not isinstance(st.session_state.get("compare_threshold"), float):
        st.session_state["compare_threshold"] = wanted
    percent = st.number_input("Threshold (%)", min_value=0.0, max_value=99.0, step=1.0,
                              format="%g", key="compare_threshold",
                              help="A change is called only when the speedup's 95% CI lies "
                                   "wholly beyond 1 ± this")
    return percent / 100


def pick_chart_runs(table, names: dict[str, str]) -> tuple[str, ...] | None:
    """The B runs the chart draws when there are more than it can (versus_svg.MAX_RUNS): the
    first ones unless the link or the user chose others; None when it draws them all."""
    every = b_runs(table)
    if len(every) <= MAX_RUNS:
        share.write(chart=None)
        return None
    default = drawn_runs(table)
    share.seed_widget("compare_chart_runs", every,
                      drawn_runs(table, share.keep_known(share.read_list("chart"), every)))
    chosen = st.multiselect(f"B runs in the chart (at most {MAX_RUNS}: one marker shape each)",
                            every, key="compare_chart_runs", max_selections=MAX_RUNS,
                            format_func=lambda run: names.get(run, run))
    share.write(chart=None if list(chosen) == default else chosen)
    return tuple(chosen)


def versus_view(cases, base_run: str, threshold: float, names: dict[str, str]) -> None:
    """Each run B against A: the chart, the table (largest change first) and its CSV."""
    table, shown = figure_cache.versus(cases, base_run, threshold, tuple(names.items()))
    svg = figure_cache.versus_chart(cases, base_run, threshold, tuple(names.items()),
                                    pick_chart_runs(table, names))
    # In its own document: the browser parses the SVG natively (0.3 s less than Markdown's
    # parser took for 2,090 markers; st.html's sanitiser drops SVG). Every label is escaped.
    st.iframe(svg, height=svg_height(svg) + 16)
    tables.show(shown, key="versus_table")
    counts = table["verdict"].value_counts()
    st.caption(f"Speedup = time A / time B (above 1: B is faster), its 95% CI from the two "
               f"medians' CIs (separate runs never share a worker); a verdict only where that "
               f"CI lies wholly beyond ±{threshold:.0%}. {len(table)} matched cases: "
               + ", ".join(f"{counts.get(v, 0)} {v}" for v in ("faster", "slower",
                                                                 "not resolved")) + ".")
    st.download_button("Download B vs A (CSV)", data=lambda: versus.versus_csv(table, base_run),
                       file_name="relu_lab_b_vs_a.csv", mime="text/csv", key="download_versus",
                       on_click="ignore", icon=":material/table:")


def pick_filters(cases) -> dict[str, list[str]]:
    """A multiselect per setting that varies; the choice is kept in the URL."""
    filters: dict[str, list[str]] = {}
    varying = [c for c in FILTER_COLUMNS if cases[c].astype(str).nunique() > 1]
    if not varying:
        return filters
    columns = st.columns(len(varying))
    for column, name in zip(columns, varying, strict=True):
        options = sorted(cases[name].astype(str).unique())
        wanted = share.keep_known(share.read_list(name), options) or options
        share.seed_widget(f"filter_{name}", options, wanted)
        filters[name] = column.multiselect(name, options, key=f"filter_{name}")
    return filters


def exports(run_ids: list[str], baseline: str, filters: dict, cases, base_run: str,
            threshold: float) -> None:
    store = resources.store()
    chart_runs = st.session_state.get("compare_chart_runs")  # the page's B vs A chart's runs
    html_col, json_col, csv_col = st.columns(3)
    html_col.download_button(
        "Download HTML report", data=lambda: report.render_html(
            store, run_ids, baseline, filters, resources.semantics_table(), base_run=base_run,
            threshold=threshold, chart_runs=chart_runs),
        file_name="relu_lab_report.html", mime="text/html", key="download_html",
        on_click="ignore", icon=":material/description:",
    )
    json_col.download_button(
        "Download JSON bundle", data=lambda: _bundle_bytes(store, run_ids),
        file_name="relu_lab_bundle.json", mime="application/json", key="download_json",
        on_click="ignore", icon=":material/data_object:",
    )
    csv_col.download_button(
        "Download CSV", data=lambda: charts.compare_categories(cases, baseline, threshold)
        .to_csv(index=False),
        file_name="relu_lab_results.csv", mime="text/csv", key="download_csv",
        on_click="ignore", icon=":material/table:",
    )


def _bundle_bytes(store, run_ids: list[str]) -> bytes:
    """profiling.storage.bundle's export (runs, cases, samples, traces) as JSON bytes."""
    return json.dumps(export_bundle(store, run_ids), default=str).encode()


def import_runs() -> None:
    """Add the runs of an uploaded JSON bundle to the store (all or nothing)."""
    for _ in drawn(st.expander("Import runs from a JSON bundle", key="import_open",
                               on_change="rerun")):
        upload = st.file_uploader("ReLU Lab bundle (.json / .json.gz)", type=["json", "gz"],
                                  key="bundle_upload")
        if upload is None:
            return
        done = st.session_state.setdefault("imported_bundles", {})
        if upload.file_id in done:
            st.success(f"Imported {', '.join(done[upload.file_id])}")
            return
        try:
            if upload.size > MAX_BUNDLE_BYTES:  # before reading it
                raise BundleError(f"{upload.size / 2**20:.0f} MiB, over the bundle size limit "
                                  f"of {MAX_BUNDLE_BYTES / 2**20:.0f} MiB")
            decoded = decode_json(upload.getvalue())
            # import_bundle reads a str as a path on this machine: only an object is a bundle.
            if not isinstance(decoded, dict):
                raise BundleError("not a ReLU Lab bundle (the top level is not a JSON object)")
            run_ids = import_bundle(resources.store(), decoded)
        except (BundleError, TraceError) as error:
            st.error(f"Could not import {upload.name}: {one_line(error)}")
            return
        done[upload.file_id] = run_ids
        resources.cases.clear()
        st.session_state["compare_runs"] = run_ids
        st.rerun()


def render() -> None:
    st.title("Compare runs")
    import_runs()
    runs = resources.list_runs()
    if runs.empty:
        st.info("No runs yet: start one on the Run page.")
        st.page_link("views/run.py", label="Go to Run", icon=":material/play_arrow:")
        return
    run_ids = pick_runs(machine_filter.pick_machines(runs))
    if not run_ids:
        st.info("Pick at least one run.")
        share.write(runs=None)
        return
    run_again.buttons(run_ids)
    all_cases = resources.run_cases(run_ids)
    if all_cases.empty:
        st.warning("These runs have no cases yet.")
        return
    several = len(run_ids) > 1
    columns = st.columns(3 if several else 2)
    with columns[0]:
        baseline = pick_baseline(list(dict.fromkeys(all_cases["variant"])))
    with columns[1]:
        threshold = pick_threshold()
    base_run = run_ids[0]
    if several:
        with columns[2]:
            base_run = pick_base_run(run_ids, run_titles(runs))
    filters = pick_filters(all_cases)
    share.write(runs=run_ids, baseline=baseline,
                base=base_run if several and base_run != run_ids[0] else None,
                threshold=None if threshold == charts.DEFAULT_THRESHOLD else f"{threshold * 100:g}",
                **{name: (None if len(chosen) == all_cases[name].astype(str).nunique() else chosen)
                   for name, chosen in filters.items()})
    cases = report.filter_cases(all_cases, filters)
    # Size axes show only micro-benchmark cases (a scenario's step time is no "elements" point).
    sized = report.profile_cases(cases)
    st.caption("The address bar now reproduces this view: copy it to share.")
    chosen = runs[runs["run_id"].isin(run_ids)]
    noise_panel.show(noise_text.notes(chosen, charts.run_names(
        chosen.rename(columns={"label": "run_label"}))))

    # Only the open tab is drawn (switching reruns the page; ?view=Table in the URL opens one):
    # building every figure and table first took seconds with 20 runs.
    names = charts.run_names(chosen.rename(columns={"label": "run_label"}))
    tabs = st.tabs(([VERSUS_TAB] if several else []) + TABS, key="view", bind="query-params")
    if several:
        for _ in drawn(tabs[0]):
            versus_view(cases, base_run, threshold, names)
        tabs = tabs[1:]
    for _ in drawn(tabs[0]):
        st.plotly_chart(charts.latency_vs_size(sized), key="chart_latency")
    for _ in drawn(tabs[1]):
        st.plotly_chart(charts.effective_bandwidth(sized), key="chart_bandwidth")
    for _ in drawn(tabs[2]):
        st.plotly_chart(charts.speedup_vs_baseline(sized, baseline), key="chart_speedup")
        st.caption("Whiskers: 95% CI of the speedup, from the paired samples where the case ran "
                   "interleaved with the baseline in one run, else from the two medians' CIs. "
                   "Open markers: the CI includes 1, so the difference is not significant.")
    for _ in drawn(tabs[3]):
        st.plotly_chart(charts.roofline(sized, resources.store().roof(run_ids)),
                        key="chart_roofline")
        st.caption("The roof is the best copy bandwidth measured at each working set (bytes "
                   "read + written), from L1 to beyond the last-level cache; utilization is a "
                   "case's GB/s over the roof at its own working set.")
    for _ in drawn(tabs[4]):
        st.plotly_chart(charts.utilization(sized), key="chart_utilization")
    for _ in drawn(tabs[5]):
        st.plotly_chart(charts.page_faults(sized), key="chart_faults")
    for _ in drawn(tabs[6]):
        breakdown = resources.store().breakdown(run_ids)
        breakdown = breakdown[breakdown["case_id"].isin(set(cases["case_id"]))]
        st.plotly_chart(charts.breakdown_bars(breakdown, cases), key="chart_breakdown")
    for _ in drawn(tabs[7]):
        fusion = charts.fusion_table(resources.store().fusion(run_ids))
        if fusion.empty:
            st.info("No fusion checks in these runs (tick “Check conv/dense fusion” on Run).")
        else:
            tables.show(fusion, key="fusion_table", style=units.readable)
    for _ in drawn(tabs[8]):
        with page_guard("The semantics matrix"):
            st.plotly_chart(charts.semantics_matrix(resources.semantics_table()),
                            key="chart_semantics")
    for _ in drawn(tabs[9]):
        tables.show(charts.compare_styler(cases, baseline, threshold), key="results_table",
                    hide_index=False)
        st.caption(charts.compare_legend_markdown(baseline, threshold))
        floor = charts.harness_floor_text(cases)
        if floor:
            st.caption(floor)
        case_links.show(cases, key="compare_cases", xprof=True)
        failed = charts.failed_cases(cases)
        if not failed.empty:
            with st.expander(f"{len(failed)} cases skipped or failed"):
                tables.show(failed, key="failed_table")
    for _ in drawn(st.expander("Environment of each run", key="environment_open",
                               on_change="rerun")):
        for run_id in run_ids:
            st.caption(run_id)
            st.json(resources.store().environment(run_id), expanded=False)
    st.subheader("Export")
    exports(run_ids, baseline, filters, cases, base_run, threshold)


# ---- deleting runs: a self-contained block at the bottom of the page ----------------------
def _delete_chosen_runs() -> None:
    """Button callback (runs before the page is drawn again, so nothing shows a deleted run)."""
    from profiling.storage.store import RunInUseError, UnknownRunError

    doomed = list(st.session_state.get("delete_runs") or [])
    if not doomed or not st.session_state.get("delete_confirm"):
        return
    try:
        removed = resources.store().delete_runs(doomed)
    except (RunInUseError, UnknownRunError) as error:
        st.session_state["delete_outcome"] = ("error", f"Nothing deleted: {one_line(error)}")
        return
    resources.cases.clear()
    st.session_state["delete_runs"] = []
    st.session_state["delete_confirm"] = False
    st.session_state["delete_outcome"] = (
        "success", f"Deleted {', '.join(doomed)} ({len(removed)} trace files removed)")


def delete_runs_section() -> None:
    """Delete runs with their trace files (those no other run uses), after a confirmation."""
    runs = resources.list_runs()
    if runs.empty:
        return
    for _ in drawn(st.expander("Delete runs", key="delete_open", on_change="rerun")):
        kind, text = st.session_state.pop("delete_outcome", (None, ""))
        if kind:
            (st.success if kind == "success" else st.error)(text)
        st.multiselect("Runs to delete", list(runs["run_id"]), key="delete_runs",
                       format_func=run_titles(runs).get)
        chosen = st.session_state.get("delete_runs") or []
        sure = st.checkbox(f"Yes, delete {len(chosen)} run(s) for good: their rows and the trace "
                           "files no other run uses", key="delete_confirm", disabled=not chosen)
        st.button("Delete", key="delete_button", type="primary", disabled=not (chosen and sure),
                  on_click=_delete_chosen_runs, icon=":material/delete:")


with page_guard("The Compare page"):
    render()
    delete_runs_section()
