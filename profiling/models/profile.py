"""Profile a user's model and measure each what-if rewrite against it, in this process.

Run only inside the isolated model worker (`profiling.execution.model_worker`): it loads the
user's file. The original and every rewrite that builds are timed interleaved, repeat by repeat
(`measure_interleaved` on a fresh stack), so each rewrite's speedup over the original is the
paired one with its 95% CI. Each variant's trace is audited and joined to the model's
activation layers; the outputs (inference) or the loss and gradients (training) of each
rewrite are compared with the original's on the same batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from profiling.errors import one_line
from profiling.measurement import noise
from profiling.measurement.stats import paired_ratio, relative_spread, summarize_samples
from profiling.measurement.timing import (
    DEFAULT_MIN_TIME,
    DEFAULT_REPEATS,
    DEFAULT_WARMUP,
    measure_interleaved,
    no_sync,
    on_fresh_stack,
)
from profiling.models import join, load, rewrites, steps, walk

# Largest max-relative output difference a faithful rewrite may show (gelu=tanh and
# mixed_bfloat16 change the numbers on purpose; the rest are exact up to float rounding).
TOLERANCE = {"fold_bn": 1e-4, "xla": 1e-4, "mixed_bfloat16": 5e-2, "swap:gelu=tanh": 1e-2,
             "swap:gelu_tanh=exact": 1e-2}
DEFAULT_TOLERANCE = 1e-5
TRACE_STEPS = 3  # steps in each variant's trace; per-layer times are per step


@dataclass
class ModelRequest:
    """What to profile (the fields of `python -m profiling model`)."""

    source: str
    input_shape: tuple[int, ...] | None = None
    batch: int = 1
    mode: str = "inference"
    what_if: list[str] = field(default_factory=list)
    custom_objects: str | None = None
    repeats: int = DEFAULT_REPEATS
    min_time: float = DEFAULT_MIN_TIME
    warmup: int = DEFAULT_WARMUP
    trace_dir: str | None = None
    save_rewritten: str | None = None
    seed: int = 0

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelRequest:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        if known.get("input_shape") is not None:
            known["input_shape"] = tuple(int(v) for v in known["input_shape"])
        return cls(**known)


def tolerance(name: str) -> float:
    return TOLERANCE.get(name, DEFAULT_TOLERANCE)


@dataclass
class _Variant:
    name: str
    model: Any
    jit_compile: bool = False
    step: Callable[[], Any] | None = None
    reference: list | None = None  # outputs, or loss + gradients, on the fixed batch
    result: dict = field(default_factory=dict)


def _fail(name: str, reason: str) -> dict:
    return {"name": name, "status": "failed", "reason": reason, "speedup": None,
            "ci95_low": None, "ci95_high": None, "max_abs_diff": None, "max_rel_diff": None,
            "activations_fused_after": None, "activations_after": None,
            "peak_memory_bytes": None}


def _save(r: rewrites.Rewritten, folder: str) -> str:
    """Save a rewritten model as DIR/<name>.keras; the sentence that says where (or why not)."""
    import re
    from pathlib import Path

    path = Path(folder) / (re.sub(r"[^A-Za-z0-9_.=-]+", "_", r.name) + ".keras")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        r.model.save(path)
    except Exception as e:  # a layer that cannot serialise: say so, the run goes on
        return f"{r.name}: not saved ({one_line(e)})"
    return f"{r.name}: saved to {path}"


def _build(v: _Variant, mode: str, inputs: list, ys: list) -> None:
    """The variant's timed step and its reference numbers (raises on a step that fails)."""
    import tensorflow as tf

    xs = [tf.constant(x) for x in inputs]
    if mode == "inference":
        fn = steps.inference_step(v.model, v.jit_compile)
        v.reference = steps.outputs_of(fn(*xs))
    else:
        grads = steps.loss_and_gradients(v.model, ys, v.jit_compile)
        loss, g = grads(*xs)
        v.reference = steps.outputs_of([loss, *g])
        fn = steps.train_step(v.model, ys, v.jit_compile)
        fn(*xs)
    v.step = lambda: fn(*xs)


def _trace_layers(v: _Variant, trace_dir: str) -> tuple[list[dict], dict, str]:
    """(per-layer rows, the audit, the trace's path) of the variant's step."""
    import tensorflow as tf

    from profiling.analysis.activations import audit_trace
    from profiling.traces import load_trace
    from profiling.traces.record import capture_trace

    path = capture_trace(tf, v.step, no_sync, trace_dir, steps=TRACE_STEPS)
    events = load_trace(path, keep_args=False).events
    result = audit_trace(events)
    rows = join.join(walk.activation_layers(v.model), result["activations"])
    for r in rows:  # the trace holds TRACE_STEPS steps: per-step figures
        for k in ("time_us", "kernel_us"):
            if r[k] is not None:
                r[k] /= TRACE_STEPS
    return rows, result, path


def profile_model(req: ModelRequest, on_progress: Callable[[str], None] = lambda s: None
                  ) -> dict[str, Any]:
    """The model run's result (the `model --json` contract, less what the parent adds:
    peak memory per rewrite and the stored run id). ModelLoadError for a model that cannot
    be opened or does not fit in memory."""
    if req.mode not in steps.MODES:
        raise load.ModelLoadError(f"--mode must be one of {', '.join(steps.MODES)}, got "
                                  f"{req.mode!r}")
    on_progress("loading the model")
    loaded = load.open_model(req.source, req.input_shape, req.batch, req.custom_objects,
                             req.seed)
    load.check_fits(loaded, "a training step" if req.mode == "train" else "inference")
    inputs = load.random_inputs(loaded.input_spec, req.seed)
    if not loaded.is_keras:
        return _saved_model_result(loaded, req, inputs, on_progress)
    model = loaded.model
    ys = steps.targets(model, steps.outputs_of(model([*inputs] if len(inputs) > 1 else
                                                     inputs[0], training=False)), req.seed + 1)
    original = _Variant("original", model)
    variants = [original]
    failed: list[dict] = []
    for text in req.what_if:
        try:
            name, _ = rewrites.parse_rewrite(text)
            if name == "fold_bn" and req.mode == "train":
                raise rewrites.RewriteError("fold_bn is for inference: training normalises "
                                            "with the batch's statistics")
            on_progress(f"rewriting: {text}")
            r = rewrites.rewrite(model, text)
            variants.append(_Variant(text, r.model, r.jit_compile, result={"changed":
                                                                           r.changed}))
            if req.save_rewritten and not r.jit_compile:
                loaded.notes.append(_save(r, req.save_rewritten))
        except rewrites.RewriteError as e:
            failed.append(_fail(text, str(e)))
    ok: list[_Variant] = []
    for v in variants:
        on_progress(f"building the step: {v.name}")
        try:
            _build(v, req.mode, inputs, ys)
            ok.append(v)
        except Exception as e:  # XLA cannot compile, a layer fails at run time, ...
            if v is original:
                raise load.ModelLoadError(f"the model's step fails: {one_line(e)}") from None
            failed.append(_fail(v.name, f"its step fails: {one_line(e)}"))
    on_progress(f"timing {len(ok)} step(s) interleaved")
    before = noise.snapshot()
    timings = on_fresh_stack(measure_interleaved, {v.name: (v.step, no_sync) for v in ok},
                             req.repeats, req.min_time, req.warmup)
    groups = [{**noise.between(before, noise.snapshot()), "group": "model steps"}]
    base = timings["original"].samples
    out_rewrites = []
    layers_rows: list[dict] = []
    audit_result: dict = {}
    traces: dict[str, str] = {}
    for v in ok:
        row: dict[str, Any] = {"name": v.name, "samples_s": list(timings[v.name].samples),
                               "number": timings[v.name].number}
        if req.trace_dir:
            on_progress(f"tracing: {v.name}")
            try:
                rows, result, path = _trace_layers(v, req.trace_dir)
                traces[v.name] = path
                row["activations_after"] = len(rows)
                row["activations_fused_after"] = sum(1 for r in rows if r["fused"])
                row["activations_unplaced_after"] = sum(1 for r in rows if r["fused"] is None)
                row["unfused_after"] = [{"layer": r["layer"], "kind": r["kind"],
                                         "cause": r["cause"]} for r in rows if not r["fused"]]
                if v is original:
                    layers_rows, audit_result = rows, result
            except Exception as e:  # the timing stands; say why the trace is missing
                row["trace_reason"] = f"trace failed: {one_line(e)}"
        if v is original:
            continue
        ratio = paired_ratio(base, timings[v.name].samples)  # t_rewrite / t_original
        abs_d, rel_d = steps.difference(original.reference, v.reference)
        row.update(status="ok", reason=None, ratio_to_original=ratio.ratio,
                   ratio_ci95_low=ratio.ci95_low, ratio_ci95_high=ratio.ci95_high,
                   speedup=1 / ratio.ratio, ci95_low=1 / ratio.ci95_high,
                   ci95_high=1 / ratio.ci95_low, max_abs_diff=abs_d, max_rel_diff=rel_d,
                   tolerance=tolerance(v.name), peak_memory_bytes=None,
                   changed=v.result.get("changed", []))
        if not rel_d <= tolerance(v.name):
            row.update(status="failed", reason=f"outputs differ from the original's: max "
                       f"relative difference {rel_d:.3g} > tolerance {tolerance(v.name):g}")
        out_rewrites.append(row)
    spreads = [(v.name, relative_spread(timings[v.name].samples)) for v in ok]
    activations = layers_rows or [dict(a.as_dict(), fused=None, time_us=None, pct=None,
                                       cause="no trace taken")
                                  for a in walk.activation_layers(model)]
    return _result(loaded, req, timings["original"], noise.verdict(groups, spreads),
                   activations, audit_result, out_rewrites + failed, traces)


def _result(loaded: load.LoadedModel, req: ModelRequest, original, verdict: dict,
            activations: list[dict], audit_result: dict, rewrites_out: list[dict],
            traces: dict[str, str]) -> dict[str, Any]:
    """The run's result dict (one shape for a Keras model and a SavedModel); ``original`` is
    the original step's timing."""
    stats = summarize_samples(original.samples)
    return {
        "model": loaded.name, "source": loaded.source,
        "input_spec": [{"name": n, "shape": list(s), "dtype": d} for n, s, d in loaded.input_spec],
        "mode": req.mode, "batch": req.batch, "notes": loaded.notes,
        "step_s": stats.median_s, "step_ci95_s": [stats.ci95_low_s, stats.ci95_high_s],
        "step_samples_s": list(original.samples), "number": original.number,
        "noise_verdict": verdict["verdict"], "noise": verdict,
        "activations": activations,
        "recommendations": audit_result.get("recommendations", []),
        "activation_pct": audit_result.get("activation_pct"),
        "rewrites": rewrites_out,
        "traces": traces,
    }


def _saved_model_result(loaded: load.LoadedModel, req: ModelRequest, inputs: list,
                        on_progress: Callable[[str], None]) -> dict[str, Any]:
    """A SavedModel: its serving signature timed and audited; every rewrite refused."""
    import tensorflow as tf

    names = [n for n, _, _ in loaded.input_spec]
    feed = {n: tf.constant(x) for n, x in zip(names, inputs, strict=True)}
    loaded.signature(**feed)
    on_progress("timing the serving signature")
    before = noise.snapshot()
    timings = on_fresh_stack(measure_interleaved, {"original": (lambda: loaded.signature(**feed),
                                                                no_sync)},
                             req.repeats, req.min_time, req.warmup)
    groups = [{**noise.between(before, noise.snapshot()), "group": "model steps"}]
    rows: list[dict] = []
    audit_result: dict = {}
    traces = {}
    if req.trace_dir:
        from profiling.analysis.activations import audit_trace
        from profiling.traces import load_trace
        from profiling.traces.record import capture_trace

        path = capture_trace(tf, lambda: loaded.signature(**feed), no_sync, req.trace_dir)
        traces["original"] = path
        audit_result = audit_trace(load_trace(path, keep_args=False).events)
        rows = [{"layer": a.get("scope") or a.get("op"), "kind": a.get("kind"),
                 "fused": a.get("fused"), "time_us": a.get("self_us"), "pct": a.get("pct"),
                 "cause": "from the trace (a SavedModel has no Keras layers to join)"}
                for a in audit_result["activations"]]
    refused = [_fail(t, "a SavedModel has no Keras layers to rewrite: give the .keras file")
               for t in req.what_if]
    spreads = [("original", relative_spread(timings["original"].samples))]
    return _result(loaded, req, timings["original"], noise.verdict(groups, spreads), rows,
                   audit_result, refused, traces)


def step_peak_memory(req: ModelRequest, rewrite: str | None) -> int:
    """Bytes the step adds to this process's peak RSS (what the activations keep for backward,
    in a training step): the step is traced but not run, the peak reset, then the peak over its
    first runs minus the resident set before them. Run in a short-lived worker per variant so
    that no two share a peak."""
    import tensorflow as tf

    from profiling.measurement.timing import peak_rss_mb, reset_peak_rss

    loaded = load.open_model(req.source, req.input_shape, req.batch, req.custom_objects,
                             req.seed)
    if not loaded.is_keras:
        raise load.ModelLoadError("peak memory per rewrite needs a Keras model")
    model = loaded.model
    jit = False
    if rewrite:
        r = rewrites.rewrite(model, rewrite)
        model, jit = r.model, r.jit_compile
    inputs = load.random_inputs(loaded.input_spec, req.seed)
    ys = steps.targets(model, steps.outputs_of(model(inputs if len(inputs) > 1 else inputs[0],
                                                     training=False)), req.seed + 1)
    xs = [tf.constant(x) for x in inputs]
    fn = steps.inference_step(model, jit) if req.mode == "inference" else \
        steps.train_step(model, ys, jit)
    fn.get_concrete_function(*xs)  # traced, not run: the first run below allocates the step
    if not reset_peak_rss():
        raise RuntimeError("this OS cannot reset the peak RSS (Linux /proc/self/clear_refs)")
    import psutil

    rss_before = psutil.Process().memory_info().rss
    for _ in range(3):
        out = fn(*xs)
    tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, out)
    return max(0, int(peak_rss_mb() * 2**20) - rss_before)
