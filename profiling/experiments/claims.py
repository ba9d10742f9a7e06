"""The guide's quantitative claims, each with its measured answer here and a verdict.

Verdicts: "holds", "partly", "does not hold here", or "not measured" (with what to run).

- maximum_vs_where: `tf.maximum` 3-5x faster than `tf.where` -> ratio t_where / t_maximum from
  paired, interleaved rounds (each round one `profiling.measurement.timing.measure` sample of each; the
  ratio's median and 95% CI over rounds). Holds: CI >= 3; does not hold: CI < 3; partly: the CI
  straddles 3.
- custom_op_fast: the C++ op as the high-performance route -> t_custom_op / t_nn_relu, paired the
  same way. Holds: CI < 1 (faster); does not hold: CI > 1; partly: the CI contains 1 (on par).
- sparsity_storage: ReLU's sparsity lowers storage (Wide & Deep) -> from the newest stored
  `sparsity` scenario: exact zeros and bytes dense vs COO (tf.sparse) / CSR / bitmask. Holds:
  COO < dense; partly: CSR or bitmask < dense only; else does not hold.
- batch_64: batch >= 64 -> from the newest `batch_sweep`: samples/s at 64 against the best.
  Holds: 64's CI high reaches 90% of the best median and a smaller batch's CI high does not;
  partly: 64 reaches 50% of the best, or smaller batches do as well; else does not hold.
- mixed_precision_accuracy: mixed precision keeps accuracy -> from the newest
  `mixed_precision`: final loss / float32's and accuracy difference for mixed_float16 (loss
  scaling) and mixed_bfloat16. Holds: every loss within 5% and accuracy within 0.02; partly:
  within 20%; else does not hold.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pandas as pd

from profiling.storage.stored_json import decode

COLUMNS = ["claim_id", "claim", "measured", "value", "ci95_low", "ci95_high", "verdict",
           "source"]
CLAIMS = {
    "maximum_vs_where": "tf.maximum is 3–5× faster than the tf.where version",
    "sparsity_storage": "ReLU's sparsity lowers storage (Wide & Deep)",
    "batch_64": "Use batch size ≥ 64",
    "mixed_precision_accuracy": "Mixed precision keeps accuracy",
    "custom_op_fast": "A custom C++ op is the high-performance route",
}
HOLDS, PARTLY, NOT_HOLD, NOT_MEASURED = "holds", "partly", "does not hold here", "not measured"


def _row(claim_id: str, measured: str, verdict: str, source: str, value: float | None = None,
         low: float | None = None, high: float | None = None) -> dict[str, Any]:
    return {"claim_id": claim_id, "claim": CLAIMS[claim_id], "measured": measured,
            "value": value, "ci95_low": low, "ci95_high": high, "verdict": verdict,
            "source": source}


# --- paired timing -----------------------------------------------------------------------------


def paired_ratio(call_a: Callable[[], Any], call_b: Callable[[], Any], rounds: int = 9,
                 min_time: float = 0.05) -> dict[str, Any]:
    """t_a / t_b from `rounds` interleaved rounds (a then b, one measure() sample each).

    Returns samples_a, samples_b (seconds per call), number_a/number_b (calls per sample, last
    round), and the ratio's median and 95% CI over the per-round ratios
    (profiling.measurement.stats.summarize_samples)."""
    from profiling.measurement.stats import summarize_samples
    from profiling.measurement.timing import measure

    a, b, numbers = [], [], {}
    for _ in range(rounds):
        for key, call, out in (("a", call_a, a), ("b", call_b, b)):
            timing = measure(call, repeats=1, min_time=min_time, warmup=1)
            out += timing.samples
            numbers[key] = timing.number
    ratio = summarize_samples([x / y for x, y in zip(a, b, strict=True)])
    return {"samples_a": a, "samples_b": b, "number_a": numbers["a"], "number_b": numbers["b"],
            "ratio": ratio.median_s, "low": ratio.ci95_low_s, "high": ratio.ci95_high_s}


def _forward(variant_id: str, x) -> Callable[[], Any]:
    import tensorflow as tf

    import relu_impls

    fn = tf.function(relu_impls.get(variant_id))
    return lambda: fn(x)  # CPU kernels finish before the call returns


def at_least_verdict(low: float, high: float, target: float, strict: bool = False) -> str:
    """A claim "at least `target`" judged by a 95% CI [low, high]: holds when the whole CI is at
    or above the target (above it when `strict`), does not hold when it is wholly below, and
    partly when it straddles the target (not resolved by this machine's noise)."""
    if low > target or (low == target and not strict):
        return HOLDS
    return NOT_HOLD if high < target or (high == target and strict) else PARTLY


def maximum_vs_where(numel: int, rounds: int, min_time: float) -> tuple[dict, dict]:
    """The claim row and the paired measurement (float32 forward, tf.function, `numel`)."""
    x = _input(numel)
    m = paired_ratio(_forward("where", x), _forward("maximum", x), rounds, min_time)
    r, lo, hi = m["ratio"], m["low"], m["high"]
    verdict = at_least_verdict(lo, hi, 3.0)
    text = (f"t_where / t_maximum = {r:.2f}× (95% CI {lo:.2f}–{hi:.2f}) on {numel:,} float32, "
            "forward, tf.function")
    return _row("maximum_vs_where", text, verdict, "measured now", r, lo, hi), m


def custom_op_fast(numel: int, rounds: int, min_time: float) -> tuple[dict, dict | None]:
    """The claim row and the paired measurement custom_op vs nn_relu, or not measured."""
    from relu_impls import custom_op

    if not custom_op.is_available():
        return _row("custom_op_fast", "custom op library not built here (`make build`)",
                    NOT_MEASURED, "-"), None
    x = _input(numel)
    m = paired_ratio(_forward("custom_op", x), _forward("nn_relu", x), rounds, min_time)
    r, lo, hi = m["ratio"], m["low"], m["high"]
    verdict = at_least_verdict(1 / hi, 1 / lo, 1.0, strict=True)  # speedup = 1 / ratio
    text = (f"t_custom_op / t_nn_relu = {r:.2f}× (95% CI {lo:.2f}–{hi:.2f}) on {numel:,} "
            "float32, forward")
    return _row("custom_op_fast", text, verdict, "measured now", r, lo, hi), m


def _input(numel: int):
    import numpy as np
    import tensorflow as tf

    return tf.constant(np.random.default_rng(0).standard_normal(numel).astype(np.float32))


# --- from stored guide scenarios ---------------------------------------------------------------


def _pick(summary: pd.DataFrame, prefer: str = "nn_relu") -> pd.DataFrame:
    ok = summary[summary["status"] == "ok"]
    mine = ok[ok["variant"] == prefer]
    return mine if len(mine) else ok[ok["variant"] == ok["variant"].iloc[0]] if len(ok) else ok


def sparsity_claim(summary: pd.DataFrame, source: str) -> dict[str, Any]:
    """From a sparsity scenario's summary (rows with dense/coo/csr/bitmask bytes)."""
    rows = _pick(summary)
    if rows.empty:
        return _row("sparsity_storage", "no successful sparsity case", NOT_MEASURED, source)
    r = rows.iloc[0]
    best = min(r["coo_bytes"], r["csr_bytes"], r["bitmask_bytes"])
    verdict = HOLDS if r["coo_bytes"] < r["dense_bytes"] else PARTLY if best < r[
        "dense_bytes"] else NOT_HOLD
    text = (f"{r['label']}: {r['zero_fraction']:.0%} exact zeros; bytes dense "
            f"{int(r['dense_bytes']):,}, COO {int(r['coo_bytes']):,}, CSR "
            f"{int(r['csr_bytes']):,}, bitmask {int(r['bitmask_bytes']):,} "
            f"(best/dense {best / r['dense_bytes']:.2f})")
    return _row("sparsity_storage", text, verdict, source, float(best / r["dense_bytes"]))


def batch_claim(summary: pd.DataFrame, source: str) -> dict[str, Any]:
    """From a batch_sweep summary (batch, samples_per_s and its CI)."""
    rows = _pick(summary)
    if rows.empty or 64 not in set(rows["batch"]):
        return _row("batch_64", "no successful sweep including batch 64", NOT_MEASURED, source)
    best = float(rows["samples_per_s"].max())
    at64 = rows[rows["batch"] == 64].iloc[0]
    smaller = rows[rows["batch"] < 64]
    small_reach = bool((smaller["samples_per_s_high"] >= 0.9 * best).any())
    share = at64["samples_per_s"] / best
    reaches = at64["samples_per_s_high"] >= 0.9 * best
    verdict = (HOLDS if reaches and len(smaller) and not small_reach else
               PARTLY if at64["samples_per_s_high"] >= 0.5 * best else NOT_HOLD)
    best_batch = int(rows.loc[rows["samples_per_s"].idxmax(), "batch"])
    text = (f"{at64['label']}: batch 64 gives {at64['samples_per_s']:.0f} samples/s (95% CI "
            f"{at64['samples_per_s_low']:.0f}–{at64['samples_per_s_high']:.0f}) = {share:.0%} of "
            f"the best ({best:.0f} at batch {best_batch})"
            + ("; a smaller batch is within 10% too" if small_reach else ""))
    return _row("batch_64", text, verdict, source, float(share),
                float(at64["samples_per_s_low"] / best), float(at64["samples_per_s_high"] / best))


def mixed_precision_claim(summary: pd.DataFrame, source: str) -> dict[str, Any]:
    """From a mixed_precision summary (mode = policy, final_loss, accuracy, loss_vs_float32)."""
    ok = summary[summary["status"] == "ok"]
    ref = ok[ok["mode"] == "float32"].set_index("label")
    half = ok[ok["mode"].isin(["mixed_float16", "mixed_bfloat16"])]
    half = half[half["label"].isin(ref.index)]
    if half.empty:
        return _row("mixed_precision_accuracy", "no half-precision case next to float32",
                    NOT_MEASURED, source)
    loss_dev = (half["loss_vs_float32"] - 1).abs()
    acc_dev = (half["accuracy"] - ref.loc[half["label"], "accuracy"].to_numpy()).abs()
    worst = float(loss_dev.max())
    verdict = (HOLDS if worst <= 0.05 and float(acc_dev.max()) <= 0.02 else
               PARTLY if worst <= 0.2 else NOT_HOLD)
    parts = [f"{r.label} {r.mode}: loss ×{r.loss_vs_float32:.3f}, step ×{r.time_vs_float32:.2f}"
             for r in half.itertuples()]
    noscale = ok[ok["mode"] == "mixed_float16_noscale"]
    if len(noscale):
        parts.append("float16 without loss scaling: gradients exactly 0 "
                     f"{noscale['zero_grad_fraction'].max():.3f} (float32 "
                     f"{ref['zero_grad_fraction'].max():.3f}), loss ×"
                     f"{noscale['loss_vs_float32'].max():.3f}")
    text = ("final loss vs float32 after the same steps — " + "; ".join(parts)
            + f"; accuracy within {float(acc_dev.max()):.3f}")
    return _row("mixed_precision_accuracy", text, verdict, source, 1 + worst)


FROM_SCENARIOS = {"sparsity_storage": ("sparsity", sparsity_claim),
                  "batch_64": ("batch_sweep", batch_claim),
                  "mixed_precision_accuracy": ("mixed_precision", mixed_precision_claim)}
COMMANDS = {"sparsity": "python -m profiling scenario wide_deep --kind sparsity",
            "batch_sweep": "python -m profiling scenario wide_deep --kind batch_sweep",
            "mixed_precision": "python -m profiling scenario resnet --kind mixed_precision"}


def quick_guide_config(kind: str):
    """The small guide scenario `claims --run-missing` runs when none is stored."""
    from profiling.experiments.guide_scenarios import GuideConfig
    from profiling.experiments.scenarios import ScenarioConfig

    model = "resnet" if kind == "mixed_precision" else "wide_deep"
    base = ScenarioConfig(model=model, variants=["nn_relu"], batch=32, image_size=8, channels=8,
                          blocks=1, repeats=7, min_time=0.02, train_steps=30, train_samples=256)
    return GuideConfig(kind=kind, base=base, batches=(8, 16, 32, 64, 128, 256, 512))


def scenario_claim(claim_id: str, store: Any, run_missing: bool, save: bool = True
                   ) -> dict[str, Any]:
    """The claim from the newest stored guide run of its kind (running a small one if asked,
    stored when `save`)."""
    from profiling.experiments.guide_scenarios import run_guide, stored_results

    kind, judge = FROM_SCENARIOS[claim_id]
    found = stored_results(store, kind) if store is not None else None
    if found is None and run_missing:
        result = run_guide(quick_guide_config(kind), store=store if save else None)
        found = (result.run_id or "not stored", {"results": {"summary": json.loads(
            result.shown().to_json(orient="records"))}})
    if found is None:
        return _row(claim_id, f"no stored {kind} run: `{COMMANDS[kind]}`", NOT_MEASURED, "-")
    run_id, spec = found
    summary = pd.DataFrame(spec.get("results", {}).get("summary", []))
    if summary.empty:
        return _row(claim_id, f"run {run_id} has no results", NOT_MEASURED, run_id)
    return judge(summary, f"run {run_id}")


# --- the table -----------------------------------------------------------------------------------


def claims_table(store: Any = None, numel: int = 1 << 22, rounds: int = 9,
                 min_time: float = 0.05, run_missing: bool = True, save: bool = True
                 ) -> pd.DataFrame:
    """Every claim: the two timing claims measured now, the others from the stored guide
    scenarios of `store` (small ones run, and stored when `save`, if missing and `run_missing`).
    Saved as a run when `store` is given and `save`."""
    max_row, max_m = maximum_vs_where(numel, rounds, min_time)
    op_row, op_m = custom_op_fast(numel, rounds, min_time)
    rows = [max_row,
            *(scenario_claim(c, store, run_missing, save) for c in FROM_SCENARIOS),
            op_row]
    table = pd.DataFrame(rows, columns=COLUMNS)
    if store is not None and save:
        from profiling.storage.store import new_run_id

        run_id = new_run_id()
        table.loc[table["source"] == "measured now", "source"] = f"run {run_id}"
        save_claims(store, table, numel, [("where", "maximum", max_m),
                                          ("custom_op", "nn_relu", op_m)], run_id=run_id)
    return table


def save_claims(store: Any, table: pd.DataFrame, numel: int,
                pairs: list[tuple[str, str, dict | None]], run_id: str | None = None) -> str:
    """A run (spec kind "claims", the table in spec_json) with a kind="scenario" case per timed
    variant (mode "claims", pass "forward"); the first of each pair carries its paired ratio to
    the second (ratio_to_baseline and its CI). Returns the run id."""
    from profiling.experiments.scenarios import scenario_case
    from profiling.spec import default_device

    spec = {"kind": "claims", "numel": numel,
            "claims": json.loads(table.to_json(orient="records"))}
    measured = [p for p in pairs if p[2] is not None]
    with store.saving_run(spec, label="guide claims", n_cases=2 * len(measured),
                          run_id=run_id) as run_id:
        idx = 0
        for vid, base, m in measured:
            base_id = f"{run_id}-{idx + 1:03d}"
            for variant, key in ((vid, "a"), (base, "b")):
                samples = m[f"samples_{key}"]
                row = scenario_case(run_id, f"{run_id}-{idx:03d}", idx, variant=variant,
                                    variant_params="{}", label=variant, shape=str(numel),
                                    numel=numel, dtype="float32", device=default_device(),
                                    mode="claims", pass_="forward", samples=samples,
                                    number=m[f"number_{key}"])
                if variant == vid:
                    row.update(baseline_case_id=base_id, ratio_to_baseline=m["ratio"],
                               ratio_ci95_low=m["low"], ratio_ci95_high=m["high"])
                store.add_case(row, samples=samples)
                idx += 1
    return run_id


def stored_claims(store: Any, run_ids: list[str] | None = None) -> tuple[str, pd.DataFrame] | None:
    """(run id, table) of the newest complete claims run (among `run_ids` when given)."""
    runs = store.list_runs()
    runs = runs[runs["status"] == "complete"]
    if run_ids is not None:
        runs = runs[runs["run_id"].isin(run_ids)]
    for r in runs.itertuples():
        spec = decode(r.spec_json, "spec_json", r.run_id)
        if spec.get("kind") == "claims":
            return str(r.run_id), pd.DataFrame(spec.get("claims", []), columns=COLUMNS)
    return None

