"""`python -m profiling model`: a user's model profiled, and each what-if rewrite measured.

The model is opened only in an isolated worker (`profiling.execution.model_worker`), which
times the original and every rewrite interleaved and traces each. Training runs measure each
variant's step memory in a short-lived worker of its own, so no two share a peak. The result
is stored as a run of kind `model`: one case per variant (the original first), its samples,
trace and, for rewrites, the paired ratio to the original.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from profiling.execution.runner import Cancelled, Worker, WorkerLost
from profiling.models.load import APPLICATIONS_PREFIX
from profiling.models.profile import ModelRequest
from profiling.tempdirs import temp_dir_unless

WORKER_MODULE = "profiling.execution.model_worker"
DEFAULT_TIME_LIMIT_S = 1800.0


class ModelRunError(RuntimeError):
    """The model run could not finish; str() is one line."""


def model_hash(source: str) -> str:
    """sha256 of a model file (of a directory's files, in path order; of the name for an
    architecture built from keras.applications)."""
    if source.startswith(APPLICATIONS_PREFIX):
        return hashlib.sha256(source.encode()).hexdigest()
    path = Path(source)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for p in files:
        h.update(str(p.relative_to(path) if path.is_dir() else p.name).encode())
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _ask(worker: Worker, request: dict, timeout_s: float, cancel: threading.Event | None,
         on_progress: Callable[[str], None]) -> dict:
    worker.send(request)
    while True:
        try:
            reply = worker.reply(timeout_s, cancel)
        except WorkerLost as e:
            raise ModelRunError(f"the model worker {e} (time limit {timeout_s:g} s: "
                                "--time-limit)") from None
        if reply.get("type") == "progress":
            on_progress(str(reply.get("current", "")))
            continue
        if reply.get("type") in ("failed", "error"):
            raise ModelRunError(str(reply.get("reason")))
        return reply


def run_model(req: ModelRequest, on_progress: Callable[[str], None] = lambda s: None,
              cancel: threading.Event | None = None,
              time_limit_s: float = DEFAULT_TIME_LIMIT_S, store: Any = None, label: str = ""
              ) -> dict[str, Any]:
    """Profile in isolated workers and, given a store, save the run while its traces exist.
    The result dict is the `--json` contract (`run_id` set when stored)."""
    with temp_dir_unless(None, "model") as trace_dir:
        payload = {**asdict(req), "trace_dir": trace_dir}
        worker = Worker("CPU:0", 0, "bfc", module=WORKER_MODULE)
        try:
            result = _ask(worker, {"cmd": "model", "request": payload}, time_limit_s, cancel,
                          on_progress)["result"]
        finally:
            worker.close()
        if req.mode == "train":
            _add_peak_memory(result, payload, time_limit_s, cancel, on_progress)
        result["model_sha256"] = model_hash(req.source)
        result["run_id"] = save_model_run(result, store, label) if store is not None else None
    return result


def _add_peak_memory(result: dict, payload: dict, time_limit_s: float,
                     cancel: threading.Event | None, on_progress: Callable[[str], None]) -> None:
    """Each variant's training-step memory, each in a worker of its own."""
    names = [None] + [r["name"] for r in result["rewrites"] if r.get("status") == "ok"]
    for name in names:
        on_progress(f"step memory: {name or 'original'}")
        worker = Worker("CPU:0", 0, "bfc", module=WORKER_MODULE)
        try:
            got = _ask(worker, {"cmd": "memory", "request": payload, "rewrite": name},
                       time_limit_s, cancel, on_progress)["bytes"]
        except ModelRunError as e:
            got = None
            result.setdefault("notes", []).append(f"step memory of {name or 'original'}: {e}")
        finally:
            worker.close()
        if name is None:
            result["peak_memory_bytes"] = got
        else:
            next(r for r in result["rewrites"] if r["name"] == name)["peak_memory_bytes"] = got


def save_model_run(result: dict[str, Any], store: Any, label: str = "") -> str:
    """Store a model run (kind `model`): a case per variant with its samples and trace."""
    from profiling.storage.run_writer import CaseResult, RunWriter

    shape = " + ".join("x".join(map(str, s["shape"])) for s in result["input_spec"])
    dtype = ",".join(sorted({s["dtype"] for s in result["input_spec"]}))
    spec = {k: result.get(k) for k in ("model", "source", "model_sha256", "input_spec", "mode",
                                       "batch", "notes", "activations", "recommendations",
                                       "activation_pct", "noise")}
    spec["rewrites"] = [{k: v for k, v in r.items() if k != "samples_s"}
                        for r in result["rewrites"]]
    traces = result.get("traces", {})
    ok = [r for r in result["rewrites"] if r.get("samples_s")]
    with RunWriter(store, "model", spec, label or f"model {result['model']}",
                   n_cases=1 + len(result["rewrites"])) as w:
        w.add(CaseResult(0, "model", "original", label="original", shape=shape, dtype=dtype,
                         mode=result["mode"], pass_=result["mode"],
                         samples=result["step_samples_s"], number=result.get("number"),
                         metrics={"ratio_to_baseline": 1.0}, trace=traces.get("original")))
        for i, r in enumerate(ok + [r for r in result["rewrites"] if not r.get("samples_s")],
                              start=1):
            measured = bool(r.get("samples_s"))
            metrics = {"ratio_to_baseline": r.get("ratio_to_original"),
                       "ratio_ci95_low": r.get("ratio_ci95_low"),
                       "ratio_ci95_high": r.get("ratio_ci95_high")} if measured else {}
            w.add(CaseResult(i, "model", r["name"], label=r["name"], shape=shape, dtype=dtype,
                             mode=result["mode"], pass_=result["mode"],
                             status="ok" if measured else "failed", reason=r.get("reason"),
                             samples=r.get("samples_s") or (), number=r.get("number"),
                             metrics=metrics, trace=traces.get(r["name"])))
        return w.run_id


__all__ = ["Cancelled", "ModelRunError", "run_model", "save_model_run"]
