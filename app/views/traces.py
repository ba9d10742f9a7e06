"""Traces page: upload a trace (or open one a run stored) and explore it without sending the
whole file to the browser: a time window, the top-N ops and an event cap bound what is drawn."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import resources, run_again, share
from app.guard import one_line, page_guard
from profiling import charts, units
from profiling.bundle import load_any_trace
from profiling.traces import TraceError, summarize

UPLOAD, STORED = "Upload a file", "A trace stored by a run"
TOP_OPS_LISTED = 50


# cache_resource, not cache_data: a large trace's events must not be copied on every rerun;
# nothing below mutates them.
@st.cache_resource(max_entries=4, show_spinner="Reading the trace…")
def read_trace(_data: bytes | str, filename: str, cache_key: str) -> tuple[pd.DataFrame, dict]:
    """(events, summary) of a trace; ``cache_key`` identifies ``_data`` (hashing 200 MB is slow)."""
    trace = load_any_trace(_data, filename)
    return trace.events, summarize(trace, top=TOP_OPS_LISTED)


def uploaded_trace():
    upload = st.file_uploader(
        "Trace file: TensorFlow .xplane.pb, Chrome trace .json / .json.gz (TensorBoard, PyTorch, "
        "…) or a ReLU Lab bundle", type=["pb", "json", "gz"], key="trace_upload",
    )
    if upload is None:
        return None
    return upload.getvalue(), upload.name, f"upload:{upload.file_id}:{upload.size}"


def stored_trace():
    runs = resources.list_runs()
    if runs.empty:
        st.info("No runs yet: runs with “Capture a trace per case” store one trace per case.")
        return None
    run_ids = list(runs["run_id"])
    wanted = share.keep_known([share.read("run")], run_ids)
    run_id = st.selectbox("Run", run_ids, index=run_ids.index(wanted[0]) if wanted else 0,
                          key="trace_run")
    cases = resources.run_cases([run_id])
    store = resources.store()
    traced = [(row.case_id, store.trace_path(row.case_id)) for row in cases.itertuples()]
    traced = [(case_id, path) for case_id, path in traced if path is not None]
    if not traced:
        st.info("This run stored no traces.")
        share.write(run=run_id, case=None)
        return None
    names = cases.set_index("case_id")
    options = [case_id for case_id, _ in traced]
    wanted_case = share.keep_known([share.read("case")], options)
    case_id = st.selectbox(
        "Case", options, index=options.index(wanted_case[0]) if wanted_case else 0,
        format_func=lambda cid: " · ".join(str(names.loc[cid, c]) for c in
                                           ("label", "shape", "dtype", "mode", "pass")),
        key="trace_case",
    )
    share.write(run=run_id, case=case_id)
    st.caption(f"Trace of run `{run_id}`, case " + " · ".join(
        str(names.loc[case_id, c]) for c in ("label", "shape", "dtype", "mode", "pass")))
    run_again.button(run_id, key="trace_run_again")
    path = dict(traced)[case_id]
    return str(path), path.name, f"stored:{path}:{path.stat().st_mtime_ns}"


def explore(events: pd.DataFrame, summary: dict) -> None:
    duration_ms = max(summary["duration_us"] / 1e3, 1e-3)
    ratio = summary.get("compute_comm_ratio")
    cols = st.columns(4)
    cols[0].metric("Events", f"{summary['event_count']:,}")
    cols[1].metric("Duration", f"{duration_ms:.3g} ms")
    cols[2].metric("Compute / communication", "–" if ratio is None else f"{ratio:.3g}")
    cols[3].metric("Source", summary.get("source", "?"))
    if events.empty:
        st.warning("This trace has no duration events to draw.")
        return
    origin = float(events["ts_us"].min())
    window_col, top_col, cap_col = st.columns([3, 1, 1])
    window = window_col.slider("Time window (ms from trace start)", 0.0, duration_ms,
                               (0.0, duration_ms), key="trace_window")
    n_ops = int(events["name"].nunique())
    top_n = top_col.number_input("Top ops", 1, max(n_ops, 1), min(15, n_ops), key="trace_top")
    cap = cap_col.number_input("Max events drawn", 100, 20_000, 3000, step=500, key="trace_cap")
    shown = charts.select_events(events, (origin + window[0] * 1e3, origin + window[1] * 1e3),
                                 top_ops=int(top_n), max_events=int(cap))
    st.caption(f"Drawing {len(shown):,} of {len(events):,} events (zoom with the window and "
               "the top-ops count; the longest events are kept when capped).")
    st.plotly_chart(charts.trace_timeline(shown, max_events=int(cap), origin_us=origin),
                    key="chart_timeline")
    top_ops = summary["top_ops"]
    left, right = st.columns(2)
    with left:
        st.plotly_chart(charts.op_breakdown(top_ops.head(int(top_n))), key="chart_ops")
    with right:
        breakdown = pd.DataFrame([summary["breakdown"]])
        st.dataframe(units.readable(breakdown.T.rename(columns={0: "µs"})), key="trace_breakdown")
    st.subheader("Per-op table")
    st.dataframe(units.readable(top_ops, unit="µs"), hide_index=True, key="trace_ops_table")


def render() -> None:
    st.title("Traces")
    sources = [UPLOAD, STORED]
    source = st.radio("Source", sources, horizontal=True, key="trace_source",
                      index=1 if share.read("run") else 0)
    picked = uploaded_trace() if source == UPLOAD else stored_trace()
    if source == UPLOAD:
        share.write(run=None, case=None)
    if picked is None:
        return
    data, filename, cache_key = picked
    try:
        events, summary = read_trace(data, filename, cache_key)
    except TraceError as error:
        st.error(f"Could not read {filename}: {one_line(error)}")
        return
    explore(events, summary)


with page_guard("The Traces page"):
    render()
