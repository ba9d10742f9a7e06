"""The measurement core against hand-computed values: paired and unpaired ratio CIs, the
interleaved order, what is (not) inside the timed loop, the roof, noise verdicts, run names."""

from __future__ import annotations

import functools
import math
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest

from profiling.analysis.compare import compare_runs
from profiling.measurement import noise, roof, timing
from profiling.measurement.stats import paired_ratio, relative_spread, unpaired_ratio
from profiling.measurement.timing import (
    SETTLE_FRACTION,
    harness_floor,
    measure,
    measure_interleaved,
    no_sync,
    on_fresh_stack,
)
from profiling.presentation import noise_text
from profiling.presentation.charts import run_names, speedup_table


def test_paired_ratio_by_hand():
    a = [2.0] * 10
    b = [2.2, 1.8, 2.4, 2.0, 2.6, 2.1, 1.9, 2.3, 2.5, 2.7]
    # ratios sorted: .90 .95 1.0 1.05 1.1 1.15 1.2 1.25 1.3 1.35; median (1.1 + 1.15) / 2;
    # n = 10: the order statistics 2 and 9 bound the median with >= 95% (97.85%)
    r = paired_ratio(a, b)
    assert r.ratio == pytest.approx(1.125)
    assert (r.ci95_low, r.ci95_high) == (pytest.approx(0.95), pytest.approx(1.3))
    assert r.paired and r.n_pairs == 10 and not r.significant()


def test_pairing_cancels_drift_that_an_unpaired_ratio_cannot():
    drift = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])  # the machine slows down 7x
    a, b = drift, 1.1 * drift
    paired = paired_ratio(a, b)
    assert paired.ratio == pytest.approx(1.1)
    assert (paired.ci95_low, paired.ci95_high) == (pytest.approx(1.1), pytest.approx(1.1))
    assert paired.significant(0.05)
    stats = {"median_s": 4.0, "ci95_low_s": 1.0, "ci95_high_s": 7.0, "n_samples": 7}
    unpaired = unpaired_ratio(stats, {**stats, "median_s": 4.4, "ci95_low_s": 1.1,
                                      "ci95_high_s": 7.7})
    assert unpaired.ratio == pytest.approx(1.1) and not unpaired.paired
    assert (unpaired.ci95_low, unpaired.ci95_high) == (pytest.approx(1.1 / 7), pytest.approx(7.7))
    assert not unpaired.significant(0.05)


def test_ratio_inputs_are_checked():
    with pytest.raises(ValueError, match="same, non-zero length"):
        paired_ratio([1.0, 2.0], [1.0])
    assert unpaired_ratio({"median_s": 1.0, "ci95_low_s": None, "ci95_high_s": 1.0,
                           "n_samples": 5},
                          {"median_s": 1.0, "ci95_low_s": 1.0, "ci95_high_s": 1.0,
                           "n_samples": 5}) is None
    assert relative_spread([1.0, 1.0, 2.0, 3.0, 3.0]) == pytest.approx(2.0 / 2.0)


def test_interleaving_runs_each_callable_once_per_repeat_in_shuffled_orders():
    seen: list[str] = []
    calls = {k: ((lambda k=k: seen.append(k)), lambda: None) for k in "abc"}
    timings = measure_interleaved(calls, repeats=20, warmup=0, number=1)
    assert all(len(t.samples) == 20 for t in timings.values())
    settle = max(2, math.ceil(SETTLE_FRACTION))  # untimed calls before each timed one
    block = settle + 1
    assert len(seen) == 60 * block
    blocks = [seen[i:i + block] for i in range(0, len(seen), block)]
    assert all(len(set(b)) == 1 for b in blocks)  # settle and timed calls of one callable
    rounds = [[b[0] for b in blocks[i:i + 3]] for i in range(0, 60, 3)]
    assert all(sorted(r) == ["a", "b", "c"] for r in rounds)  # repeat i before repeat i + 1
    assert len({tuple(r) for r in rounds}) > 1  # the order is shuffled, not fixed


def test_the_first_calls_after_a_switch_are_never_timed(monkeypatch):
    """On a virtual clock, a call costs 100 right after the other callable ran and 1 otherwise
    (the cache and thread-pool state another op leaves): the timed samples see only the 1s."""
    clock = [0.0]
    last: list[str] = [""]

    def call(key: str) -> None:
        clock[0] += 1.0 if last[0] == key else 100.0
        last[0] = key

    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock[0])
    calls = {k: ((lambda k=k: call(k)), lambda: None) for k in "ab"}
    timings = measure_interleaved(calls, repeats=9, warmup=0, number=8)
    assert all(s == 1.0 for t in timings.values() for s in t.samples)
    # one callable alone has nothing to settle from
    alone = measure_interleaved({"a": calls["a"]}, repeats=5, warmup=1, number=8)
    assert alone["a"].samples == [1.0] * 5


def test_measure_keeps_every_sample_and_calibrates_number():
    timing = measure(lambda: sum(range(100)), repeats=6, min_time=0.005)
    assert len(timing.samples) == 6 and timing.number > 1
    assert all(s > 0 for s in timing.samples)
    assert 0 < harness_floor(repeats=5, min_time=0.005) < 1e-6


@pytest.mark.parametrize("mode", ["eager", "function"])
def test_no_validation_runs_inside_the_timed_loop(mode, monkeypatch):
    import tensorflow as tf

    import relu_impls
    from profiling.execution.worker import make_input, prepare_case
    from profiling.spec import Case

    checks = []
    original = relu_impls.Variant.check_dtype

    def counted(self, dtype):
        checks.append(dtype)
        return original(self, dtype)

    monkeypatch.setattr(relu_impls.Variant, "check_dtype", counted)
    case = Case(0, "nn_relu", {}, (1000,), "float32", "CPU:0", 1, "bfc", mode, "forward")
    x = make_input(tf, case.shape, case.dtype)
    call, nbytes = prepare_case(tf, case, x)
    assert len(checks) == 1 and nbytes == 8000  # validated once, when the case is prepared
    if mode == "eager":  # what is timed is the variant's own function, not relu_impls' wrapper
        assert isinstance(call, functools.partial) and call.func is tf.nn.relu
    measure(call, repeats=3, min_time=0.002)
    assert len(checks) == 1


def _depth(frame) -> int:
    n = 0
    while frame is not None:
        n, frame = n + 1, frame.f_back
    return n


def _deep(k: int, fn):
    return fn() if k == 0 else _deep(k - 1, fn)


# What an op's caller frame sees under `timeit.Timer(lambda: op()).repeat()` at a script's top
# level: the reference that `make bench-timeit` compares the tool with.
TOP_LEVEL_TIMEIT = """
import sys, timeit
def depth(f):
    n = 0
    while f is not None:
        n, f = n + 1, f.f_back
    return n
seen = []
def op():
    seen.append(depth(sys._getframe(1)))
timeit.Timer(lambda: op()).repeat(1, 1)
print(seen[0])
"""


def test_ops_timed_on_a_fresh_stack_sit_as_deep_as_under_a_top_level_timeit():
    # TF records every eager op's Python stack, so an op costs more under a deeper caller
    # (+12% at 20 frames at 1e3 here): the timed calls must not sit deeper than timeit's, wherever
    # measure is called from.
    reference = int(subprocess.run([sys.executable, "-c", TOP_LEVEL_TIMEIT], check=True,
                                   capture_output=True, text=True).stdout)
    seen: list[int] = []

    def op():
        seen.append(_depth(sys._getframe(1)))

    calls = {0: (lambda: op(), no_sync)}  # a lambda calls the op, as in `make bench`
    for caller_depth in (0, 40):
        seen.clear()
        _deep(caller_depth, lambda: on_fresh_stack(measure_interleaved, calls, repeats=2,
                                                   warmup=0, number=3))
        assert seen == [reference] * 6
    seen.clear()
    measure_interleaved(calls, repeats=1, warmup=0, number=1)  # on the caller's own stack
    assert seen[0] > reference


def test_on_fresh_stack_returns_and_raises_in_the_callers_thread():
    assert on_fresh_stack(lambda a, b=0: (a + b, threading.get_ident()), 1, b=2)[0] == 3
    assert on_fresh_stack(threading.get_ident) != threading.get_ident()
    with pytest.raises(ZeroDivisionError):
        on_fresh_stack(lambda: 1 / 0)


def test_the_worker_times_its_cases_at_the_depth_of_a_top_level_timeit(monkeypatch):
    import tensorflow as tf

    from profiling.execution import worker
    from profiling.spec import Case

    reference = int(subprocess.run([sys.executable, "-c", TOP_LEVEL_TIMEIT], check=True,
                                   capture_output=True, text=True).stdout)
    depths: list[int] = []
    original = timing.time_batch

    def time_batch(call, number, sync=no_sync):  # stands where time_batch stands: the caller
        if sys._getframe(1).f_code.co_name == "_timed_repeat":  # of the op (a C partial)
            depths.append(_depth(sys._getframe()))  # in a timed batch (not warm-up or autorange)
        return original(call, number, sync)

    monkeypatch.setattr(timing, "time_batch", time_batch)
    case = Case(0, "nn_relu", {}, (1000,), "float32", "CPU:0", 1, "bfc", "eager", "forward")
    reply = _deep(30, lambda: worker.run_group(tf, {"cases": [case.to_json()], "repeats": 2,
                                                    "min_time": 0.001, "warmup": 1}))
    assert reply["results"][0]["status"] == "ok" and len(reply["results"][0]["samples"]) == 2
    assert depths == [reference] * 2


def test_the_public_callable_wraps_the_raw_function():
    import tensorflow as tf

    import relu_impls
    from relu_impls import custom_op

    assert relu_impls.get("custom_op").impl is custom_op.custom_relu
    assert relu_impls.get("nn_relu").impl is tf.nn.relu
    with pytest.raises(TypeError, match="does not support dtype int32"):
        relu_impls.get("nn_relu")(tf.constant([1, -1]))


def test_roof_interpolates_in_log_log_and_clamps():
    curve = [{"working_set_bytes": 1_000, "gbps": 10.0},
             {"working_set_bytes": 100_000, "gbps": 1_000.0}]
    assert roof.roof_at(curve, 10_000) == pytest.approx(100.0)
    assert roof.roof_at(curve, 10) == 10.0 and roof.roof_at(curve, 10**9) == 1_000.0
    assert roof.roof_at([], 1000) is None
    best = roof.best_of(curve, [{"working_set_bytes": 1_000, "gbps": 12.0}])
    assert [p["gbps"] for p in best] == [12.0, 1_000.0]


def test_working_sets_cover_every_cache_level(tmp_path):
    for i, (level, kind, size) in enumerate([(1, "Data", "48K"), (1, "Instruction", "32K"),
                                             (2, "Unified", "2048K"), (3, "Unified", "300M")]):
        d = tmp_path / f"index{i}"
        d.mkdir()
        (d / "level").write_text(f"{level}\n")
        (d / "type").write_text(f"{kind}\n")
        (d / "size").write_text(f"{size}\n")
    caches = roof.cache_sizes(tmp_path)
    assert caches == {1: 48 << 10, 2: 2 << 20, 3: 300 << 20}
    sizes = roof.working_sets(caches, 24 << 30)
    assert sizes == sorted(sizes) and sizes[0] == 4 << 10
    assert sizes[-1] == 4 * (300 << 20)  # several times the last-level cache
    for size in caches.values():  # points inside and beyond every level
        assert any(s < size for s in sizes) and any(s > size for s in sizes)
    assert roof.working_sets(caches, 1 << 30)[-1] <= (1 << 30) // 8  # memory bounds it


def test_noise_between_counts_only_other_processes():
    before = noise.Snapshot(wall_s=0.0, load1=1.0, busy_s=100.0, steal_s=0.0, total_s=200.0,
                            own_cpu_s=10.0)
    quiet = noise.Snapshot(wall_s=1.0, load1=1.0, busy_s=101.0, steal_s=0.0, total_s=202.0,
                           own_cpu_s=11.0)  # all the busy time was ours
    assert not noise.between(before, quiet)["noisy"]
    busy = noise.Snapshot(wall_s=1.0, load1=3.0, busy_s=102.0, steal_s=0.2, total_s=202.0,
                          own_cpu_s=11.0)
    g = noise.between(before, busy)
    assert g["noisy"] and g["steal_frac"] == pytest.approx(0.1)
    assert g["other_cpu_frac"] == pytest.approx(1.0 / (1.0 * noise.psutil.cpu_count()))
    verdict = noise.verdict([{"group": "1000 eager", **g}], [("a", 0.02), ("b", 0.3)])
    assert verdict["verdict"] == "noisy" and len(verdict["reasons"]) == 3
    assert "widest 30% (b)" in verdict["reasons"][-1]
    assert noise.verdict([], [])["verdict"] == "unknown"
    assert noise.verdict([{"group": "g", **noise.between(before, quiet)}],
                         [("a", 0.02)])["verdict"] == "quiet"
    assert noise_text.stored("not json", "r1")["verdict"] == "unknown"
    assert noise_text.stored('{"verdict": "noisy", "reasons": ["busy"]}', "r2")["reasons"] == ["busy"]


def test_noise_snapshot_reads_the_machine_through_psutil():
    first = noise.psutil.cpu_times()
    before = noise.snapshot()
    end = time.process_time() + 0.3
    while time.process_time() < end:  # burn 0.3 s of CPU in this process
        pass
    after = noise.snapshot()
    last = noise.psutil.cpu_times()
    assert first.steal <= before.steal_s <= after.steal_s <= last.steal  # steal: psutil's own
    assert first.idle <= before.total_s - before.busy_s <= last.idle + last.iowait + 1
    assert after.own_cpu_s - before.own_cpu_s >= 0.25
    # the machine's busy time includes ours (counters tick at 100 Hz)
    assert after.busy_s - before.busy_s >= 0.2
    assert after.total_s - before.total_s >= after.busy_s - before.busy_s


def test_run_names_are_short_and_unique():
    same_day = pd.DataFrame({"run_id": ["20261127-101500-aaaaaa", "20261127-101501-bbbbbb"],
                             "run_label": ["", ""]})
    assert run_names(same_day) == {"20261127-101500-aaaaaa": "101500-aaaaaa",
                                   "20261127-101501-bbbbbb": "101501-bbbbbb"}
    labelled = same_day.assign(run_label=["laptop", "laptop"])
    assert set(run_names(labelled).values()) == {"laptop (101500-aaaaaa)",
                                                 "laptop (101501-bbbbbb)"}
    unique = same_day.assign(run_label=["before", "after"])
    assert run_names(unique) == {"20261127-101500-aaaaaa": "before",
                                 "20261127-101501-bbbbbb": "after"}
    days = pd.DataFrame({"run_id": ["20261126-1-a", "20261127-1-b"], "run_label": ["", ""]})
    assert run_names(days) == {"20261126-1-a": "20261126-1-a", "20261127-1-b": "20261127-1-b"}


def _case(variant: str, median: float, **extra) -> dict:
    return {"run_id": "r", "case_id": f"r-{variant}", "variant": variant, "label": variant,
            "shape": "1000", "numel": 1000, "dtype": "float32", "device": "CPU:0", "threads": 2,
            "allocator": "bfc", "mode": "eager", "pass": "forward", "status": "ok",
            "median_s": median, "ci95_low_s": median * 0.9, "ci95_high_s": median * 1.1,
            "ci95_s": median * 0.1, "n_samples": 7, **extra}


def test_speedup_uses_the_paired_ratio_and_never_invents_a_ci():
    cases = pd.DataFrame([
        _case("nn_relu", 1.0, baseline_case_id="r-nn_relu", ratio_to_baseline=1.0,
              ratio_ci95_low=1.0, ratio_ci95_high=1.0),
        _case("custom_op", 0.8, baseline_case_id="r-nn_relu", ratio_to_baseline=0.8,
              ratio_ci95_low=0.78, ratio_ci95_high=0.82),
        _case("maximum", 2.0, ci95_low_s=None, ci95_high_s=None),  # e.g. an old row, no CI
    ])
    table = speedup_table(cases, "nn_relu").set_index("variant")
    custom = table.loc["custom_op"]
    assert custom.paired and custom.speedup == pytest.approx(1.25)
    assert (custom.speedup_low, custom.speedup_high) == (pytest.approx(1 / 0.82),
                                                         pytest.approx(1 / 0.78))
    assert custom.significant
    maximum = table.loc["maximum"]
    assert maximum.speedup == pytest.approx(0.5) and not maximum.paired
    assert np.isnan(maximum.speedup_low) and not maximum.significant


def test_compare_calls_only_a_ci_beyond_the_threshold_a_regression():
    a = pd.DataFrame([_case("nn_relu", 1.0)])
    same = compare_runs(a, a.copy(), 0.05)
    assert not same.regression.any() and not same.improvement.any()
    slightly = pd.DataFrame([_case("nn_relu", 1.06)])  # 6% slower, CIs overlap widely
    assert not compare_runs(a, slightly, 0.05).regression.any()
    much = pd.DataFrame([_case("nn_relu", 1.5, ci95_low_s=1.45, ci95_high_s=1.55)])
    table = compare_runs(pd.DataFrame([_case("nn_relu", 1.0, ci95_low_s=0.98,
                                             ci95_high_s=1.02)]), much, 0.05)
    assert table.regression.all() and table.ratio_low.iloc[0] == pytest.approx(1.45 / 1.02)


def test_harness_floor_text_names_the_share_of_the_fastest_case():
    from profiling.presentation.charts import harness_floor_text

    cases = pd.DataFrame([_case("nn_relu", 1e-6, floor_s=2e-8), _case("where", 4e-6, floor_s=2e-8)])
    assert harness_floor_text(cases) == ("Harness floor: 20 ns per call (the timing loop around a "
                                         "call that does nothing), 2.0% of the fastest case.")
    assert harness_floor_text(cases.drop(columns="floor_s")) is None


def test_speedup_table_takes_cases_whose_settings_are_all_missing():
    rows = [_case("nn_relu", 1.0, threads=None, allocator=None),
            _case("where", 2.0, threads=None, allocator=None)]
    table = speedup_table(pd.DataFrame(rows), "nn_relu")
    assert table.speedup.tolist() == [pytest.approx(0.5)]


def test_case_links_table_names_the_run_when_two_runs_share_labels():
    from app.case_links import case_rows

    rows = []
    for run_id in ("20261127-101500-aaaaaa", "20261127-101501-bbbbbb"):
        for variant in ("nn_relu", "where"):
            rows.append({**_case(variant, 1e-5, gbps=1.0, utilization=0.5,
                                 page_faults_per_call=0.0),
                         "run_id": run_id, "case_id": f"{run_id}-{variant}", "run_label": ""})
    table = case_rows(pd.DataFrame(rows), frozenset())
    assert sorted(set(table["run"])) == ["101500-aaaaaa", "101501-bbbbbb"] and len(table) == 4


def test_the_stack_depth_bench_puts_the_loop_in_the_frame_it_names():
    from profiling.bench.stack_depth import at_frame, depth_costs

    assert [at_frame(d, lambda: _depth(sys._getframe())) for d in (2, 3, 17)] == [2, 3, 17]
    with pytest.raises(ValueError, match="frame must be >= 2"):
        at_frame(1, print)
    rows = depth_costs(1000, [5, 30], rounds=6, min_time=0.001)
    assert [r["depth"] for r in rows] == [5, 30] and all(len(r["samples"]) == 6 for r in rows)
    assert rows[0]["ratio_to_first"] == 1.0 and rows[1]["ratio_ci95_low"] is not None


def test_the_roofs_copy_is_timed_beside_each_group_and_raises_a_low_stored_roof():
    # A roof calibrated in a slow moment of a shared VM read 5.1 GB/s at 80 KB, where the cases
    # then ran at 6-8 GB/s (120-144% utilization on a fresh store): the copy timed in the same
    # seconds as the group bounds each case's utilization instead.
    import tensorflow as tf

    from profiling.execution import worker
    from profiling.execution.runner import result_row
    from profiling.spec import Case

    cases = [Case(i, v, {}, (10_000,), "float32", "CPU:0", 1, "bfc", "eager", "forward")
             for i, v in enumerate(("nn_relu", "custom_op"))]
    reply = worker.run_group(tf, {"cases": [c.to_json() for c in cases], "repeats": 3,
                                  "min_time": 0.002, "warmup": 1, "probe": True})
    results = reply["results"]
    assert all(r["status"] == "ok" and r["bytes_per_call"] == 80_000 for r in results)
    assert all(r["probe_gbps"] > 0 and len(r["samples"]) == 3 for r in results)
    low_curve = [{"working_set_bytes": 80_000, "gbps": results[0]["probe_gbps"] / 10}]
    row = result_row("r", cases[0], results[0], low_curve)
    assert row["roof_gbps"] == results[0]["probe_gbps"]
    assert row["utilization"] == pytest.approx(row["gbps"] / results[0]["probe_gbps"])
    high_curve = [{"working_set_bytes": 80_000, "gbps": results[0]["probe_gbps"] * 10}]
    assert result_row("r", cases[0], results[0], high_curve)["roof_gbps"] == high_curve[0]["gbps"]
    plain = worker.run_group(tf, {"cases": [cases[0].to_json()], "repeats": 2,
                                  "min_time": 0.002, "warmup": 1})
    assert "probe_gbps" not in plain["results"][0]  # only when the request asks for it
