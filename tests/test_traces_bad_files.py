"""Files that are not traces: one-line TraceError, never a crash or a huge allocation."""

from __future__ import annotations

import gzip
import json
import os

import pytest

from profiling.traces import TraceError, load_trace
from profiling.traces.chrome import gunzip_capped


def _xplane_bytes():
    import glob
    import tempfile

    import tensorflow as tf

    d = tempfile.mkdtemp()
    tf.profiler.experimental.start(d)
    tf.nn.relu(tf.ones([10]))
    tf.profiler.experimental.stop()
    return open(glob.glob(f"{d}/**/*.xplane.pb", recursive=True)[0], "rb").read()


BAD = {
    "random.xplane.pb": os.urandom(4096),
    "empty.json": b"",
    "foreign.json": json.dumps({"hello": "world", "items": [1, 2]}).encode(),
    "list.json": b"[1, 2, 3]",
    "broken.json": b'{"traceEvents": [{"ph": "X", "ts": 1',
    "latin1.json": b'{"traceEvents": "\xff\xfe"}',
    "truncated.json.gz": gzip.compress(b'{"traceEvents": []}' * 1000)[:40],
    "notgzip.json.gz": b"\x1f\x8b\x08garbage-garbage",
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_input_is_one_line_trace_error(name, tmp_path):
    p = tmp_path / name
    p.write_bytes(BAD[name])
    with pytest.raises(TraceError) as e:
        load_trace(p)
    assert "\n" not in str(e.value) and str(e.value)


def test_truncated_xplane():
    data = _xplane_bytes()
    with pytest.raises(TraceError, match="XSpace|xprof"):
        load_trace(data[: len(data) // 2], "cut.xplane.pb")


def test_gzip_bomb_is_capped(tmp_path, monkeypatch):
    # 64 MiB of a trace that never ends, in ~64 KiB: only the decompression cap stops it
    bomb = gzip.compress(b'{"traceEvents": [' + b" " * (64 << 20), compresslevel=9)
    assert len(bomb) < 200_000
    monkeypatch.setenv("RELU_LAB_MAX_TRACE_BYTES", str(8 << 20))
    p = tmp_path / "bomb.json.gz"
    p.write_bytes(bomb)
    with pytest.raises(TraceError, match="exceeds"):
        load_trace(p)
    # zeros are refused on the first decompressed chunk, long before the cap
    p.write_bytes(gzip.compress(b"\0" * (64 << 20), compresslevel=9))
    with pytest.raises(TraceError, match="not valid JSON"):
        load_trace(p)
    with pytest.raises(TraceError, match="exceeds"):
        gunzip_capped(bomb, limit=1 << 20)
    assert len(gunzip_capped(gzip.compress(b"x" * 1000), limit=1000)) == 1000


def test_missing_file():
    with pytest.raises(TraceError, match="no such file"):
        load_trace("/nonexistent/trace.json")


def test_gzipped_xplane_loads():
    data = _xplane_bytes()
    trace = load_trace(gzip.compress(data), "t.xplane.pb.gz")
    assert trace.source == "xplane" and len(trace.events) > 0
