"""TensorFlow profiler XSpace files (.xplane.pb), converted with xprof in a child process.

xprof's converter is native code: a crash or a runaway allocation in it must not take the
dashboard down, so it runs in `convert_child.py` under a wall-clock and an address-space limit,
and every failure becomes a one-line TraceError. Nothing here touches this process's fd 2.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from profiling import settings
from profiling.traces.model import Trace, TraceError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
CHILD = Path(__file__).with_name("convert_child.py")
DEFAULT_TIMEOUT_S = 300.0
DEFAULT_MEMORY_MB = 8192


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Mute fd 2 for a block (the CLI's TensorFlow import). Process-wide: never use it in the
    dashboard, where other threads write to stderr too."""
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


def convert_limits() -> tuple[float, int]:
    """(timeout s, memory MiB) for one conversion (profiling.settings.convert_limits)."""
    return settings.convert_limits()


@contextlib.contextmanager
def _as_file(path_or_bytes: str | os.PathLike | bytes, workdir: str) -> Iterator[str]:
    if isinstance(path_or_bytes, bytes):
        p = Path(workdir) / "trace.xplane.pb"
        p.write_bytes(path_or_bytes)
        yield str(p)
    else:
        from profiling.files import FileRefused, open_bounded
        from profiling.traces.chrome import max_trace_bytes

        try:  # size and kind checked before xprof opens it
            open_bounded(path_or_bytes, max_trace_bytes(), "trace file").close()
        except FileRefused as e:
            raise TraceError(str(e)) from None
        yield str(Path(path_or_bytes).resolve())


def _run_child(tool: str, path: str, out: str) -> None:
    timeout_s, memory_mb = convert_limits()

    def limit() -> None:  # in the child, before exec
        limit_bytes = memory_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    try:
        proc = subprocess.run([sys.executable, "-s", str(CHILD), tool, path, out],
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout_s,
                              preexec_fn=limit, check=False)
    except subprocess.TimeoutExpired:
        raise TraceError(f"xprof's converter did not finish within {timeout_s:g} s "
                         "(RELU_LAB_CONVERT_TIMEOUT_S); it was stopped") from None
    if proc.returncode == 0:
        return
    said = proc.stdout.decode("utf-8", "replace").strip().splitlines()
    if proc.returncode == 3 and said:
        raise TraceError(said[-1][:300])
    if proc.returncode < 0:
        sig = signal.Signals(-proc.returncode).name
        raise TraceError(f"xprof's converter crashed ({sig}) on this file; the dashboard is "
                         "unaffected")
    err = proc.stderr.decode("utf-8", "replace")
    if "MemoryError" in err or "bad_alloc" in err:
        raise TraceError(f"xprof's converter ran out of its {memory_mb} MiB memory limit "
                         "(RELU_LAB_CONVERT_MEMORY_MB)")
    lines = [ln.strip() for ln in err.splitlines() if ln.strip()]
    raise TraceError(f"xprof's converter failed (exit {proc.returncode})"
                     + (f": {lines[-1][:200]}" if lines else ""))


def tool_data_file(path_or_bytes: str | os.PathLike | bytes, tool: str, workdir: str) -> Path:
    """Run one xprof tool on an XSpace in the child; the path of its output (JSON) in workdir."""
    out = Path(workdir) / f"{tool}.json"
    with _as_file(path_or_bytes, workdir) as path:
        _run_child(tool, path, str(out))
    return out


def tool_data(path_or_bytes: str | os.PathLike | bytes, tool: str) -> str:
    """Raw xprof tool output (JSON text) for one XSpace; TraceError when xprof cannot parse it."""
    with tempfile.TemporaryDirectory(prefix="relu_lab_xprof_") as d:
        return tool_data_file(path_or_bytes, tool, d).read_text()


def load_xplane(path_or_bytes: str | os.PathLike | bytes, keep_args: bool = True) -> Trace:
    """Trace of an .xplane.pb through xprof's trace_viewer conversion (µs timestamps).
    ``keep_args=False`` drops each event's args text, as load_trace's does (the converted JSON
    is about 8 times the .xplane.pb, and without args it is read by parallel workers)."""
    from profiling.traces.chrome import file_chunks, read_chrome

    with tempfile.TemporaryDirectory(prefix="relu_lab_xprof_") as d:
        out = tool_data_file(path_or_bytes, "trace_viewer", d)
        trace = read_chrome(file_chunks(out, limit=1 << 40), keep_args=keep_args,
                            source="xplane", tf_rules=True, bundle_ok=False)
    trace.metadata = {"tool": "trace_viewer"}
    return trace


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
