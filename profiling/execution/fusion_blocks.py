"""Does the activation fuse? Grappler (graph mode) and XLA, per variant: the blocks built, traced
and timed here, in the profile worker; which activation fused is decided in
profiling.analysis.fusion (the audit's classifier).

Blocks: conv = Conv2D(1x32x32x16, 3x3x16x16) + BiasAdd + activation; dense = MatMul(8x256,
256x256) + BiasAdd + activation; xla = the conv block under tf.function(jit_compile=True).
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Sequence
from typing import Any

import pandas as pd

from profiling.analysis.activation_kinds import BOOKKEEPING_OPS
from profiling.analysis.fusion import block_fusion, hlo_counts
from profiling.errors import one_line
from profiling.measurement.stats import paired_ratio, summarize_samples
from profiling.measurement.timing import measure_interleaved

FUSION_COLUMNS = ["variant", "block", "fused", "fused_into", "kernels", "time_s",
                  "time_ci95_low_s", "time_ci95_high_s", "time_vs_fused", "ratio_ci95_low",
                  "ratio_ci95_high", "hlo_fusions", "instructions_before", "instructions_after",
                  "compiled", "reason", "ops"]
BASELINE = "nn_relu"
FUSION_MIN_TIME = 0.02  # the blocks are small; the report compares them, it is no benchmark


def _blocks() -> dict[str, tuple[Any, Any, str]]:
    import tensorflow as tf

    g = tf.random.Generator.from_seed(0)
    conv_w, conv_b = g.normal([3, 3, 16, 16]), g.normal([16])
    dense_w, dense_b = g.normal([256, 256]), g.normal([256])
    return {
        "conv": (lambda act, x: act(tf.nn.bias_add(tf.nn.conv2d(x, conv_w, 1, "SAME"), conv_b)),
                 g.normal([1, 32, 32, 16]), "Conv2D"),
        "dense": (lambda act, x: act(tf.nn.bias_add(tf.matmul(x, dense_w), dense_b)),
                  g.normal([8, 256]), "MatMul"),
    }


def _ops_that_ran(fn: Any, x: Any) -> pd.DataFrame:
    import tensorflow as tf

    from profiling.traces.record import capture_trace
    from profiling.traces.xplane import framework_op_stats

    with tempfile.TemporaryDirectory() as trace_dir:
        ops = framework_op_stats(capture_trace(tf, lambda: fn(x), lambda: None, trace_dir))
    return ops[~ops.op_type.isin(BOOKKEEPING_OPS) & (ops.occurrences > 0)].reset_index(drop=True)


def graph_fusion(act: Any, block: str) -> dict:
    """One graph-mode (tf.function, Grappler) row for an activation callable."""
    import tensorflow as tf

    body, x, _ = _blocks()[block]
    fn = tf.function(lambda x: body(act, x))
    fn(x)
    return {"block": block, **block_fusion(_ops_that_ran(fn, x)),
            "call": functools.partial(fn, x), "compiled": None, "reason": None}


def xla_fusion(act: Any, block: str = "conv") -> dict:
    """One XLA row: the block under jit_compile, HLO before/after optimization."""
    import tensorflow as tf

    body, x, _ = _blocks()[block]
    fn = tf.function(lambda x: body(act, x), jit_compile=True)
    row: dict[str, Any] = {"block": "xla", "compiled": False}
    try:
        ir = fn.experimental_get_compiler_ir(x)
        row.update(hlo_counts(ir(stage="hlo"), ir(stage="optimized_hlo")))
        fn(x)
        row["call"] = functools.partial(fn, x)
        row["compiled"] = True
    except Exception as e:  # not compilable (e.g. a custom op XLA has no kernel for)
        row["reason"] = f"XLA could not compile: {one_line(e)}"
        row["fused"] = False
    return row


def _time_blocks(rows: list[dict]) -> None:
    """Time every variant's block of one kind interleaved (paired samples) and fill time_s,
    its CI, and time_vs_fused: the paired ratio to the baseline's block with its CI."""
    for block in dict.fromkeys(r["block"] for r in rows):
        calls = {i: (r.pop("call"), lambda: None) for i, r in enumerate(rows)
                 if r["block"] == block and r.get("call") is not None}
        timings = measure_interleaved(calls, min_time=FUSION_MIN_TIME)
        base = next((i for i in timings if rows[i]["variant"] == BASELINE), None)
        for i, timing in timings.items():
            stats = summarize_samples(timing.samples)
            rows[i].update(time_s=stats.median_s, time_ci95_low_s=stats.ci95_low_s,
                           time_ci95_high_s=stats.ci95_high_s)
            if base is not None:
                ratio = paired_ratio(timings[base].samples, timing.samples)
                rows[i].update(time_vs_fused=ratio.ratio, ratio_ci95_low=ratio.ci95_low,
                               ratio_ci95_high=ratio.ci95_high)


def fusion_report(variants: Sequence[str | dict] | None = None,
                  blocks: Sequence[str] = ("conv", "dense", "xla")) -> pd.DataFrame:
    """Fusion rows per variant and block (runs in this process; needs no stored run).

    Columns: variant, block (conv|dense|xla), fused, fused_into, kernels (ops or launches per
    step), time_s (median seconds per call of the block) and its 95% CI, time_vs_fused (paired
    ratio to nn_relu's block, every variant's block timed interleaved) and its CI, hlo_fusions, instructions_before, instructions_after, compiled, reason,
    ops (what ran).
    """
    from profiling.spec import RunSpec, variant_registry

    registry = variant_registry()
    wanted = RunSpec(variants=list(variants or registry)).normalized_variants()
    if BASELINE not in [v["id"] for v in wanted]:
        wanted.insert(0, {"id": BASELINE, "params": {}})
    rows = []
    for v in wanted:
        variant = registry.get(v["id"])
        label = variant.label(v["params"]) if variant is not None else v["id"]
        for block in blocks:
            base = {"variant": label}
            if variant is None:
                rows.append({**base, "block": block, "reason": f"unknown variant {v['id']}"})
                continue
            if "float32" not in variant.dtypes:
                rows.append({**base, "block": block, "fused": False,
                             "reason": f"{v['id']} does not take float32 activations"})
                continue
            try:
                if getattr(variant, "needs_build", False):
                    from relu_impls import custom_op

                    custom_op.load()  # outside tf.function: AutoGraph must not trace the loader
                act = variant.make(**v["params"])
                row = xla_fusion(act) if block == "xla" else graph_fusion(act, block)
                if block == "xla" and not variant.xla_compilable and row.get("reason"):
                    row["reason"] = f"{v['id']} is not XLA-compilable; " + row["reason"]
            except Exception as e:  # e.g. the custom op cannot be built here
                row = {"block": block, "fused": False, "reason": one_line(e)}
            rows.append({**base, **row})
    _time_blocks(rows)
    df = pd.DataFrame(rows).reindex(columns=FUSION_COLUMNS)
    for col in ("fused", "fused_into", "compiled", "reason", "ops"):  # None, not NaN, when absent
        df[col] = df[col].astype(object).where(df[col].notna(), None)
    return df
