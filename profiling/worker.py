"""Isolated measurement process: `python -m profiling.worker`.

One worker per (device, intra-op threads, allocator): the runner sets TF_CPU_ALLOCATOR_USE_BFC
and RELU_LAB_WORKER_THREADS in its environment before TensorFlow starts. Requests arrive as
JSON lines on stdin; replies go as JSON lines to the original stdout, which is moved to a
private descriptor so that anything else printing to stdout lands on stderr instead.

Requests: {"cmd": "init", "device", "calibrate"} -> {"type": "ready", "environment",
"calibration"}; {"cmd": "case", "case", "repeats", "min_time", "warmup", "trace", "trace_dir"}
-> {"type": "result", ...}; {"cmd": "fusion", "variants"} -> {"type": "fusion", "rows"};
{"cmd": "exit"}.
"""

from __future__ import annotations

import glob
import json
import os
import sys
import tempfile
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
THREADS_ENV = "RELU_LAB_WORKER_THREADS"
TRACE_STEPS = 3


def _setup_tf() -> Any:
    import tensorflow as tf

    threads = int(os.environ.get(THREADS_ENV, "0") or 0)
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    return tf


def make_input(tf: Any, shape: tuple[int, ...], dtype: str) -> Any:
    """Uniform values in [-1, 1) (int8: the full range), half of them negative."""
    if dtype == "int8":
        return tf.cast(tf.random.uniform(shape, -128, 128, dtype=tf.int32), tf.int8)
    return tf.cast(tf.random.uniform(shape, -1.0, 1.0, dtype=tf.float32), dtype)


def build_call(tf: Any, fn: Any, mode: str, pass_: str, x: Any) -> Any:
    """A zero-argument callable running one forward (or forward + gradient) pass."""
    if pass_ == "forward":
        step = fn
        args: tuple = (x,)
    else:
        def step(x: Any, dy: Any) -> Any:
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = fn(x)
            return y, tape.gradient(y, x, output_gradients=dy)

        args = (x, tf.ones_like(fn(x)))
    if mode == "function":
        step = tf.function(step)
    elif mode == "xla":
        step = tf.function(step, jit_compile=True)
    return lambda: step(*args)


def capture_trace(tf: Any, call: Any, sync: Any, trace_dir: str) -> str:
    """Profile TRACE_STEPS steps; returns the path of the .xplane.pb written under trace_dir."""
    logdir = tempfile.mkdtemp(dir=trace_dir)
    tf.profiler.experimental.start(logdir)
    try:
        for i in range(TRACE_STEPS):
            with tf.profiler.experimental.Trace("step", step_num=i, _r=1):
                call()
                sync()
    finally:
        tf.profiler.experimental.stop()
    paths = glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)
    if not paths:
        raise RuntimeError("the profiler wrote no .xplane.pb")
    return paths[0]


def analyze_trace(path: str) -> dict:
    """op_stats records and the breakdown of one captured trace (offline, via xprof)."""
    from profiling.analysis.breakdown import time_breakdown
    from profiling.analysis.op_stats import tf_op_stats
    from profiling.traces.xplane import framework_op_stats, load_xplane

    trace = load_xplane(path)
    # Per-op numbers come from the trace's own op events: under the BFC allocator xprof's
    # framework_op_stats reports e.g. 9 occurrences for 3 steps. Ops too cheap for TF to trace
    # (small inputs under tf.function) only show up in framework_op_stats, so fall back to it.
    ops = tf_op_stats(trace.events)
    if ops.empty:
        ops = framework_op_stats(path)
    return {"op_stats": ops.to_dict("records"), "breakdown": time_breakdown(trace.events)}


def run_case(tf: Any, req: dict) -> dict:
    from profiling.spec import Case, variant_registry
    from profiling.stats import effective_bytes
    from profiling.timing import measure, reset_peak_rss

    reset_peak_rss()  # peak_rss_mb is this case's, not the largest earlier case's
    case = Case.from_json(req["case"])
    variant = variant_registry()[case.variant]
    if getattr(variant, "needs_build", False):
        try:
            from relu_impls import custom_op

            custom_op.load()
        except Exception as e:  # BuildError: compiler missing etc. -> a clear skip
            from profiling.errors import one_line

            return {"status": "skipped", "reason": f"custom op unavailable: {one_line(e)}"}
    fn = variant.make(**case.params)
    on_gpu = case.device.startswith("GPU")
    sync = tf.test.experimental.sync_devices if on_gpu else (lambda: None)
    with tf.device(f"/{case.device}"):
        x = make_input(tf, case.shape, case.dtype)
        call = build_call(tf, fn, case.mode, case.pass_, x)
        out = call()
        y = out[0] if isinstance(out, tuple) else out
        bytes_per_call = effective_bytes(case.numel, x.dtype.size, y.dtype.size, case.pass_)
        del out, y
        timing = measure(call, sync, req["repeats"], req["min_time"], req.get("warmup", 2))
        result = {"status": "ok", "samples": timing.samples, "number": timing.number,
                  "bytes_per_call": bytes_per_call,
                  "page_faults_per_call": timing.page_faults_per_call,
                  "peak_rss_mb": timing.peak_rss_mb}
        if req.get("trace"):
            try:
                path = capture_trace(tf, call, sync, req["trace_dir"])
                result.update(trace_path=path, **analyze_trace(path))
            except Exception as e:  # the timing stands; say why the trace is missing
                from profiling.errors import one_line

                result["reason"] = f"trace failed: {one_line(e)}"
    return result


def main() -> int:
    from profiling.distributed import exit_with_parent

    # a runner killed with SIGKILL closes our stdin, but a worker stuck in a hanging case
    # would never read that EOF and outlive the run
    exit_with_parent()
    reply_fd = os.dup(1)
    os.dup2(2, 1)  # stray prints (TF, user code) go to stderr, never into the protocol
    sys.stdout = sys.stderr
    replies = os.fdopen(reply_fd, "w", buffering=1)

    def send(obj: dict) -> None:
        replies.write(json.dumps(obj, default=float) + "\n")
        replies.flush()

    tf = _setup_tf()
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        cmd = req.get("cmd")
        if cmd == "exit":
            break
        try:
            if cmd == "init":
                from profiling.calibrate import calibrate
                from profiling.env import tf_environment
                from profiling.spec import available_devices

                if req["device"] not in (seen := available_devices()):
                    send({"type": "error", "reason": f"invalid device: {req['device']!r}; "
                                                     f"accepted: {', '.join(seen)}"})
                    continue
                calib = calibrate(req["device"]) if req.get("calibrate") else None
                send({"type": "ready", "pid": os.getpid(), "calibration": calib,
                      "environment": tf_environment(int(os.environ.get(THREADS_ENV, 0)) or None,
                                                    req.get("allocator"))})
            elif cmd == "case":
                send({"type": "result", **run_case(tf, req)})
            elif cmd == "fusion":
                from profiling.fusion import fusion_report

                rows = fusion_report(req["variants"]).astype(object)
                send({"type": "fusion", "rows": rows.where(rows.notna(), None).to_dict("records")})
            else:
                send({"type": "error", "reason": f"unknown command {cmd!r}"})
        except Exception as e:  # a case that raises is reported, the worker lives on
            from profiling.errors import one_line

            send({"type": "result", "status": "failed", "reason": one_line(e)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
