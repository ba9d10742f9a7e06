"""Run B against run A, case by case: ratios of medians with CIs, regressions flagged.

Two runs are measured at different times, so their samples are not paired: the ratio of the
medians is bounded by the far ends of the two medians' 95% CIs (`stats.unpaired_ratio`). A
slowdown counts as a regression only when that whole interval lies beyond 1 + max_regression,
as asv and `pyperf compare_to` call a change only when the samples say so.
"""

from __future__ import annotations

import pandas as pd

from profiling.measurement.stats import unpaired_ratio

MATCH_KEYS = ["label", "shape", "dtype", "device", "threads", "allocator", "mode", "pass"]
COMPARE_COLUMNS = MATCH_KEYS + ["median_s_a", "ci95_s_a", "median_s_b", "ci95_s_b", "ratio",
                                "ratio_low", "ratio_high", "regression", "improvement"]


def compare_runs(a: pd.DataFrame, b: pd.DataFrame, max_regression: float = 0.05
                 ) -> pd.DataFrame:
    """Match ok cases of two store.cases frames on MATCH_KEYS.

    ratio = B median / A median (> 1: B slower), ratio_low/high its conservative 95% interval;
    regression = ratio_low > 1 + max_regression (a fraction, 0.05 = 5%); improvement = ratio_high
    < 1 - max_regression. A case without a CI on either side is neither.
    """
    a_ok, b_ok = a[a.status == "ok"], b[b.status == "ok"]
    m = a_ok.merge(b_ok, on=MATCH_KEYS, suffixes=("_a", "_b"))
    if m.empty:
        return pd.DataFrame(columns=COMPARE_COLUMNS)
    ratios = [unpaired_ratio(
        {"median_s": r.median_s_a, "ci95_low_s": r.ci95_low_s_a, "ci95_high_s": r.ci95_high_s_a,
         "n_samples": getattr(r, "n_samples_a", 0)},
        {"median_s": r.median_s_b, "ci95_low_s": r.ci95_low_s_b, "ci95_high_s": r.ci95_high_s_b,
         "n_samples": getattr(r, "n_samples_b", 0)}) for r in m.itertuples()]
    m["ratio"] = m.median_s_b / m.median_s_a
    m["ratio_low"] = [r.ci95_low if r else float("nan") for r in ratios]
    m["ratio_high"] = [r.ci95_high if r else float("nan") for r in ratios]
    m["regression"] = m.ratio_low > 1 + max_regression
    m["improvement"] = m.ratio_high < 1 - max_regression
    return m[COMPARE_COLUMNS]
