"""Trace diff: what changed between two traces, op by op, and in the time breakdown.

Each trace is reduced to a DiffSide (its per-op table, breakdown and span) before the two are
compared, so a caller holding big traces can read, reduce and drop one before reading the next:
the diff then needs one trace in memory at a time, as a summary does.
"""

from __future__ import annotations

from dataclasses import dataclass

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
KINDS = ("compute", "memcpy", "collective", "idle", "other")


@dataclass
class DiffSide:
    """What a diff needs of one trace. ops: name, occurrences, self_us, cpu_us per op
    (op_stats.op_table, "end: …" markers left out); op_time: the figure cpu_us is
    (attribution's time_label); breakdown: time_breakdown's dict; duration_us: the span."""

    ops: pd.DataFrame
    op_time: str
    breakdown: dict
    duration_us: float


def diff_side(events: pd.DataFrame) -> DiffSide:
    """The DiffSide of a trace's events (classified and attributed once)."""
    kind = classify_events(events) if not events.empty else None
    att = attribute(events, kind)
    table = op_table(events, kind, att)[["name", "occurrences", "self_us", "cpu_us"]]
    label = att.time_label
    del att
    table = table[~table["name"].astype(str).str.startswith(END_MARKER)]
    return DiffSide(table, label, time_breakdown(events, kind), span_us(events))


def _side(trace: pd.DataFrame | DiffSide) -> DiffSide:
    return trace if isinstance(trace, DiffSide) else diff_side(trace)


def op_diff(a: pd.DataFrame | DiffSide, b: pd.DataFrame | DiffSide) -> pd.DataFrame:
    """Per op name: occurrences, self time (own thread) and CPU time (own + pool work,
    profiling.traces.attribution) in µs, in A and B; delta = B - A and ratio = B / A of the CPU
    time (NaN where A has none; equal to self time on traces without pool work); sorted by
    |delta_us|, the biggest change first; "end: …" markers left out. ``attrs["time"]`` names
    the figure compared. A and B: events frames or their DiffSides."""
    sa, sb = _side(a), _side(b)
    m = sa.ops.merge(sb.ops, on="name", how="outer", suffixes=("_a", "_b"))
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
    out.attrs["time"] = SELF_TIME_LABEL if sa.op_time == sb.op_time == SELF_TIME_LABEL \
        else CPU_TIME_LABEL
    return out


def breakdown_diff(a: pd.DataFrame | DiffSide, b: pd.DataFrame | DiffSide) -> pd.DataFrame:
    """Both wall breakdowns side by side: kind, a_us, b_us, delta_us."""
    ba, bb = _side(a).breakdown, _side(b).breakdown
    return pd.DataFrame({"kind": KINDS, "a_us": [ba[f"{k}_us"] for k in KINDS],
                         "b_us": [bb[f"{k}_us"] for k in KINDS],
                         "delta_us": [bb[f"{k}_us"] - ba[f"{k}_us"] for k in KINDS]})


def trace_diff(a: pd.DataFrame | DiffSide, b: pd.DataFrame | DiffSide, top: int = 30) -> dict:
    """ops (op_diff, first `top` rows), op_time (the figure delta_us compares: "CPU time = own
    + pool work" when either trace has pool work, else "self time"), breakdown
    (breakdown_diff), duration_a_us/_b_us. A and B: events frames or their DiffSides."""
    sa, sb = _side(a), _side(b)
    ops = op_diff(sa, sb)
    return {"ops": ops.head(top), "op_time": ops.attrs["time"],
            "breakdown": breakdown_diff(sa, sb),
            "duration_a_us": sa.duration_us, "duration_b_us": sb.duration_us}
