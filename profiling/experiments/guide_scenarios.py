"""The guide's scenarios on the ResNet block stack and Wide & Deep (profiling.experiments.scenarios models):

- mixed_precision: Keras policies float32, mixed_float16 (with LossScaleOptimizer), mixed_float16
  without loss scaling, mixed_bfloat16: step time with its CI, loss and accuracy against float32,
  gradients that underflow, and which ops ran in half precision (ops in a profiler trace of the
  training step, their dtype looked up in the step's graph);
- qat: quantization-aware training, `tf.quantization.fake_quant_with_min_max_vars` around each
  activation (relu_impls.quantized.FakeQuantActivation) against float; plus the int8 inference
  path (quantize -> int8 ReLU -> dequantize) timed against float32 nn_relu, with its error;
- batch_sweep: training-step throughput (samples/s with its CI) per batch size;
- sparsity: exact zeros per activation layer and variant, bytes dense vs COO/CSR/bitmask.

Every training run also reports dead units (output exactly 0 for every sample of one pass over
the training data after training) and the largest per-sample activation norm and gradient norm
seen during training (profiling.experiments.training_watch, profiling.analysis.half_precision). Times: profiling.measurement.timing.measure samples,
median and 95% CI from profiling.measurement.stats.summarize_samples; stored as kind="scenario" cases.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from profiling.analysis.half_precision import half_summary, op_dtypes, precision_of_ops
from profiling.errors import one_line
from profiling.experiments.scenarios import (
    ScenarioConfig,
    ScenarioError,
    build_model,
    check_memory,
    input_numel,
    input_shape_text,
    measure_step,
    op_stats,
    scenario_case,
    synthetic_data,
    unsupported_reason,
    validated_params,
)
from profiling.experiments.training_watch import dead_fraction, train_and_watch
from profiling.plain import json_safe
from profiling.spec import default_device
from profiling.storage.run_writer import RunWriter
from profiling.storage.stored_json import decode
from profiling.tempdirs import temp_dir_unless
from profiling.traces.record import capture_trace

KINDS = ("mixed_precision", "qat", "batch_sweep", "sparsity")
POLICIES = ("float32", "mixed_float16", "mixed_float16_noscale", "mixed_bfloat16")


@dataclass
class GuideConfig:
    """One guide scenario. `base` sizes the model, data, repeats and training (train_steps
    mini-batch steps of base.batch over base.train_samples samples, Adam).

    policies: mixed_precision only; batches: batch_sweep only; int8_numel: qat's int8 path size.
    """

    kind: str = "mixed_precision"
    base: ScenarioConfig = field(default_factory=ScenarioConfig)
    policies: tuple[str, ...] = POLICIES
    batches: tuple[int, ...] = (8, 16, 32, 64, 128, 256, 512)
    int8_numel: int = 1 << 20

    def validate(self) -> list[tuple[str, dict[str, Any]]]:
        """The variants as (id, params); ScenarioError (one line) on bad input."""
        if self.kind not in KINDS:
            raise ScenarioError(f"kind={self.kind!r}; accepted: {', '.join(KINDS)}")
        bad = [p for p in self.policies if p not in POLICIES]
        if bad or not self.policies:
            raise ScenarioError(f"policies={list(self.policies)!r}; accepted: one or more of "
                                f"{', '.join(POLICIES)}")
        if not self.batches or any(isinstance(b, bool) or not isinstance(b, int) or not
                                   1 <= b <= 65536 for b in self.batches):
            raise ScenarioError(f"batches={list(self.batches)!r}; accepted: integers in "
                                "[1, 65536]")
        if not 1 <= self.int8_numel <= 1 << 28:
            raise ScenarioError(f"int8_numel={self.int8_numel!r}; accepted: 1..2**28")
        variants = self.base.validate()
        if self.kind == "batch_sweep":
            top = max(self.batches)
            check_memory(replace(self.base, batch=top), top, top + self.base.train_samples)
        return variants


def parse_int_list(name: str, text: str) -> tuple[int, ...]:
    """'8,16,1e3' -> (8, 16, 1000); ScenarioError naming `name` otherwise (2.5 is no batch)."""
    try:
        values = tuple(float(p) for p in text.split(",") if p.strip())
    except ValueError:
        values = ()
    if not values or not all(math.isfinite(v) and v == int(v) for v in values):
        raise ScenarioError(f"{name}={text!r}; accepted: comma-separated integers")
    return tuple(int(v) for v in values)


@dataclass
class GuideResult:
    """summary: one row per timed case (variant x mode), with its samples (seconds per call);
    layers: per activation layer (zeros, storage, dead units); extra: named tables (losses,
    half_ops, int8_path ...)."""

    kind: str
    config: dict[str, Any]
    summary: pd.DataFrame
    layers: pd.DataFrame
    extra: dict[str, pd.DataFrame] = field(default_factory=dict)
    device: str = "CPU:0"
    run_id: str | None = None

    def shown(self) -> pd.DataFrame:
        """The summary without the raw samples."""
        return self.summary.drop(columns=["samples"], errors="ignore")


# --- the scenarios ---------------------------------------------------------------------------


def run_guide(gcfg: GuideConfig, store: Any = None,
              on_progress: Callable[[int, int, str], None] | None = None,
              trace_dir: str | None = None) -> GuideResult:
    """Run scenario `gcfg.kind` (see module docstring); save it when `store` is given."""
    variants = gcfg.validate()
    runner = {"mixed_precision": _mixed_precision, "qat": _qat, "batch_sweep": _batch_sweep,
              "sparsity": _sparsity}[gcfg.kind]
    with temp_dir_unless(trace_dir, "guide") as traces:  # a temp dir goes once stored
        rows, layers, extra = runner(gcfg, variants, on_progress or (lambda *a: None), traces)
        config = {"kind": gcfg.kind,
                  **{k: list(v) if isinstance(v, tuple) else v
                     for k, v in asdict(gcfg).items() if k not in ("kind", "base")},
                  "base": {**asdict(gcfg.base), "hidden": list(gcfg.base.hidden)}}
        result = GuideResult(gcfg.kind, config, pd.DataFrame(rows), pd.DataFrame(layers), extra,
                             default_device())
        if store is not None:
            result.run_id = save_guide(result, store)
    return result


def _label(vid: str, params: dict[str, Any]) -> str:
    import relu_impls

    return relu_impls.VARIANTS[vid].label(params)


def _case(vid, params, cfg: ScenarioConfig, mode: str, pass_: str, dtype: str = "float32"
          ) -> dict[str, Any]:
    return {"variant": vid, "label": _label(vid, params),
            "params": json.dumps(validated_params(vid, params)), "mode": mode, "pass": pass_,
            "dtype": dtype, "shape": input_shape_text(cfg), "numel": input_numel(cfg),
            "status": "ok", "reason": "", "samples": [], "number": None}


def _timed(row: dict[str, Any], fn, args, cfg: ScenarioConfig) -> None:
    timing, st = measure_step(fn, args, cfg.repeats, cfg.min_time, cfg.warmup)
    row.update(samples=list(timing.samples), number=timing.number, median_s=st.median_s,
               ci95_low_s=st.ci95_low_s, ci95_high_s=st.ci95_high_s)


def _training_row(row: dict[str, Any], watch: dict[str, Any]) -> None:
    row.update({k: watch[k] for k in ("initial_loss", "final_loss", "accuracy", "nonfinite_steps",
                                      "max_activation_norm", "max_grad_norm",
                                      "zero_grad_fraction")})
    row["dead_fraction"] = dead_fraction(watch["layers"])


def _skip_or_fail(row: dict[str, Any], vid: str, work: Callable[[], None]) -> None:
    reason = unsupported_reason(vid)
    if reason:
        row.update(status="skipped", reason=reason)
        return
    try:
        work()
    except Exception as exc:  # one case failing must not lose the others
        row.update(status="failed", reason=one_line(exc))


def _losses(extra_rows: list, row: dict[str, Any], losses: list[float]) -> None:
    extra_rows += [{"label": row["label"], "mode": row["mode"], "step": i, "loss": v}
                   for i, v in enumerate(losses)]


def _mixed_precision(gcfg: GuideConfig, variants, progress, trace_dir):
    import keras
    import tensorflow as tf

    cfg = gcfg.base
    rows, layers, losses, half_ops = [], [], [], []
    total = len(gcfg.policies) * len(variants)
    for policy in gcfg.policies:
        keras_policy = policy.removesuffix("_noscale")
        scaling = policy == "mixed_float16"
        for vid, params in variants:
            progress(len(rows), total, f"{policy} {_label(vid, params)}")
            row = _case(vid, params, cfg, policy, "train",
                        keras.mixed_precision.Policy(keras_policy).compute_dtype)
            row["loss_scaling"] = scaling

            def work(row=row, vid=vid, params=params, keras_policy=keras_policy,
                     scaling=scaling):
                keras.mixed_precision.set_global_policy(keras_policy)
                try:
                    model = build_model(vid, params, cfg)
                finally:
                    keras.mixed_precision.set_global_policy("float32")
                watch = train_and_watch(model, cfg, loss_scaling=scaling)
                _training_row(row, watch)
                _losses(losses, row, watch["losses"])
                layers.extend({"label": row["label"], "mode": row["mode"], **r}
                              for r in watch["layers"].to_dict("records"))
                x, y = watch["batch"]
                _timed(row, watch["train_step"], (x, y), cfg)
                if cfg.trace:
                    logdir = os.path.join(trace_dir, _safe(f"{row['mode']}_{row['label']}"))
                    stats = op_stats(capture_trace(tf, lambda: watch["train_step"](x, y), None,
                                                   logdir, steps=1))
                    graph = watch["train_step"].get_concrete_function(x, y).graph
                    ops = precision_of_ops(stats, op_dtypes(graph))
                    row.update(half_summary(ops))
                    half_ops.extend({"label": row["label"], "mode": row["mode"], **r}
                                    for r in ops[ops["half"]].to_dict("records"))

            _skip_or_fail(row, vid, work)
            rows.append(row)
    _relative_to(rows, "float32", "final_loss", "loss_vs_float32")
    _relative_to(rows, "float32", "median_s", "time_vs_float32")
    return rows, layers, {"losses": pd.DataFrame(losses), "half_ops": pd.DataFrame(half_ops)}


def _qat(gcfg: GuideConfig, variants, progress, trace_dir):
    cfg = gcfg.base
    rows, layers, losses = [], [], []
    plan = [(vid, params, mode) for vid, params in variants for mode in ("float", "qat")
            if not (vid == "int8" and mode == "float")]  # int8 is fake-quantized in both
    for vid, params, mode in plan:
        progress(len(rows), len(plan) + 1, f"{mode} {_label(vid, params)}")
        row = _case(vid, params, cfg, mode, "train")

        def work(row=row, vid=vid, params=params, mode=mode):
            model = build_model(vid, params, replace(cfg, fake_quant=mode == "qat"))
            watch = train_and_watch(model, cfg)
            _training_row(row, watch)
            _losses(losses, row, watch["losses"])
            layers.extend({"label": row["label"], "mode": mode, **r}
                          for r in watch["layers"].to_dict("records"))
            _timed(row, watch["train_step"], watch["batch"], cfg)

        _skip_or_fail(row, vid, work)
        rows.append(row)
    # Loss parity: QAT against the same variant in float (int8 against nn_relu in float).
    floats = {r["variant"]: r.get("final_loss") for r in rows if r["mode"] == "float"}
    for r in rows:
        if r["mode"] == "qat":
            ref = floats.get(r["variant"] if r["variant"] != "int8" else "nn_relu")
            r["loss_vs_float"] = r.get("final_loss", math.nan) / ref if ref else math.nan
    progress(len(plan), len(plan) + 1, "int8 path")
    path_rows = int8_path(gcfg.int8_numel, cfg)
    rows += path_rows
    errors = pd.DataFrame([{k: r[k] for k in ("label", "max_abs_error", "error_in_scales",
                                              "scale")} for r in path_rows
                           if "max_abs_error" in r])
    return rows, layers, {"losses": pd.DataFrame(losses), "int8_error": errors}


def int8_path(numel: int, cfg: ScenarioConfig, seed: int = 0) -> list[dict[str, Any]]:
    """Forward cases on `numel` normal float32 values: float32 tf.nn.relu; quantize -> int8
    ReLU -> dequantize (relu_impls.quantized.quantized_relu); the int8 ReLU alone on
    pre-quantized values. The quantized path reports its max |error| against the float ReLU,
    also in units of the scale."""
    import tensorflow as tf

    import relu_impls
    from relu_impls import quantized

    x = tf.constant(np.random.default_rng(seed).standard_normal(numel).astype(np.float32))
    scale, zp = quantized.quant_params(tf.reduce_min(x), tf.reduce_max(x))
    q = quantized.quantize(x, scale, zp)
    int8_fn = relu_impls.get("int8", scale=float(scale), zero_point=int(zp))
    cases = [("nn_relu", {}, "float32", tf.function(tf.nn.relu), x),
             ("int8", {"scale": float(scale), "zero_point": int(zp)}, "float32",
              tf.function(quantized.quantized_relu), x),
             ("int8", {"scale": float(scale), "zero_point": int(zp)}, "int8",
              tf.function(int8_fn), q)]
    rows = []
    for vid, params, dtype, fn, arg in cases:
        row = _case(vid, params, cfg, "int8_path", "forward", dtype)
        row.update(shape=str(numel), numel=numel)
        if vid == "int8" and dtype == "float32":
            row["label"] = "quantize+int8 relu+dequantize"
            err = float(tf.reduce_max(tf.abs(fn(x) - tf.nn.relu(x))))
            row.update(max_abs_error=err, error_in_scales=err / float(scale), scale=float(scale))
        elif vid == "int8":
            row["label"] = "int8 relu on q"
        _timed(row, fn, (arg,), cfg)
        rows.append(row)
    return rows


def _batch_sweep(gcfg: GuideConfig, variants, progress, trace_dir):
    import tensorflow as tf

    from profiling.experiments.scenarios import make_steps

    rows = []
    total = len(variants) * len(gcfg.batches)
    for vid, params in variants:
        model = None
        for batch in gcfg.batches:
            bcfg = replace(gcfg.base, batch=batch)
            progress(len(rows), total, f"{_label(vid, params)} batch {batch}")
            row = _case(vid, params, bcfg, f"batch={batch}", "train")
            row["batch"] = batch

            def work(row=row, vid=vid, params=params, bcfg=bcfg):
                nonlocal model
                if model is None:
                    model = build_model(vid, params, bcfg)
                train_step, _ = make_steps(model, bcfg)
                x, y = synthetic_data(bcfg, bcfg.batch, bcfg.seed + 1)
                _timed(row, train_step, (tf.nest.map_structure(tf.constant, x),
                                         tf.constant(y)), bcfg)
                row.update(samples_per_s=row["batch"] / row["median_s"],
                           samples_per_s_low=row["batch"] / row["ci95_high_s"],
                           samples_per_s_high=row["batch"] / row["ci95_low_s"])

            _skip_or_fail(row, vid, work)
            rows.append(row)
    return rows, [], {}


def _sparsity(gcfg: GuideConfig, variants, progress, trace_dir):
    import tensorflow as tf

    cfg = gcfg.base
    rows, layers, losses = [], [], []
    for vid, params in variants:
        progress(len(rows), len(variants), _label(vid, params))
        row = _case(vid, params, cfg, "sparsity", "inference")

        def work(row=row, vid=vid, params=params):
            model = build_model(vid, params, cfg)
            watch = train_and_watch(model, cfg)
            _training_row(row, watch)
            _losses(losses, row, watch["losses"])
            per_layer = watch["layers"]
            layers.extend({"label": row["label"], "mode": "sparsity", **r}
                          for r in per_layer.to_dict("records"))
            sums = per_layer[["dense_bytes", "coo_bytes", "csr_bytes", "bitmask_bytes"]].sum()
            row.update(sums.to_dict())
            weights = per_layer["dense_bytes"]
            row["zero_fraction"] = float((per_layer["zero_fraction"] * weights).sum()
                                         / weights.sum())
            x, _ = watch["batch"]
            _timed(row, tf.function(lambda x: model(x, training=False)), (x,), cfg)

        _skip_or_fail(row, vid, work)
        rows.append(row)
    return rows, layers, {"losses": pd.DataFrame(losses)}


def _relative_to(rows: list[dict], mode: str, column: str, out: str) -> None:
    ref = {r["label"]: r.get(column) for r in rows if r["mode"] == mode}
    for r in rows:
        base, value = ref.get(r["label"]), r.get(column)
        r[out] = value / base if base and value is not None and not _nan(value) else math.nan


def _nan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


# --- the store -------------------------------------------------------------------------------


def save_guide(result: GuideResult, store: Any, label: str = "") -> str:
    """Save as a run: spec_json {"kind": "scenario", "scenario": kind, config, "results": the
    summary (without samples), layers and extra tables}; a kind="scenario" case per summary row
    (mode = policy / float|qat / batch=N / sparsity / int8_path; pass = train|inference|forward)
    with its samples and CI. Returns the run id; the run is "failed" if a write fails."""
    spec = {**result.config, "kind": "scenario", "scenario": result.kind,
            "results": {"summary": _records(result.shown()), "layers": _records(result.layers),
                        **{k: _records(v) for k, v in result.extra.items()}}}
    with RunWriter(store, "scenario", json_safe(spec),
                   label=label or f"guide {result.kind} {result.config['base']['model']}",
                   n_cases=len(result.summary)) as w:
        for idx, row in enumerate(result.summary.to_dict("records")):
            w.add(scenario_case(
                idx, row["variant"], variant_params=row["params"], label=row["label"],
                shape=row["shape"], numel=row["numel"], dtype=row["dtype"],
                device=result.device, mode=row["mode"], pass_=row["pass"],
                samples=row["samples"], number=row["number"], status=row["status"],
                reason=row["reason"]))
        return w.run_id


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return json_safe(frame)


def stored_results(store: Any, kind: str) -> tuple[str, dict[str, Any]] | None:
    """(run_id, spec) of the newest complete guide run of `kind`, or None."""
    runs = store.list_runs(kind="scenario")  # the kind column: only scenario runs' specs read
    for r in runs[runs["status"] == "complete"].itertuples():
        spec = decode(r.spec_json, "spec_json", r.run_id)
        if spec.get("kind") == "scenario" and spec.get("scenario") == kind:
            return str(r.run_id), spec
    return None
