"""Where the time went: compute, memory copies, communication, idle, other.

Two busy measures, both in µs:

- **wall breakdown** (`time_breakdown`'s compute_us … other_us, what the store keeps): on each
  thread an instant belongs to its innermost event; each instant of the trace's wall span
  (first start to last end) goes to the highest-priority kind running on any thread then — compute, then collective (communication), then memcpy,
  then other; idle_us is the span with no event at all. The five add up to the span, and
  busy_us (span - idle) is the union of all events over threads. A thread waiting for another
  thread's kernel does not turn compute time into overhead.
- **thread time** (`thread_time`): self time per kind summed over threads (nested time counted
  once, for the innermost event); it can exceed the span when threads run in parallel.

compute_comm_ratio = compute / communication in thread time (overlap hides neither side); None
when the trace holds no communication at all. Same-device copies (memcpy) are not communication.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from profiling.traces.classify import KINDS, classify_events, is_profiler_range

PRIORITY = ("compute", "collective", "memcpy", "other")


def union_length(ts: np.ndarray, end: np.ndarray, presorted: bool = False) -> float:
    """Length of the union of [ts, end) intervals (vectorized: sort, running max of ends)."""
    if len(ts) == 0:
        return 0.0
    if not presorted:
        order = np.argsort(ts, kind="stable")
        ts, end = ts[order], end[order]
    reach = np.maximum.accumulate(end)
    reach[1:] = reach[:-1]  # the furthest end before each interval
    reach[0] = -np.inf
    np.maximum(reach, ts, out=reach)
    np.subtract(end, reach, out=reach)
    return float(np.maximum(reach, 0.0, out=reach).sum())


def busy_union_us(ts: np.ndarray, end: np.ndarray) -> float:
    """Length (µs) of the union of [ts, end) intervals."""
    return union_length(np.asarray(ts, float), np.asarray(end, float))


def lane_busy(events: pd.DataFrame) -> pd.DataFrame:
    """Per thread (pid, tid): busy_us (union of its events) and idle_us over the trace span."""
    if events.empty:
        return pd.DataFrame(columns=["pid", "tid", "busy_us", "idle_us"])
    end = events.ts_us + events.dur_us
    span = float(end.max() - events.ts_us.min())
    rows = []
    for (pid, tid), g in events.groupby(["pid", "tid"], sort=True, observed=True):
        busy = busy_union_us(g.ts_us.to_numpy(float), (g.ts_us + g.dur_us).to_numpy(float))
        rows.append({"pid": pid, "tid": tid, "busy_us": busy, "idle_us": max(0.0, span - busy)})
    return pd.DataFrame(rows)


def exclusive_pieces(events: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, end, row) of the pieces of each event's own time on its thread: its interval
    minus its children's, so each instant of a thread belongs to its innermost event."""
    ts = events.ts_us.to_numpy(float)
    end = ts + events.dur_us.to_numpy(float)
    parent = events.parent.to_numpy(np.int64)
    n = len(ts)
    rows = np.arange(n, dtype=np.int32 if n < 2**31 else np.int64)
    child = rows[parent >= 0]
    # siblings are contiguous after a stable sort by parent, in start order
    child = child[np.argsort(parent[child], kind="stable")]
    p = parent[child]
    first = np.ones(len(child), dtype=bool)
    first[1:] = p[1:] != p[:-1]
    prev_end = np.where(first, ts[p], np.concatenate([[0.0], end[child[:-1]]]))
    gap_start, gap_end, gap_row = prev_end, np.minimum(ts[child], end[p]), p
    last = np.ones(len(child), dtype=bool)
    last[:-1] = p[:-1] != p[1:]
    tail_from = ts.copy()
    tail_from[p[last]] = np.minimum(end[child[last]], end[p[last]])
    starts = np.concatenate([gap_start, tail_from])
    ends = np.concatenate([gap_end, end])
    owner = np.concatenate([gap_row, rows])
    ok = ends > starts
    return starts[ok], ends[ok], owner[ok]


def time_breakdown(events: pd.DataFrame, kind: pd.Series | None = None) -> dict:
    """compute_us, memcpy_us, collective_us (communication), idle_us, other_us: the wall span
    split by what ran (see the module docstring); busy_us; thread_time (self µs per kind summed
    over threads); compute_comm_ratio (None without communication). The profiler's own capture
    range is left out: it covers the other lanes' work rather than being work."""
    empty = {f"{k}_us": 0.0 for k in ("compute", "memcpy", "collective", "idle", "other")}
    if events.empty:
        return {**empty, "busy_us": 0.0, "thread_time": {f"{k}_us": 0.0 for k in PRIORITY},
                "compute_comm_ratio": None}
    kind = classify_events(events) if kind is None else kind
    keep = ~is_profiler_range(events).to_numpy(bool)
    kinds = kind.cat.codes.to_numpy()  # positions in KINDS
    ts, end, owner = exclusive_pieces(events)
    if not keep.all():
        kept = keep[owner]
        ts, end, owner = ts[kept], end[kept], owner[kept]
        del kept
    order = np.argsort(ts, kind="stable")  # sorted once, for every union below
    ts = ts[order]
    end = end[order]
    k = kinds[owner[order]]
    del owner, order
    out = dict(empty)
    if len(ts):
        span = float(end.max() - ts.min())
        covered = 0.0
        mask = np.zeros(len(ts), dtype=bool)
        for name in PRIORITY:  # each kind gets what the kinds before it left uncovered
            mask |= k == KINDS.index(name)
            now = union_length(ts[mask], end[mask], presorted=True)
            out[f"{name}_us"] = max(now - covered, 0.0)
            covered = now
        out["idle_us"] = max(span - covered, 0.0)
    busy = span - out["idle_us"] if len(ts) else 0.0
    self_us = events.self_us.to_numpy(float)[keep]
    thread = {f"{name}_us": float(self_us[kinds[keep] == KINDS.index(name)].sum())
              for name in PRIORITY}
    comm = thread["collective_us"]
    ratio = thread["compute_us"] / comm if comm > 0 else None
    return {**out, "busy_us": busy, "thread_time": thread, "compute_comm_ratio": ratio}


def breakdown_table(events: pd.DataFrame) -> pd.DataFrame:
    """One row per kind: kind, time_us (wall breakdown), pct (of the wall span)."""
    b = time_breakdown(events)
    rows = [{"kind": k, "time_us": b[f"{k}_us"]} for k in
            ("compute", "memcpy", "collective", "idle", "other")]
    df = pd.DataFrame(rows)
    total = df.time_us.sum()
    df["pct"] = 100 * df.time_us / total if total else 0.0
    return df


def store_breakdown(b: dict) -> dict:
    """The store's breakdown row (compute_us, memcpy_us, collective_us, idle_us, other_us)."""
    return {k: b.get(k) for k in ("compute_us", "memcpy_us", "collective_us", "idle_us",
                                  "other_us")}
