"""Run B against run A, case by case: ratios of medians with CIs, regressions flagged.

Two runs are measured at different times, so their samples are not paired: the ratio of the
medians is bounded by the far ends of the two medians' 95% CIs (`stats.unpaired_ratio`). A
slowdown counts as a regression only when that whole interval lies beyond 1 + max_regression
(`RatioStats.change`, the lab's one significance rule), as asv and `pyperf compare_to` call a
change only when the samples say so.
"""

from __future__ import annotations

import math

import pandas as pd

from profiling.measurement.stats import RatioStats, unpaired_ratio

MATCH_KEYS = ["label", "shape", "dtype", "device", "threads", "allocator", "mode", "pass"]
COMPARE_COLUMNS = MATCH_KEYS + ["median_s_a", "ci95_s_a", "median_s_b", "ci95_s_b", "ratio",
                                "ratio_low", "ratio_high", "speedup", "speedup_ci95_low",
                                "speedup_ci95_high", "regression", "improvement"]


def compare_runs(a: pd.DataFrame, b: pd.DataFrame, max_regression: float = 0.05,
                 keep: tuple[str, ...] = ()) -> pd.DataFrame:
    """Match ok cases of two store.cases frames on MATCH_KEYS.

    ratio = B median / A median (> 1: B slower), ratio_low/high its conservative 95% interval;
    speedup = A / B (> 1: B faster) with its interval; regression: the ratio's interval lies
    wholly above 1 + max_regression (a fraction, 0.05 = 5%); improvement: wholly below
    1 - max_regression. A case without a CI on either side is neither. ``keep``: further
    columns of the merge to return (e.g. ``run_id_b`` when ``b`` holds several runs).
    """
    a_ok, b_ok = a[a.status == "ok"], b[b.status == "ok"]
    m = a_ok.merge(b_ok, on=MATCH_KEYS, suffixes=("_a", "_b"))
    if m.empty:
        return pd.DataFrame(columns=COMPARE_COLUMNS + list(keep))
    nan = RatioStats(math.nan, math.nan, math.nan, 0, False)
    ratios = [unpaired_ratio(
        {"median_s": r.median_s_a, "ci95_low_s": r.ci95_low_s_a, "ci95_high_s": r.ci95_high_s_a,
         "n_samples": getattr(r, "n_samples_a", 0)},
        {"median_s": r.median_s_b, "ci95_low_s": r.ci95_low_s_b, "ci95_high_s": r.ci95_high_s_b,
         "n_samples": getattr(r, "n_samples_b", 0)}) or nan for r in m.itertuples()]
    m["ratio"] = m.median_s_b / m.median_s_a
    m["ratio_low"] = [r.ci95_low for r in ratios]
    m["ratio_high"] = [r.ci95_high for r in ratios]
    m["speedup"] = m.median_s_a / m.median_s_b
    m["speedup_ci95_low"] = [r.speedup_ci95[0] for r in ratios]
    m["speedup_ci95_high"] = [r.speedup_ci95[1] for r in ratios]
    changes = [r.change(max_regression) for r in ratios]
    m["regression"] = [c == "slower" for c in changes]
    m["improvement"] = [c == "faster" for c in changes]
    return m[COMPARE_COLUMNS + list(keep)]
