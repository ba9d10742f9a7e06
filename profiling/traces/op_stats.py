"""Which ops took the time: per-op occurrences, self and total time."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

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


def top_ops(events: pd.DataFrame, top: int = 20, kind: pd.Series | None = None) -> pd.DataFrame:
    """name, occurrences, self_us, total_us, pct (of the ops' summed self time), by self time.
    Summed per name code (np.bincount), so a big trace's ops are never copied into a frame."""
    cols = ["name", "occurrences", "self_us", "total_us", "pct"]
    if events.empty:
        return pd.DataFrame(columns=cols)
    kind = classify_events(events) if kind is None else kind
    codes, names = category_codes(events["name"], None)
    ops = (kind.cat.codes.to_numpy() != KINDS.index("other")) & (codes >= 0)
    if not ops.any():  # nothing classified: every event counts
        ops = codes >= 0
    if not ops.any():
        return pd.DataFrame(columns=cols)
    picked = codes[ops]
    occurrences = np.bincount(picked, minlength=len(names))
    self_us = np.bincount(picked, weights=events["self_us"].to_numpy(float)[ops],
                          minlength=len(names))
    total_us = np.bincount(picked, weights=events["dur_us"].to_numpy(float)[ops],
                           minlength=len(names))
    seen = np.flatnonzero(occurrences)
    g = pd.DataFrame({"name": np.asarray(names, dtype=object)[seen],
                      "occurrences": occurrences[seen], "self_us": self_us[seen],
                      "total_us": total_us[seen]})
    total = g.self_us.sum()
    g["pct"] = 100 * g.self_us / total if total else 0.0
    g = g.sort_values(["self_us", "name"], ascending=[False, True]).head(top)
    return g[cols].reset_index(drop=True)


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
