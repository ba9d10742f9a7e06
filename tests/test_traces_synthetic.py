"""Trace model and analyzers on a synthetic Chrome trace whose answers are worked out by hand."""

from __future__ import annotations

import gzip
import json

import pytest

from profiling.traces import load_trace, summarize
from profiling.traces.breakdown import busy_union_us, lane_busy, time_breakdown
from profiling.traces.op_stats import top_ops

# Thread 1 (0..100 µs span overall):
#   step      [0, 100)   other; children conv [10, 40) and relu [50, 60)
#   conv      [10, 40)   cpu_op, child memcpy [20, 25)
#   memcpy    [20, 25)   gpu_memcpy
#   relu      [50, 60)   cpu_op
# Thread 2:
#   allreduce [30, 50)   kernel "ncclAllReduce"
#   relu      [70, 75)   cpu_op
EVENTS = [
    {"ph": "M", "name": "process_name", "pid": 1, "args": {"name": "host"}},
    {"ph": "M", "name": "thread_name", "pid": 1, "tid": 1, "args": {"name": "main"}},
    {"ph": "X", "name": "step", "cat": "user_annotation", "pid": 1, "tid": 1, "ts": 0, "dur": 100},
    {"ph": "X", "name": "conv", "cat": "cpu_op", "pid": 1, "tid": 1, "ts": 10, "dur": 30},
    {"ph": "X", "name": "Memcpy HtoD", "cat": "gpu_memcpy", "pid": 1, "tid": 1, "ts": 20, "dur": 5},
    {"ph": "X", "name": "relu", "cat": "cpu_op", "pid": 1, "tid": 1, "ts": 50, "dur": 10},
    {"ph": "X", "name": "ncclAllReduce", "cat": "kernel", "pid": 1, "tid": 2, "ts": 30, "dur": 20},
    {"ph": "B", "name": "relu", "cat": "cpu_op", "pid": 1, "tid": 2, "ts": 70},
    {"ph": "E", "pid": 1, "tid": 2, "ts": 75},
    {"ph": "i", "name": "marker", "pid": 1, "tid": 1, "ts": 5},
]


@pytest.fixture
def trace():
    return load_trace(json.dumps({"traceEvents": EVENTS}).encode(), "t.json")


def test_self_times_and_names(trace):
    ev = trace.events.set_index(["tid", "name", "ts_us"])
    assert ev.loc[("1", "step", 0.0), "self_us"] == 100 - 30 - 10
    assert ev.loc[("1", "conv", 10.0), "self_us"] == 25
    assert ev.loc[("1", "Memcpy HtoD", 20.0), "self_us"] == 5
    assert ev.loc[("2", "relu", 70.0), "dur_us"] == 5  # B/E pair
    assert set(trace.events.process) == {"host"}
    assert len(trace.events) == 6  # metadata and instants are not duration events


def test_breakdown_by_hand(trace):
    b = time_breakdown(trace.events)
    # Thread time: self time per kind summed over threads. The HtoD copy is a host-to-device
    # transfer, so it is communication like the all-reduce.
    assert b["thread_time"] == {"compute_us": 25 + 10 + 5, "collective_us": 5 + 20,
                                "memcpy_us": 0, "other_us": 60}
    # Wall time over the span 0..100, innermost event per thread, compute first:
    # compute [10,20) [25,40) [50,60) [70,75) = 40; communication: HtoD [20,25) and the
    # all-reduce's [40,50) not under compute = 15; other: the rest of the step = 45; idle 0.
    assert b["compute_us"] == 40
    assert b["collective_us"] == 15
    assert b["memcpy_us"] == 0
    assert b["other_us"] == 45
    assert b["idle_us"] == 0 and b["busy_us"] == 100
    assert b["compute_comm_ratio"] == pytest.approx(40 / 25)
    lanes = lane_busy(trace.events).set_index("tid")
    assert lanes.loc["2", "busy_us"] == 25


def test_exclusive_pieces_tile_each_thread_once(trace):
    """Each event's pieces add up to its self time and no two pieces of a thread overlap (a
    parent with several children keeps only the gaps between them and its tail)."""
    import numpy as np

    from profiling.traces.breakdown import exclusive_pieces

    extra = [{"ph": "X", "name": n, "cat": "cpu_op", "pid": 1, "tid": 3, "ts": t, "dur": d}
             for n, t, d in [("outer", 0, 100), ("a", 10, 10), ("a1", 12, 3), ("b", 30, 10),
                             ("c", 50, 20), ("outer2", 120, 10)]]
    ev = load_trace(json.dumps({"traceEvents": EVENTS + extra}).encode(), "t.json").events
    start, end, owner = exclusive_pieces(ev)
    per_event = np.bincount(owner, weights=end - start, minlength=len(ev))
    assert per_event == pytest.approx(ev.self_us.to_numpy())
    assert per_event[(ev.name == "outer").to_numpy()] == [100 - 10 - 10 - 20]
    lane = ev.tid.astype(str).to_numpy()[owner]
    for tid in set(lane):
        s, e = start[lane == tid], end[lane == tid]
        order = np.argsort(s)
        assert (s[order][1:] >= e[order][:-1]).all(), tid


def test_busy_union_merges_overlaps():
    import numpy as np

    assert busy_union_us(np.array([0.0, 5, 20]), np.array([10.0, 12, 30])) == 22


def test_top_ops_and_summary(trace):
    top = top_ops(trace.events)
    assert list(top.name[:2]) == ["conv", "ncclAllReduce"]
    relu = top.set_index("name").loc["relu"]
    assert (relu.occurrences, relu.self_us, relu.total_us) == (2, 15, 15)
    assert top.pct.sum() == pytest.approx(100)
    s = summarize(trace)
    assert s["event_count"] == 6 and s["duration_us"] == 100
    assert s["breakdown"]["idle_us"] == 0
    assert sum(s["breakdown"].values()) == pytest.approx(s["duration_us"])


def test_gzip_and_bare_array(tmp_path):
    p = tmp_path / "t.json.gz"
    p.write_bytes(gzip.compress(json.dumps(EVENTS).encode()))
    assert len(load_trace(p).events) == 6


def test_profiler_range_lane_is_not_work(pytorch_trace):
    """PyTorch's "PyTorch Profiler (0)" span covers the capture on a lane of its own."""
    from profiling.traces import load_trace
    from profiling.traces.breakdown import time_breakdown

    events = load_trace(pytorch_trace, pytorch_trace.name).events
    b = time_breakdown(events)
    assert b["other_us"] == 0.0
    work = events[events.cat == "cpu_op"]
    span = float((work.ts_us + work.dur_us).max() - work.ts_us.min())
    busy = b["compute_us"] + b["memcpy_us"] + b["collective_us"]
    assert busy + b["idle_us"] == pytest.approx(span, rel=1e-6)
    assert b["collective_us"] == 0 and b["compute_comm_ratio"] is None  # CPU only: no transfers


def test_concat_events_keeps_lanes_apart_and_parents_right(trace):
    from profiling.traces.breakdown import time_breakdown
    from profiling.traces.model import concat_events

    both = concat_events([("a", trace.events), ("b", trace.events)])
    assert len(both) == 2 * len(trace.events)
    assert set(both["pid"].astype(str)) == {"a/1", "b/1"}
    second = both.iloc[len(trace.events):]
    conv = second.index[second["name"] == "conv"][0]
    assert both.loc[both.loc[conv, "parent"], "name"] == "step"  # shifted, not the first's
    one, two = time_breakdown(trace.events), time_breakdown(both)
    assert two["thread_time"]["compute_us"] == 2 * one["thread_time"]["compute_us"]
