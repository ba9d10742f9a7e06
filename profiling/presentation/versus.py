"""B against A: each other run's speedup over a baseline run, case by case, as a table and a
display table (the Compare page, the HTML report, CSV); its chart is `versus_svg`.

The matching and the statistics are `analysis.compare.compare_runs` (the CLI's `compare`):
two runs never share a worker, so the speedup's CI is the unpaired one
(`stats.unpaired_ratio`), and the verdict is the lab's one significance rule
(`RatioStats.change`) with the threshold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from profiling.analysis.compare import MATCH_KEYS, compare_runs
from profiling.presentation import units
from profiling.presentation.charts import DEFAULT_THRESHOLD

VERSUS_COLUMNS = ["run_b", "case", "variant", *MATCH_KEYS, "median_s_a", "median_s_b",
                  "speedup", "speedup_ci95_low", "speedup_ci95_high", "verdict"]


STAT_COLUMNS = ["run_id", "variant", "status", "median_s", "ci95_low_s", "ci95_high_s",
                "ci95_s", "n_samples"]


def versus_table(cases: pd.DataFrame, base_run: str,
                 threshold: float = DEFAULT_THRESHOLD) -> pd.DataFrame:
    """Each run other than ``base_run`` (B) against it (A), per matched case (same variant
    and parameters, shape, dtype, device, threads, allocator, mode and pass): ``median_s_a``,
    ``median_s_b`` (s per call), ``speedup`` = t_A / t_B (above 1: B is faster) with its 95%
    CI, and ``verdict``: faster, slower or not resolved (the CI lies wholly beyond
    1 ± ``threshold``, a fraction, or not). ``run_b`` is B's id, ``case`` a short name of the
    case. Sorted by effect: the largest change first, within each B in the order of the runs."""
    if cases.empty or "run_id" not in cases.columns:
        return pd.DataFrame(columns=VERSUS_COLUMNS)
    # Only the columns the match needs: merging the store's ~50 columns cost seconds at 20 runs.
    frame = cases[[c for c in MATCH_KEYS + STAT_COLUMNS if c in cases.columns]]
    is_a = (frame["run_id"] == base_run).to_numpy()
    table = compare_runs(frame[is_a], frame[~is_a], threshold, keep=("run_id_b", "variant_b"))
    if table.empty:
        return pd.DataFrame(columns=VERSUS_COLUMNS)
    table = table.rename(columns={"run_id_b": "run_b", "variant_b": "variant"})
    table["verdict"] = np.select([table["regression"].to_numpy(bool),
                                  table["improvement"].to_numpy(bool)],
                                 ["slower", "faster"], "not resolved")
    order = {run: index for index, run in enumerate(dict.fromkeys(cases["run_id"]))}
    effect = np.abs(np.log(pd.to_numeric(table["speedup"], errors="coerce")))
    table = table.assign(_order=table["run_b"].map(order), _effect=-effect.fillna(0)) \
        .sort_values(["_order", "_effect"], kind="stable")
    table["case"] = case_names(table)
    return table[VERSUS_COLUMNS].reset_index(drop=True)


def case_names(table: pd.DataFrame) -> pd.Series:
    """'leaky(alpha=0.2) · 1000x1000 · function': the label, the shape and the settings that
    vary among these rows."""
    names = table["label"].astype(str) + " · " + table["shape"].astype(str)
    for column in MATCH_KEYS[2:]:
        if column in table.columns and table[column].astype(str).nunique() > 1:
            values = table[column].astype(str)
            names = names + " · " + (values + " threads" if column == "threads" else values)
    return names


def versus_display(table: pd.DataFrame, names: Mapping[str, str],
                   base_run: str) -> pd.DataFrame:
    """The table as people read it (the page, the report): B, the case, both times, the
    speedup with its CI as '1.48× [1.41, 1.55]', the verdict."""
    base = names.get(base_run, base_run)
    return pd.DataFrame({
        "B": [names.get(r, r) for r in table["run_b"]],
        "case": table["case"],
        f"time A ({base})": [units.format_time(v) for v in table["median_s_a"]],
        "time B": [units.format_time(v) for v in table["median_s_b"]],
        "speedup B vs A [95% CI]": [
            units.format_speedup(s, lo, hi) for s, lo, hi in
            zip(table["speedup"], table["speedup_ci95_low"], table["speedup_ci95_high"],
                strict=True)],
        "verdict": table["verdict"],
    })


def versus_csv(table: pd.DataFrame, base_run: str) -> str:
    """The table as CSV, numbers unrounded (seconds per call; speedup = t_A / t_B)."""
    return table.assign(run_a=base_run)[["run_a", *VERSUS_COLUMNS]].to_csv(index=False)


def threshold_band(threshold: float) -> tuple[float, float]:
    """The speedups that can never be called a change: the speedup is the ratio's inverse, and
    a change needs the ratio's CI beyond 1 ± threshold."""
    return 1 / (1 + threshold), (1 / (1 - threshold) if threshold < 1 else math.inf)
