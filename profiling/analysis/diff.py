"""Trace diff: what changed between two traces, op by op, and in the time breakdown."""

from __future__ import annotations

import numpy as np
import pandas as pd

from profiling.traces.breakdown import time_breakdown
from profiling.traces.op_stats import op_events

DIFF_COLUMNS = ["name", "occurrences_a", "occurrences_b", "self_us_a", "self_us_b",
                "delta_us", "delta_occurrences", "ratio"]


def _per_op(events: pd.DataFrame) -> pd.DataFrame:
    ops = op_events(events)
    if ops.empty:
        return pd.DataFrame(columns=["name", "occurrences", "self_us"])
    return ops.groupby(ops["name"].astype(str)).agg(
        occurrences=("self_us", "size"), self_us=("self_us", "sum")).reset_index()


def op_diff(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Per op name: occurrences and self time (µs) in A and B, delta = B - A, ratio = B / A
    (NaN where A has none); sorted by |delta_us|, the biggest change first."""
    m = _per_op(a).merge(_per_op(b), on="name", how="outer", suffixes=("_a", "_b"))
    for c in ("occurrences_a", "occurrences_b", "self_us_a", "self_us_b"):
        m[c] = m[c].fillna(0)
    m["occurrences_a"] = m["occurrences_a"].astype(int)
    m["occurrences_b"] = m["occurrences_b"].astype(int)
    m["delta_us"] = m["self_us_b"] - m["self_us_a"]
    m["delta_occurrences"] = m["occurrences_b"] - m["occurrences_a"]
    with np.errstate(divide="ignore", invalid="ignore"):
        m["ratio"] = np.where(m["self_us_a"] > 0, m["self_us_b"] / m["self_us_a"], np.nan)
    order = m["delta_us"].abs().sort_values(ascending=False, kind="stable").index
    return m.loc[order, DIFF_COLUMNS].reset_index(drop=True)


def breakdown_diff(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Both wall breakdowns side by side: kind, a_us, b_us, delta_us."""
    ba, bb = time_breakdown(a), time_breakdown(b)
    kinds = ("compute", "memcpy", "collective", "idle", "other")
    return pd.DataFrame({"kind": kinds, "a_us": [ba[f"{k}_us"] for k in kinds],
                         "b_us": [bb[f"{k}_us"] for k in kinds],
                         "delta_us": [bb[f"{k}_us"] - ba[f"{k}_us"] for k in kinds]})


def trace_diff(a: pd.DataFrame, b: pd.DataFrame, top: int = 30) -> dict:
    """ops (op_diff, first `top` rows), breakdown (breakdown_diff), duration_a_us/_b_us."""
    def span(ev: pd.DataFrame) -> float:
        return float((ev.ts_us + ev.dur_us).max() - ev.ts_us.min()) if len(ev) else 0.0

    return {"ops": op_diff(a, b).head(top), "breakdown": breakdown_diff(a, b),
            "duration_a_us": span(a), "duration_b_us": span(b)}
