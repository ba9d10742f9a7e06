"""The in-memory trace: one DataFrame of duration events, built from Chrome trace events.

Every source (TF .xplane.pb via xprof, Chrome/TensorBoard/PyTorch JSON, exported bundles)
ends up here, so the analyzers only ever see `Trace.events`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

EVENT_COLUMNS = ["pid", "tid", "process", "thread", "name", "cat", "ts_us", "dur_us", "self_us",
                 "args"]
TF_OP_CAT = "tf_op"


class TraceError(ValueError):
    """A file that is not a readable trace; str() is one line."""


class OtherFormat(TraceError):
    """A JSON document that names another format (such as an exported bundle, which
    profiling.bundle.load_any_trace opens); `document` holds it, decoded."""

    def __init__(self, document: dict):
        self.document = document
        super().__init__(f"a {str(document.get('format'))[:60]!r} document, not a trace")


@dataclass
class Trace:
    """Duration events of one trace.

    events columns: pid, tid, process, thread, name, cat, ts_us (start, µs), dur_us (µs),
    self_us (dur minus time covered by events nested inside it on the same thread, µs),
    args (JSON string). `source` is "xplane", "chrome" or "bundle".
    """

    events: pd.DataFrame
    source: str = "chrome"
    metadata: dict = field(default_factory=dict)


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None


def from_chrome_events(raw: Iterable[Mapping], source: str = "chrome",
                       metadata: Mapping | None = None, tf_rules: bool = False) -> Trace:
    """Build a Trace from Chrome trace-format events (ph X, or B/E pairs; M for names).

    tf_rules: apply TensorFlow conventions: events carrying a "long_name" arg are TF ops
    (cat tf_op), and an eager op's kernel run is named after the op it executes.
    """
    process_names: dict = {}
    thread_names: dict = {}
    rows: list[tuple] = []
    open_b: dict = {}
    for e in raw:
        if not isinstance(e, Mapping):
            raise TraceError("not a Chrome trace: traceEvents holds a non-object entry")
        ph = e.get("ph")
        pid, tid = e.get("pid", 0), e.get("tid", 0)
        if ph == "M":
            args = e.get("args") or {}
            if e.get("name") == "process_name":
                process_names[pid] = str(args.get("name", ""))
            elif e.get("name") == "thread_name":
                thread_names[(pid, tid)] = str(args.get("name", ""))
            continue
        ts = _num(e.get("ts"))
        if ts is None:
            continue
        if ph == "X":
            dur = _num(e.get("dur"))
            if dur is None or dur < 0:
                continue
            rows.append((pid, tid, str(e.get("name", "")), str(e.get("cat", "") or ""), ts, dur,
                         e.get("args")))
        elif ph == "B":
            open_b.setdefault((pid, tid), []).append(e)
        elif ph == "E" and open_b.get((pid, tid)):
            b = open_b[(pid, tid)].pop()
            bts = _num(b.get("ts"))
            rows.append((pid, tid, str(b.get("name", "")), str(b.get("cat", "") or ""), bts,
                         max(0.0, ts - bts), b.get("args")))
    df = pd.DataFrame(rows, columns=["pid", "tid", "name", "cat", "ts_us", "dur_us", "args_obj"])
    df["pid"] = df["pid"].astype(str)
    df["tid"] = df["tid"].astype(str)
    df["process"] = [process_names.get(p, "") for p in _orig(rows, 0)]
    df["thread"] = [thread_names.get((p, t), "") for p, t in zip(_orig(rows, 0), _orig(rows, 1),
                                                                    strict=True)]
    df = df.sort_values(["pid", "tid", "ts_us", "dur_us"], ascending=[True, True, True, False],
                        kind="stable").reset_index(drop=True)
    self_us, parent = _self_times(df)
    df["self_us"] = self_us
    if tf_rules:
        _apply_tf_rules(df, parent)
    df["args"] = [json.dumps(a, sort_keys=True, default=str) if a else "{}" for a in df.args_obj]
    return Trace(df[EVENT_COLUMNS].copy(), source, dict(metadata or {}))


def _orig(rows: list[tuple], i: int) -> list:
    return [r[i] for r in rows]


def _self_times(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Self time per event and the index of its enclosing event (-1 at top level), per thread."""
    n = len(df)
    ts = df.ts_us.to_numpy(float)
    end = ts + df.dur_us.to_numpy(float)
    self_us = df.dur_us.to_numpy(float).copy()
    parent = np.full(n, -1, dtype=np.int64)
    lanes = (df.pid + "\x00" + df.tid).to_numpy()
    stack: list[int] = []
    lane = None
    for i in range(n):
        if lanes[i] != lane:
            stack, lane = [], lanes[i]
        while stack and end[stack[-1]] <= ts[i]:
            stack.pop()
        if stack:
            p = stack[-1]
            parent[i] = p
            self_us[p] -= min(end[i], end[p]) - ts[i]
        stack.append(i)
    return np.maximum(self_us, 0.0), parent


def _apply_tf_rules(df: pd.DataFrame, parent: np.ndarray) -> None:
    names = df.name.to_numpy(object).copy()
    cats = df.cat.to_numpy(object).copy()
    args = list(df.args_obj)
    for i, a in enumerate(args):
        if isinstance(a, Mapping) and ":" in str(a.get("long_name", "")):
            cats[i] = TF_OP_CAT
    for i in np.flatnonzero(df.name.to_numpy(object) == "KernelAndDeviceFunc::Run"):
        p = parent[i]
        while p >= 0 and not str(names[p]).startswith("EagerLocalExecute: "):
            p = parent[p]
        if p >= 0:
            op = str(names[p]).removeprefix("EagerLocalExecute: ")
            if not op.startswith("__inference"):
                names[i], cats[i] = op, TF_OP_CAT
                args[i] = {**(args[i] or {}), "long_name": f"{op}:{op}", "is_eager": "1"}
    df["name"], df["cat"], df["args_obj"] = names, cats, args
