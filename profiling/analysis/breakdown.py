"""Where the time went: compute, memory copies, collectives, idle, other (XProf/HTA-style)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from profiling.analysis.classify import classify_events, is_profiler_range


def busy_union_us(ts: np.ndarray, end: np.ndarray) -> float:
    """Length (µs) of the union of [ts, end) intervals."""
    if len(ts) == 0:
        return 0.0
    order = np.argsort(ts, kind="stable")
    total, cur_s, cur_e = 0.0, ts[order[0]], end[order[0]]
    for s, e in zip(ts[order[1:]], end[order[1:]], strict=True):
        if s > cur_e:
            total += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    return float(total + cur_e - cur_s)


def lane_busy(events: pd.DataFrame) -> pd.DataFrame:
    """Per thread (pid, tid): busy_us (union of its events) and idle_us over the trace span."""
    if events.empty:
        return pd.DataFrame(columns=["pid", "tid", "busy_us", "idle_us"])
    end = events.ts_us + events.dur_us
    span = float(end.max() - events.ts_us.min())
    rows = []
    for (pid, tid), g in events.groupby(["pid", "tid"], sort=True):
        busy = busy_union_us(g.ts_us.to_numpy(float), (g.ts_us + g.dur_us).to_numpy(float))
        rows.append({"pid": pid, "tid": tid, "busy_us": busy, "idle_us": max(0.0, span - busy)})
    return pd.DataFrame(rows)


def time_breakdown(events: pd.DataFrame) -> dict:
    """Totals in µs summed over threads.

    compute/memcpy/collective/other: self time of events of that kind (nested time is counted
    once, for the innermost event); idle: per thread, the trace span minus the union of that
    thread's events. compute_comm_ratio = compute / (memcpy + collective), None when no
    communication was recorded. The profiler's own capture range is left out: it covers the
    other lanes' work rather than being work.
    """
    events = events[~is_profiler_range(events)] if len(events) else events
    kind = classify_events(events) if len(events) else pd.Series(dtype=object)
    self_by_kind = events.self_us.groupby(kind).sum() if len(events) else pd.Series(dtype=float)
    out = {f"{k}_us": float(self_by_kind.get(k, 0.0)) for k in ("compute", "memcpy", "collective")}
    out["idle_us"] = float(lane_busy(events).idle_us.sum()) if len(events) else 0.0
    out["other_us"] = float(self_by_kind.get("other", 0.0))
    comm = out["memcpy_us"] + out["collective_us"]
    out["compute_comm_ratio"] = out["compute_us"] / comm if comm > 0 else None
    return out


def breakdown_table(events: pd.DataFrame) -> pd.DataFrame:
    """One row per kind: kind, time_us, pct (of the sum over all kinds including idle)."""
    b = time_breakdown(events)
    rows = [{"kind": k, "time_us": b[f"{k}_us"]} for k in
            ("compute", "memcpy", "collective", "idle", "other")]
    df = pd.DataFrame(rows)
    total = df.time_us.sum()
    df["pct"] = 100 * df.time_us / total if total else 0.0
    return df
