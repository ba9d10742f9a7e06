"""Trace charts on synthetic events: rows per lane and depth, colours by self time, capped and
downsampled drawing, search, event details, the diff figure."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from helpers import as_json

from profiling.analysis.diff import op_diff
from profiling.presentation import trace_charts
from profiling.traces import load_trace


def synthetic_events(n: int = 2000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "pid": rng.integers(1, 3, n),
            "tid": rng.integers(10, 14, n),
            "process": "python",
            "thread": None,
            "name": rng.choice(["relu", "conv", "mm", "copy"], n),
            "cat": "op",
            "ts_us": np.sort(rng.uniform(0, 1e6, n)),
            "dur_us": rng.uniform(1, 100, n),
            "self_us": rng.uniform(1, 50, n),
            "args": "{}",
        }
    )


def nested_trace():
    """Thread 1: step [0,100) > conv [10,40) > relu [20,25); thread 2: relu [50,60)."""
    events = [
        {"ph": "M", "name": "thread_name", "pid": 1, "tid": 1, "args": {"name": "main"}},
        {"ph": "X", "name": "step", "pid": 1, "tid": 1, "ts": 0, "dur": 100},
        {"ph": "X", "name": "conv", "cat": "cpu_op", "pid": 1, "tid": 1, "ts": 10, "dur": 30,
         "args": {"Input Dims": [[1, 3, 8, 8]]}},
        {"ph": "X", "name": "relu", "cat": "cpu_op", "pid": 1, "tid": 1, "ts": 20, "dur": 5},
        {"ph": "X", "name": "relu", "cat": "cpu_op", "pid": 1, "tid": 2, "ts": 50, "dur": 10},
    ]
    return load_trace(json.dumps({"traceEvents": events}).encode(), "t.json").events


def test_select_events_applies_window_top_ops_and_cap():
    events = synthetic_events()
    picked = trace_charts.select_events(events, window_us=(0, 5e5), top_ops=2, max_events=100)
    assert len(picked) == 100
    assert picked["ts_us"].max() <= 5e5
    assert picked["name"].nunique() <= 2
    assert picked["ts_us"].is_monotonic_increasing


def test_select_events_searches_by_name():
    picked = trace_charts.select_events(synthetic_events(), query="REL")
    assert set(picked["name"]) == {"relu"} and len(picked) > 100


def test_downsample_keeps_the_longest_per_row_and_pixel():
    events = pd.DataFrame({"pid": 1, "tid": 1, "process": "p", "thread": "t",
                           "name": "op", "ts_us": [0.0, 1.0, 2.0, 15.0],
                           "dur_us": [1.0, 5.0, 2.0, 1.0]})
    kept = trace_charts.downsample(events, (0.0, 20.0), buckets=2)  # 10 µs per bucket
    assert sorted(kept["ts_us"]) == [1.0, 15.0]


def test_timeline_stacks_nesting_depth_and_colours_by_self_time():
    events = nested_trace()
    fig = as_json(trace_charts.trace_timeline(events))
    rows = {y for t in fig["data"] for y in t["y"]}
    assert rows == {"1 / main", "1 / main · d1", "1 / main · d2", "1 / 2"}
    by_name = {t["name"]: t for t in fig["data"]}
    # step has the most self time (100 - 30), then conv (25), then relu (15)
    assert list(trace_charts.colour_map(events)) == ["step", "conv", "relu"]
    assert by_name["conv"]["customdata"][0][4] == ""  # no TF scope here
    assert "Input Dims" in by_name["conv"]["customdata"][0][5]  # args in the hover box
    assert all(t["orientation"] == "h" for t in fig["data"])
    assert fig["layout"]["dragmode"] == "zoom"


def test_timeline_colours_are_keyed_by_op_name_and_never_reused():
    names = ["KernelAndDeviceFunc::Run", "<lambda>"] + [f"op{i}" for i in range(10)]
    events = pd.DataFrame({"pid": 1, "tid": 1, "process": "p", "thread": "t", "name": names,
                           "ts_us": [float(10 * i) for i in range(12)],
                           "dur_us": [float(20 - i) for i in range(12)]})
    colours = trace_charts.colour_map(events)
    assert len(colours) == 12 and len(set(colours.values())) == 12
    fig = as_json(trace_charts.trace_timeline(events))
    drawn = [t["marker"]["color"] for t in fig["data"]
             if t["marker"]["color"] != trace_charts.OTHER_COLOUR]
    assert len(drawn) == len(set(drawn)) == 12
    # an op keeps its colour in another trace where it is not the busiest one
    alone = trace_charts.colour_map(events[events["name"].isin(["op3", "<lambda>"])])
    assert alone["<lambda>"] == colours["<lambda>"]


def test_trace_timeline_capped_and_from_the_given_origin():
    events = synthetic_events()
    fig = as_json(trace_charts.trace_timeline(events, max_events=300))
    assert sum(len(t["x"]) for t in fig["data"]) == 300
    late = events[events["ts_us"] >= events["ts_us"].median()].head(50)
    origin = float(events["ts_us"].min())
    fig = as_json(trace_charts.trace_timeline(late, origin_us=origin))
    first = min(min(t["base"]) for t in fig["data"])
    assert first == pytest.approx((late["ts_us"].min() - origin) / 1e3)
    assert fig["layout"]["xaxis"]["title"]["text"] == "ms from trace start"


def test_timeline_rows_fall_back_to_pid_and_tid_without_names():
    events = synthetic_events(50)
    events["process"] = ""
    events["thread"] = None
    fig = as_json(trace_charts.trace_timeline(events))
    rows = {y for t in fig["data"] for y in t["y"]}
    assert rows <= {f"{pid} / {tid}" for pid in (1, 2) for tid in range(10, 14)}


def test_event_details_by_row_label():
    events = nested_trace()
    row = events.index[events["name"] == "conv"][0]
    d = trace_charts.event_details(events, row)
    assert d["name"] == "conv" and d["depth"] == 1 and d["duration_us"] == 30
    assert d["self_us"] == 25 and d["args"] == {"Input Dims": [[1, 3, 8, 8]]}
    assert d["lane"] == "1 / main"


def test_op_breakdown_largest_on_top():
    top = pd.DataFrame({"name": ["a", "b"], "occurrences": [1, 2], "self_us": [5.0, 50.0],
                        "total_us": [6.0, 60.0], "pct": [9.0, 91.0]})
    bar = as_json(trace_charts.op_breakdown(top))["data"][0]
    assert bar["y"] == ["a", "b"]  # plotly draws the last category on top
    assert bar["x"] == [5.0, 50.0]


def test_op_diff_figure_biggest_change_on_top():
    a = nested_trace()
    b = a.assign(self_us=np.where(a["name"] == "relu", a["self_us"] * 3, a["self_us"]))
    fig = as_json(trace_charts.op_diff_figure(op_diff(a, b)))
    bar = fig["data"][0]
    assert bar["y"][-1] == "relu" and bar["x"][-1] == pytest.approx(30)


def test_where_time_went_has_no_missing_cell_and_says_why_idle_has_no_thread_time():
    summary = {"breakdown": {"compute_us": 43.7, "collective_us": 0.0, "memcpy_us": 3.55,
                             "other_us": 185.0, "idle_us": 11.8},
               "thread_time": {"compute_us": 87.4, "collective_us": 0.0, "memcpy_us": 3.55,
                               "other_us": 185.04}}
    table = trace_charts.where_time_went(summary)
    assert list(table["kind"]) == ["compute", "communication", "memcpy", "other", "idle"]
    assert not table.isna().any().any()
    assert list(table["thread µs"]) == ["87.4", "0", "3.55", "185", trace_charts.NO_THREAD_IDLE]
    assert table["% of span"].sum() == pytest.approx(100)
    assert table.loc[4, "wall µs"] == 11.8
