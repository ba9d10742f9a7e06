"""TensorFlow profiler XSpace files (.xplane.pb), converted with xprof."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from profiling.traces.model import Trace, TraceError, from_chrome_events

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """xprof's C++ logs parse errors straight to fd 2; the caller reports its own one-liner."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@contextlib.contextmanager
def _as_file(path_or_bytes: str | os.PathLike | bytes) -> Iterator[str]:
    if isinstance(path_or_bytes, bytes):
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "trace.xplane.pb"
            p.write_bytes(path_or_bytes)
            yield str(p)
    else:
        yield str(Path(path_or_bytes).resolve())


def tool_data(path_or_bytes: str | os.PathLike | bytes, tool: str) -> str:
    """Raw xprof tool output (JSON text) for one XSpace; TraceError when xprof cannot parse it."""
    from xprof.convert import raw_to_tool_data

    with _as_file(path_or_bytes) as path, quiet_stderr():
        try:
            data, _ = raw_to_tool_data.xspace_to_tool_data([path], tool, {"use_saved_result": False})
        except Exception as e:  # xprof raises RuntimeError with a status string
            raise TraceError(f"xprof cannot convert the XSpace: {str(e).splitlines()[0]}") from None
    if not data:
        raise TraceError("not a readable XSpace (.xplane.pb): truncated or not a TF profile")
    return data.decode() if isinstance(data, bytes) else data


def load_xplane(path_or_bytes: str | os.PathLike | bytes) -> Trace:
    """Trace of an .xplane.pb through xprof's trace_viewer conversion (µs timestamps)."""
    obj = json.loads(tool_data(path_or_bytes, "trace_viewer"))
    return from_chrome_events(obj.get("traceEvents", []), "xplane", {"tool": "trace_viewer"},
                              tf_rules=True)


def framework_op_stats(path_or_bytes: str | os.PathLike | bytes) -> pd.DataFrame:
    """xprof framework_op_stats: op_name, op_type, occurrences, self_time_us, total_time_us, device.

    The IDLE pseudo-op is dropped. Eager ops may report zero self time in this tool.
    """
    tables = json.loads(tool_data(path_or_bytes, "framework_op_stats"))
    rows = []
    if tables:
        table = tables[0]
        cols = [c["id"] for c in table["cols"]]
        for r in table.get("rows", []):
            v = dict(zip(cols, [c.get("v") for c in r["c"]], strict=False))
            if v.get("type") == "IDLE":
                continue
            rows.append({"op_name": v.get("operation"), "op_type": v.get("type") or v.get("operation"),
                         "occurrences": int(v.get("occurrences") or 0),
                         "self_time_us": float(v.get("total_self_time") or 0.0),
                         "total_time_us": float(v.get("total_time") or 0.0),
                         "device": v.get("host_or_device")})
    return pd.DataFrame(rows, columns=["op_name", "op_type", "occurrences", "self_time_us",
                                       "total_time_us", "device"])
