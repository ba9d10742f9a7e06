"""Pool-thread time given to its op (profiling.traces.attribution), on hand-written traces whose
owners are worked out by hand, a brute-force reference on random nestings, and the surfaces that
show it (top_ops, trace-summary, trace-diff; the Traces page: test_traces_page.py)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from helpers import FIXTURES

from profiling.analysis.diff import diff_side, op_diff, trace_diff
from profiling.cli.main import main
from profiling.traces import attribution, from_chrome_json, load_trace, summarize
from profiling.traces.attribution import (
    CPU_TIME_LABEL,
    REGION,
    SELF_TIME_LABEL,
    UNATTRIBUTED,
    attribute,
    cpu_us,
    self_pieces,
)
from profiling.traces.op_stats import top_ops

POOL = FIXTURES / "pool_attribution.json"
# tests/fixtures/pool_attribution.json, pid 1 (/host:CPU):
#   python           step [0, 200) (an annotation, not an op)
#   tf_Compute/1     ExecutorState::Process [5, 95) (not an op); op Outer [10, 60) with op
#                    Inner [20, 40) nested in it
#   tf_Compute/2     a Region [45, 92) (on a dispatching thread: not pool work); op Relu [50, 90)
#   Eigen/1          Regions [22, 32): Inner only (innermost wins over Outer) -> Inner 10
#                    [42, 48): Outer 6
#                    [54, 66): Outer covers 6, Relu 12; the 12 covered µs split 6:12 -> Outer 4,
#                              Relu 8 (the one split)
#                    [100, 110): no op -> unattributed 10
#   Eigen/2          Region [70, 80) with EigenTask [72, 76) under it -> Relu 6 + 4
#                    [85, 95): Relu covers [85, 90) -> 5; [90, 95) -> unattributed 5
# pid 2: op Busy [100, 110) on its python thread: another process, so not R[100, 110)'s owner.
EXPECTED_CPU = {"Inner": 20 + 10, "Outer": 30 + 6 + 4, "Relu": 40 + 8 + 6 + 4 + 5, "Busy": 10}
POOL_US = 10 + 6 + 12 + 10 + 10 + 10


@pytest.fixture
def pool_trace():
    return load_trace(POOL)


def _by_name(events, values):
    return pd.Series(values, index=events.index).groupby(events["name"].astype(str),
                                                         observed=True).sum()


@pytest.mark.parametrize("block", [None, 1, 2])
def test_pool_work_goes_to_the_op_running_when_it_ran(pool_trace, block, monkeypatch):
    ev = pool_trace.events
    if block:  # pieces paired and covered a few at a time, as on a big trace
        monkeypatch.setattr(attribution, "PAIR_BLOCK", block)
    a = attribute(ev)
    per_name = _by_name(ev, a.cpu_us)
    assert {k: per_name[k] for k in EXPECTED_CPU} == pytest.approx(EXPECTED_CPU)
    assert a.pool_us == pytest.approx(POOL_US)
    assert a.unattributed_us == pytest.approx(15)
    assert a.split_count == 1
    # nothing created or lost: CPU time is self time moved from pool events to ops
    assert a.cpu_us.sum() == pytest.approx(ev.self_us.sum())
    # per pool event, what is left: 0 once attributed, the uncovered part otherwise
    on_pool = ev["thread"].astype(str).str.contains("Eigen").to_numpy()
    left = {(float(t), str(n)): c for t, n, c in zip(ev.ts_us[on_pool], ev.name[on_pool],
                                                     a.cpu_us[on_pool], strict=True)}
    assert left == pytest.approx({(22.0, REGION): 0, (42.0, REGION): 0, (54.0, REGION): 0,
                                  (100.0, REGION): 10, (70.0, REGION): 0,
                                  (72.0, "EigenTask"): 0, (85.0, REGION): 5})
    # the Region on the dispatching thread tf_Compute/2 is no pool work and keeps its self time
    compute_region = (ev.name == REGION).to_numpy() & ~on_pool
    assert a.cpu_us[compute_region] == pytest.approx(ev.self_us[compute_region].to_numpy())
    assert not a.is_pool_work[compute_region].any()
    assert cpu_us(ev) == pytest.approx(a.cpu_us)


def test_top_ops_rank_by_cpu_time_with_one_unattributed_row(pool_trace):
    top = top_ops(pool_trace.events)
    assert top.attrs["time"] == CPU_TIME_LABEL
    assert list(top.name) == ["Relu", "Outer", "Inner", UNATTRIBUTED, "Busy"]
    rows = top.set_index("name")
    assert rows.cpu_us.to_dict() == pytest.approx({**EXPECTED_CPU, UNATTRIBUTED: 15})
    assert rows.self_us.to_dict() == pytest.approx({"Relu": 40, "Outer": 30, "Inner": 20,
                                                    UNATTRIBUTED: 15, "Busy": 10})
    assert rows.loc[UNATTRIBUTED, "occurrences"] == 2  # the two Regions with time left
    assert REGION not in rows.index and "EigenTask" not in rows.index
    assert rows.pct.sum() == pytest.approx(100)
    assert rows.loc["Relu", "pct"] == pytest.approx(100 * 63 / 158)
    s = summarize(pool_trace)
    assert s["op_time"] == CPU_TIME_LABEL
    assert s["pool_work"] == pytest.approx({"pool_us": POOL_US, "unattributed_us": 15,
                                            "split_count": 1})


def test_without_pool_threads_cpu_time_is_self_time(pytorch_trace):
    ev = load_trace(pytorch_trace).events
    a = attribute(ev)
    assert not a.has_pool_work and a.pool_us == 0 and a.split_count == 0
    assert np.array_equal(a.cpu_us, ev.self_us.to_numpy())
    top = top_ops(ev)
    assert top.attrs["time"] == SELF_TIME_LABEL
    assert np.array_equal(top.cpu_us.to_numpy(), top.self_us.to_numpy())
    assert top.self_us.is_monotonic_decreasing


def _random_trace(rng, n_ops, n_regions):
    """One dispatching thread of properly nested ops (integer µs) and two Eigen threads of
    Regions, some with a task under them."""
    events = [{"ph": "M", "name": "thread_name", "pid": 1, "tid": t, "args": {"name": name}}
              for t, name in ((1, "tf_Compute/1"), (2, "tf_numa_0_Eigen/1"),
                              (3, "tf_numa_0_Eigen/2"))]

    def nest(lo, hi, depth):
        t = lo
        while t < hi - 2 and len(events) < n_ops + 3:
            start = t + int(rng.integers(0, 4))
            stop = min(hi, start + int(rng.integers(2, 40)))
            if stop - start < 1:
                break
            events.append({"ph": "X", "name": f"op{depth}_{len(events)}", "cat": "tf_op",
                           "pid": 1, "tid": 1, "ts": start, "dur": stop - start})
            if depth < 3 and stop - start > 4:
                nest(start + 1, stop - 1, depth + 1)
            t = stop + int(rng.integers(0, 5))

    nest(0, 1000, 0)
    for tid in (2, 3):  # a thread runs one task at a time: its Regions never overlap
        start = 0
        for _ in range(n_regions // 2):
            start += int(rng.integers(0, 20))
            dur = int(rng.integers(1, 30))
            events.append({"ph": "X", "name": REGION, "pid": 1, "tid": tid, "ts": start,
                           "dur": dur})
            if dur > 3 and rng.random() < 0.5:
                events.append({"ph": "X", "name": "task", "pid": 1, "tid": tid,
                               "ts": start + 1, "dur": dur - 2})
            start += dur
    return from_chrome_json({"traceEvents": events}).events


def _reference(ev):
    """Per event, the pool µs it should receive, by brute force on a 1 µs grid: each unit of a
    pool event's self time goes to the innermost op open on the dispatching thread then."""
    ts, end = ev.ts_us.to_numpy(), (ev.ts_us + ev.dur_us).to_numpy()
    names, threads = ev.name.astype(str).to_numpy(), ev.thread.astype(str).to_numpy()
    parent = ev.parent.to_numpy()
    ops = [i for i in range(len(ev)) if threads[i] == "tf_Compute/1"]
    got, left = np.zeros(len(ev)), 0.0
    for i in range(len(ev)):
        if "Eigen" not in threads[i]:
            continue
        kids = np.flatnonzero(parent == i)
        for t in range(int(ts[i]), int(end[i])):
            if any(ts[k] <= t < end[k] for k in kids):
                continue
            open_ops = [k for k in ops if ts[k] <= t and t + 1 <= end[k]]
            if open_ops:
                got[max(open_ops, key=lambda k: (ts[k], -end[k]))] += 1
            else:
                left += 1
    assert all(names[k] != REGION for k in ops)
    return got, left


@pytest.mark.parametrize("block", [None, 5])
@pytest.mark.parametrize("seed", range(6))
def test_vectorized_attribution_matches_brute_force(seed, block, monkeypatch):
    rng = np.random.default_rng(seed)
    ev = _random_trace(rng, n_ops=40, n_regions=60)
    if block:  # pieces paired and covered a few at a time, as on a big trace
        whole = attribute(ev)
        monkeypatch.setattr(attribution, "PAIR_BLOCK", block)
    a = attribute(ev)
    if block:
        assert np.array_equal(a.cpu_us, whole.cpu_us)
    want, left = _reference(ev)
    is_op = (ev.thread.astype(str) == "tf_Compute/1").to_numpy()
    assert a.attributed_us[is_op] == pytest.approx(want[is_op])
    assert a.unattributed_us == pytest.approx(left)
    assert a.split_count == 0  # one dispatching thread: nothing to split
    assert a.cpu_us.sum() == pytest.approx(ev.self_us.sum())


def test_self_pieces_are_each_events_self_time():
    ev = _random_trace(np.random.default_rng(7), n_ops=60, n_regions=0)
    lane = ev.tid.cat.codes.to_numpy().astype(np.int64)
    owner, start, stop = self_pieces(lane, ev.ts_us.to_numpy(), ev.dur_us.to_numpy())
    per_event = np.bincount(owner, weights=stop - start, minlength=len(ev))
    assert per_event == pytest.approx(ev.self_us.to_numpy())
    order = np.argsort(start)
    assert (start[order][1:] >= stop[order][:-1]).all()  # one lane: disjoint
    shuffled = np.random.default_rng(8).permutation(len(ev))  # unsorted input: same pieces
    owner2, start2, stop2 = self_pieces(lane[shuffled], ev.ts_us.to_numpy()[shuffled],
                                        ev.dur_us.to_numpy()[shuffled])
    assert sorted(zip(shuffled[owner2], start2, stop2, strict=True)) == \
        sorted(zip(owner, start, stop, strict=True))


def test_op_diff_compares_cpu_time(pool_trace):
    doc = json.loads(POOL.read_text())
    for e in doc["traceEvents"]:
        if e.get("name") == REGION and e.get("ts") == 70:
            e["dur"] = 15  # B: Relu's pool work on Eigen/2 [70, 85) grows by 5 µs
    b = from_chrome_json(doc).events
    d = op_diff(pool_trace.events, b).set_index("name")
    assert d.attrs["time"] == CPU_TIME_LABEL
    assert d.loc["Relu", "delta_us"] == pytest.approx(5)
    assert d.loc["Relu", "self_us_a"] == d.loc["Relu", "self_us_b"] == 40
    assert d.loc["Relu", ["cpu_us_a", "cpu_us_b"]].tolist() == pytest.approx([63, 68])
    assert d.delta_us.drop("Relu").abs().max() == pytest.approx(0)
    # the CLI's way: each trace reduced to its diff side (and dropped) before the next is read
    sides = trace_diff(diff_side(pool_trace.events), diff_side(b))
    frames = trace_diff(pool_trace.events, b)
    pd.testing.assert_frame_equal(sides["ops"], frames["ops"])
    pd.testing.assert_frame_equal(sides["breakdown"], frames["breakdown"])
    assert (sides["op_time"], sides["duration_b_us"]) == (frames["op_time"],
                                                          frames["duration_b_us"])


def test_trace_summary_says_which_time_it_shows(capsys):
    assert main(["trace-summary", str(POOL), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["op_time"] == CPU_TIME_LABEL and s["pool_work"]["split_count"] == 1
    first = s["top_ops"][0]
    assert (first["name"], first["self_us"], first["cpu_us"]) == ("Relu", 40, 63)
    assert main(["trace-summary", str(POOL)]) == 0
    out = capsys.readouterr().out
    assert f"ops by {CPU_TIME_LABEL}" in out and UNATTRIBUTED in out


def test_op_charts_draw_cpu_time(pool_trace):
    from profiling.presentation import trace_charts

    fig = trace_charts.op_breakdown(top_ops(pool_trace.events))
    assert list(fig.data[0].x)[-1] == pytest.approx(63)  # Relu, drawn on top
    assert "CPU time" in fig.layout.title.text
    diff = trace_charts.op_diff_figure(op_diff(pool_trace.events, pool_trace.events))
    assert diff.layout.title.text.startswith("CPU time")
