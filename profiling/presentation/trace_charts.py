"""Trace charts: pure functions from `Trace.events` (or an analysis table) to Plotly figures,
and the Traces page's "Where the time went" table.

The timeline is a viewer, not a summary: one lane per process/thread stacked by nesting depth,
colours for the ops with the most self time, hover with name, duration, scope and arguments, and,
for large traces, the longest event per pixel bucket of each lane so the browser stays
responsive. Zoom is Plotly's drag-to-zoom on the time axis.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from profiling.presentation.charts import _layout, display_text, distinct_colours, empty_figure
from profiling.presentation.units import MISSING, format_number, format_speedup
from profiling.traces.attribution import CPU_TIME_LABEL
from profiling.traces.classify import category_codes, is_profiler_range

COLOURED_OPS = 12
OTHER_COLOUR = "#bcbcbc"
ARGS_SHOWN = 300  # characters of an event's args in its hover box
ROW_HEIGHT = 26
# Idle is an instant with no event on any thread, so it only exists against the wall span;
# thread time sums each thread's own events and has nothing to subtract idle from.
NO_THREAD_IDLE = "n/a"


def _text(column: pd.Series) -> pd.Series:
    return column.astype("string").fillna("").str.strip()


def where_time_went(summary: dict) -> pd.DataFrame:
    """Rows compute, communication, memcpy, other, idle of a `profiling.traces.summarize`
    result: wall µs, % of span, and thread µs as text (3 significant digits; NO_THREAD_IDLE
    for idle, which has no per-thread measure; a missing value would show as 'None')."""
    wall, thread = summary["breakdown"], summary["thread_time"]
    span = sum(wall.values()) or 1.0
    rows = []
    for kind in ("compute", "collective", "memcpy", "other", "idle"):
        key = f"{kind}_us"
        rows.append({"kind": "communication" if kind == "collective" else kind,
                     "wall µs": float(wall[key]), "% of span": 100 * wall[key] / span,
                     "thread µs": (NO_THREAD_IDLE if kind == "idle"
                                   else format_number(thread.get(key), 3))})
    return pd.DataFrame(rows)


def lane_names(events: pd.DataFrame) -> pd.Series:
    """'process / thread' per event, falling back to pid / tid where a name is missing."""

    def named(name: pd.Series, fallback: pd.Series) -> pd.Series:
        text = _text(name)
        return text.where(text != "", fallback.astype(str))

    return named(events["process"], events["pid"]) + " / " + named(events["thread"],
                                                                    events["tid"])


def _rows(events: pd.DataFrame) -> pd.Series:
    """One timeline row per lane and nesting depth ('lane · d2'; depth 0 is the lane itself)."""
    lanes = lane_names(events)
    if "depth" not in events.columns:
        return lanes
    depth = events["depth"].fillna(0).astype(int)
    return lanes.where(depth == 0, lanes + " · d" + depth.astype(str))


def _self_time_by_name(events: pd.DataFrame, mask: np.ndarray | None = None) -> pd.Series:
    """Self time per op name (sorted by name) over the events where ``mask`` (all when None),
    the profiler's own capture range left out (it is no work). Summed per name code, so no
    string is made per event."""
    codes, names = category_codes(events["name"], None)
    keep = codes >= 0 if mask is None else mask & (codes >= 0)
    if "cat" in events.columns:
        keep &= ~is_profiler_range(events).to_numpy(bool)
    weight = events["self_us" if "self_us" in events.columns else "dur_us"].to_numpy(float)
    picked = codes[keep]
    sums = np.bincount(picked, weights=weight[keep], minlength=len(names))
    seen = np.bincount(picked, minlength=len(names)) > 0
    return pd.Series(sums[seen], index=pd.Index(np.asarray(names, dtype=object)[seen],
                                                dtype=object)).sort_index(kind="stable")


def colour_map(events: pd.DataFrame, n: int = COLOURED_OPS) -> dict[str, str]:
    """Op name -> colour for the `n` names with the most self time (the rest are grey): keyed
    by the name (a stable hash, so an op keeps its colour across traces) and never two names
    alike within the chart."""
    if events.empty:
        return {}
    names = _self_time_by_name(events).nlargest(n).index
    return distinct_colours([str(name) for name in names])


def _row_codes(events: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    """Per given row, an integer naming its timeline row (_rows' label): the label is made
    once per distinct (lane, depth), not per event."""
    cols = [c for c in ("pid", "tid", "process", "thread") if c in events.columns]
    key = np.zeros(len(rows), dtype=np.int64)
    for c in cols:
        codes, names = category_codes(events[c], None)
        key = key * (len(names) + 1) + (codes[rows].astype(np.int64) + 1)
    if "depth" in events.columns:
        depth = events["depth"].fillna(0).to_numpy().astype(np.int64)[rows]
        key = key * (int(depth.max()) + 1 if len(depth) else 1) + depth
    uniq, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    labels = _rows(events.iloc[rows[first]]).to_numpy()
    _, label_code = np.unique(labels.astype(str), return_inverse=True)
    return label_code.ravel()[inverse.ravel()]


def _downsampled_rows(events: pd.DataFrame, rows: np.ndarray, window_us: tuple[float, float],
                      buckets: int) -> np.ndarray:
    """Of the given rows, the longest per timeline row and time bucket (sorted)."""
    start, end = window_us
    width = max((end - start) / buckets, 1e-9)
    bucket = np.floor((events["ts_us"].to_numpy(float)[rows] - start) / width).astype(np.int64)
    row = _row_codes(events, rows)
    dur = events["dur_us"].to_numpy(float)[rows]
    # longest first within each (row, bucket); among equal durations, the earlier row
    order = np.lexsort((np.arange(len(rows)), -dur, bucket, row))
    row, bucket = row[order], bucket[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = (row[1:] != row[:-1]) | (bucket[1:] != bucket[:-1])
    return np.sort(rows[order[first]])


def downsample(events: pd.DataFrame, window_us: tuple[float, float], buckets: int) -> pd.DataFrame:
    """At most one event per row and time bucket (`buckets` across the window): the longest,
    so what a pixel would show survives and the rest is dropped."""
    if events.empty or buckets <= 0:
        return events
    return events.iloc[_downsampled_rows(events, np.arange(len(events)), window_us, buckets)]


def select_events(
    events: pd.DataFrame,
    window_us: tuple[float, float] | None = None,
    top_ops: int | None = None,
    max_events: int = 5000,
    query: str = "",
    buckets: int = 1500,
) -> pd.DataFrame:
    """The trace events worth drawing: those overlapping ``window_us`` (µs, trace clock), whose
    name contains ``query`` (case-insensitive), of the ``top_ops`` op names with the most self
    time; past ``max_events``, the longest per row and pixel bucket (``buckets`` across the
    window), then the ``max_events`` longest of those. Sorted by start. Chosen on the columns:
    only the rows drawn become a frame."""
    if events.empty:
        return events
    ts, dur = events["ts_us"].to_numpy(float), events["dur_us"].to_numpy(float)
    keep = dur > 0
    if not keep.any():
        return events.iloc[:0]
    if window_us is None:
        window_us = (float(ts[keep].min()), float((ts + dur)[keep].max()))
    start, end = window_us
    keep &= ts <= end
    keep &= ts + dur >= start
    codes, names = category_codes(events["name"], None)
    if query:
        wanted = query.upper()
        hit = np.asarray([wanted in n.upper() for n in names] + [False])
        keep &= hit[codes]  # code -1 (no name) reads the last entry: no match
    if top_ops is not None and keep.any():
        top = set(_self_time_by_name(events, keep).nlargest(top_ops).index)
        keep &= np.asarray([n in top for n in names] + [False])[codes]
    rows = np.flatnonzero(keep)
    if len(rows) > max_events and buckets > 0:
        rows = _downsampled_rows(events, rows, (start, end), buckets)
    if len(rows) > max_events:
        rows = np.sort(rows[np.argsort(-dur[rows], kind="stable")[:max_events]])
    return events.iloc[rows].sort_values("ts_us", kind="stable")


def _scope(events: pd.DataFrame) -> pd.Series:
    if "long_name" not in events.columns:
        return pd.Series("", index=events.index)
    return _text(events["long_name"]).str.split(":", n=1).str[0]


def _args(events: pd.DataFrame) -> pd.Series:
    if "args" not in events.columns:
        return pd.Series("", index=events.index)
    text = events["args"].astype(str).replace("{}", "")
    return text.str.slice(0, ARGS_SHOWN).map(display_text)


def trace_timeline(events: pd.DataFrame, max_events: int = 5000,
                   origin_us: float | None = None,
                   colours: dict[str, str] | None = None) -> go.Figure:
    """Zoomable timeline: one row per process/thread and nesting depth, one bar per event, in
    ms from ``origin_us`` (the trace's start, so the axis matches a window chosen in trace time)
    or, without it, from the first event drawn. ``colours`` (colour_map of the whole trace)
    keeps an op's colour when the window changes. Each bar's customdata[2] is its row label in
    ``events`` (for click-to-inspect). Draws at most ``max_events`` events (the longest)."""
    title = "Timeline"
    if events.empty:
        return empty_figure(title, "No events in this window")
    frame = events.nlargest(max_events, "dur_us") if len(events) > max_events else events
    origin = float(frame["ts_us"].min()) if origin_us is None else float(origin_us)
    colours = colours if colours is not None else colour_map(frame)
    rows = _rows(frame).map(display_text)
    frame = frame.assign(_row=rows.to_numpy(), _name=frame["name"].astype(str),
                         _scope=_scope(frame).map(display_text).to_numpy(),
                         _args=_args(frame).to_numpy(),
                         _self=frame["self_us"] if "self_us" in frame else frame["dur_us"])
    sort_cols = ["pid", "tid"] + (["depth"] if "depth" in frame.columns else [])
    row_order = list(dict.fromkeys(frame.sort_values(sort_cols, kind="stable")["_row"]))
    figure = go.Figure()
    coloured = [n for n in colours if (frame["_name"] == n).any()]
    parts = [(op, frame[frame["_name"] == op]) for op in coloured]
    parts.append((None, frame[~frame["_name"].isin(coloured)]))
    for op, part in parts:
        if part.empty:
            continue
        figure.add_trace(go.Bar(
            base=(part["ts_us"] - origin) / 1e3, x=part["dur_us"] / 1e3, y=part["_row"],
            orientation="h", name="other ops" if op is None else display_text(op),
            marker_color=colours.get(op, OTHER_COLOUR),
            marker_line=dict(width=0.5, color="white"),
            customdata=np.stack([part["_name"].map(display_text), part["dur_us"],
                                 part.index.astype(str), part["_self"], part["_scope"],
                                 part["_args"]], axis=-1),
            hovertemplate="<b>%{customdata[0]}</b><br>start %{base:.4g} ms<br>"
                          "%{customdata[1]:.4g} µs (self %{customdata[3]:.4g} µs)<br>"
                          "scope %{customdata[4]}<br>%{customdata[5]}<extra>%{y}</extra>",
        ))
    figure.update_layout(barmode="overlay", bargap=0.15, dragmode="zoom")
    figure.update_yaxes(categoryorder="array", categoryarray=row_order[::-1], fixedrange=True)
    figure.update_layout(height=max(300, ROW_HEIGHT * len(row_order) + 140))
    x_title = "ms from first event shown" if origin_us is None else "ms from trace start"
    return _layout(figure, title, x_title, "process / thread · depth")


def event_details(events: pd.DataFrame, row: object) -> dict:
    """Name, start, duration, self time, scope, lane and parsed args of one event (by label)."""
    e = events.loc[row]
    try:
        args = json.loads(e["args"]) if "args" in events.columns else {}
    except (TypeError, ValueError):
        args = {"raw": str(e["args"])}
    return {"name": str(e["name"]), "lane": str(lane_names(events.loc[[row]]).iloc[0]),
            "depth": int(e["depth"]) if "depth" in events.columns else 0,
            "start_us": float(e["ts_us"]), "duration_us": float(e["dur_us"]),
            "self_us": float(e.get("self_us", e["dur_us"])),
            "scope": str(_scope(events.loc[[row]]).iloc[0]), "args": args}


def op_breakdown(top_ops: pd.DataFrame) -> go.Figure:
    """Horizontal bars of time (µs) per op, largest on top (``summarize()["top_ops"]``): CPU
    time (own + pool work) when ``top_ops.attrs["time"]`` says so, else self time."""
    cpu = top_ops.attrs.get("time") == CPU_TIME_LABEL and "cpu_us" in top_ops.columns
    column, what = ("cpu_us", "CPU time, own + pool work") if cpu else ("self_us", "self time")
    title = f"Ops by {what}"
    if top_ops.empty:
        return empty_figure(title, "No ops")
    frame = top_ops.sort_values(column, ascending=True)
    counted = "occurrences" in frame.columns
    figure = go.Figure(
        go.Bar(
            x=frame[column], y=[display_text(n) for n in frame["name"]], orientation="h",
            customdata=frame[["occurrences"]] if counted else None,
            hovertemplate="%{y}<br>%{x:.4g} µs " + ("CPU" if cpu else "self")
                          + ("<br>%{customdata[0]} calls" if counted else "") + "<extra></extra>",
            name="CPU µs" if cpu else "self µs",
        )
    )
    figure.update_layout(height=max(300, 24 * len(frame) + 120))
    return _layout(figure, title, f"{what} (µs)", "op")


def op_diff_figure(ops: pd.DataFrame, top: int = 20) -> go.Figure:
    """CPU-time change (µs, B - A: own + pool work, equal to self time on traces without pool
    work) per op, biggest change on top (analysis.diff.op_diff)."""
    what = "CPU time" if ops.attrs.get("time") == CPU_TIME_LABEL else "Self time"
    title = f"{what} change, B - A"
    if ops.empty:
        return empty_figure(title, "No ops in either trace")
    frame = ops.head(top).iloc[::-1]
    shown = "cpu_us" if "cpu_us_a" in frame.columns else "self_us"
    figure = go.Figure(go.Bar(
        x=frame["delta_us"], y=[display_text(n) for n in frame["name"]], orientation="h",
        marker_color=["#d62728" if d > 0 else "#2ca02c" for d in frame["delta_us"]],
        customdata=np.stack([frame[f"{shown}_a"], frame[f"{shown}_b"], frame["occurrences_a"],
                             frame["occurrences_b"]], axis=-1),
        hovertemplate="%{y}<br>%{x:+.4g} µs<br>A %{customdata[0]:.4g} µs "
                      "(%{customdata[2]} calls)<br>B %{customdata[1]:.4g} µs "
                      "(%{customdata[3]} calls)<extra></extra>",
    ))
    figure.update_layout(height=max(300, 24 * len(frame) + 120))
    return _layout(figure, title, f"{what.lower()} B - A (µs; red: slower in B)", "op")


def diff_table(ops: pd.DataFrame) -> pd.DataFrame:
    """analysis.diff.op_diff for reading: readable column names, times in µs columns (``*_us``,
    for units.readable to put in one unit) and the speedup of B over A (A's time / B's, above 1
    is faster in B) as text, MISSING where either side has no time."""
    what = "CPU" if ops.attrs.get("time") == CPU_TIME_LABEL else "self"
    a, b = ops["cpu_us_a"].astype(float), ops["cpu_us_b"].astype(float)
    speedup = [format_speedup(x / y) if x > 0 and y > 0 else MISSING for x, y in zip(a, b,
                                                                                    strict=True)]
    out = pd.DataFrame({
        "op": ops["name"].astype(str),
        "calls A": ops["occurrences_a"].astype(int), "calls B": ops["occurrences_b"].astype(int),
        f"{what} A_us": a, f"{what} B_us": b, "B - A_us": ops["delta_us"].astype(float),
        f"speedup B vs A ({what})": speedup,
    })
    if what == "CPU":  # self time differs from CPU time only where pool work was attributed
        out.insert(3, "self A_us", ops["self_us_a"].astype(float))
        out.insert(4, "self B_us", ops["self_us_b"].astype(float))
    return out
