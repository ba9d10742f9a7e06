"""What the Traces page shows of one trace: its events, summary and activation audit, read so
that the analysis adds little on top of the upload the page already holds."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

# Past this size each event's args text is not kept (the hover box and the event details then
# show none): as Python strings it would cost about half the file again, and `audit` reads
# traces the same way.
ARGS_KEPT_UP_TO_BYTES = 32 << 20


def trace_bytes(data: bytes | str) -> int:
    """Size of an upload (bytes) or a stored trace file (path)."""
    return len(data) if isinstance(data, bytes) else Path(data).stat().st_size


def explore_trace(data: bytes | str, filename: str, top: int = 50
                  ) -> tuple[pd.DataFrame, dict, dict]:
    """(events, summarize(top=top), audit_trace) of an upload's bytes or a trace file's path;
    args kept up to ARGS_KEPT_UP_TO_BYTES, the events classified and attributed once for both.
    TraceError (one line) on a bad file."""
    from profiling.analysis.activations import audit_trace
    from profiling.storage.bundle import load_any_trace
    from profiling.traces import summarize
    from profiling.traces.attribution import attribute
    from profiling.traces.classify import classify_events

    trace = load_any_trace(data, filename, keep_args=trace_bytes(data) <= ARGS_KEPT_UP_TO_BYTES)
    kind = classify_events(trace.events)
    att = attribute(trace.events, kind)
    return (trace.events, summarize(trace, top=top, kind=kind, att=att),
            audit_trace(trace.events, kind=kind, att=att))
