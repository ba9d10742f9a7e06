"""The fast Chrome readers (the C++ scanner, and the msgspec reader's signature-coded columns;
vectorized nesting) against a slow, obviously correct one: json.load and a stack per thread.
Op counts and self times must be equal, not close (the traces' times are whole µs, so every sum
is exact).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from profiling.bench.traces import generate, generate_tf
from profiling.traces import TraceError, chrome, chrome_scan, load_trace
from profiling.traces.chrome import file_chunks, read_chrome
from profiling.traces.chrome_scan import scan_chrome
from profiling.traces.op_stats import op_table


def reference_ops(path: Path) -> dict[str, tuple[int, float]]:
    """Per event name: (events, summed self µs). X events and B/E pairs, nested per
    (pid, tid) with a stack after sorting by (ts, longest first); self = dur minus the part of
    each direct child inside it."""
    with open(path) as f:
        doc = json.load(f)
    spans: dict[tuple[str, str], list[tuple[float, float, str]]] = defaultdict(list)
    open_b: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for e in doc["traceEvents"] if isinstance(doc, dict) else doc:
        lane = (str(e.get("pid", 0)), str(e.get("tid", 0)))
        if e.get("ph") == "X":
            spans[lane].append((float(e["ts"]), float(e["dur"]), str(e["name"])))
        elif e.get("ph") == "B":
            open_b[lane].append(e)
        elif e.get("ph") == "E" and open_b[lane]:
            b = open_b[lane].pop()
            spans[lane].append((float(b["ts"]), max(0.0, float(e["ts"]) - float(b["ts"])),
                                str(b["name"])))
    count: dict[str, int] = defaultdict(int)
    self_us: dict[str, float] = defaultdict(float)
    for events in spans.values():
        events.sort(key=lambda s: (s[0], -s[1]))
        own = [dur for _, dur, _ in events]
        stack: list[int] = []
        for i, (ts, dur, _) in enumerate(events):
            while stack and sum(events[stack[-1]][:2]) <= ts:
                stack.pop()
            if stack:
                parent_end = sum(events[stack[-1]][:2])
                own[stack[-1]] -= max(min(ts + dur, parent_end) - ts, 0.0)
            stack.append(i)
        for (_, _, name), s in zip(events, own, strict=True):
            count[name] += 1
            self_us[name] += s
    return {name: (count[name], self_us[name]) for name in count}


def _as_text(events: pd.DataFrame) -> pd.DataFrame:
    """The frame with its categoricals as text: the readers number categories in different
    orders, their values must be equal."""
    return events.astype({c: str for c in events.columns if events[c].dtype == "category"})


def fast_ops(events: pd.DataFrame) -> dict[str, tuple[int, float]]:
    g = events.groupby("name", observed=True).self_us.agg(["size", "sum"])
    return {str(name): (int(n), float(s)) for name, (n, s) in g.iterrows()}


def _nested_trace(path: Path, seed: int) -> None:
    """Random properly nested events on a few threads, with B/E pairs, zero durations, ties,
    metadata among them and names holding '},' and quotes (the reader's block cuts)."""
    rng = np.random.default_rng(seed)
    events: list[dict] = []
    names = ["conv", "relu", 'odd "},{" name', "matmul", "x},", "copy"]

    def nest(pid, tid, lo, hi, depth):
        t = lo
        while t < hi and depth < 4:
            dur = int(rng.integers(0, max(1, (hi - t) // 2) + 1))
            if t + dur > hi:
                break
            e = {"name": names[int(rng.integers(len(names)))], "cat": "cpu_op", "pid": pid,
                 "tid": tid}
            if rng.random() < 0.2:
                events.append({**e, "ph": "B", "ts": t})
                nest(pid, tid, t, t + dur, depth + 1)
                events.append({"ph": "E", "pid": pid, "tid": tid, "ts": t + dur})
            else:
                events.append({**e, "ph": "X", "ts": t, "dur": dur, "args": {"i": len(events)}})
                nest(pid, tid, t, t + dur, depth + 1)
            t += dur + int(rng.integers(0, 3))

    for pid, tid in [(1, 1), (1, 2), ("gpu", "stream 7")]:
        events.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid,
                       "args": {"name": f"thread {tid}"}})
        nest(pid, tid, 0, 20_000, 0)
    path.write_text(json.dumps({"traceEvents": events, "note": "nested"}))


def _make(path: Path, kind: str) -> Path:
    if kind == "pytorch":
        generate(path, 4_000)
    elif kind == "tf":
        generate_tf(path, 4_000)
    else:
        _nested_trace(path, seed=int(kind.removeprefix("nested")))
    return path


@pytest.mark.parametrize("kind", ["pytorch", "tf", "nested3"])
def test_op_counts_and_self_times_equal_the_reference(tmp_path, kind):
    path = _make(tmp_path / "trace.json", kind)
    ref = reference_ops(path)
    assert fast_ops(load_trace(path, keep_args=False).events) == ref
    assert fast_ops(load_trace(path).events) == ref


@pytest.mark.parametrize("kind", ["pytorch", "tf"])
def test_op_table_equals_the_reference(tmp_path, kind):
    path = _make(tmp_path / "trace.json", kind)
    ref = reference_ops(path)
    table = op_table(load_trace(path, keep_args=False).events).set_index("name")
    for name, row in table.iterrows():  # the TF trace's pool work is attributed: no row
        assert (row.occurrences, row.self_us) == ref[name]
    assert len(table) == (len(ref) if kind == "pytorch" else len(ref) - 2)


def _msgspec_events(path: Path) -> pd.DataFrame:
    return read_chrome(file_chunks(path), keep_args=False).events  # chunks, not a function


@pytest.mark.parametrize("kind", ["pytorch", "tf", "nested1", "nested2"])
def test_scanner_reads_what_the_msgspec_reader_reads(tmp_path, monkeypatch, kind):
    monkeypatch.setattr(chrome, "CHUNK", 2048)  # many chunk ends, some inside strings
    monkeypatch.setattr(chrome_scan, "SPLIT_FROM", 512)  # and each chunk read on two threads
    path = _make(tmp_path / "trace.json", kind)
    scanned = scan_chrome(file_chunks(path, reuse=True))  # each chunk overwrites the last
    assert scanned is not None  # read by the scanner, not handed back
    pd.testing.assert_frame_equal(_as_text(scanned.events), _as_text(_msgspec_events(path)))
    assert fast_ops(scanned.events) == reference_ops(path)


def test_both_readers_name_the_same_bad_event(tmp_path, monkeypatch):
    monkeypatch.setattr(chrome, "CHUNK", 2048)
    path = tmp_path / "trace.json"
    generate(path, 2_000)
    lines = path.read_text().splitlines(keepends=True)
    # line 0 opens the document, 1-4 name the threads: event 1504 is on line 1505
    lines[1505] = lines[1505].replace('"ts": ', '"ts": [').replace(', "dur"', '], "dur"')
    path.write_text("".join(lines))
    assert scan_chrome(file_chunks(path)) is None
    errors = []
    for read in (lambda: load_trace(path, keep_args=False), lambda: _msgspec_events(path)):
        with pytest.raises(TraceError) as e:
            read()
        errors.append(str(e.value))
    assert errors[0] == errors[1]
    assert "event 1504" in errors[0] and "\n" not in errors[0]
