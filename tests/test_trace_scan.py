"""The C++ trace scanner (csrc/trace_scan.cc via profiling.traces.chrome_scan) against the
msgspec reader it stands in for: on every input it reads exactly what that reader reads, or
refuses (and load_trace then reads with msgspec); it never crashes, whatever the bytes. (Its
op counts and self times against the reference reader: tests/test_trace_reference.py.)"""

from __future__ import annotations

import gzip
import json
import os
import random
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from test_trace_reference import _as_text

from profiling.traces import TraceError, chrome_scan, load_trace
from profiling.traces.chrome import read_ahead, read_chrome
from profiling.traces.chrome_scan import scan_chrome
from profiling.traces.native import library, library_path


def msgspec_read(data: bytes):
    """The msgspec reader's Trace, or its TraceError."""
    try:
        return read_chrome([data], keep_args=False)
    except TraceError as e:
        return e


def scanned(data: bytes, chunk: int | None = None):
    chunks = [data] if chunk is None else [data[i:i + chunk] for i in range(0, len(data), chunk)]
    return scan_chrome(chunks)


def assert_same(a, b) -> None:
    pd.testing.assert_frame_equal(_as_text(a.events), _as_text(b.events))
    assert a.metadata == b.metadata


@pytest.fixture(params=["one thread", "two threads"])
def threads(request, monkeypatch: pytest.MonkeyPatch) -> None:
    """Feeds split between two threads from 64 bytes on (at guesses that are often inside an
    event or a string), or never."""
    monkeypatch.setattr(chrome_scan, "SPLIT_FROM", 64 if request.param == "two threads" else 0)


def test_the_scanner_is_built_and_used():
    assert library() is not None, f"no trace scanner at {library_path()}: run `make build`"
    trace = scanned(b'{"traceEvents": [{"ph": "X", "name": "a", "ts": 1, "dur": 2}]}')
    assert trace is not None and trace.events.name.tolist() == ["a"]


def _events(seed: int, n: int = 60) -> list[dict]:
    """Varied events: X, B/E pairs (some unpaired), M names, other phases, ints, floats and
    strings for pid/tid/name, nested args, escapes, non-ASCII text, null and missing fields."""
    rng = random.Random(seed)
    names = ["conv", "relu", 'q"uote', "back\\slash", "tab\there", "naïve", "日本", "emoji 🎉",
             "x},{", 7, 2.0, None, "a\u0001b", "process_name"]
    lanes = [(1, 1), (1, 2), ("gpu", "stream 7"), (2.0, 3), ("1", 1), (-0, 0)]
    out: list[dict] = [{"ph": "M", "name": "process_name", "pid": 1, "args": {"name": "host"}},
                       {"ph": "M", "name": "thread_name", "pid": 1, "tid": 2,
                        "args": {"name": 5, "other": [1, {"deep": {"er": None}}]}}]
    t = 0.0
    for _ in range(n):
        pid, tid = rng.choice(lanes)
        e: dict = {"name": rng.choice(names), "pid": pid, "tid": tid}
        if rng.random() < 0.7:
            e["cat"] = rng.choice(["cpu_op", "Op", 3, None, ""])
        kind = rng.random()
        t += rng.choice([0, 1, 2.5, 0.125, 1e-3, 17.000])
        ts = rng.choice([t, int(t), round(t, 3), t + 1e15, -t])
        if kind < 0.6:
            e.update(ph="X", ts=ts, dur=rng.choice([0, 3, 2.5, 1e3, -1, None, 0.1 + 0.2]))
        elif kind < 0.75:
            e.update(ph="B", ts=ts)
        elif kind < 0.9:
            e.update(ph="E", ts=ts)
        elif kind < 0.95:
            e.update(ph=rng.choice(["i", "C", "s", None]), ts=ts)
        else:
            e.update(ph="M", name="thread_name", args={"name": rng.choice(["main", None, 3])})
        if "args" not in e and rng.random() < 0.5:
            e["args"] = rng.choice([{"long_name": "scope/op:MatMul"}, {"long_name": None},
                                    {"External id": 3, "nested": {"a": [1, 2.5, "s"]}}, [1, 2],
                                    "text", 3.5, True, None, {}])
        out.append(e)
    return out


def _documents(seed: int) -> dict[str, bytes]:
    events = _events(seed)
    doc = {"traceEvents": events, "displayTimeUnit": "ms", "nested": {"skipped": 1}}
    per_line = "[\n" + ",\n".join(json.dumps(e) for e in events) + ",\n]"  # a trailing comma
    return {
        "one line": json.dumps(doc).encode(),
        "ascii escapes": json.dumps(doc, ensure_ascii=True).encode(),
        "pretty": json.dumps(doc, indent=2, ensure_ascii=False).encode(),
        "array per line": per_line.encode(),
        "empty": b'{"traceEvents": []}',
    }


@pytest.mark.parametrize("seed", range(6))
def test_varied_traces_read_as_the_msgspec_reader_reads_them(seed, threads):
    for label, data in _documents(seed).items():
        reference = msgspec_read(data)
        assert not isinstance(reference, TraceError), (label, reference)
        for chunk in (None, 1, 7, 100, 300, 4096):
            got = scanned(data, chunk)
            assert got is not None, (label, chunk)
            assert_same(got, reference)


def test_gzip_reads_through_the_scanner(tmp_path):
    data = _documents(3)["pretty"]
    path = tmp_path / "t.json.gz"
    path.write_bytes(gzip.compress(data))
    assert_same(load_trace(path, keep_args=False), msgspec_read(data))


def test_times_are_the_nearest_doubles():
    rng = np.random.default_rng(5)
    values = np.concatenate([rng.uniform(0, 2e15, 300), rng.uniform(0, 1, 300) * 10.0 **
                             rng.integers(-30, 17, 300), [0.1, 1e-7, 5e-324, 9007199254740993.0]])
    texts = [repr(float(v)) for v in values] + [
        "1700000000000246.000", "0.30000000000000004", "123456789.123456789", "1e5", "-0.0",
        "-0", "2.5E+3", "9007199254740993", "0.000", "4.35" + "0" * 30, "1" * 18]
    events = ",".join(f'{{"ph": "X", "name": "n{i}", "ts": {t}, "dur": 1}}'
                      for i, t in enumerate(texts))
    data = f'{{"traceEvents": [{events}]}}'.encode()
    got, want = scanned(data), msgspec_read(data)
    assert got is not None
    assert_same(got, want)
    ts = got.events.set_index(got.events.name.astype(str)).ts_us
    assert ts["n0"] == float(texts[0]) and ts[f"n{len(texts) - 4}"] == 9007199254740992.0


@pytest.mark.parametrize("text", [
    '"ts": "12"',  # a string time: the msgspec reader converts it
    '"ts": 1e400',  # out of range
    '"ts": 123456789012345678901234',  # more digits than an int64
    '"pid": 1.5',  # a float's text is Python's repr
    '"name": "\\ud800"',  # a lone surrogate
    '"p\\u0068": "X"',  # an escaped key
    '"ph": "X", "ph": "B"',  # a duplicate key
])
def test_what_it_does_not_read_exactly_is_refused_and_read_by_msgspec(text, tmp_path):
    data = (f'{{"traceEvents": [{{"ph": "X", "name": "a", "ts": 1, "dur": 2, {text}}},'
            '{"ph": "X", "name": "b", "ts": 2, "dur": 1}]}').encode()
    assert scanned(data) is None
    path = tmp_path / "t.json"
    path.write_bytes(data)
    want = msgspec_read(data)
    if isinstance(want, TraceError):
        with pytest.raises(TraceError, match="^" + re.escape(str(want)) + "$"):
            load_trace(path, keep_args=False)
    else:
        assert_same(load_trace(path, keep_args=False), want)


def test_hostile_inputs_are_refused_not_crashed(threads):
    deep = b'{"traceEvents": [{"ph": "X", "ts": 1, "dur": 1, "args": {"a": ' + b"[" * 100_000
    for data in [
        deep + b"]" * 100_000 + b"}}]}",
        deep,  # truncated inside the nesting
        b'{"traceEvents": [{"ph": "X", "ts": 1' + b"0" * 1_000_000 + b', "dur": 1}]}',
        b'{"traceEvents": [{"ph": "X", "name": "' + b"\xff\xfe" * 100 + b'", "ts": 1}]}',
        b'{"traceEvents": [{"ph": "X", "name": "a\x00b", "ts": 1}]}',
        b'{"traceEvents": [{"ph": "X", "ts": 1, "dur": 1}, 7]}',
        b'{"traceEvents": [{"ph": "X", "ts": 1, "dur": 1},, {}]}',
        b'{"traceEvents": [{"ph": "X", "ts": 1, "dur": 1}',
        b'{"traceEvents": [{"ph": "X", "ts": -, "dur": 1}]}',
        b'{"traceEvents": [{"ph": "X", "ts": 01, "dur": 1}]}',
        b'{"traceEvents": [{"ph": "X", "ts": 1., "dur": 1}]}',
        b'{"traceEvents": [{"ph": "X", "ts": tru, "dur": 1}]}',
    ]:
        for chunk in (None, 3):
            assert scanned(data, chunk) is None


def test_every_truncation_is_refused_or_read_alike(threads):
    data = _documents(1)["one line"]
    for cut in range(0, len(data), 7):
        got = scanned(data[:cut], 50)
        if got is not None:
            want = msgspec_read(data[:cut])
            assert not isinstance(want, TraceError), cut
            assert_same(got, want)


def test_random_byte_edits_are_refused_or_read_alike(threads):
    """A mutation fuzz: the scanner's result equals the msgspec reader's, or it refuses."""
    rng = random.Random(2026)
    base = _documents(4)["array per line"]
    alphabet = b'{}[]",:\\ 0123456789.eE-+tfnulXBEMabc\xc3\xa9\xff\n'
    read = 0
    for _ in range(400):
        data = bytearray(base)
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(data))
            op = rng.random()
            if op < 0.4:
                data[i] = rng.choice(alphabet)
            elif op < 0.7:
                del data[i]
            else:
                data[i:i] = bytes([rng.choice(alphabet)])
        got = scanned(bytes(data), rng.choice([None, 5, 64, 500]))
        if got is None:
            continue
        want = msgspec_read(bytes(data))
        assert not isinstance(want, TraceError), bytes(data)
        assert_same(got, want)
        read += 1
    assert read > 60  # many edits land where the scanner still reads the trace


def test_without_the_library_the_python_readers_read_the_same(tmp_path):
    """A checkout without `make build`: load_trace falls back to msgspec and NumPy."""
    path = tmp_path / "t.json"
    path.write_bytes(_documents(2)["pretty"])
    probe = ("import sys; from profiling.traces import load_trace, native;"
             "ev = load_trace(sys.argv[1], keep_args=False).events;"
             "print(native.library() is None, len(ev), ev.self_us.sum(), ev.depth.sum())")
    runs = [subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True,
                           text=True, timeout=120, env={**os.environ, **env})
            for env in ({"RELU_LAB_CACHE": str(tmp_path / "empty")}, {})]
    outs = [r.stdout.split() for r in runs]
    assert all(r.returncode == 0 for r in runs), [r.stderr for r in runs]
    assert outs[0][0] == "True" and outs[1][0] == "False" and outs[0][1:] == outs[1][1:]


def test_read_ahead_passes_chunks_errors_and_closing_through():
    closed = []

    def source(fail: bool):
        try:
            yield b"a"
            yield b"b"
            if fail:
                raise TraceError("truncated gzip stream")
            yield b"c"
        finally:
            closed.append(fail)

    assert list(read_ahead(source(False))) == [b"a", b"b", b"c"]
    got = []
    with pytest.raises(TraceError, match="^truncated gzip stream$"):
        for chunk in read_ahead(source(True)):
            got.append(chunk)
    assert got == [b"a", b"b"]
    early = read_ahead(source(False))
    assert next(early) == b"a"
    early.close()
    assert closed == [False, True, False]
