"""Trace model and parsers. `load_trace` reads any supported file; `summarize` answers the usual
questions (top ops, time breakdown) in one dict."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from profiling.traces.chrome import (
    CHUNK,
    GZIP_MAGIC,
    decode_json,
    file_chunks,
    from_chrome_json,
    gunzip_capped,
    gunzip_chunks,
    max_trace_bytes,
    read_ahead,
    read_chrome,
)
from profiling.traces.chrome_scan import scan_chrome
from profiling.traces.model import EVENT_COLUMNS, OtherFormat, Trace, TraceError
from profiling.traces.xplane import framework_op_stats, load_xplane

if TYPE_CHECKING:
    import pandas as pd

    from profiling.traces.attribution import Attribution

__all__ = ["EVENT_COLUMNS", "OtherFormat", "Trace", "TraceError", "decode_json", "framework_op_stats",
           "from_chrome_json", "gunzip_capped", "load_trace", "summarize"]


def _chunks(path_or_bytes: str | os.PathLike | bytes, reuse: bool = False) -> Iterator[bytes]:
    if isinstance(path_or_bytes, bytes):
        if len(path_or_bytes) > max_trace_bytes():
            raise TraceError(f"trace is {len(path_or_bytes) / 2**30:.2g} GiB, over the "
                             f"{max_trace_bytes() / 2**30:.2g} GiB trace size limit")
        data = path_or_bytes  # in blocks: the reader's buffer never copies the whole upload
        return (data[i:i + CHUNK] for i in range(0, max(len(data), 1), CHUNK))
    return file_chunks(path_or_bytes, reuse=reuse)


def load_trace(path_or_bytes: str | os.PathLike | bytes, filename: str | None = None,
               keep_args: bool = True) -> Trace:
    """Read a TF .xplane.pb(.gz) or a Chrome trace .json/.json.gz (TensorBoard, PyTorch, ...).
    Files are size-checked before reading and streamed. A JSON document of another format
    raises OtherFormat (profiling.storage.bundle.load_any_trace opens exported bundles); anything else,
    TraceError with a one-line message. ``keep_args=False`` drops each event's
    args text (the summary and the audit do not need it) to save memory."""
    name = filename or ("" if isinstance(path_or_bytes, bytes) else Path(path_or_bytes).name)
    chunks = _chunks(path_or_bytes)
    first = next(chunks, b"")
    if not first:
        raise TraceError(f"{name or 'trace'} is empty")
    lower = name.lower()
    gz = first[:2] == GZIP_MAGIC

    def stream() -> Iterator[bytes]:
        yield first
        yield from chunks

    is_pb = lower.endswith((".pb", ".pb.gz")) or (
        not lower.endswith((".json", ".json.gz", ".gz")) and not gz
        and first.lstrip()[:1] not in (b"{", b"["))
    if is_pb:
        if not gz and not isinstance(path_or_bytes, bytes) and lower.endswith(".pb"):
            chunks.close()
            return load_xplane(path_or_bytes)
        data = b"".join(gunzip_chunks(stream()) if gz else stream())
        return load_xplane(data)
    chunks.close()

    def fresh() -> Iterator[bytes]:  # the scanner may refuse a trace: then it is read again
        again = _chunks(path_or_bytes, reuse=True)  # each chunk read before the next
        return read_ahead(gunzip_chunks(again)) if gz else again

    if not keep_args:  # the C++ scanner first; what it refuses the msgspec reader reads
        trace = scan_chrome(fresh())
        if trace is not None:
            return trace
    return read_chrome(fresh(), keep_args=keep_args)


def summarize(trace: Trace, top: int = 20, kind: pd.Series | None = None,
              att: Attribution | None = None) -> dict:
    """event_count, duration_us (first start to last end, µs), top_ops DataFrame
    (name, occurrences, self_us, cpu_us, total_us, pct: profiling.traces.op_stats.top_ops),
    op_time (which figure top_ops is sorted by and its pct is of: "CPU time = own + pool work"
    when the trace has intra-op pool work, else "self time"), pool_work dict (pool_us,
    unattributed_us, split_count: profiling.traces.attribution), breakdown dict (compute_us,
    memcpy_us, collective_us = communication, idle_us, other_us: the wall span split by what
    ran, see profiling.traces.breakdown), thread_time dict (self time per kind summed over
    threads), busy_us (union over threads) and compute_comm_ratio (None without
    communication). ``kind`` and ``att``: the events' classify_events and attribute, when the
    caller has them already."""
    from profiling.traces.attribution import attribute
    from profiling.traces.breakdown import span_us, time_breakdown
    from profiling.traces.classify import classify_events
    from profiling.traces.op_stats import top_ops

    ev = trace.events
    duration = span_us(ev)
    kind = classify_events(ev) if kind is None else kind
    b = time_breakdown(ev, kind)
    ratio = b.pop("compute_comm_ratio")
    thread_time = b.pop("thread_time")
    busy = b.pop("busy_us")
    att = attribute(ev, kind) if att is None else att
    return {"event_count": int(len(ev)), "duration_us": duration,
            "top_ops": top_ops(ev, top, kind, att), "op_time": att.time_label,
            "pool_work": {"pool_us": att.pool_us, "unattributed_us": att.unattributed_us,
                          "split_count": att.split_count},
            "breakdown": b, "busy_us": busy, "thread_time": thread_time,
            "compute_comm_ratio": ratio, "source": trace.source}


def trace_file_breakdown(path) -> dict:
    """time_breakdown of a trace file (any format load_trace reads): what scenarios,
    distributed and capture runs store, so every surface shows the same numbers."""
    from profiling.traces.breakdown import time_breakdown

    return time_breakdown(load_trace(path, keep_args=False).events)
