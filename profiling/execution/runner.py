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
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from profiling.execution.worker import THREADS_ENV
from profiling.measurement import noise
from profiling.measurement.env import host_environment
from profiling.measurement.roof import best_of, roof_at
from profiling.measurement.stats import paired_ratio, summarize_samples, throughput
from profiling.process import child_env
from profiling.spec import Case, RunSpec, shape_str
from profiling.storage.run_writer import CaseResult, RunWriter, case_id
from profiling.storage.store import Store
from profiling.tempdirs import make_temp_dir, private_tmpdir

INIT_TIMEOUT_S = 240.0  # TF import + the roof curve on a busy machine
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


class Cancelled(KeyboardInterrupt):
    """The run's `cancel` event was set: a Ctrl-C from the dashboard, handled like one (the run
    keeps its finished cases and is marked interrupted; run_profile then returns normally)."""


class Worker:
    """A `python -m profiling.execution.worker` subprocess speaking JSON lines."""

    def __init__(self, device: str, threads: int, allocator: str,
                 module: str = "profiling.execution.worker"):
        self.config = (device, threads, allocator)
        env = child_env(TF_CPU_ALLOCATOR_USE_BFC="true" if allocator == "bfc" else "false",
                        **{THREADS_ENV: str(threads)})  # and our pid, which the worker watches
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env["TMPDIR"] = private_tmpdir(self)  # TF's autograph files go there, removed with us
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the worker
        self.proc = subprocess.Popen([sys.executable, "-m", module], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr, start_new_session=True)
        self._buf = b""

    def request(self, obj: dict, timeout_s: float, cancel: threading.Event | None = None) -> dict:
        """Send one request and wait for its reply; WorkerLost on crash/timeout, Cancelled."""
        self.send(obj)
        return self.reply(timeout_s, cancel)

    def send(self, obj: dict) -> None:
        """Send one request (WorkerLost when the worker is gone)."""
        try:
            self.proc.stdin.write((json.dumps(obj) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise WorkerLost(self._death_message()) from None

    def reply(self, timeout_s: float, cancel: threading.Event | None = None) -> dict:
        """The worker's next line (a reply or a progress message); WorkerLost, Cancelled."""
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


def case_result(case: Case, status: str, reason: str | None = None,
                samples: Sequence[float] = (), metrics: Mapping[str, Any] | None = None,
                **fields: Any) -> CaseResult:
    """The CaseResult (kind "profile") of one case of a run."""
    return CaseResult(case.index, "profile", case.variant, label=case.label,
                      shape=shape_str(case.shape), numel=case.numel, dtype=case.dtype,
                      device=case.device, mode=case.mode, pass_=case.pass_, status=status,
                      reason=reason, variant_params=case.params, threads=case.threads,
                      allocator=case.allocator, samples=samples, metrics=metrics or {},
                      **fields)


def measured_case(case: Case, result: dict, roof: list[dict] | None = None,
                  floor_s: float | None = None) -> CaseResult:
    """CaseResult of a measured case: stats over samples, throughput, utilization against the
    roof at the case's own working set (bytes read + written per call): the stored curve's, or
    the copy timed beside the case in its group (`probe_gbps`) where that is higher."""
    stats = summarize_samples(result["samples"])
    working_set = result["bytes_per_call"]
    roofs = [r for r in (roof_at(roof or [], working_set), result.get("probe_gbps")) if r]
    roof_gbps = max(roofs, default=None)
    peak = max((p["gbps"] for p in roof or []), default=None)
    tp = throughput(case.numel, working_set, stats.median_s, roof_gbps)
    metrics = dict(bytes_per_call=working_set, working_set_bytes=working_set,
                   roof_gbps=roof_gbps, peak_gbps=peak,
                   page_faults_per_call=result["page_faults_per_call"],
                   peak_rss_mb=result["peak_rss_mb"], floor_s=floor_s, **tp)
    return case_result(case, "ok", result.get("reason"), result["samples"], metrics,
                       number=result["number"], trace=result.get("trace_path"),
                       op_stats=pd.DataFrame(result.get("op_stats") or []),
                       breakdown=result.get("breakdown"))


def result_row(run_id: str, case: Case, result: dict, roof: list[dict] | None = None,
               floor_s: float | None = None) -> dict:
    """Store row of a measured case (measured_case's, without its trace's hash)."""
    return measured_case(case, result, roof, floor_s).row(run_id)


def group_key(case: Case) -> tuple:
    """Cases with the same key differ only in variant: they are timed together, interleaved."""
    return (case.config, case.shape, case.dtype, case.mode, case.pass_)


def group_cases(cases: list[Case]) -> list[list[Case]]:
    """Runnable cases grouped by group_key, groups ordered by worker config, then first index."""
    groups: dict[tuple, list[Case]] = {}
    for case in sorted(cases, key=lambda c: (c.config, c.index)):
        groups.setdefault(group_key(case), []).append(case)
    return list(groups.values())


def init_request(config: tuple, calibrate: bool) -> dict:
    """The request that starts a worker of `config` (device, threads, allocator)."""
    return {"cmd": "init", "device": config[0], "allocator": config[2], "calibrate": calibrate}


def group_request(spec: RunSpec, cases: list[Case], trace_dir: str | None) -> dict:
    """The worker request that times one group of `spec`'s cases (see group_cases)."""
    return {"cmd": "group", "cases": [c.to_json() for c in cases], "repeats": spec.repeats,
            "min_time": spec.min_time, "warmup": spec.warmup, "trace": spec.trace,
            "trace_dir": trace_dir, "probe": True}


def pair_with_baseline(run_id: str, cases: list[CaseResult], results: list[dict],
                       baseline: str) -> None:
    """Each ok case of one group gets its paired ratio to the group's baseline case, in place:
    ratio_to_baseline (> 1: slower than the baseline) with its 95% CI."""
    ok = [i for i, c in enumerate(cases) if c.status == "ok" and results[i].get("paired")]
    base = next((i for i in ok if cases[i].variant == baseline), None)
    if base is None:
        return
    for i in ok:
        ratio = paired_ratio(results[base]["samples"], results[i]["samples"])
        cases[i].metrics = {**cases[i].metrics,
                            "baseline_case_id": case_id(run_id, cases[base].idx),
                            "ratio_to_baseline": ratio.ratio, "ratio_ci95_low": ratio.ci95_low,
                            "ratio_ci95_high": ratio.ci95_high}


class _Run:
    def __init__(self, spec: RunSpec, cases: list[Case], writer: RunWriter,
                 on_progress: Callable[[Progress], None] | None, cancel: threading.Event | None):
        self.spec, self.cases, self.writer = spec, cases, writer
        self.store, self.run_id = writer.store, writer.run_id
        self.on_progress, self.cancel = on_progress, cancel
        self.done = 0
        self.worker: Worker | None = None
        self.calibration: dict[tuple, dict] = {}
        self.roofs: dict[tuple, list[dict]] = {}
        self.floors: dict[tuple, float] = {}
        self.environment: dict = {}
        self.noise_groups: list[dict] = []
        self.spreads: list[tuple[str, float]] = []
        self.baseline = spec.baseline_variant()
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
            ready = worker.request(init_request(config, config not in self.calibration),
                                   INIT_TIMEOUT_S, self.cancel)
        except BaseException:  # cancelled or Ctrl-C mid start-up: no 10 s wait for a polite exit
            worker.kill()
            worker.close()
            raise
        if ready.get("type") != "ready":
            worker.close()
            raise WorkerLost(f"worker failed to start: {ready.get('reason')}")
        if ready.get("floor_s") is not None:
            self.floors.setdefault(config, ready["floor_s"])
        if config not in self.calibration and ready.get("calibration"):
            self._store_roof(config, ready["calibration"])
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
                 "calibration": self.calibration.get(config),
                 "harness_floor_s": self.floors.get(config)})
            self.writer.set_environment(self.environment)
        self.worker = worker
        return worker

    def _store_roof(self, config: tuple, measured: dict) -> None:
        """This run's roof points, and the effective roof: point-wise best of them and of the
        earlier runs of this host and configuration (a busy moment cannot lower the roof)."""
        device, threads, allocator = config
        curve = measured.get("curve") or []
        method = measured.get("method") or ""
        history = self.store.roof_history(socket.gethostname(), device, threads, allocator, method)
        roof = best_of(curve, history)
        self.roofs[config] = roof
        self.store.add_roof(self.run_id, [
            {**p, "device": device, "threads": threads, "allocator": allocator,
             "roof_gbps": roof_at(roof, p["working_set_bytes"])} for p in curve])
        peak = max((p["gbps"] for p in roof), default=None)
        calib = {"device": device, "threads": threads, "allocator": allocator,
                 "peak_gbps": peak, "method": method, "size_bytes": measured.get("size_bytes"),
                 "seconds": measured.get("seconds")}
        self.calibration[config] = calib
        self.store.add_calibration(self.run_id, calib)

    def stop_worker(self) -> None:
        if self.worker is not None:
            self.worker.close()
            self.worker = None

    def request_group(self, cases: list[Case]) -> list[dict]:
        """One worker request for these cases; WorkerLost when the worker dies or hangs."""
        worker = self.ensure_worker(cases[0].config)
        before = noise.snapshot([worker.proc.pid])
        reply = worker.request(group_request(self.spec, cases, self.trace_dir),
                               self.spec.timeout_s * len(cases), self.cancel)
        self.noise_groups.append({"group": describe_group(cases[0]),
                                  **noise.between(before, noise.snapshot([worker.proc.pid]))})
        if reply.get("type") != "group":
            reason = reply.get("reason") or f"unexpected reply {reply.get('type')!r}"
            return [{"status": "failed", "reason": reason} for _ in cases]
        return reply["results"]

    def run_group(self, cases: list[Case]) -> None:
        for case in cases:
            self.progress(case.describe(), "running")
        try:
            results = self.request_group(cases)
        except WorkerLost as e:
            self.stop_worker()  # a fresh worker takes the remaining cases
            if len(cases) > 1:  # find the case that took the worker down: each alone
                for case in cases:
                    self.run_group([case])
                return
            results = [{"status": "failed", "reason": str(e)}]
        done = [self._result(case, result) for case, result in zip(cases, results, strict=True)]
        pair_with_baseline(self.run_id, done, results, self.baseline)
        for case, result in zip(cases, done, strict=True):
            self.writer.add(result)
            self.done += 1
            self.progress(case.describe(), result.status)

    def _result(self, case: Case, result: dict) -> CaseResult:
        status = result.get("status")
        if status != "ok":
            return case_result(case, "skipped" if status == "skipped" else "failed",
                               result.get("reason"))
        measured = measured_case(case, result, self.roofs.get(case.config),
                                 self.floors.get(case.config))
        stats = summarize_samples(result["samples"])
        self.spreads.append((case.describe(), stats.iqr_s / stats.median_s
                             if stats.median_s else 0.0))
        return measured

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
        self.writer.add_fusion(rows)

    def execute(self) -> str:
        status = "failed"
        try:
            for case in self.cases:
                if case.skip_reason:
                    self.writer.add(case_result(case, "skipped", case.skip_reason))
                    self.done += 1
                    self.progress(case.describe(), "skipped")
            for group in group_cases([c for c in self.cases if not c.skip_reason]):
                if self.cancel is not None and self.cancel.is_set():
                    raise Cancelled()
                self.run_group(group)
            if self.spec.fusion:
                self.run_fusion()
            status = "complete"
        except KeyboardInterrupt:  # Ctrl-C or Cancelled
            status = "interrupted"
            if self.worker is not None:  # mid-case: do not wait for it to finish
                self.worker.kill()
            raise
        finally:
            self.stop_worker()
            shutil.rmtree(self.trace_dir, ignore_errors=True)
            self.store.set_noise(self.run_id, noise.verdict(self.noise_groups, self.spreads))
            self.progress("", status)
        return status


def describe_group(case: Case) -> str:
    """The settings a group's cases share, e.g. '1000 float32 CPU:0 t2 eager forward'."""
    return (f"{shape_str(case.shape)} {case.dtype} {case.device} t{case.threads} {case.mode} "
            f"{case.pass_}")


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
    store.recover()  # runs and temp dirs that dead processes left behind
    try:
        with RunWriter(store, "profile", spec.to_json(), spec.label, len(cases),
                       host_environment(), kind_in_spec=False) as writer:
            _Run(spec, cases, writer, on_progress, cancel).execute()
    except Cancelled:
        pass  # stored as interrupted, with its finished cases
    return writer.run_id
