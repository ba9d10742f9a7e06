"""Which ops took the time: per-op occurrences, self, CPU (own + pool work) and total time."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from profiling.traces.attribution import UNATTRIBUTED, Attribution, attribute
from profiling.traces.classify import KINDS, category_codes, classify_events
from profiling.traces.model import TF_OP_CAT


def op_events(events: pd.DataFrame, kind: pd.Series | None = None) -> pd.DataFrame:
    """Events that are ops (compute, memcpy, collective); all events when none are classified.
    ``kind``: classify_events(events), when the caller has it already."""
    if events.empty:
        return events
    kind = classify_events(events) if kind is None else kind
    ops = events[(kind != "other").to_numpy()]
    return ops if len(ops) else events


OP_COLUMNS = ["name", "occurrences", "self_us", "cpu_us", "total_us"]


def op_table(events: pd.DataFrame, kind: pd.Series | None = None,
             attribution: Attribution | None = None) -> pd.DataFrame:
    """Per op name, unsorted: occurrences, self_us (own thread), cpu_us (own thread + the pool
    work attributed to it, profiling.traces.attribution), total_us (summed durations). Pool work
    no op covered is one row named attribution.UNATTRIBUTED (its self, CPU and total time are
    that uncovered time; occurrences = pool events with some of it); pool events fully
    attributed are no row of their own. Summed per name code (np.bincount), so a big trace's
    ops are never copied into a frame. ``attribution``: attribute(events), when the caller has
    it already."""
    if events.empty:
        return pd.DataFrame(columns=OP_COLUMNS)
    kind = classify_events(events) if kind is None else kind
    att = attribute(events, kind) if attribution is None else attribution
    codes, names = category_codes(events["name"], None)
    ops = (kind.cat.codes.to_numpy() != KINDS.index("other")) & (codes >= 0)
    if not ops.any():  # nothing classified: every event counts
        ops = codes >= 0
    if not ops.any():
        return pd.DataFrame(columns=OP_COLUMNS)
    pool = att.is_pool_work
    leftover = ops & pool & (att.cpu_us > 0)
    ops &= ~pool
    row = np.where(leftover, len(names), codes).astype(np.int64)
    counted = ops | leftover
    picked = row[counted]
    size = len(names) + 1

    def total(values: np.ndarray) -> np.ndarray:
        return np.bincount(picked, weights=values[counted], minlength=size)

    cpu = att.cpu_us
    self_us = np.where(leftover, cpu, events["self_us"].to_numpy(float))
    dur = np.where(leftover, cpu, events["dur_us"].to_numpy(float))
    occurrences = np.bincount(picked, minlength=size)
    seen = np.flatnonzero(occurrences)
    return pd.DataFrame({"name": np.asarray(names + [UNATTRIBUTED], dtype=object)[seen],
                         "occurrences": occurrences[seen], "self_us": total(self_us)[seen],
                         "cpu_us": total(cpu)[seen], "total_us": total(dur)[seen]})


def top_ops(events: pd.DataFrame, top: int = 20, kind: pd.Series | None = None,
            attribution: Attribution | None = None) -> pd.DataFrame:
    """name, occurrences, self_us, cpu_us, total_us, pct (op_table's rows): sorted by, and pct
    of the ops' summed, CPU time (own + pool work) when the trace has pool work, else self time
    (then the two are equal). ``attrs["time"]`` says which: attribution.CPU_TIME_LABEL or
    SELF_TIME_LABEL."""
    cols = [*OP_COLUMNS, "pct"]
    kind = classify_events(events) if kind is None and not events.empty else kind
    att = attribute(events, kind) if attribution is None else attribution
    g = op_table(events, kind, att)
    by = "cpu_us" if att.has_pool_work else "self_us"
    if g.empty:
        g = pd.DataFrame(columns=cols)
    else:
        total = g[by].sum()
        g["pct"] = 100 * g[by] / total if total else 0.0
        g = g.sort_values([by, "name"], ascending=[False, True]).head(top)[cols]
        g = g.reset_index(drop=True)
    g.attrs["time"] = att.time_label
    return g


def tf_op_stats(events: pd.DataFrame) -> pd.DataFrame:
    """TensorFlow ops from a TF trace: op_name, op_type, occurrences, self_time_us, total_time_us,
    device — the store's op_stats columns."""
    cols = ["op_name", "op_type", "occurrences", "self_time_us", "total_time_us", "device"]
    ops = events[events.cat == TF_OP_CAT]
    if ops.empty:
        return pd.DataFrame(columns=cols)
    long = ops.args.map(lambda a: json.loads(a).get("long_name", ""))
    df = pd.DataFrame({"op_name": long.str.split(":").str[0], "op_type": ops.name,
                       "device": ops.process, "self": ops.self_us, "dur": ops.dur_us})
    g = df.groupby(["op_name", "op_type", "device"]).agg(
        occurrences=("self", "size"), self_time_us=("self", "sum"),
        total_time_us=("dur", "sum")).reset_index()
    return g.sort_values("self_time_us", ascending=False)[cols].reset_index(drop=True)
