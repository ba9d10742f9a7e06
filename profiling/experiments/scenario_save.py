"""Model scenarios, the saving: a scenario run's cases (profiling.storage.run_writer) and fusion
rows."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import pandas as pd

from profiling.experiments.scenario_models import ScenarioConfig, input_numel, input_shape_text
from profiling.measurement.stats import unpaired_ratio
from profiling.storage.run_writer import CaseResult, RunWriter
from profiling.traces import trace_file_breakdown
from profiling.traces.breakdown import store_breakdown


def process_settings() -> tuple[int, str]:
    """(intra-op threads, allocator) this process runs with: TensorFlow's intra-op setting (its
    default 0 means one per CPU, so the CPU count), and "bfc" or "default" as the runner sets
    them through TF_CPU_ALLOCATOR_USE_BFC."""
    import tensorflow as tf

    threads = tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count() or 1
    bfc = os.environ.get("TF_CPU_ALLOCATOR_USE_BFC", "").lower() in ("true", "1")
    return int(threads), "bfc" if bfc else "default"


def scenario_case(idx: int, variant: str, *, kind: str = "scenario", variant_params: str = "{}",
                  samples: Sequence[float] = (), reason: str | None = "",
                  **fields: Any) -> CaseResult:
    """A case run in this process (kind "scenario", or "claim"): its median, IQR and 95% CI come
    from `samples` (seconds per call; none leave them None), its threads and allocator are this
    process's (process_settings); `fields` are CaseResult's."""
    threads, allocator = process_settings()
    return CaseResult(idx, kind, variant, variant_params=variant_params, samples=samples,
                      reason=reason, threads=threads, allocator=allocator, **fields)


def save_scenario(result: Any, store: Any, label: str = "") -> str:
    """Save a scenario_run.ScenarioResult as a store run: a case per variant and step (pass "train"/"inference", mode
    "function"), samples, the inference trace, its op stats and one fusion row per activation
    site (block conv|dense, kernels = separate activation kernels). Returns the run id."""
    cfg = result.config
    scfg = ScenarioConfig(**{**cfg, "hidden": tuple(cfg["hidden"])})
    shape, numel = input_shape_text(scfg), input_numel(scfg)
    baseline = result.summary[result.summary["variant"] == "nn_relu"]
    base_infer = _infer_stats(baseline.iloc[0]) if len(baseline) else None
    with RunWriter(store, "scenario", cfg, label=label or f"scenario {cfg['model']}",
                   n_cases=2 * len(result.summary)) as w:
        idx = 0
        for row in result.summary.to_dict("records"):
            for step, key in (("train", "train"), ("inference", "infer")):
                part = result.samples[(result.samples["label"] == row["label"])
                                      & (result.samples["step"] == step)]["seconds"]
                trace = result.trace_paths.get(row["label"]) if step == "inference" else None
                stats = result.op_stats.get(row["label"]) if step == "inference" else None
                case_id = w.add(scenario_case(
                    idx, row["variant"], variant_params=row["params"], label=row["label"],
                    shape=shape, numel=numel, dtype="float32", device=result.device,
                    mode="function", pass_=step, samples=list(part),
                    number=row[f"{key}_number"], status=row["status"], reason=row["reason"],
                    trace=trace, op_stats=stats,
                    breakdown=None if stats is None or not trace else
                    store_breakdown(trace_file_breakdown(trace))))
                if step == "inference":
                    sites = result.fusion[result.fusion["label"] == row["label"]]
                    if len(sites):
                        w.add_fusion(fusion_rows(case_id, row, sites, base_infer))
                idx += 1
        return w.run_id


def fusion_rows(case_id: str, row: dict, sites: pd.DataFrame, base_infer: dict | None
                ) -> pd.DataFrame:
    """The stored fusion rows of one variant's activation sites (its inference case's)."""
    own = _infer_stats(row)
    # variants are timed one after another here, not interleaved: the ratio's CI comes from
    # the two medians' CIs (stats.unpaired_ratio)
    ratio = unpaired_ratio(base_infer, own) if base_infer and own else None
    return pd.DataFrame({
        "case_id": case_id, "variant": row["variant"],
        "block": sites["kind"].replace({"post_add": "conv"}),
        "fused": sites["fused"], "fused_into": sites["fused_into"],
        "kernels": [len([k for k in ks.split(",") if k]) for ks in sites["kernels"]],
        "time_s": row["infer_median_s"],
        "time_ci95_low_s": row.get("infer_ci95_low_s"),
        "time_ci95_high_s": row.get("infer_ci95_high_s"),
        "time_vs_fused": ratio.ratio if ratio else None,
        "ratio_ci95_low": ratio.ci95_low if ratio else None,
        "ratio_ci95_high": ratio.ci95_high if ratio else None,
        "compiled": False,
        "reason": [f"site {s} ({k}); kernels: {ks or '-'}" for s, k, ks in
                   zip(sites["site"], sites["kind"], sites["kernels"], strict=True)],
    })


def _infer_stats(row: Any) -> dict | None:
    """The inference step's median and CI of a summary row, as stats.unpaired_ratio takes them."""
    values = {k: row.get(f"infer_{k}") for k in ("median_s", "ci95_low_s", "ci95_high_s")}
    if any(v is None or pd.isna(v) for v in values.values()):
        return None
    return {**values, "n_samples": 0}
