"""Isolated measurement process: `python -m profiling.execution.worker`.

One worker per (device, intra-op threads, allocator): the runner sets TF_CPU_ALLOCATOR_USE_BFC
and _RELU_LAB_INTERNAL_WORKER_THREADS in its environment before TensorFlow starts. Requests
arrive as JSON lines on stdin; replies go as JSON lines to the original stdout, which is moved
to a private descriptor so that anything else printing to stdout lands on stderr instead.

Requests: {"cmd": "init", "device", "calibrate"} -> {"type": "ready", "environment",
"calibration" (the roof curve), "floor_s"}; {"cmd": "group", "cases", "repeats", "min_time",
"warmup", "trace", "trace_dir"} -> {"type": "group", "results"} (cases that differ only in
variant, timed interleaved); {"cmd": "fusion", "variants"} -> {"type": "fusion", "rows"};
{"cmd": "exit"}.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
from typing import Any

from profiling.traces.record import capture_trace

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
THREADS_ENV = "_RELU_LAB_INTERNAL_WORKER_THREADS"  # internal: set by the runner


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
    if pass_ == "forward" and mode == "eager":
        return functools.partial(fn, x)  # a call of the function itself, as timeit would make
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


def analyze_trace(path: str) -> dict:
    """op_stats records and the breakdown of one captured trace (offline, via xprof)."""
    from profiling.traces.breakdown import time_breakdown
    from profiling.traces.op_stats import tf_op_stats
    from profiling.traces.xplane import framework_op_stats, load_xplane

    trace = load_xplane(path)
    # Per-op numbers come from the trace's own op events: under the BFC allocator xprof's
    # framework_op_stats reports e.g. 9 occurrences for 3 steps. Ops too cheap for TF to trace
    # (small inputs under tf.function) only show up in framework_op_stats, so fall back to it.
    ops = tf_op_stats(trace.events)
    if ops.empty:
        ops = framework_op_stats(path)
    return {"op_stats": ops.to_dict("records"), "breakdown": time_breakdown(trace.events)}


def prepare_case(tf: Any, case: Any, x: Any) -> tuple[Any, int]:
    """Validate the case once and build what will be timed: (call, bytes moved per call).

    Parameters and the input dtype are checked here, outside any timed loop; the call runs the
    variant's own callable (VariantFn.impl), not the checking wrapper that relu_impls.get
    returns, so the timing is the variant's and nothing else.
    """
    from profiling.measurement.stats import effective_bytes
    from profiling.spec import variant_registry

    variant = variant_registry()[case.variant]
    if getattr(variant, "needs_build", False):
        from relu_impls import custom_op

        custom_op.load()  # BuildError -> the case is skipped with the compiler's reason
    fn = variant.make(**case.params)
    check = getattr(variant, "check_dtype", None)
    if check is not None:
        check(x.dtype)
    call = build_call(tf, getattr(fn, "impl", fn), case.mode, case.pass_, x)
    out = call()
    y = out[0] if isinstance(out, tuple) else out
    nbytes = effective_bytes(case.numel, x.dtype.size, y.dtype.size, case.pass_)
    del out, y
    return call, nbytes


PROBE = "probe"  # the key of the roof's copy among a group's interleaved calls


def _add_probe(calls: dict, results: list[dict], device: str) -> int | None:
    """Add the roof's copy at the group's working set to `calls` (timed interleaved with the
    cases, so a roof point shares their seconds of a busy machine); its bytes per call, or None
    when no case is ready or no copy can be made."""
    from profiling.measurement.roof import probe_at

    sizes = [results[i]["bytes_per_call"] for i in calls]
    if not sizes:
        return None
    try:
        call, sync, nbytes = probe_at(device, max(set(sizes), key=sizes.count))
    except Exception:  # no probe: the stored roof curve alone
        return None
    calls[PROBE] = (call, sync)
    return nbytes


def run_group(tf: Any, req: dict) -> dict:
    """Time cases that differ only in variant, interleaved repeat by repeat, on one shared input.

    Reply: {"type": "group", "results": [one dict per case, in request order]}; a case that
    cannot be prepared is "skipped" (op unavailable) or "failed" with its reason, the others go
    on. When the interleaved timing raises, each case is timed alone to find the culprit.
    """
    from profiling.errors import one_line
    from profiling.measurement.timing import (
        device_sync,
        measure,
        measure_interleaved,
        on_fresh_stack,
    )
    from profiling.spec import Case, default_device

    cases = [Case.from_json(c) for c in req["cases"]]
    first = cases[0]
    sync = device_sync(tf, first.device)
    results: list[dict] = [{} for _ in cases]
    calls: dict[int, tuple] = {}

    # An explicit device scope costs ~1 µs per eager op: enter it only where the op would not
    # run on that device anyway (the default is the first GPU, else CPU:0).
    explicit = first.device != default_device()

    def scope() -> Any:  # entered twice: here and on the timing thread (scopes are per thread)
        return tf.device(f"/{first.device}") if explicit else contextlib.nullcontext()

    def timed(measure_fn: Any, *args: Any, **kwargs: Any) -> Any:
        # run by on_fresh_stack: the timed calls sit as deep as under a top-level timeit
        with scope():
            return measure_fn(*args, **kwargs)

    with scope():
        x = make_input(tf, first.shape, first.dtype)
        for i, case in enumerate(cases):
            try:
                call, nbytes = prepare_case(tf, case, x)
            except Exception as e:
                skipped = type(e).__name__ == "BuildError"
                results[i] = {"status": "skipped" if skipped else "failed",
                              "reason": (f"custom op unavailable: {one_line(e)}" if skipped
                                         else one_line(e))}
                continue
            calls[i] = (call, sync)
            results[i] = {"status": "ok", "bytes_per_call": nbytes,
                          "paired": len(cases) > 1}
        args = (req["repeats"], req["min_time"], req.get("warmup", 2))
        probe_bytes = _add_probe(calls, results, first.device) if req.get("probe") else None
        try:
            timings = on_fresh_stack(timed, measure_interleaved, calls, *args,
                                     seed=req.get("seed", 0))
        except Exception:  # one callable raised mid-run: time each alone
            timings = {}
            calls.pop(PROBE, None)
            for i, (call, sync_) in calls.items():
                try:
                    timings[i] = on_fresh_stack(timed, measure, call, sync_, *args)
                except Exception as e:
                    results[i] = {"status": "failed", "reason": one_line(e)}
                results[i]["paired"] = False
        probe = timings.pop(PROBE, None)
        if probe is not None:  # a peak is a maximum: the best of the probe's samples
            probe_gbps = probe_bytes / min(probe.samples) / 1e9
            for i in timings:
                if results[i]["bytes_per_call"] == probe_bytes:
                    results[i]["probe_gbps"] = probe_gbps
        for i, timing in timings.items():
            results[i].update(samples=timing.samples, number=timing.number,
                              page_faults_per_call=timing.page_faults_per_call,
                              peak_rss_mb=timing.peak_rss_mb)
        if req.get("trace"):
            for i in timings:
                try:
                    path = capture_trace(tf, calls[i][0], sync, req["trace_dir"])
                    results[i].update(trace_path=path, **analyze_trace(path))
                except Exception as e:  # the timing stands; say why the trace is missing
                    results[i]["reason"] = f"trace failed: {one_line(e)}"
    return {"type": "group", "results": results}




def reply_channel() -> Any:
    """Set this process up as a worker and return its `send(obj)`: exit with the parent, and
    move the protocol off stdout so that stray prints (TF, user code) land on stderr."""
    from profiling.process import exit_with_parent

    # a runner killed with SIGKILL closes our stdin, but a worker stuck in a hanging case
    # would never read that EOF and outlive the run
    exit_with_parent()
    reply_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    replies = os.fdopen(reply_fd, "w", buffering=1)

    def send(obj: dict) -> None:
        replies.write(json.dumps(obj, default=float) + "\n")
        replies.flush()

    return send


def serve(send: Any, handle: Any) -> None:
    """Answer JSON-line requests from stdin until {"cmd": "exit"} or EOF: `handle(cmd, req)`
    returns the reply; an exception is sent as {"type": "failed", "reason": one line} and the
    worker lives on."""
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        cmd = req.get("cmd")
        if cmd == "exit":
            break
        try:
            send(handle(cmd, req))
        except Exception as e:  # a case that raises is reported, the worker lives on
            from profiling.errors import one_line

            send({"type": "failed", "reason": one_line(e)})


def _handle(tf: Any, cmd: str, req: dict) -> dict:
    if cmd == "init":
        from profiling.measurement.env import tf_environment
        from profiling.measurement.roof import calibrate
        from profiling.measurement.timing import harness_floor
        from profiling.spec import available_devices

        if req["device"] not in (seen := available_devices()):
            return {"type": "error", "reason": f"invalid device: {req['device']!r}; "
                                               f"accepted: {', '.join(seen)}"}
        calib = calibrate(req["device"]) if req.get("calibrate") else None
        return {"type": "ready", "pid": os.getpid(), "calibration": calib,
                "floor_s": harness_floor(),
                "environment": tf_environment(int(os.environ.get(THREADS_ENV, 0)) or None,
                                              req.get("allocator"))}
    if cmd == "group":
        return run_group(tf, req)
    if cmd == "fusion":
        from profiling.execution.fusion_blocks import fusion_report

        rows = fusion_report(req["variants"]).astype(object)
        return {"type": "fusion", "rows": rows.where(rows.notna(), None).to_dict("records")}
    return {"type": "error", "reason": f"unknown command {cmd!r}"}


def main() -> int:
    send = reply_channel()
    tf = _setup_tf()
    serve(send, functools.partial(_handle, tf))
    return 0


if __name__ == "__main__":
    sys.exit(main())
