"""Run a RunSpec: one isolated worker process per (device, threads, allocator), results stored
case by case so that a crash, a hang or an interrupted run keeps everything finished before it.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from profiling.distributed import child_env
from profiling.env import host_environment
from profiling.spec import Case, RunSpec, shape_str
from profiling.stats import summarize_samples, throughput
from profiling.store import Store
from profiling.tempdirs import make_temp_dir, private_tmpdir
from profiling.worker import THREADS_ENV

INIT_TIMEOUT_S = 180.0  # TF import + calibration on a busy machine
FUSION_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Progress:
    """done of total cases finished; current describes the case now running; status is
    running|ok|skipped|failed for the case, or complete|interrupted|failed for the run."""

    done: int
    total: int
    current: str
    status: str


class WorkerLost(RuntimeError):
    """The worker died or stopped answering; str() says how."""


class Cancelled(Exception):
    pass


class Worker:
    """A `python -m profiling.worker` subprocess speaking JSON lines."""

    def __init__(self, device: str, threads: int, allocator: str):
        self.config = (device, threads, allocator)
        env = child_env(TF_CPU_ALLOCATOR_USE_BFC="true" if allocator == "bfc" else "false",
                        **{THREADS_ENV: str(threads)})  # and our pid, which the worker watches
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env["TMPDIR"] = private_tmpdir(self)  # TF's autograph files go there, removed with us
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the worker
        self.proc = subprocess.Popen([sys.executable, "-m", "profiling.worker"], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr, start_new_session=True)
        self._buf = b""

    def request(self, obj: dict, timeout_s: float, cancel: threading.Event | None = None) -> dict:
        """Send one request and wait for its reply; WorkerLost on crash/timeout, Cancelled."""
        try:
            self.proc.stdin.write((json.dumps(obj) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise WorkerLost(self._death_message()) from None
        deadline = time.monotonic() + timeout_s
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise WorkerLost(f"timed out after {timeout_s:g} s")
            ready, _, _ = select.select([fd], [], [], min(left, 0.1))
            if ready:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    raise WorkerLost(self._death_message())
                self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)

    def _death_message(self) -> str:
        try:
            rc = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            rc = self.proc.returncode
        if rc is not None and rc < 0:
            try:
                how = f"killed by {signal.Signals(-rc).name}"
            except ValueError:
                how = f"killed by signal {-rc}"
        else:
            how = f"exited with status {rc}"
        if rc == -signal.SIGKILL:
            how += " (out of memory?)"
        tail = self.stderr_tail()
        return f"worker crashed: {how}" + (f"; stderr: {tail}" if tail else "")

    def stderr_tail(self, lines: int = 2) -> str:
        self._stderr.seek(0, os.SEEK_END)
        size = self._stderr.tell()
        self._stderr.seek(max(0, size - 4096))
        text = self._stderr.read().decode(errors="replace").splitlines()
        keep = [ln.strip() for ln in text if ln.strip() and not ln.startswith(("I0000", "W0000"))]
        return " | ".join(keep[-lines:])[:300]

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b'{"cmd": "exit"}\n')
                self.proc.stdin.flush()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()
        for f in (self.proc.stdin, self.proc.stdout, self._stderr):
            with contextlib.suppress(OSError):
                f.close()


def case_id(run_id: str, case: Case) -> str:
    return f"{run_id}-{case.index:04d}"


def case_row(run_id: str, case: Case, status: str, reason: str | None = None) -> dict:
    return {"run_id": run_id, "case_id": case_id(run_id, case), "idx": case.index,
            "variant": case.variant, "variant_params": json.dumps(case.params, sort_keys=True),
            "label": case.label, "shape": shape_str(case.shape), "numel": case.numel,
            "dtype": case.dtype, "device": case.device, "threads": case.threads,
            "allocator": case.allocator, "mode": case.mode, "pass": case.pass_,
            "status": status, "reason": reason}


def result_row(run_id: str, case: Case, result: dict, peak_gbps: float | None) -> dict:
    """Store row of a measured case: stats over samples, throughput, utilization."""
    row = case_row(run_id, case, "ok", result.get("reason"))
    stats = summarize_samples(result["samples"])
    row.update({k: v for k, v in stats.to_dict().items() if k != "ci_coverage"})
    row.update(number=result["number"], bytes_per_call=result["bytes_per_call"],
               peak_gbps=peak_gbps, page_faults_per_call=result["page_faults_per_call"],
               peak_rss_mb=result["peak_rss_mb"],
               **throughput(case.numel, result["bytes_per_call"], stats.median_s, peak_gbps))
    return row


class _Run:
    def __init__(self, spec: RunSpec, cases: list[Case], store: Store, run_id: str,
                 on_progress: Callable[[Progress], None] | None, cancel: threading.Event | None):
        self.spec, self.cases, self.store, self.run_id = spec, cases, store, run_id
        self.on_progress, self.cancel = on_progress, cancel
        self.done = 0
        self.worker: Worker | None = None
        self.calibration: dict[tuple, dict] = {}
        self.environment: dict = {}
        self.trace_dir = make_temp_dir("trace")

    def progress(self, current: str, status: str) -> None:
        if self.on_progress is not None:
            self.on_progress(Progress(self.done, len(self.cases), current, status))

    def ensure_worker(self, config: tuple) -> Worker:
        if self.worker is not None and self.worker.config == config:
            return self.worker
        self.stop_worker()
        worker = Worker(*config)
        try:
            ready = worker.request({"cmd": "init", "device": config[0], "allocator": config[2],
                                    "calibrate": config not in self.calibration},
                                   INIT_TIMEOUT_S, self.cancel)
        except BaseException:  # cancelled or Ctrl-C mid start-up: no 10 s wait for a polite exit
            worker.kill()
            worker.close()
            raise
        if ready.get("type") != "ready":
            worker.close()
            raise WorkerLost(f"worker failed to start: {ready.get('reason')}")
        if config not in self.calibration and ready.get("calibration"):
            calib = {"device": config[0], "threads": config[1], "allocator": config[2],
                     **ready["calibration"]}
            self.calibration[config] = calib
            self.store.add_calibration(self.run_id, calib)
        env = ready.get("environment") or {}
        if not self.environment:
            self.environment = {**env, "configs": []}
        configs = self.environment["configs"]
        if list(config) not in ([c["device"], c["threads"], c["allocator"]] for c in configs):
            # once per config: a fresh worker after a crash is the same configuration
            configs.append(
                {"device": config[0], "threads": config[1], "allocator": config[2],
                 "intra_op_threads": env.get("intra_op_threads"),
                 "TF_CPU_ALLOCATOR_USE_BFC": env.get("TF_CPU_ALLOCATOR_USE_BFC"),
                 "calibration": self.calibration.get(config)})
            self.store.set_environment(self.run_id, self.environment)
        self.worker = worker
        return worker

    def stop_worker(self) -> None:
        if self.worker is not None:
            self.worker.close()
            self.worker = None

    def run_case(self, case: Case) -> str:
        if case.skip_reason:
            self.store.add_case(case_row(self.run_id, case, "skipped", case.skip_reason))
            return "skipped"
        try:
            worker = self.ensure_worker(case.config)
            result = worker.request(
                {"cmd": "case", "case": case.to_json(), "repeats": self.spec.repeats,
                 "min_time": self.spec.min_time, "warmup": self.spec.warmup,
                 "trace": self.spec.trace, "trace_dir": self.trace_dir},
                self.spec.timeout_s, self.cancel)
        except WorkerLost as e:
            self.stop_worker()  # a fresh worker takes the remaining cases
            self.store.add_case(case_row(self.run_id, case, "failed", str(e)))
            return "failed"
        if result.get("status") != "ok":
            status = result.get("status") if result.get("status") == "skipped" else "failed"
            self.store.add_case(case_row(self.run_id, case, status, result.get("reason")))
            return status
        calib = self.calibration.get(case.config) or {}
        row = result_row(self.run_id, case, result, calib.get("peak_gbps"))
        if result.get("trace_path"):
            path = Path(result["trace_path"])
            row["trace_sha256"] = self.store.put_trace(path.read_bytes(), path.name)
        self.store.add_case(row, result["samples"], pd.DataFrame(result.get("op_stats") or []),
                            result.get("breakdown"))
        return "ok"

    def run_fusion(self) -> None:
        variants = self.spec.normalized_variants()
        config = self.cases[0].config if self.cases else ("CPU:0", os.cpu_count() or 1, "bfc")
        self.progress("fusion report", "running")
        try:
            reply = self.ensure_worker(config).request(
                {"cmd": "fusion", "variants": variants}, FUSION_TIMEOUT_S, self.cancel)
            rows = pd.DataFrame(reply.get("rows") or [])
            if reply.get("type") != "fusion":
                rows = pd.DataFrame([{"variant": "*", "block": "*", "reason": reply.get("reason")}])
        except WorkerLost as e:
            self.stop_worker()
            rows = pd.DataFrame([{"variant": "*", "block": "*", "reason": str(e)}])
        rows["case_id"] = [f"{self.run_id}-fusion-{i:03d}" for i in range(len(rows))]
        self.store.add_fusion(self.run_id, rows)

    def execute(self) -> str:
        status = "failed"
        try:
            for case in sorted(self.cases, key=lambda c: (c.config, c.index)):
                if self.cancel is not None and self.cancel.is_set():
                    raise Cancelled()
                self.progress(case.describe(), "running")
                case_status = self.run_case(case)
                self.done += 1
                self.progress(case.describe(), case_status)
            if self.spec.fusion:
                self.run_fusion()
            status = "complete"
        except (Cancelled, KeyboardInterrupt) as e:
            status = "interrupted"
            if self.worker is not None:  # mid-case: do not wait for it to finish
                self.worker.kill()
            if isinstance(e, KeyboardInterrupt):
                raise
        finally:
            self.stop_worker()
            shutil.rmtree(self.trace_dir, ignore_errors=True)
            self.store.finish_run(self.run_id, status)
            self.progress("", status)
        return status


def run_profile(spec: RunSpec, store: Store | None = None,
                on_progress: Callable[[Progress], None] | None = None,
                cancel: threading.Event | None = None) -> str:
    """Validate `spec`, run every case in isolated workers, store results; returns the run id.

    SpecError before anything runs. Cases that crash, raise, OOM or time out are stored as
    failed and the run goes on with a fresh worker. `cancel` (or Ctrl-C) stops the run, which
    keeps its finished cases and is marked interrupted.
    """
    cases = spec.validate()
    store = store or Store()
    run_id = store.create_run(spec.to_json(), spec.label, len(cases), host_environment())
    _Run(spec, cases, store, run_id, on_progress, cancel).execute()
    return run_id
