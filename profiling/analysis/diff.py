"""Trace diff: what changed between two traces, op by op, and in the time breakdown."""

from __future__ import annotations

import numpy as np
import pandas as pd

from profiling.traces.attribution import CPU_TIME_LABEL, SELF_TIME_LABEL, attribute
from profiling.traces.breakdown import span_us, time_breakdown
from profiling.traces.classify import classify_events
from profiling.traces.op_stats import op_table

# XLA's async ops leave an "end: <op>" marker beside the op itself: not an op of its own.
END_MARKER = "end: "
DIFF_COLUMNS = ["name", "occurrences_a", "occurrences_b", "self_us_a", "self_us_b",
                "cpu_us_a", "cpu_us_b", "delta_us", "delta_occurrences", "ratio"]


def _per_op(events: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """(op_table of the trace, which figure its cpu_us is: attribution's time_label)."""
    kind = classify_events(events) if not events.empty else None
    att = attribute(events, kind)
    table = op_table(events, kind, att)
    return table[["name", "occurrences", "self_us", "cpu_us"]], att.time_label


def op_diff(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Per op name: occurrences, self time (own thread) and CPU time (own + pool work,
    profiling.traces.attribution) in µs, in A and B; delta = B - A and ratio = B / A of the CPU
    time (NaN where A has none; equal to self time on traces without pool work); sorted by
    |delta_us|, the biggest change first; "end: …" markers left out. ``attrs["time"]`` names
    the figure compared."""
    (pa, label_a), (pb, label_b) = _per_op(a), _per_op(b)
    pa = pa[~pa["name"].astype(str).str.startswith(END_MARKER)]
    pb = pb[~pb["name"].astype(str).str.startswith(END_MARKER)]
    m = pa.merge(pb, on="name", how="outer", suffixes=("_a", "_b"))
    for c in ("occurrences_a", "occurrences_b", "self_us_a", "self_us_b", "cpu_us_a",
              "cpu_us_b"):
        m[c] = m[c].fillna(0)
    m["occurrences_a"] = m["occurrences_a"].astype(int)
    m["occurrences_b"] = m["occurrences_b"].astype(int)
    m["delta_us"] = m["cpu_us_b"] - m["cpu_us_a"]
    m["delta_occurrences"] = m["occurrences_b"] - m["occurrences_a"]
    with np.errstate(divide="ignore", invalid="ignore"):
        m["ratio"] = np.where(m["cpu_us_a"] > 0, m["cpu_us_b"] / m["cpu_us_a"], np.nan)
    order = m["delta_us"].abs().sort_values(ascending=False, kind="stable").index
    out = m.loc[order, DIFF_COLUMNS].reset_index(drop=True)
    out.attrs["time"] = SELF_TIME_LABEL if label_a == label_b == SELF_TIME_LABEL \
        else CPU_TIME_LABEL
    return out


def breakdown_diff(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Both wall breakdowns side by side: kind, a_us, b_us, delta_us."""
    ba, bb = time_breakdown(a), time_breakdown(b)
    kinds = ("compute", "memcpy", "collective", "idle", "other")
    return pd.DataFrame({"kind": kinds, "a_us": [ba[f"{k}_us"] for k in kinds],
                         "b_us": [bb[f"{k}_us"] for k in kinds],
                         "delta_us": [bb[f"{k}_us"] - ba[f"{k}_us"] for k in kinds]})


def trace_diff(a: pd.DataFrame, b: pd.DataFrame, top: int = 30) -> dict:
    """ops (op_diff, first `top` rows), op_time (the figure delta_us compares: "CPU time = own
    + pool work" when either trace has pool work, else "self time"), breakdown
    (breakdown_diff), duration_a_us/_b_us."""
    ops = op_diff(a, b)
    return {"ops": ops.head(top), "op_time": ops.attrs["time"],
            "breakdown": breakdown_diff(a, b),
            "duration_a_us": span_us(a), "duration_b_us": span_us(b)}
