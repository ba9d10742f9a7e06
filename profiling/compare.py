"""Run B against run A, case by case: ratios of medians with CIs, regressions flagged."""

from __future__ import annotations

import pandas as pd

MATCH_KEYS = ["label", "shape", "dtype", "device", "threads", "allocator", "mode", "pass"]


def compare_runs(a: pd.DataFrame, b: pd.DataFrame, max_regression: float = 0.05
                 ) -> pd.DataFrame:
    """Match ok cases of two store.cases frames on MATCH_KEYS.

    ratio = B median / A median (> 1: B slower); ratio_low/high bound it with the medians'
    95% CIs; regression = ratio > 1 + max_regression (a fraction, 0.05 = 5%) and B's CI lies
    entirely above A's; improvement is the mirror image.
    """
    a_ok, b_ok = a[a.status == "ok"], b[b.status == "ok"]
    m = a_ok.merge(b_ok, on=MATCH_KEYS, suffixes=("_a", "_b"))
    m["ratio"] = m.median_s_b / m.median_s_a
    m["ratio_low"] = m.ci95_low_s_b / m.ci95_high_s_a
    m["ratio_high"] = m.ci95_high_s_b / m.ci95_low_s_a
    m["regression"] = (m.ratio > 1 + max_regression) & (m.ci95_low_s_b > m.ci95_high_s_a)
    m["improvement"] = (m.ratio < 1 - max_regression) & (m.ci95_high_s_b < m.ci95_low_s_a)
    return m[MATCH_KEYS + ["median_s_a", "ci95_s_a", "median_s_b", "ci95_s_b", "ratio",
                           "ratio_low", "ratio_high", "regression", "improvement"]]
