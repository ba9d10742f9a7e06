"""The in-memory trace: one columnar DataFrame of duration events.

Every source (TF .xplane.pb via xprof, Chrome/TensorBoard/PyTorch JSON, exported bundles) ends up
here, so the analyzers only ever see `Trace.events`. Parsers hand `build_events` NumPy columns, not
a list of dicts, and nesting (depth, parent, self time) is computed with vectorized NumPy, so a
trace of millions of events costs a few arrays, not millions of Python objects.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

EVENT_COLUMNS = ["pid", "tid", "process", "thread", "name", "cat", "ts_us", "dur_us", "self_us",
                 "depth", "parent", "long_name", "args"]
TF_OP_CAT = "tf_op"
# Timestamps beyond ±1e18 µs (31,000 years) are not clocks: refusing them keeps every sum finite.
MAX_ABS_US = 1e18


class TraceError(ValueError):
    """A file that is not a readable trace; str() is one line."""


@dataclass
class Trace:
    """Duration events of one trace.

    events columns: pid, tid, process, thread, name, cat (categoricals), ts_us (start, µs),
    dur_us (µs), self_us (dur minus the time covered by events nested inside it on the same
    thread, µs), depth (nesting level on its thread, 0 = top), parent (row of the enclosing
    event, -1 at top level), long_name (TF's "scope/op:OpType", "" when absent), args (JSON
    text, "{}" when absent or not kept). `source` is "xplane", "chrome" or "bundle".
    """

    events: pd.DataFrame
    source: str = "chrome"
    metadata: dict = field(default_factory=dict)


@dataclass
class Coded:
    """A string column as integer codes into `categories` (what a parser accumulates)."""

    codes: np.ndarray
    categories: list[str]

    def values(self) -> np.ndarray:
        return np.asarray(self.categories, dtype=object)[self.codes] if len(self.codes) else \
            np.array([], dtype=object)


@dataclass
class EventColumns:
    """Raw duration events as parallel arrays, before sorting and nesting (see build_events)."""

    pid: Coded
    tid: Coded
    name: Coded
    cat: Coded
    long_name: Coded
    ts_us: np.ndarray
    dur_us: np.ndarray
    args: np.ndarray | None = None  # JSON text per event (object array), None when not kept


def check_times(ts: np.ndarray, dur: np.ndarray, first_index: int = 0) -> None:
    """TraceError naming the first event whose ts/dur is not a usable clock value."""
    bad = ~(np.isfinite(ts) & (np.abs(ts) < MAX_ABS_US) & np.isfinite(dur) & (dur < MAX_ABS_US))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise TraceError(f"event {first_index + i}: ts={ts[i]:g} dur={dur[i]:g} µs is out of "
                         f"range (|ts| and dur must be finite and below {MAX_ABS_US:g} µs)")


def _categorical(values: np.ndarray) -> pd.Categorical:
    codes, uniques = pd.factorize(np.asarray(values, dtype=object), sort=True)
    return pd.Categorical.from_codes(codes, categories=pd.Index(uniques, dtype=object))


def _sorted_codes(col: Coded) -> np.ndarray:
    """Codes renumbered so that their order is the categories' string order."""
    rank = np.empty(len(col.categories), dtype=np.int64)
    rank[np.argsort(np.asarray(col.categories, dtype=object), kind="stable")] = \
        np.arange(len(col.categories))
    return rank[col.codes] if len(col.codes) else np.array([], dtype=np.int64)


def nesting(lane: np.ndarray, ts: np.ndarray, dur: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(depth, parent, self_us) of events sorted by (lane, ts, -dur).

    depth = events of the same lane still open at this one's start; parent = the last earlier
    event one level up; self = dur minus the part of each child inside its parent.
    """
    n = len(ts)
    end = ts + dur
    depth = np.zeros(n, dtype=np.int64)
    bounds = np.flatnonzero(np.diff(lane)) + 1
    starts = np.concatenate([[0], bounds]) if n else np.array([], dtype=np.int64)
    stops = np.concatenate([bounds, [n]]) if n else np.array([], dtype=np.int64)
    for a, b in zip(starts, stops, strict=True):
        ends_sorted = np.sort(end[a:b])
        closed = np.searchsorted(ends_sorted, ts[a:b], side="right")
        depth[a:b] = np.maximum(np.arange(b - a) - closed, 0)
    parent = np.full(n, -1, dtype=np.int64)
    order = np.argsort(depth, kind="stable")
    levels = np.searchsorted(depth[order], np.arange(int(depth.max()) + 2 if n else 1))
    for d in range(1, len(levels) - 1):
        cur = order[levels[d]:levels[d + 1]]
        prev = order[levels[d - 1]:levels[d]]
        if len(cur) == 0:
            break
        at = np.searchsorted(prev, cur) - 1
        ok = at >= 0
        parent[cur[ok]] = prev[at[ok]]
        depth[cur[~ok]] = 0
    has = parent >= 0
    covered = np.maximum(np.minimum(end[has], end[parent[has]]) - ts[has], 0.0)
    self_us = dur - np.bincount(parent[has], weights=covered, minlength=n)
    return depth, parent, np.maximum(self_us, 0.0)


def build_events(cols: EventColumns, process_names: Mapping[str, str],
                 thread_names: Mapping[tuple[str, str], str], tf_rules: bool = False
                 ) -> pd.DataFrame:
    """The events DataFrame (EVENT_COLUMNS) from raw columns: sorted by (pid, tid, ts, -dur),
    nested, and with TensorFlow's conventions applied when ``tf_rules``."""
    n = len(cols.ts_us)
    ts = np.asarray(cols.ts_us, dtype=float)
    dur = np.asarray(cols.dur_us, dtype=float)
    check_times(ts, dur)
    pid_rank, tid_rank = _sorted_codes(cols.pid), _sorted_codes(cols.tid)
    order = np.lexsort((-dur, ts, tid_rank, pid_rank)) if n else np.array([], dtype=np.int64)
    lane_key = pid_rank[order] * (len(cols.tid.categories) + 1) + tid_rank[order]
    ts, dur = ts[order], dur[order]
    depth, parent, self_us = nesting(lane_key, ts, dur)
    pid_s, tid_s = cols.pid.values()[order], cols.tid.values()[order]
    names, cats = cols.name.values()[order], cols.cat.values()[order]
    long_names = cols.long_name.values()[order]
    args = cols.args[order] if cols.args is not None else None
    if tf_rules:
        _apply_tf_rules(names, cats, long_names, args, parent)
    # Process and thread names per lane, spread to the events through the lane index.
    _, first, inverse = np.unique(lane_key, return_index=True, return_inverse=True)
    process = np.asarray([process_names.get(p, "") for p in pid_s[first]], dtype=object)
    thread = np.asarray([thread_names.get((p, t), "") for p, t in
                         zip(pid_s[first], tid_s[first], strict=True)], dtype=object)
    df = pd.DataFrame({
        "pid": _categorical(pid_s), "tid": _categorical(tid_s),
        "process": _categorical(process[inverse] if n else process),
        "thread": _categorical(thread[inverse] if n else thread),
        "name": _categorical(names), "cat": _categorical(cats),
        "ts_us": ts, "dur_us": dur, "self_us": self_us,
        "depth": depth.astype(np.int32), "parent": parent,
        "long_name": _categorical(long_names),
        "args": args if args is not None else np.full(n, "{}", dtype=object),
    })
    return df[EVENT_COLUMNS]


def _apply_tf_rules(names: np.ndarray, cats: np.ndarray, long_names: np.ndarray,
                    args: np.ndarray | None, parent: np.ndarray) -> None:
    """TF ops carry a "scope/op:Type" long_name (cat tf_op); an eager op's kernel run
    (KernelAndDeviceFunc::Run) is named after the op its EagerLocalExecute parent executes."""
    is_op = np.fromiter((":" in s for s in long_names), bool, len(long_names))
    cats[is_op] = TF_OP_CAT
    for i in np.flatnonzero(names == "KernelAndDeviceFunc::Run"):
        p = parent[i]
        while p >= 0 and not str(names[p]).startswith("EagerLocalExecute: "):
            p = parent[p]
        if p < 0:
            continue
        op = str(names[p]).removeprefix("EagerLocalExecute: ")
        if op.startswith("__inference"):
            continue
        names[i], cats[i], long_names[i] = op, TF_OP_CAT, f"{op}:{op}"
        if args is not None:
            try:
                a = json.loads(args[i]) if args[i] else {}
            except ValueError:
                a = {}
            a = a if isinstance(a, dict) else {}
            args[i] = json.dumps({**a, "long_name": f"{op}:{op}", "is_eager": "1"},
                                 sort_keys=True)


def empty_events() -> pd.DataFrame:
    """An events frame with no rows and every column."""
    none = Coded(np.array([], dtype=np.int64), [])
    return build_events(EventColumns(none, none, none, none, none, np.array([]), np.array([])),
                        {}, {})
