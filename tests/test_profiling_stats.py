"""Timing statistics against hand-computed values."""

from __future__ import annotations

import math

import pytest

from profiling.measurement.stats import (
    effective_bytes,
    median_ci_ranks,
    summarize_samples,
    throughput,
)


def test_median_ci_ranks_match_binomial_by_hand():
    # n=10: P(B<=1) = 11/1024 -> coverage of [x2, x9] = 1 - 22/1024 = 0.9785 (>= 0.95);
    # [x3, x8] would cover 1 - 2*56/1024 = 0.8906, so l=2.
    assert median_ci_ranks(10) == (2, 9, pytest.approx(1 - 22 / 1024))
    # n=5 cannot reach 95%: min..max covers 1 - 2/32.
    assert median_ci_ranks(5) == (1, 5, pytest.approx(0.9375))
    lo, hi, cov = median_ci_ranks(30)
    assert (lo, hi) == (10, 21) and cov >= 0.95


def test_summarize_samples_hand_values():
    s = summarize_samples([5.0, 1.0, 4.0, 2.0, 3.0])
    assert (s.median_s, s.min_s, s.iqr_s) == (3.0, 1.0, 2.0)
    assert (s.ci95_low_s, s.ci95_high_s, s.ci95_s) == (1.0, 5.0, 2.0)
    s10 = summarize_samples(list(range(1, 11)))
    assert (s10.ci95_low_s, s10.ci95_high_s) == (2, 9)
    assert s10.median_s == 5.5 and s10.n_samples == 10
    with pytest.raises(ValueError):
        summarize_samples([])


def test_effective_bytes_and_throughput():
    assert effective_bytes(1000, 4, 4, "forward") == 8000          # read x, write y
    assert effective_bytes(1000, 4, 4, "backward") == 20000        # + read x, dy; write dx
    assert effective_bytes(10, 1, 4, "forward") == 50
    t = throughput(1000, 8000, 1e-6, 16.0)
    assert t["gbps"] == pytest.approx(8.0) and t["utilization"] == pytest.approx(0.5)
    assert t["elements_per_s"] == pytest.approx(1e9)
    assert throughput(1000, 8000, 1e-6, None)["utilization"] is None
    assert math.isclose(throughput(1, 8, 2.0, None)["gbps"], 4e-9)


def test_compare_runs_flags_only_clear_regressions():
    import pandas as pd

    from profiling.analysis.compare import compare_runs

    base = {"label": "nn_relu", "shape": "1000", "dtype": "float32", "device": "CPU:0",
            "threads": 1, "allocator": "bfc", "mode": "eager", "pass": "forward", "status": "ok"}
    a = pd.DataFrame([{**base, "median_s": 1.0, "ci95_low_s": 0.9, "ci95_high_s": 1.1,
                       "ci95_s": 0.1}, {**base, "shape": "10", "median_s": 1.0,
                                        "ci95_low_s": 0.9, "ci95_high_s": 1.1, "ci95_s": 0.1}])
    b = pd.DataFrame([{**base, "median_s": 2.0, "ci95_low_s": 1.8, "ci95_high_s": 2.2,
                       "ci95_s": 0.2}, {**base, "shape": "10", "median_s": 1.2,
                                        "ci95_low_s": 1.0, "ci95_high_s": 1.4, "ci95_s": 0.2}])
    t = compare_runs(a, b, 0.05).set_index("shape")
    assert t.loc["1000", "ratio"] == 2.0 and t.loc["1000", "regression"]
    assert t.loc["1000", "ratio_low"] == pytest.approx(1.8 / 1.1)
    assert t.loc["10", "ratio"] == pytest.approx(1.2) and not t.loc["10", "regression"]  # CIs overlap
    assert not compare_runs(a, b, 1.5).regression.any()


def test_peak_rss_is_per_window_after_reset():
    import numpy as np

    from profiling.measurement.timing import measure, peak_rss_mb, reset_peak_rss

    big = np.ones(100 << 20, dtype=np.uint8)  # 100 MiB resident
    before = peak_rss_mb()
    del big
    if not reset_peak_rss():
        pytest.skip("no /proc/self/clear_refs here")
    timing = measure(lambda: None, repeats=5, min_time=0.001, warmup=1)
    assert timing.peak_rss_mb < before - 50  # the freed 100 MiB no longer counts
