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


def span_us(events: pd.DataFrame) -> float:
    """The trace's wall span (µs): the last event's end minus the first event's start; 0 when
    there are none."""
    if events.empty:
        return 0.0
    return float((events.ts_us + events.dur_us).max() - events.ts_us.min())


def lane_busy(events: pd.DataFrame) -> pd.DataFrame:
    """Per thread (pid, tid): busy_us (union of its events) and idle_us over the trace span."""
    if events.empty:
        return pd.DataFrame(columns=["pid", "tid", "busy_us", "idle_us"])
    span = span_us(events)
    rows = []
    for (pid, tid), g in events.groupby(["pid", "tid"], sort=True, observed=True):
        busy = busy_union_us(g.ts_us.to_numpy(float), (g.ts_us + g.dur_us).to_numpy(float))
        rows.append({"pid": pid, "tid": tid, "busy_us": busy, "idle_us": max(0.0, span - busy)})
    return pd.DataFrame(rows)


def exclusive_pieces(events: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, end, row) of the pieces of each event's own time on its thread: its interval
    minus its children's, so each instant of a thread belongs to its innermost event. In one
    native pass (csrc/trace_nesting.cc) when the library is built, else
    `exclusive_pieces_numpy`: the same pieces, in the same order."""
    from profiling.traces.native import library

    lib, n = library(), len(events)
    if lib is None or n == 0 or n >= 2**31:
        return exclusive_pieces_numpy(events)
    ts = np.ascontiguousarray(events.ts_us.to_numpy(float))
    dur = np.ascontiguousarray(events.dur_us.to_numpy(float))
    parent = np.ascontiguousarray(events.parent.to_numpy(), dtype=np.int32)
    size = n + int(np.count_nonzero(parent >= 0))
    starts, ends, owner = np.empty(size), np.empty(size), np.empty(size, dtype=np.int32)
    m = lib.rl_exclusive_pieces(n, *(a.ctypes.data for a in (ts, dur, parent, starts, ends,
                                                              owner)))
    if m < 0:
        raise MemoryError("exclusive_pieces")
    return starts[:m], ends[:m], owner[:m]


def exclusive_pieces_numpy(events: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`exclusive_pieces` in NumPy (the native pass's reference), with int32 rows and no
    per-piece temporaries beyond the three outputs, since a big trace has a few million
    pieces."""
    ts = events.ts_us.to_numpy(float)
    end = ts + events.dur_us.to_numpy(float)
    parent = events.parent.to_numpy()
    n = len(ts)
    row_type = np.int32 if n < 2**31 else np.int64
    child = np.flatnonzero(parent >= 0).astype(row_type)
    # siblings are contiguous after a stable sort by parent, in start order
    child = child[np.argsort(parent[child], kind="stable")]
    p = parent[child].astype(row_type)
    first = np.ones(len(child), dtype=bool)
    first[1:] = p[1:] != p[:-1]
    # the gap before each child: from its previous sibling's end (its parent's start for the
    # first child) to its start
    gap_start = np.empty(len(child))
    gap_start[1:] = end[child[:-1]]
    gap_start[first] = ts[p[first]]
    gap_end = np.minimum(ts[child], end[p])
    last = np.ones(len(child), dtype=bool)
    last[:-1] = first[1:]
    del first
    # each event's own time after its last child (all of it when it has none)
    tail_from = ts.copy()
    tail_from[p[last]] = np.minimum(end[child[last]], end[p[last]])
    del child, last
    gaps = np.flatnonzero(gap_end > gap_start)
    tails = np.flatnonzero(end > tail_from)
    m = len(gaps) + len(tails)
    starts, ends = np.empty(m), np.empty(m)
    owner = np.empty(m, dtype=row_type)
    starts[:len(gaps)], ends[:len(gaps)], owner[:len(gaps)] = \
        gap_start[gaps], gap_end[gaps], p[gaps]
    del gap_start, gap_end, p, gaps
    starts[m - len(tails):], ends[m - len(tails):] = tail_from[tails], end[tails]
    owner[m - len(tails):] = tails
    return starts, ends, owner


def _union_of(ts: np.ndarray, end: np.ndarray, mask: np.ndarray) -> float:
    """Length of the union of the [ts, end) intervals where ``mask`` (sorted by ts), without
    copying the selected intervals out."""
    if not mask.any():
        return 0.0
    reach = np.where(mask, end, -np.inf)
    np.maximum.accumulate(reach, out=reach)
    before = np.empty_like(reach)  # the furthest selected end before each interval
    before[0] = -np.inf
    before[1:] = reach[:-1]
    del reach
    np.maximum(before, ts, out=before)
    np.subtract(end, before, out=before)
    np.maximum(before, 0.0, out=before)
    before[~mask] = 0.0
    return float(before.sum())


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
        kept = np.flatnonzero(keep[owner])
        ts, end, owner = ts[kept], end[kept], owner[kept]
        del kept
    order = np.argsort(ts, kind="stable")  # sorted once, for every union below
    ts = ts[order]
    end = end[order]
    owner = owner[order]
    del order
    k = kinds[owner]
    del owner
    out = dict(empty)
    if len(ts):
        span = float(end.max() - ts[0])
        covered = 0.0
        mask = np.zeros(len(ts), dtype=bool)
        for name in PRIORITY:  # each kind gets what the kinds before it left uncovered
            this = k == KINDS.index(name)
            if not this.any():  # nothing of this kind: the union is the last one
                out[f"{name}_us"] = 0.0
                continue
            mask |= this
            del this
            now = _union_of(ts, end, mask)
            out[f"{name}_us"] = max(now - covered, 0.0)
            covered = now
        out["idle_us"] = max(span - covered, 0.0)
    busy = span - out["idle_us"] if len(ts) else 0.0
    self_us = events.self_us.to_numpy(float)
    sums = np.bincount(kinds[keep] if not keep.all() else kinds,
                       weights=self_us[keep] if not keep.all() else self_us,
                       minlength=len(KINDS))
    thread = {f"{name}_us": float(sums[KINDS.index(name)]) for name in PRIORITY}
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
