"""Trace model and parsers. `load_trace` reads any supported file; `summarize` answers the usual
questions (top ops, time breakdown) in one dict."""

from __future__ import annotations

import os
from pathlib import Path

from profiling.traces.chrome import (
    GZIP_MAGIC,
    decode_json,
    from_chrome_json,
    gunzip_capped,
    max_trace_bytes,
)
from profiling.traces.model import EVENT_COLUMNS, OtherFormat, Trace, TraceError
from profiling.traces.xplane import framework_op_stats, load_xplane

__all__ = ["EVENT_COLUMNS", "OtherFormat", "Trace", "TraceError", "framework_op_stats", "load_trace",
           "summarize"]


def _read(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > max_trace_bytes():
            raise TraceError(f"{path.name} is {size / 2**30:.2g} GiB, over the trace size limit")
        return path.read_bytes()
    except FileNotFoundError:
        raise TraceError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise TraceError(f"{path} is a directory, not a trace file") from None
    except PermissionError:
        raise TraceError(f"cannot read {path}: permission denied") from None


def load_trace(path_or_bytes: str | os.PathLike | bytes, filename: str | None = None) -> Trace:
    """Read a TF .xplane.pb or a Chrome trace .json/.json.gz (TensorBoard, PyTorch, ...).
    TraceError with a one-line message on anything else; OtherFormat for a JSON document of
    another format (profiling.bundle.load_any_trace also opens exported bundles)."""
    if isinstance(path_or_bytes, bytes):
        data, name = path_or_bytes, filename or ""
    else:
        p = Path(path_or_bytes)
        data, name = _read(p), filename or p.name
    if not data:
        raise TraceError(f"{name or 'trace'} is empty")
    lower = name.lower()
    if lower.endswith(".pb.gz") and data[:2] == GZIP_MAGIC:
        data, lower = gunzip_capped(data), lower.removesuffix(".gz")
    if lower.endswith(".pb") or lower.endswith(".pb.gz") or (
            not lower.endswith((".json", ".json.gz", ".gz")) and data[:1] not in (b"{", b"[")
            and data[:2] != GZIP_MAGIC):
        return load_xplane(data)
    obj = decode_json(data)
    if isinstance(obj, dict) and "traceEvents" not in obj and isinstance(obj.get("format"), str):
        raise OtherFormat(obj)
    return from_chrome_json(obj)


def summarize(trace: Trace, top: int = 20) -> dict:
    """event_count, duration_us (first start to last end, µs), top_ops DataFrame
    (name, occurrences, self_us, total_us, pct), breakdown dict (compute_us, memcpy_us,
    collective_us, idle_us, other_us) and compute_comm_ratio (None without communication)."""
    from profiling.analysis.breakdown import time_breakdown
    from profiling.analysis.op_stats import top_ops

    ev = trace.events
    duration = float((ev.ts_us + ev.dur_us).max() - ev.ts_us.min()) if len(ev) else 0.0
    b = time_breakdown(ev)
    ratio = b.pop("compute_comm_ratio")
    return {"event_count": int(len(ev)), "duration_us": duration, "top_ops": top_ops(ev, top),
            "breakdown": b, "compute_comm_ratio": ratio, "source": trace.source}
