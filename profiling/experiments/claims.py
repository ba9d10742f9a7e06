"""The guide's quantitative claims, each with its measured answer here and a verdict.

Verdicts: "holds", "partly", "does not hold here", or "not measured" (with what to run).

The two timing claims are measured as the guide measured them (eager, on
`tf.random.normal([1000000])`, float32, forward) and then again in `tf.function`: one row per
setting, which the shown verdict names (`profiling.presentation.claims`). Each pair is timed by
the measurement core (`measure_interleaved`, on a fresh stack, as the profile worker times its
cases) and its time ratio t_variant / t_baseline comes from the paired samples
(`stats.paired_ratio`); the row's `value` and CI are the speedup t_baseline / t_variant, also in
`speedup*`, with the ratio in `ratio*`. A verdict reads the ratio's CI with the lab's one rule
(`RatioStats.side_of`):

- maximum_vs_where: `tf.maximum` 3-5x faster than `tf.where` -> speedup of maximum over where.
  Holds: the speedup's CI lies wholly above 3; does not hold: wholly below; partly: it touches
  or straddles 3.
- custom_op_fast: the C++ op as the high-performance route -> speedup of custom_op over nn_relu.
  Holds: CI wholly above 1 (faster); does not hold: wholly below; partly: it contains 1 (on par).
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
from dataclasses import dataclass
from typing import Any

import pandas as pd

from profiling.measurement.stats import RatioStats
from profiling.measurement.timing import Timing
from profiling.storage.run_writer import RunWriter
from profiling.storage.stored_json import decode

COLUMNS = ["claim_id", "claim", "setting", "measured", "value", "ci95_low", "ci95_high",
           "verdict", "source", "ratio", "ratio_ci95_low", "ratio_ci95_high", "speedup",
           "speedup_ci95_low", "speedup_ci95_high"]
CLAIMS = {
    "maximum_vs_where": "tf.maximum is 3–5× faster than the tf.where version",
    "sparsity_storage": "ReLU's sparsity lowers storage (Wide & Deep)",
    "batch_64": "Use batch size ≥ 64",
    "mixed_precision_accuracy": "Mixed precision keeps accuracy",
    "custom_op_fast": "A custom C++ op is the high-performance route",
}
HOLDS, PARTLY, NOT_HOLD, NOT_MEASURED = "holds", "partly", "does not hold here", "not measured"
GUIDE_NUMEL = 1_000_000  # the guide's tf.random.normal([1000000])
# the settings the timing claims are measured in: the guide's first (the `mode` of their cases)
SETTINGS = {"eager": "eager", "function": "tf.function"}


def _row(claim_id: str, measured: str, verdict: str, source: str, value: float | None = None,
         low: float | None = None, high: float | None = None, setting: str | None = None,
         ratio: RatioStats | None = None) -> dict[str, Any]:
    row = {"claim_id": claim_id, "claim": CLAIMS[claim_id], "setting": setting,
           "measured": measured, "value": value, "ci95_low": low, "ci95_high": high,
           "verdict": verdict, "source": source}
    if ratio is not None:
        row.update(ratio=ratio.ratio, ratio_ci95_low=ratio.ci95_low,
                   ratio_ci95_high=ratio.ci95_high, **ratio.speedup_fields())
    return row


# --- paired timing -----------------------------------------------------------------------------


@dataclass
class PairedTiming:
    """A variant timed interleaved with its baseline in one setting; ratio = t_variant /
    t_baseline from the paired samples."""

    variant: str
    baseline: str
    setting: str
    variant_timing: Timing
    baseline_timing: Timing
    ratio: RatioStats


def time_pair(variant_id: str, baseline_id: str, x: Any, setting: str, rounds: int,
              min_time: float) -> PairedTiming:
    """Time two relu_impls variants on `x` in `setting` (eager or function), `rounds` paired
    repeats through the measurement core."""
    import tensorflow as tf

    from profiling.measurement.stats import paired_ratio
    from profiling.measurement.timing import device_sync, measure_interleaved, on_fresh_stack
    from profiling.spec import default_device

    sync = device_sync(tf, default_device())
    calls = {key: (_call(vid, x, setting), sync)
             for key, vid in (("variant", variant_id), ("baseline", baseline_id))}
    t = on_fresh_stack(measure_interleaved, calls, repeats=rounds, min_time=min_time)
    return PairedTiming(variant_id, baseline_id, setting, t["variant"], t["baseline"],
                        paired_ratio(t["baseline"].samples, t["variant"].samples))


def _call(variant_id: str, x: Any, setting: str) -> Callable[[], Any]:
    import tensorflow as tf

    import relu_impls

    fn = relu_impls.get(variant_id)
    if setting == "function":
        fn = tf.function(fn)
    return lambda: fn(x)


def speedup_verdict(ratio: RatioStats, target: float) -> str:
    """A claim "the variant is at least `target` times faster" judged by the ratio's 95% CI:
    holds when the speedup's CI lies wholly above `target` (the ratio's wholly below
    1 / target), does not hold when wholly below, partly when it touches or straddles it (not
    resolved by this machine's noise)."""
    return {-1: HOLDS, 1: NOT_HOLD, 0: PARTLY}[ratio.side_of(1 / target)]


def _timing_rows(claim_id: str, variant: str, baseline: str, names: tuple[str, str],
                 target: float, numel: int, rounds: int, min_time: float
                 ) -> tuple[list[dict], list[PairedTiming]]:
    x = _input(numel)
    rows, pairs = [], []
    for setting, setting_name in SETTINGS.items():
        m = time_pair(variant, baseline, x, setting, rounds, min_time)
        low, high = m.ratio.speedup_ci95
        text = (f"speedup of {names[0]} over {names[1]} (t_{baseline} / t_{variant}, median "
                f"of {rounds} paired repeats, 95% CI) on tf.random.normal([{numel}]) float32, "
                f"forward, {setting_name}")
        rows.append(_row(claim_id, text, speedup_verdict(m.ratio, target), "measured now",
                         m.ratio.speedup, low, high, setting, m.ratio))
        pairs.append(m)
    return rows, pairs


def maximum_vs_where(numel: int, rounds: int, min_time: float
                     ) -> tuple[list[dict], list[PairedTiming]]:
    """The claim's rows (eager, then tf.function) and their paired measurements."""
    return _timing_rows("maximum_vs_where", "maximum", "where", ("tf.maximum", "tf.where"),
                        3.0, numel, rounds, min_time)


def custom_op_fast(numel: int, rounds: int, min_time: float
                   ) -> tuple[list[dict], list[PairedTiming]]:
    """The claim's rows custom_op vs nn_relu (eager, then tf.function), or not measured."""
    from relu_impls import custom_op

    if not custom_op.is_available():
        return [_row("custom_op_fast", "custom op library not built here (`make build`)",
                     NOT_MEASURED, "-")], []
    return _timing_rows("custom_op_fast", "custom_op", "nn_relu",
                        ("the custom op", "tf.nn.relu"), 1.0, numel, rounds, min_time)


def _input(numel: int):
    import tensorflow as tf

    return tf.random.normal([numel], seed=0)


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


def claims_table(store: Any = None, numel: int = GUIDE_NUMEL, rounds: int = 9,
                 min_time: float = 0.05, run_missing: bool = True, save: bool = True
                 ) -> pd.DataFrame:
    """Every claim: the two timing claims measured now (a row per setting), the others from the
    stored guide scenarios of `store` (small ones run, and stored when `save`, if missing and
    `run_missing`). Saved as a run when `store` is given and `save`."""
    max_rows, max_pairs = maximum_vs_where(numel, rounds, min_time)
    op_rows, op_pairs = custom_op_fast(numel, rounds, min_time)
    rows = [*max_rows,
            *(scenario_claim(c, store, run_missing, save) for c in FROM_SCENARIOS),
            *op_rows]
    table = pd.DataFrame(rows, columns=COLUMNS)
    if store is not None and save:
        from profiling.storage.store import new_run_id

        run_id = new_run_id()
        table.loc[table["source"] == "measured now", "source"] = f"run {run_id}"
        save_claims(store, table, numel, [*max_pairs, *op_pairs], run_id=run_id)
    return table


def save_claims(store: Any, table: pd.DataFrame, numel: int, pairs: list[PairedTiming],
                run_id: str | None = None) -> str:
    """A run (spec kind "claims", the table in spec_json) with a kind="claim" case per timed
    variant and setting (mode eager or function, pass "forward"); each pair's variant case
    carries its paired ratio to the baseline case (ratio_to_baseline and its CI). Returns the
    run id."""
    from profiling.experiments.scenario_save import scenario_case
    from profiling.spec import default_device

    spec = {"numel": numel, "claims": json.loads(table.to_json(orient="records"))}
    with RunWriter(store, "claim", spec, label="guide claims", n_cases=2 * len(pairs),
                   run_id=run_id, spec_kind="claims") as w:
        idx = 0
        for m in pairs:
            for variant, timing in ((m.variant, m.variant_timing),
                                    (m.baseline, m.baseline_timing)):
                ratio = {"baseline_case_id": w.case_id(idx + 1), "ratio_to_baseline":
                         m.ratio.ratio, "ratio_ci95_low": m.ratio.ci95_low,
                         "ratio_ci95_high": m.ratio.ci95_high} if variant == m.variant else {}
                w.add(scenario_case(idx, variant, kind="claim", label=variant, shape=str(numel),
                                    numel=numel, dtype="float32", device=default_device(),
                                    mode=m.setting, pass_="forward", samples=timing.samples,
                                    number=timing.number, metrics=ratio))
                idx += 1
        return w.run_id


def stored_claims(store: Any, run_ids: list[str] | None = None) -> tuple[str, pd.DataFrame] | None:
    """(run id, table) of the newest complete claims run (among `run_ids` when given)."""
    runs = store.list_runs(kind="claims")  # the kind column: no spec scanned to find them
    runs = runs[runs["status"] == "complete"]
    if run_ids is not None:
        runs = runs[runs["run_id"].isin(run_ids)]
    for r in runs.itertuples():
        spec = decode(r.spec_json, "spec_json", r.run_id)
        if spec.get("kind") == "claims":  # a bad spec is skipped, with its one warning line
            return str(r.run_id), pd.DataFrame(spec.get("claims", []), columns=COLUMNS)
    return None

