"""Traces page: upload a trace (or open one a run stored) and explore it: timeline viewer,
breakdown, ops, the activation audit, XProf's own UI and Perfetto's; and a diff of two traces.

Nothing sends the whole trace to the browser: a time window, a search, the top-N ops and a
per-pixel downsample bound what is drawn."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import streamlit as st

from app import resources, run_again, share, tables, viewer_links
from app.guard import one_line, page_guard
from profiling import settings
from profiling.analysis.diff import trace_diff
from profiling.presentation import trace_charts, units
from profiling.presentation.explore import explore_trace
from profiling.traces import TraceError
from profiling.traces.attribution import CPU_TIME_LABEL, UNATTRIBUTED

UPLOAD, STORED = "Upload a file", "A trace stored by a run"
TOP_OPS_LISTED = 50
NO_COMM = "n/a: no communication in this trace"
BREAKDOWN_HELP = (
    "**wall**: the trace's span split by what ran on any thread at each instant (the innermost "
    "event per thread; compute first, then communication, memcpy, other); idle = no event at "
    "all; the five add up to the span, and busy = span - idle (the union over threads). "
    "**thread**: self time per kind summed over threads, so parallel threads add up; idle "
    f"is {trace_charts.NO_THREAD_IDLE} there, as idle exists only against the wall span "
    "(no thread runs then). "
    "Communication = collectives and transfers between devices or hosts; memcpy = copies "
    "within one device.")


# cache_resource, not cache_data: a large trace's events must not be copied on every rerun;
# nothing below mutates them.
@st.cache_resource(max_entries=4, show_spinner="Reading the trace…")
def read_trace(_data: bytes | str, filename: str, cache_key: str
               ) -> tuple[pd.DataFrame, dict, dict]:
    """(events, summary, activation audit) of a trace (profiling.presentation.explore);
    ``cache_key`` identifies ``_data`` (hashing 200 MB is slow)."""
    return explore_trace(_data, filename, top=TOP_OPS_LISTED)


@st.cache_resource(show_spinner=False)
def xprof_server(data_dir: str):
    """One XProf server per dashboard and data dir, started on the first link asked for."""
    from profiling.presentation.xprof_server import XprofServer

    return XprofServer(Path(data_dir) / "xprof")


@st.cache_resource(show_spinner=False)
def perfetto_server(data_dir: str):
    """One Perfetto server per dashboard and data dir, started on the first link asked for."""
    from profiling.presentation.perfetto_server import PerfettoServer

    return PerfettoServer(Path(data_dir) / "perfetto")


def uploaded_trace(key: str, label: str):
    upload = st.file_uploader(label, type=["pb", "json", "gz"], key=key)
    if upload is None:
        return None
    return upload.getvalue(), upload.name, f"upload:{upload.file_id}:{upload.size}"


def stored_trace(prefix: str, shared: bool):
    runs = resources.list_runs()
    if runs.empty:
        st.info("No runs yet: runs with “Capture a trace per case” store one trace per case.")
        return None
    run_ids = list(runs["run_id"])
    wanted = share.keep_known([share.read("run")], run_ids) if shared else []
    run_id = st.selectbox("Run", run_ids, index=run_ids.index(wanted[0]) if wanted else 0,
                          key=f"{prefix}_run")
    cases = resources.run_cases([run_id])
    store = resources.store()
    traced = [(row.case_id, store.trace_path(row.case_id)) for row in cases.itertuples()]
    traced = [(case_id, path) for case_id, path in traced if path is not None]
    if not traced:
        st.info("This run stored no traces.")
        if shared:
            share.write(run=run_id, case=None)
        return None
    names = cases.set_index("case_id")
    options = [case_id for case_id, _ in traced]
    wanted_case = share.keep_known([share.read("case")], options) if shared else []
    case_id = st.selectbox(
        "Case", options, index=options.index(wanted_case[0]) if wanted_case else 0,
        format_func=lambda cid: " · ".join(str(names.loc[cid, c]) for c in
                                           ("label", "shape", "dtype", "mode", "pass")),
        key=f"{prefix}_case",
    )
    if shared:
        share.write(run=run_id, case=case_id)
        st.caption(f"Trace of run `{run_id}`, case " + " · ".join(
            str(names.loc[case_id, c]) for c in ("label", "shape", "dtype", "mode", "pass")))
        run_again.button(run_id, key="trace_run_again")
    path = dict(traced)[case_id]
    return str(path), path.name, f"stored:{path}:{path.stat().st_mtime_ns}"


def pick_trace(prefix: str, shared: bool):
    """(data or path, file name, cache key) of the trace the user picked, or None."""
    source = st.radio("Source", [UPLOAD, STORED], horizontal=True, key=f"{prefix}_source",
                      index=1 if shared and share.read("run") else 0)
    if source == UPLOAD:
        if shared:
            share.write(run=None, case=None)
        return uploaded_trace(f"{prefix}_upload",
                              "Trace file: TensorFlow .xplane.pb, Chrome trace .json / .json.gz "
                              "(TensorBoard, PyTorch, …) or a ReLU Lab bundle")
    return stored_trace(prefix, shared)


def read_or_explain(picked) -> tuple[pd.DataFrame, dict, dict] | None:
    data, filename, cache_key = picked
    try:
        return read_trace(data, filename, cache_key)
    except TraceError as error:  # the reader's own one-line message
        st.error(f"Could not read {filename}: {one_line(error)}")
        return None


def viewer_name(cache_key: str, filename: str) -> str:
    """A short name for the trace in a viewer: the stored file's stem, or the upload's name."""
    name = cache_key.split(":")[1] if cache_key.startswith("stored:") else filename
    return name.rsplit("/", 1)[-1].removesuffix(".xplane.pb").removesuffix(".pb")[:40]


def asked_once(parameter: str, cache_key: str) -> bool:
    """True once when the URL carries ``parameter=1`` (a case table's "open in …" link) for a
    stored trace; the parameter is then removed, so a later visit does not press it again."""
    asked = share.read(parameter) == "1" and cache_key.startswith("stored:")
    if asked:
        share.write(**{parameter: None})
    return asked


def host_header() -> str | None:
    """The Host header of the browser's request for this page (None outside a browser)."""
    try:
        return st.context.headers.get("Host")
    except (AttributeError, RuntimeError):
        return None


def for_browser(link: str) -> str:
    """A viewer link as this browser reaches it (see app.viewer_links)."""
    return viewer_links.browser_link(link, host_header(), settings.serve_host())


def viewer_button(viewer: str, cache_key: str, help_text: str, unavailable: tuple,
                  make_link) -> None:
    """The "Open in <viewer>" button of a trace: `make_link()` starts the viewer (once per
    dashboard) and places the trace there; a viewer that cannot start is one warning line."""
    key = viewer.lower()
    urls = st.session_state.setdefault(f"{key}_urls", {})
    asked = asked_once(key, cache_key)
    if cache_key not in urls and (asked or st.button(f"Open in {viewer}", key=f"{key}_open",
                                                     help=help_text)):
        try:
            with st.spinner(f"Starting {viewer}…"):
                urls[cache_key] = make_link()
        except (*unavailable, OSError) as error:
            urls[cache_key] = None
            st.warning(f"{viewer} is not available: {one_line(error)}")
    if urls.get(cache_key):
        st.link_button(f"Open {viewer} ↗", for_browser(urls[cache_key]))


def xprof_section(picked) -> None:
    """A button that opens the trace in XProf's own UI (xplane traces only)."""
    from profiling.presentation.xprof_server import XprofUnavailable

    data, filename, cache_key = picked
    if not filename.lower().endswith(".pb"):
        return
    viewer_button("XProf", cache_key, "XProf's trace viewer, op profile and memory tools, "
                  "served locally and offline", (XprofUnavailable,),
                  lambda: xprof_server(resources.data_dir()).link(
                      viewer_name(cache_key, filename), data))


def perfetto_section(picked, source: str | None) -> None:
    """A button that opens the trace in Perfetto's UI (served offline by this dashboard):
    Chrome/Kineto JSON as it is, an .xplane.pb converted first; not a ReLU Lab bundle."""
    from profiling.presentation.perfetto_server import PerfettoUnavailable, trace_kind

    data, filename, cache_key = picked
    if source == "bundle" or trace_kind(filename) is None:
        return
    # the cache key (path and mtime, or upload id) keeps two files of one name apart
    tag = hashlib.sha1(cache_key.encode()).hexdigest()[:8]
    viewer_button("Perfetto", cache_key, "Perfetto's trace viewer (timeline, flows, SQL over the "
                  "trace), served locally and offline", (PerfettoUnavailable,),
                  lambda: perfetto_server(resources.data_dir()).link(
                      f"{viewer_name(cache_key, filename)}-{tag}", data, filename))


def clicked_row(events: pd.DataFrame, label: object) -> int | None:
    """The events row a clicked bar names (its customdata label), or None."""
    try:
        row = int(str(label))
    except ValueError:
        return None
    return row if row in events.index else None


def timeline(events: pd.DataFrame, summary: dict) -> None:
    duration_ms = max(summary["duration_us"] / 1e3, 1e-3)
    origin = float(events["ts_us"].min())
    window_col, search_col, top_col, cap_col = st.columns([3, 2, 1, 1])
    window = window_col.slider("Time window (ms from trace start)", 0.0, duration_ms,
                               (0.0, duration_ms), key="trace_window")
    query = search_col.text_input("Search ops by name", key="trace_search",
                                  placeholder="e.g. relu")
    n_ops = int(events["name"].nunique())
    top_n = top_col.number_input("Top ops", 1, max(n_ops, 1), min(15, n_ops), key="trace_top")
    cap = cap_col.number_input("Max events drawn", 100, 20_000, 3000, step=500, key="trace_cap")
    window_us = (origin + window[0] * 1e3, origin + window[1] * 1e3)
    shown = trace_charts.select_events(events, window_us, top_ops=int(top_n),
                                       max_events=int(cap), query=query.strip())
    st.caption(f"Drawing {len(shown):,} of {len(events):,} events: one row per thread and "
               "nesting depth, coloured by the ops with the most self time. Drag to zoom, "
               "double-click to reset; click a bar for its details. Past the cap, the longest "
               "event per pixel of each row is kept.")
    chosen = st.plotly_chart(
        trace_charts.trace_timeline(shown, max_events=int(cap), origin_us=origin,
                                    colours=trace_charts.colour_map(events)),
        key="chart_timeline", on_select="rerun", selection_mode="points")
    points = (chosen or {}).get("selection", {}).get("points", []) if chosen else []
    labels = [p.get("customdata", [None, None, None])[2] for p in points
              if isinstance(p, dict) and p.get("customdata")]
    for label in labels[:1]:
        row = clicked_row(events, label)
        if row is not None:
            st.json(trace_charts.event_details(events, row), expanded=True)


def activation_audit(result: dict) -> None:
    st.subheader("Activation audit")
    acts = pd.DataFrame(result["activations"])
    if acts.empty:
        st.info("No activation ran in this trace (or its op names do not say).")
        return
    cols = st.columns(3)
    cols[0].metric("Activation sites", len(acts))
    cols[1].metric("Activations, % of op CPU time", f"{result['activation_pct']:.1f}%")
    cols[2].metric("Separate (unfused), % of op CPU time", f"{result['unfused_pct']:.1f}%")
    st.caption(f"Shares are of all ops' {result.get('time', 'CPU time')}. A fused activation "
               "has no time of its own: its kernel's time is shown beside it (kernel µs), never "
               "counted as activation time.")
    acts["fused"] = acts["fused"].map({True: "fused", False: "separate"}).fillna("unknown")
    tables.show(acts.rename(columns={"pct": "% of step"}), key="trace_audit_table",
                style=lambda page: units.readable(page, unit="µs"))
    for item in result.get("advice") or [{"text": t} for t in result["recommendations"]]:
        st.markdown(f"- {item['text']}")


def op_time_caption(summary: dict) -> str:
    """Which figure the per-op table and chart rank by, and what became of the pool work."""
    pool = summary.get("pool_work") or {}
    if summary.get("op_time") != CPU_TIME_LABEL:
        return ("Sorted by self time (own thread); % of all ops' self time. No intra-op pool "
                "work in this trace, so CPU time = self time.")
    return (f"Sorted by **{CPU_TIME_LABEL}**; % of all ops' CPU time. self µs = the op's own "
            f"thread only. Intra-op pool work ({pool.get('pool_us', 0.0):,.0f} µs) is given to "
            "the op running on a dispatching thread when it ran (split by overlap between "
            f"concurrent ops: {pool.get('split_count', 0)} events); "
            f"{pool.get('unattributed_us', 0.0):,.0f} µs ran under no op: the row "
            f"{UNATTRIBUTED!r}.")


def explore(events: pd.DataFrame, summary: dict, audit_result: dict) -> None:
    ratio = summary.get("compute_comm_ratio")
    cols = st.columns(4)
    cols[0].metric("Events", f"{summary['event_count']:,}")
    cols[1].metric("Duration", f"{max(summary['duration_us'] / 1e3, 1e-3):.3g} ms")
    cols[2].metric("Compute / communication", "n/a" if ratio is None else f"{ratio:.3g}")
    if ratio is None:
        cols[2].caption(NO_COMM)
    cols[3].metric("Source", summary.get("source", "?"))
    if events.empty:
        st.warning("This trace has no duration events to draw.")
        return
    timeline(events, summary)
    top_ops = summary["top_ops"]
    left, right = st.columns(2)
    with left:
        n = int(st.session_state.get("trace_top", 15))
        st.plotly_chart(trace_charts.op_breakdown(top_ops.head(n)), key="chart_ops")
    with right:
        st.markdown("**Where the time went**")
        tables.show(units.readable(trace_charts.where_time_went(summary)),
                    key="trace_breakdown", column_config={"thread µs": st.column_config.TextColumn(
                         help=f"{trace_charts.NO_THREAD_IDLE} for idle: no thread runs then",
                         alignment="right")})
        st.caption(BREAKDOWN_HELP)
    st.subheader("Per-op table")
    st.caption(op_time_caption(summary))
    tables.show(top_ops, key="trace_ops_table", style=lambda page: units.readable(page, unit="µs"))
    activation_audit(audit_result)


def explore_tab() -> None:
    picked = pick_trace("trace", shared=True)
    if picked is None:
        return
    read = read_or_explain(picked)
    if read is None:
        return
    xprof_col, perfetto_col, _ = st.columns([1, 1, 3])
    with xprof_col:
        xprof_section(picked)
    with perfetto_col:
        perfetto_section(picked, read[1].get("source"))
    exposed = viewer_links.exposure_warning(settings.serve_host(), host_header())
    if exposed:
        st.warning(exposed, icon=":material/public:")
    st.caption(viewer_links.OFFLINE_TOOLS)
    explore(*read)


def diff_tab() -> None:
    st.caption("Compare two traces: op CPU-time (own + pool work) and count changes sorted by "
               "impact, and both breakdowns side by side (also `python -m profiling trace-diff "
               "A B`).")
    left, right = st.columns(2)
    with left:
        st.markdown("**A** (before)")
        a = pick_trace("diff_a", shared=False)
    with right:
        st.markdown("**B** (after)")
        b = pick_trace("diff_b", shared=False)
    if a is None or b is None:
        st.info("Pick two traces to compare.")
        return
    read_a, read_b = read_or_explain(a), read_or_explain(b)
    if read_a is None or read_b is None:
        return
    d = trace_diff(read_a[0], read_b[0], top=TOP_OPS_LISTED)
    cols = st.columns(2)
    cols[0].metric("Duration A", units.format_time(d["duration_a_us"] * 1e-6))
    change = (d["duration_b_us"] - d["duration_a_us"]) * 1e-6
    cols[1].metric("Duration B", units.format_time(d["duration_b_us"] * 1e-6),
                   delta=("+" if change > 0 else "") + units.format_time(change),
                   delta_color="inverse")
    wall = d["breakdown"].rename(columns={"a_us": "A wall_us", "b_us": "B wall_us",
                                          "delta_us": "B - A_us"})
    tables.show(wall, key="diff_breakdown", style=units.readable)
    st.caption(f"Ops compared by {d['op_time']}: B - A and the speedup of B over A (A's time / "
               "B's, above 1 is faster in B; – where one side has none); self = own thread "
               "only.")
    st.plotly_chart(trace_charts.op_diff_figure(d["ops"]), key="chart_diff")
    ops = trace_charts.diff_table(d["ops"])
    tables.show(ops, key="diff_ops_table", style=units.readable)


def render() -> None:
    st.title("Traces")
    explore_pane, diff_pane = st.tabs(["Explore a trace", "Trace diff"])
    with explore_pane:
        explore_tab()
    with diff_pane:
        diff_tab()


with page_guard("The Traces page"):
    render()
