"""Model scenarios, the running: for each ReLU variant `run_scenario` measures the training step
and the inference step (both `tf.function`; profiling.measurement.timing.measure, median with its
95% CI, seconds), reads from a profiler trace of the inference step which activations Grappler
fused into the preceding Conv2D/MatMul (the audit's classifier,
profiling.analysis.activations.fused_activations), and trains every variant on the same tiny
synthetic task from the same initial weights so their losses can be compared.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from profiling.errors import one_line
from profiling.experiments.scenario_models import (
    ScenarioConfig,
    activation_sites,
    build_model,
    make_steps,
    synthetic_data,
    unsupported_reason,
    validated_params,
)
from profiling.experiments.scenario_save import save_scenario
from profiling.spec import default_device
from profiling.tempdirs import temp_dir_unless
from profiling.traces.record import capture_trace, fetch_outputs

# --- measurement -----------------------------------------------------------------------------


def measure_step(fn: Callable, args: Sequence, repeats: int, min_time: float, warmup: int):
    """Time `fn(*args)` with profiling.measurement.timing.measure (each batch ends by fetching the last
    output). Returns (Timing, SampleStats): samples in seconds per call, median and its 95% CI."""
    from profiling.measurement.stats import summarize_samples
    from profiling.measurement.timing import measure

    last: list = [None]

    def call() -> None:
        last[0] = fn(*args)

    timing = measure(call, sync=lambda: fetch_outputs(last[0]), repeats=repeats, min_time=min_time,
                     warmup=max(1, warmup))
    return timing, summarize_samples(timing.samples)


# --- trace analysis --------------------------------------------------------------------------


def op_stats(xplane_path: str | os.PathLike) -> pd.DataFrame:
    """TF op statistics of one .xplane.pb (profiling.traces.framework_op_stats, via xprof).

    Columns: op_name, op_type, occurrences, self_time_us, total_time_us, device.
    """
    from profiling.traces import framework_op_stats

    return framework_op_stats(xplane_path)


def fusion_sites(stats: pd.DataFrame, sites: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """Per activation site (layer name, kind): did its activation run inside a fused conv/matmul
    kernel? The audit decides (profiling.analysis.activations.fused_activations); the op types
    that ran under the layer's name scope and were no fused activation are its own kernels.
    Columns: site, kind, fused, fused_into, kernels, self_time_us.
    """
    from profiling.analysis.activations import fused_activations

    judged = fused_activations(stats) if len(stats) else stats.assign(fused=None)
    is_fused = judged["fused"].map(lambda v: v is True).astype(bool)
    rows = []
    for site, kind in sites:
        scope = re.compile(rf"(?:^|/){re.escape(site)}(?:_\d+)?/")
        mine = judged["op_name"].astype(str).str.contains(scope)
        fused, own = judged[mine & is_fused], judged[mine & ~is_fused]
        rows.append({
            "site": site,
            "kind": kind,
            "fused": bool(len(fused)),
            "fused_into": ",".join(sorted(set(fused["op_type"]))),
            "kernels": ",".join(sorted(set(own["op_type"]))),
            "self_time_us": float(own["self_time_us"].sum()),
        })
    return pd.DataFrame(rows, columns=["site", "kind", "fused", "fused_into", "kernels",
                                       "self_time_us"])


# --- the run ---------------------------------------------------------------------------------


@dataclass
class ScenarioResult:
    """Everything one scenario run measured (DataFrames; times in seconds unless *_us)."""

    config: dict[str, Any]
    summary: pd.DataFrame   # one row per variant (see SUMMARY_COLUMNS)
    samples: pd.DataFrame   # variant, label, step (train|inference), repeat, seconds
    fusion: pd.DataFrame    # variant, label, site, kind, fused, fused_into, kernels, self_time_us
    losses: pd.DataFrame    # variant, label, step, loss
    device: str = "CPU:0"   # where the steps ran (spec.default_device)
    trace_paths: dict[str, str] = field(default_factory=dict)  # label -> inference .xplane.pb
    op_stats: dict[str, pd.DataFrame] = field(default_factory=dict)  # label -> inference op stats
    run_id: str | None = None


SUMMARY_COLUMNS = [
    "variant", "label", "status", "reason", "train_median_s", "train_iqr_s", "train_ci95_low_s",
    "train_ci95_high_s", "train_number", "infer_median_s", "infer_iqr_s", "infer_ci95_low_s",
    "infer_ci95_high_s", "infer_number", "fusable_sites", "fused_sites", "fused_into", "activation_kernels",
    "initial_loss", "final_loss", "loss_vs_baseline", "params", "learned",
]


def run_scenario(
    cfg: ScenarioConfig,
    on_progress: Callable[[int, int, str], None] | None = None,
    trace_dir: str | None = None,
    store: Any = None,
) -> ScenarioResult:
    """Measure every variant of `cfg` (see module docstring). ScenarioError on bad input.

    int8 runs through fake quantization. A variant that cannot run here (unbuilt custom op) gets
    status "skipped" and a reason;
    one that fails gets status "failed" and the one-line error. With a `profiling.storage.store.Store`
    the result is also saved as a run (see `save_scenario`). Without a `trace_dir` the traces go
    to a temp dir removed before returning: `trace_paths` then names the stored copies (with a
    store) or is empty.
    """
    variants = cfg.validate()
    with temp_dir_unless(trace_dir, "scenario") as where:
        result = _run_variants(cfg, variants, on_progress, where)
        if store is not None:
            result.run_id = save_scenario(result, store)
        if not trace_dir:
            result.trace_paths = _stored_trace_paths(store, result.run_id)
    return result


def _stored_trace_paths(store: Any, run_id: str | None) -> dict[str, str]:
    """label -> the stored inference trace of each variant of a saved scenario run."""
    if store is None or run_id is None:
        return {}
    cases = store.cases([run_id])
    paths = {row["label"]: store.trace_path(row["case_id"])
             for row in cases[cases["pass"] == "inference"].to_dict("records")}
    return {label: str(path) for label, path in paths.items() if path is not None}


def _run_variants(cfg: ScenarioConfig, variants: list, on_progress: Any,
                  trace_dir: str) -> ScenarioResult:
    import relu_impls

    summary, samples, fusion, losses, traces, stats = [], [], [], [], {}, {}
    for done, (vid, params) in enumerate(variants):
        label = relu_impls.VARIANTS[vid].label(params)
        if on_progress:
            on_progress(done, len(variants), label)
        row = dict.fromkeys(SUMMARY_COLUMNS)
        row.update(variant=vid, label=label, params=json.dumps(validated_params(vid, params)))
        reason = unsupported_reason(vid)
        if reason:
            row.update(status="skipped", reason=reason)
            summary.append(row)
            continue
        try:
            _measure_variant(vid, params, label, cfg, trace_dir, row, samples, fusion, losses,
                             traces, stats)
            row.update(status="ok", reason="")
        except Exception as exc:  # one variant failing must not lose the others' results
            row.update(status="failed", reason=one_line(exc))
        summary.append(row)
    if on_progress:
        on_progress(len(variants), len(variants), "done")
    summary_df = pd.DataFrame(summary, columns=SUMMARY_COLUMNS)
    _add_loss_vs_baseline(summary_df)
    result = ScenarioResult(
        config=_config_dict(cfg),
        summary=summary_df,
        samples=pd.DataFrame(samples, columns=["variant", "label", "step", "repeat", "seconds"]),
        fusion=pd.DataFrame(fusion, columns=["variant", "label", "site", "kind", "fused",
                                             "fused_into", "kernels", "self_time_us"]),
        losses=pd.DataFrame(losses, columns=["variant", "label", "step", "loss"]),
        device=default_device(),
        trace_paths=traces,
        op_stats=stats,
    )
    return result


def _measure_variant(vid, params, label, cfg, trace_dir, row, samples, fusion, losses, traces,
                     stats):
    import tensorflow as tf

    model = build_model(vid, params, cfg)
    x, y = synthetic_data(cfg, cfg.batch, cfg.seed + 1)
    x = tf.nest.map_structure(tf.constant, x)
    y = tf.constant(y)
    train_step, infer_step = make_steps(model, cfg)

    # Loss sanity check first, so its trajectory starts from the shared initial weights.
    tx, ty = synthetic_data(cfg, cfg.train_samples, cfg.seed + 2)
    tx = tf.nest.map_structure(tf.constant, tx)
    ty = tf.constant(ty)
    history = [float(train_step(tx, ty)) for _ in range(cfg.train_steps)]
    losses += [(vid, label, i, v) for i, v in enumerate(history)]
    row.update(initial_loss=history[0], final_loss=history[-1], learned=_learned(model))

    for step, fn, args in (("train", train_step, (x, y)), ("inference", infer_step, (x,))):
        timing, st = measure_step(fn, args, cfg.repeats, cfg.min_time, cfg.warmup)
        samples += [(vid, label, step, i, float(v)) for i, v in enumerate(timing.samples)]
        key = "train" if step == "train" else "infer"
        row.update({f"{key}_median_s": st.median_s, f"{key}_iqr_s": st.iqr_s,
                    f"{key}_ci95_low_s": st.ci95_low_s, f"{key}_ci95_high_s": st.ci95_high_s,
                    f"{key}_number": timing.number})

    if cfg.trace:
        logdir = os.path.join(trace_dir, re.sub(r"[^A-Za-z0-9_.-]+", "_", label))
        path = capture_trace(tf, lambda: infer_step(x), None, logdir, steps=2)
        traces[label] = path
        stats[label] = op_stats(path)
        sites = fusion_sites(stats[label], activation_sites(cfg))
        fusable = sites[sites["kind"] != "post_add"]
        row.update(
            fusable_sites=len(fusable),
            fused_sites=int(fusable["fused"].sum()),
            fused_into=",".join(sorted({k for k in fusable["fused_into"] if k})),
            activation_kernels=",".join(sorted({k for ks in sites["kernels"] for k in
                                                ks.split(",") if k})),
        )
        for rec in sites.to_dict("records"):
            fusion.append({"variant": vid, "label": label, **rec})


def _learned(model) -> str:
    """Learned activation parameters after training, e.g. the adaptive slope (over channels)."""
    found: dict[str, list[float]] = {}
    for var in model.weights:
        name = getattr(var, "path", None) or var.name
        leaf = name.rsplit("/", 1)[-1].split(":")[0]
        if leaf in ("alpha", "slope") and "act" in name:
            found.setdefault(leaf, []).extend(np.ravel(np.asarray(var)).tolist())
    return "; ".join(f"{k} mean={np.mean(v):.4g} (min {np.min(v):.4g}, max {np.max(v):.4g})"
                     for k, v in found.items())


def _add_loss_vs_baseline(summary: pd.DataFrame, baseline: str = "nn_relu") -> None:
    ok = summary[(summary["status"] == "ok") & summary["final_loss"].notna()]
    base = ok[ok["variant"] == baseline]
    ref = base["final_loss"].iloc[0] if len(base) else (
        ok["final_loss"].min() if len(ok) else math.nan)
    summary["loss_vs_baseline"] = [
        (float(v) / ref if ref and not math.isnan(ref) and v is not None else math.nan)
        for v in summary["final_loss"]
    ]


def _config_dict(cfg: ScenarioConfig) -> dict[str, Any]:
    d = asdict(cfg)
    d["hidden"] = list(cfg.hidden)
    return d
