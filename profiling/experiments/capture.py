"""Remote capture: profile running TensorFlow processes that called
`tf.profiler.experimental.server.start(port)`.

`capture(["grpc://127.0.0.1:6009", ...], duration_ms)` checks every address with a short TCP
connect, runs `tf.profiler.experimental.client.trace` in a subprocess under a timeout (a stuck
gRPC call cannot hang the caller), and returns one .xplane.pb per worker with its summary (top
ops, compute/collective breakdown). With a `Store`, each worker's trace becomes a case of a new
run, so the Traces page and `python -m profiling show` treat it like a local one.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from profiling import settings
from profiling.errors import timeout_text
from profiling.storage.run_writer import RunWriter
from profiling.tempdirs import temp_dir_unless

ADDRESS = re.compile(r"^grpc://(?P<host>[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\]):(?P<port>\d{1,5})$")
MAX_DURATION_MS = 600_000
TRACE_COLUMNS = ["address", "status", "reason", "path", "size_bytes", "event_count",
                 "duration_us", "compute_us", "memcpy_us", "collective_us", "idle_us",
                 "other_us", "case_id"]


class CaptureError(RuntimeError):
    """A capture could not be made; the message is one line naming the address and the cause."""


@dataclass
class CaptureResult:
    """One capture: a row per worker (TRACE_COLUMNS) and the top ops of each (µs)."""

    logdir: str
    traces: pd.DataFrame
    top_ops: pd.DataFrame  # address, name, occurrences, self_us, total_us, pct
    run_id: str | None = None
    op_stats: dict[str, pd.DataFrame] = field(default_factory=dict)


def parse_addresses(addresses: str | Sequence[str]) -> list[tuple[str, int]]:
    """`"grpc://h:p,grpc://h2:p2"` or a list of them -> [(host, port)]; CaptureError otherwise."""
    items = addresses.split(",") if isinstance(addresses, str) else list(addresses)
    items = [a.strip() for a in items if a and a.strip()]
    if not items:
        raise CaptureError("no address given; accepted: grpc://host:port[,grpc://host:port...]")
    out = []
    for item in items:
        m = ADDRESS.match(item)
        if not m or not 1 <= int(m.group("port")) <= 65535:
            raise CaptureError(f"bad address {item!r}; accepted: grpc://host:port (port 1-65535)")
        out.append((m.group("host").strip("[]"), int(m.group("port"))))
    if len(set(out)) != len(out):
        raise CaptureError(f"duplicate address in {','.join(items)}")
    return out


def check_arguments(addresses: str | Sequence[str], duration_ms: int,
                    logdir: str | None = None, timeout_s: float | None = None
                    ) -> list[tuple[str, int]]:
    """The capture's arguments, checked before any connection: the parsed addresses, or
    CaptureError (one line) naming the bad one and what is accepted."""
    targets = parse_addresses(addresses)
    if isinstance(duration_ms, bool) or not isinstance(duration_ms, int) \
            or not 1 <= duration_ms <= MAX_DURATION_MS:
        raise CaptureError(f"--duration-ms {duration_ms!r}; accepted: an integer in "
                           f"1..{MAX_DURATION_MS}")
    # as run's --timeout: NaN or inf would be no limit, and a stuck gRPC call would hang us
    if timeout_s is not None and not 0 < timeout_s <= 86400:
        raise CaptureError(f"--timeout {timeout_s:g}; accepted: seconds in (0, 86400]")
    if logdir and Path(logdir).exists() and not Path(logdir).is_dir():
        raise CaptureError(f"--logdir {logdir}: not a directory")
    return targets


def address_text(host: str, port: int) -> str:
    return f"grpc://{f'[{host}]' if ':' in host else host}:{port}"


def check_reachable(host: str, port: int, timeout_s: float = 1.0) -> None:
    """TCP connect to host:port within timeout_s; CaptureError (one line) when it fails."""
    where = address_text(host, port)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return
    except ConnectionRefusedError:
        raise CaptureError(f"{where}: connection refused (no profiler server on that port; the "
                           "process must call tf.profiler.experimental.server.start)") from None
    except TimeoutError:
        raise CaptureError(f"{where}: no answer within {timeout_s:g} s") from None
    except OSError as exc:
        raise CaptureError(f"{where}: cannot connect ({exc.strerror or exc})") from None


def capture(
    addresses: str | Sequence[str],
    duration_ms: int = 1000,
    logdir: str | None = None,
    timeout_s: float | None = None,
    store: Any = None,
    label: str = "",
    connect_timeout_s: float = 1.0,
) -> CaptureResult:
    """Capture `duration_ms` of profile from every address at once.

    timeout_s bounds the whole client call (default: the duration + RELU_LAB_CAPTURE_TIMEOUT_S,
    60 s). Workers whose trace holds no events get status "empty"; CaptureError when no worker
    returned any event. Without a `logdir` the traces go to a temp dir removed before
    returning: `path` then names the stored copy (with a `store`) or is None.
    """
    targets = check_arguments(addresses, duration_ms, logdir, timeout_s)
    for host, port in targets:
        check_reachable(host, port, connect_timeout_s)
    if timeout_s is not None:
        limit, setting = timeout_s, "the timeout given"
    else:
        limit, setting = duration_ms / 1000 + settings.capture_timeout_s(), (
            f"{duration_ms} ms + RELU_LAB_CAPTURE_TIMEOUT_S")
    with temp_dir_unless(logdir, "capture") as where:
        result = _capture_into(where, targets, duration_ms, (limit, setting), store, label)
        if not logdir:  # the temp dir goes: point at the stored copies instead
            result.logdir = str(store.traces_dir) if store is not None else ""
            result.traces["path"] = [_stored_path(store, c) for c in result.traces["case_id"]]
    return result


def _stored_path(store: Any, case_id: Any) -> str | None:
    path = store.trace_path(case_id) if store is not None and isinstance(case_id, str) else None
    return str(path) if path else None


def _capture_into(logdir: str, targets: list[tuple[str, int]], duration_ms: int,
                  limit: tuple[float, str], store: Any, label: str) -> CaptureResult:
    Path(logdir).mkdir(parents=True, exist_ok=True)
    service = ",".join(address_text(h, p) for h, p in targets)
    _run_client(service, logdir, duration_ms, limit)

    from profiling.traces import TraceError, framework_op_stats, load_trace, summarize

    rows, tops, stats = [], [], {}
    for host, port in targets:
        address = address_text(host, port)
        row = dict.fromkeys(TRACE_COLUMNS)
        row.update(address=address, status="empty", reason="")
        path = _trace_file(logdir, host, port)
        if path is None:
            row["reason"] = "the profiler wrote no trace for this worker"
            rows.append(row)
            continue
        row.update(path=path, size_bytes=os.path.getsize(path))
        try:
            summary = summarize(load_trace(path))
        except TraceError as exc:
            row.update(status="failed", reason=str(exc))
            rows.append(row)
            continue
        row.update(event_count=summary["event_count"], duration_us=summary["duration_us"],
                   **summary["breakdown"])
        if summary["event_count"] == 0:
            row["reason"] = (f"no trace events in {duration_ms} ms: the process ran no "
                             "TensorFlow ops while it was captured")
        else:
            row["status"] = "ok"
            top = summary["top_ops"].copy()
            top.insert(0, "address", address)
            tops.append(top)
            stats[address] = framework_op_stats(path)
        rows.append(row)
    traces = pd.DataFrame(rows, columns=TRACE_COLUMNS)
    if not (traces["status"] == "ok").any():
        first = traces.iloc[0]
        raise CaptureError(f"{first['address']}: {first['reason'] or 'no trace events'}")
    result = CaptureResult(
        logdir=logdir,
        traces=traces,
        top_ops=pd.concat(tops, ignore_index=True) if tops else pd.DataFrame(
            columns=["address", "name", "occurrences", "self_us", "total_us", "pct"]),
        op_stats=stats,
    )
    if store is not None:
        result.run_id = save_capture(result, store, duration_ms, label)
    return result


def _trace_file(logdir: str, host: str, port: int) -> str | None:
    # client.trace writes <logdir>/plugins/profile/<timestamp>/<host>_<port>.xplane.pb
    pattern = os.path.join(glob.escape(logdir), "plugins", "profile", "*",
                           f"{glob.escape(host)}_{port}.xplane.pb")
    found = sorted(glob.glob(pattern), key=os.path.getmtime)
    return found[-1] if found else None


def _run_client(service: str, logdir: str, duration_ms: int, limit: tuple[float, str]) -> None:
    """Run the client subprocess; limit = (seconds, what set them: named in the error)."""
    from profiling.process import child_env

    timeout_s, setting = limit
    env = child_env(TF_CPP_MIN_LOG_LEVEL="2")
    cmd = [sys.executable, "-m", "profiling.experiments.capture", "--client", service, logdir,
           str(duration_ms)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, text=True)
    try:
        output, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise CaptureError(timeout_text(f"{service}:", "capture did not finish", timeout_s,
                                        setting)) from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    if proc.returncode != 0:
        raise CaptureError(f"{service}: {_client_error(output)}")


def _client_error(output: str) -> str:
    for line in reversed(output.splitlines()):
        if line.startswith("CAPTURE_ERROR "):
            return line[len("CAPTURE_ERROR "):]
    lines = [ln for ln in output.splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "the capture client failed without output"


def save_capture(result: CaptureResult, store: Any, duration_ms: int, label: str = "") -> str:
    """Store each worker's trace as a case (mode "remote", pass "capture"); returns the run id."""
    ok = result.traces[result.traces["status"] == "ok"]
    spec = {"addresses": list(result.traces["address"]), "duration_ms": duration_ms}
    with RunWriter(store, "capture", spec, label=label or f"capture {','.join(ok['address'])}",
                   n_cases=len(result.traces)) as w:
        for idx, row in enumerate(result.traces.to_dict("records")):
            measured = row["status"] == "ok"
            result.traces.loc[idx, "case_id"] = w.add(w.case(
                idx, "capture", label=row["address"], dtype="", device=row["address"],
                mode="remote", pass_="capture", status="ok" if measured else "skipped",
                reason=row["reason"], trace=row["path"] or None,
                metrics={"median_s": (row["duration_us"] or 0) / 1e6 if measured else None},
                op_stats=result.op_stats.get(row["address"]),
                breakdown={k: row[k] for k in ("compute_us", "memcpy_us", "collective_us",
                                               "idle_us", "other_us")}))
        return w.run_id


# --- client subprocess -----------------------------------------------------------------------


def _client_main(service: str, logdir: str, duration_ms: int) -> int:
    import tensorflow as tf

    try:
        tf.profiler.experimental.client.trace(service, logdir, duration_ms,
                                              num_tracing_attempts=1)
    except Exception as exc:  # TF raises UnavailableError/RuntimeError with a status text
        text = " ".join(str(exc).split())
        if "No trace event" in text or "no responses" in text:
            text = (f"no trace events collected in {duration_ms} ms: the process ran no "
                    "TensorFlow ops while it was captured")
        else:
            text = f"{type(exc).__name__}: {text[:300]}"
        print(f"CAPTURE_ERROR {text}", flush=True)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="internal: the capture client subprocess")
    parser.add_argument("--client", nargs=3, metavar=("SERVICE", "LOGDIR", "DURATION_MS"),
                        required=True)
    args = parser.parse_args(argv)
    from profiling.process import exit_with_parent

    exit_with_parent()
    service, logdir, duration = args.client
    return _client_main(service, logdir, int(duration))


if __name__ == "__main__":
    sys.exit(main())

