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


class OtherFormat(TraceError):
    """A JSON document that names another format (such as an exported bundle, which
    profiling.storage.bundle.load_any_trace opens); `document` holds it, decoded."""

    def __init__(self, document: dict):
        self.document = document
        super().__init__(f"a {str(document.get('format'))[:60]!r} document, not a trace")


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


def _from_codes(codes: np.ndarray, categories: list[str]) -> pd.Categorical:
    return pd.Categorical.from_codes(np.asarray(codes),
                                     categories=pd.Index(categories, dtype=object))


def _sorted_codes(col: Coded) -> np.ndarray:
    """Codes renumbered so that their order is the categories' string order."""
    rank = np.empty(len(col.categories), dtype=np.int32)
    rank[np.argsort(np.asarray(col.categories, dtype=object), kind="stable")] = \
        np.arange(len(col.categories))
    return rank[col.codes] if len(col.codes) else np.array([], dtype=np.int32)


def nesting(lane: np.ndarray, ts: np.ndarray, dur: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(depth, parent, self_us) of events sorted by (lane, ts, -dur).

    depth = events of the same lane still open at this one's start; parent = the last earlier
    event one level up; self = dur minus the part of each child inside its parent. In one
    native pass (csrc/trace_nesting.cc) when the library is built, else `nesting_numpy`: the
    same numbers to the bit.
    """
    from profiling.traces.native import library

    n = len(ts)
    lib = library()
    if lib is None or n == 0 or n >= 2**31 or (lane.dtype != np.int32 and (
            lane.min() < -2**31 or lane.max() >= 2**31)):
        return nesting_numpy(lane, ts, dur)
    lane = np.ascontiguousarray(lane, dtype=np.int32)
    ts = np.ascontiguousarray(ts, dtype=np.float64)
    dur = np.ascontiguousarray(dur, dtype=np.float64)
    depth, parent = np.empty(n, dtype=np.int32), np.empty(n, dtype=np.int32)
    self_us = np.empty(n)
    if lib.rl_nesting(n, *(a.ctypes.data for a in (lane, ts, dur, depth, parent, self_us))):
        raise MemoryError("nesting")
    return depth, parent, self_us


def nesting_numpy(lane: np.ndarray, ts: np.ndarray, dur: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`nesting` in vectorized NumPy (the reference of the native pass)."""
    n = len(ts)
    end = ts + dur
    depth = np.zeros(n, dtype=np.int32)
    bounds = np.flatnonzero(np.diff(lane)) + 1
    starts = np.concatenate([[0], bounds]) if n else np.array([], dtype=np.int64)
    stops = np.concatenate([bounds, [n]]) if n else np.array([], dtype=np.int64)
    for a, b in zip(starts, stops, strict=True):
        t, e = ts[a:b], end[a:b]
        closed = np.searchsorted(np.sort(e), t, side="right")
        zero = e <= t  # zero-length events
        if zero.any():
            # one sorts after the longer events starting with it, yet its end (= its start)
            # counted as closed for them and for itself: take those out
            z = np.cumsum(zero)
            closed -= z[np.searchsorted(t, t, side="right") - 1] - (z - zero)
        depth[a:b] = np.maximum(np.arange(b - a) - closed, 0)
    parent = np.full(n, -1, dtype=np.int32 if n < 2**31 else np.int64)
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
    del end
    self_us = np.bincount(parent[has], weights=covered, minlength=n).astype(float, copy=False)
    np.subtract(dur, self_us, out=self_us)
    return depth, parent, np.maximum(self_us, 0.0, out=self_us)


def _lane_order(lane: np.ndarray, ts: np.ndarray, dur: np.ndarray) -> np.ndarray:
    """np.lexsort((-dur, ts, lane)): the rows by lane, start and longest first, ties in row
    order. When the rows already come by (ts, -dur), as most traces' writers emit them, a
    stable sort by lane alone is the same order (a radix sort for a few thousand lanes: 0.1 s
    for 8M events, where lexsort takes seconds)."""
    step = ts[1:] - ts[:-1]
    presorted = bool((step >= 0).all())
    if presorted:
        tie = np.flatnonzero(step == 0)
        presorted = bool((dur[tie + 1] <= dur[tie]).all())
    del step
    if not presorted:
        return np.lexsort((-dur, ts, lane))
    if len(lane) and lane.min() >= -2**15 and lane.max() < 2**15:
        lane = lane.astype(np.int16)
    return np.argsort(lane, kind="stable")


def build_events(cols: EventColumns, process_names: Mapping[str, str],
                 thread_names: Mapping[tuple[str, str], str], tf_rules: bool = False
                 ) -> pd.DataFrame:
    """The events DataFrame (EVENT_COLUMNS) from raw columns: sorted by (pid, tid, ts, -dur),
    nested, and with TensorFlow's conventions applied when ``tf_rules``."""
    n = len(cols.ts_us)
    ts = np.asarray(cols.ts_us, dtype=float)
    dur = np.asarray(cols.dur_us, dtype=float)
    check_times(ts, dur)
    # one small integer per (pid, tid) lane, in (pid, tid) string order
    width = len(cols.tid.categories) + 1
    lane_type = np.int32 if (len(cols.pid.categories) + 1) * width < 2**31 else np.int64
    lane_rank = _sorted_codes(cols.pid).astype(lane_type) * width + _sorted_codes(cols.tid)
    order = _lane_order(lane_rank, ts, dur) if n else np.array([], dtype=np.int64)
    lane_key = lane_rank[order]
    del lane_rank
    ts, dur = ts[order], dur[order]
    cols.ts_us = cols.dur_us = None  # build_events owns the columns: free the unsorted ones
    depth, parent, self_us = nesting(lane_key, ts, dur)
    pid_codes, tid_codes = cols.pid.codes[order], cols.tid.codes[order]
    args = cols.args[order] if cols.args is not None else None
    cols.args = None
    if tf_rules:
        name_c, cat_c, long_c = _apply_tf_rules(cols.name, cols.cat, cols.long_name, order,
                                                args, parent)
        del order
    else:
        name_c, cat_c, long_c = (_from_codes(c.codes[order], c.categories)
                                 for c in (cols.name, cols.cat, cols.long_name))
        del order
    for c in (cols.pid, cols.tid, cols.name, cols.cat, cols.long_name):
        c.codes = np.array([], dtype=np.int8)  # gathered in order above: free the unsorted ones
    # Process and thread names per lane, spread to the events through the lane index (lanes
    # are contiguous once sorted).
    change = np.flatnonzero(np.diff(lane_key)) + 1 if n else np.array([], dtype=np.int64)
    first = np.concatenate([[0], change]).astype(np.int64) if n else change
    inverse = np.zeros(n, dtype=np.int32)
    inverse[change] = 1
    np.cumsum(inverse, out=inverse)
    del lane_key
    pids = np.asarray(cols.pid.categories, dtype=object)
    tids = np.asarray(cols.tid.categories, dtype=object)
    lane_pid, lane_tid = pids[pid_codes[first]], tids[tid_codes[first]]
    process = _categorical(np.asarray([process_names.get(p, "") for p in lane_pid], dtype=object))
    thread = _categorical(np.asarray([thread_names.get((p, t), "") for p, t in
                                      zip(lane_pid, lane_tid, strict=True)], dtype=object))
    df = pd.DataFrame({
        "pid": _from_codes(pid_codes, cols.pid.categories),
        "tid": _from_codes(tid_codes, cols.tid.categories),
        "process": _from_codes(process.codes[inverse], list(process.categories)),
        "thread": _from_codes(thread.codes[inverse], list(thread.categories)),
        "name": name_c, "cat": cat_c,
        "ts_us": ts, "dur_us": dur, "self_us": self_us,
        "depth": depth.astype(np.int32), "parent": parent,
        "long_name": long_c,
        # not kept: one shared "{}" category, 1 byte per event
        "args": args if args is not None else _from_codes(np.zeros(n, dtype=np.int8), ["{}"]),
    }, copy=False)
    return df[EVENT_COLUMNS]


def _apply_tf_rules(name: Coded, cat: Coded, long_name: Coded, order: np.ndarray,
                    args: np.ndarray | None, parent: np.ndarray
                    ) -> tuple[pd.Categorical, pd.Categorical, pd.Categorical]:
    """Name, cat and long_name (rows in `order`) under TF's conventions, on codes: TF ops carry
    a "scope/op:Type" long_name (cat tf_op); an eager op's kernel run (KernelAndDeviceFunc::Run)
    is named after the op its EagerLocalExecute parent executes. Categories sorted, as
    pd.factorize(sort=True) gives them."""
    names, cats = _Recoded(name, order), _Recoded(cat, order)
    long_names = _Recoded(long_name, order)
    is_op = np.fromiter((":" in s for s in long_name.categories), bool,
                        len(long_name.categories))[long_names.codes]
    cats.codes[is_op] = cats.code(TF_OP_CAT)
    run = names.index.get("KernelAndDeviceFunc::Run")
    for i in np.flatnonzero(names.codes == run) if run is not None else ():
        p = parent[i]
        while p >= 0 and not names.text(p).startswith("EagerLocalExecute: "):
            p = parent[p]
        if p < 0:
            continue
        op = names.text(p).removeprefix("EagerLocalExecute: ")
        if op.startswith("__inference"):
            continue
        names.codes[i], cats.codes[i] = names.code(op), cats.code(TF_OP_CAT)
        long_names.codes[i] = long_names.code(f"{op}:{op}")
        if args is not None:
            try:
                a = json.loads(args[i]) if args[i] else {}
            except ValueError:
                a = {}
            a = a if isinstance(a, dict) else {}
            args[i] = json.dumps({**a, "long_name": f"{op}:{op}", "is_eager": "1"},
                                 sort_keys=True)
    return names.categorical(), cats.categorical(), long_names.categorical()


class _Recoded:
    """A coded column's rows in a new order, open to new categories (int32 codes)."""

    def __init__(self, col: Coded, order: np.ndarray) -> None:
        self.codes = col.codes[order].astype(np.int32)
        self.categories = list(col.categories)
        self.index = {c: i for i, c in enumerate(self.categories)}

    def text(self, row: int) -> str:
        return self.categories[self.codes[row]]

    def code(self, value: str) -> int:
        code = self.index.get(value)
        if code is None:
            code = self.index[value] = len(self.categories)
            self.categories.append(value)
        return code

    def categorical(self) -> pd.Categorical:
        """The used categories only, in string order."""
        used = np.flatnonzero(np.bincount(self.codes, minlength=len(self.categories)))
        texts = np.asarray(self.categories, dtype=object)[used]
        by_text = used[np.argsort(texts, kind="stable")] if len(used) else used
        new = np.zeros(len(self.categories), dtype=np.int32)
        new[by_text] = np.arange(len(by_text), dtype=np.int32)
        return _from_codes(new[self.codes], [self.categories[c] for c in by_text])


def empty_events() -> pd.DataFrame:
    """An events frame with no rows and every column."""
    none = Coded(np.array([], dtype=np.int64), [])
    return build_events(EventColumns(none, none, none, none, none, np.array([]), np.array([])),
                        {}, {})


def concat_events(parts: list[tuple[str, pd.DataFrame]]) -> pd.DataFrame:
    """Several traces' events as one frame: each part's pids prefixed with "<label>/" (so their
    lanes stay apart) and its parent rows shifted to the joined frame's positions."""
    frames, offset = [], 0
    for label, ev in parts:
        ev = ev.reset_index(drop=True).copy()
        ev["pid"] = (f"{label}/" + ev["pid"].astype(str)).astype("category")
        parent = ev["parent"].to_numpy()
        ev["parent"] = np.where(parent >= 0, parent + offset, -1)
        frames.append(ev)
        offset += len(ev)
    if not frames:
        return empty_events()
    out = pd.concat(frames, ignore_index=True)
    for col in ("pid", "tid", "process", "thread", "name", "cat", "long_name"):
        out[col] = out[col].astype(str).astype("category")
    return out[EVENT_COLUMNS]
