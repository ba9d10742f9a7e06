"""Chrome trace JSON (.json / .json.gz) from TensorBoard, PyTorch or any other tool."""

from __future__ import annotations

import json
import zlib
from typing import Any

from profiling import settings
from profiling.traces.model import Trace, TraceError, from_chrome_events

GZIP_MAGIC = b"\x1f\x8b"
DEFAULT_MAX_BYTES = settings.DEFAULT_MAX_TRACE_BYTES


def max_trace_bytes() -> int:
    """Cap on decompressed size (bytes); env RELU_LAB_MAX_TRACE_BYTES overrides."""
    return settings.max_trace_bytes()


def gunzip_capped(data: bytes, limit: int | None = None, chunk: int = 1 << 20) -> bytes:
    """Decompress gzip in bounded chunks; TraceError past `limit` bytes or on a bad stream."""
    limit = max_trace_bytes() if limit is None else limit
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out, total = [], 0
    view = memoryview(data)
    try:
        for start in range(0, len(data), chunk):
            buf = view[start:start + chunk]
            while buf:
                piece = d.decompress(buf, chunk)
                total += len(piece)
                if total > limit:
                    raise TraceError(f"decompressed trace exceeds the {limit / 2**30:.2g} GiB limit "
                                     "(set RELU_LAB_MAX_TRACE_BYTES to raise it)")
                out.append(piece)
                buf = d.unconsumed_tail
        if not d.eof:
            raise TraceError("truncated gzip stream")
    except zlib.error as e:
        raise TraceError(f"corrupt gzip data: {e}") from None
    return b"".join(out)


def decode_json(data: bytes) -> Any:
    if data[:2] == GZIP_MAGIC:
        data = gunzip_capped(data)
    elif len(data) > max_trace_bytes():
        raise TraceError(f"trace exceeds the {max_trace_bytes() / 2**30:.2g} GiB limit")
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise TraceError(f"not valid JSON ({type(e).__name__} at byte "
                         f"{getattr(e, 'pos', getattr(e, 'start', '?'))})") from None
    except RecursionError:
        raise TraceError("JSON nested too deeply") from None


def is_chrome_trace(obj: Any) -> bool:
    if isinstance(obj, dict):
        return isinstance(obj.get("traceEvents"), list)
    return isinstance(obj, list) and all(isinstance(e, dict) and "ph" in e for e in obj[:100])


def from_chrome_json(obj: Any, tf_rules: bool | None = None) -> Trace:
    """Trace from a decoded Chrome trace (object with traceEvents, or a bare event array)."""
    if not is_chrome_trace(obj):
        raise TraceError("foreign JSON: not a Chrome trace (no traceEvents list) nor a ReLU Lab bundle")
    events = obj["traceEvents"] if isinstance(obj, dict) else obj
    meta = {k: v for k, v in obj.items() if k != "traceEvents" and isinstance(v, (str, int, float))} \
        if isinstance(obj, dict) else {}
    if tf_rules is None:  # TensorBoard's trace viewer JSON: TF op events carry long_name
        tf_rules = any(isinstance(e, dict) and isinstance(e.get("args"), dict)
                       and "long_name" in e["args"] for e in events[:5000])
    return from_chrome_events(events, "chrome", meta, tf_rules=tf_rules)
