"""The guide's claims: verdict rules on constructed results, paired timing, the CLI, the report
and the Variants page."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from helpers import assert_one_run_writer

from profiling.experiments import claims
from profiling.measurement.stats import RatioStats
from profiling.presentation import units
from profiling.presentation.claims import shown
from profiling.presentation.report import render_html
from profiling.storage.store import Store


def sparsity_summary(coo: int, csr: int, bitmask: int) -> pd.DataFrame:
    return pd.DataFrame([{"variant": "nn_relu", "label": "nn_relu", "status": "ok",
                          "zero_fraction": 0.5, "dense_bytes": 1000, "coo_bytes": coo,
                          "csr_bytes": csr, "bitmask_bytes": bitmask}])


@pytest.mark.parametrize("coo, csr, bitmask, verdict", [
    (900, 800, 600, claims.HOLDS),
    (2000, 1100, 600, claims.PARTLY),
    (3000, 1500, 1200, claims.NOT_HOLD),
])
def test_sparsity_verdict(coo, csr, bitmask, verdict):
    row = claims.sparsity_claim(sparsity_summary(coo, csr, bitmask), "run x")
    assert row["verdict"] == verdict and row["source"] == "run x"
    assert row["value"] == pytest.approx(min(coo, csr, bitmask) / 1000)


def sweep(throughput: dict[int, float], spread: float = 0.02) -> pd.DataFrame:
    return pd.DataFrame([{"variant": "nn_relu", "label": "nn_relu", "status": "ok", "batch": b,
                          "samples_per_s": s, "samples_per_s_low": s * (1 - spread),
                          "samples_per_s_high": s * (1 + spread)} for b, s in throughput.items()])


@pytest.mark.parametrize("throughput, verdict", [
    ({8: 100, 32: 500, 64: 950, 256: 1000}, claims.HOLDS),      # saturates at 64
    ({8: 960, 64: 990, 256: 1000}, claims.PARTLY),              # small batches as good
    ({8: 100, 64: 600, 256: 1000}, claims.PARTLY),              # 64 only 60% of the best
    ({8: 50, 64: 200, 512: 1000}, claims.NOT_HOLD),             # far from saturated at 64
])
def test_batch_verdict(throughput, verdict):
    assert claims.batch_claim(sweep(throughput), "r")["verdict"] == verdict


def test_batch_claim_without_64_is_not_measured():
    assert claims.batch_claim(sweep({8: 1, 16: 2}), "r")["verdict"] == claims.NOT_MEASURED


def mixed(loss_ratio: float, accuracy_drop: float) -> pd.DataFrame:
    rows = [{"label": "nn_relu", "mode": "float32", "status": "ok", "accuracy": 0.9,
             "loss_vs_float32": 1.0, "time_vs_float32": 1.0, "zero_grad_fraction": 0.0}]
    for mode in ("mixed_float16", "mixed_bfloat16", "mixed_float16_noscale"):
        rows.append({"label": "nn_relu", "mode": mode, "status": "ok",
                     "accuracy": 0.9 - accuracy_drop, "loss_vs_float32": loss_ratio,
                     "time_vs_float32": 3.0, "zero_grad_fraction": 0.01})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("ratio, drop, verdict", [
    (1.01, 0.0, claims.HOLDS), (1.1, 0.0, claims.PARTLY), (1.01, 0.1, claims.PARTLY),
    (1.5, 0.0, claims.NOT_HOLD),
])
def test_mixed_precision_verdict(ratio, drop, verdict):
    row = claims.mixed_precision_claim(mixed(ratio, drop), "r")
    assert row["verdict"] == verdict
    assert "without loss scaling" in row["measured"] and "(float32 0.000)" in row["measured"]


@pytest.mark.parametrize("low, high, verdict", [
    (3.1, 4.0, claims.HOLDS), (2.0, 2.9, claims.NOT_HOLD), (2.5, 3.5, claims.PARTLY),
    (0.8, 6.0, claims.PARTLY), (3.0, 4.0, claims.PARTLY), (2.0, 3.0, claims.PARTLY),
])
def test_speedup_verdict_reads_the_ci_against_the_claimed_factor(low, high, verdict):
    # a speedup CI [low, high] is the ratio CI [1/high, 1/low]; touching 3 is not beyond it
    ratio = RatioStats(2 / (low + high), 1 / high, 1 / low, 9, True)
    assert ratio.speedup_ci95 == (pytest.approx(low), pytest.approx(high))
    assert claims.speedup_verdict(ratio, 3.0) == verdict


def test_speedup_verdict_for_faster_than():
    assert claims.speedup_verdict(RatioStats(0.9, 1 / 1.2, 1.0, 9, True), 1.0) == claims.PARTLY
    assert claims.speedup_verdict(RatioStats(0.9, 0.8, 0.99, 9, True), 1.0) == claims.HOLDS
    assert claims.speedup_verdict(RatioStats(1.5, 1.1, 2.0, 9, True), 1.0) == claims.NOT_HOLD


@pytest.mark.parametrize("setting", ["eager", "function"])
def test_time_pair_goes_through_the_core_and_pairs_its_samples(setting):
    import tensorflow as tf

    x = tf.random.normal([1000], seed=0)
    m = claims.time_pair("nn_relu", "maximum", x, setting, rounds=6, min_time=0.002)
    assert len(m.variant_timing.samples) == len(m.baseline_timing.samples) == 6
    assert m.ratio.paired and m.ratio.n_pairs == 6 and m.setting == setting
    per_pair = sorted(v / b for v, b in zip(m.variant_timing.samples,
                                            m.baseline_timing.samples, strict=True))
    assert m.ratio.ratio == pytest.approx((per_pair[2] + per_pair[3]) / 2)  # the pairs' median
    assert m.ratio.ci95_low <= m.ratio.ratio <= m.ratio.ci95_high
    assert m.ratio.speedup == pytest.approx(1 / m.ratio.ratio)


def test_shown_verdict_names_the_setting():
    table = pd.DataFrame([
        claims._row("maximum_vs_where", "m", claims.HOLDS, "r", 3.2, 3.1, 3.3, "eager",
                    RatioStats(1 / 3.2, 1 / 3.3, 1 / 3.1, 9, True)),
        claims._row("maximum_vs_where", "m", claims.PARTLY, "r", 3.0, 2.5, 3.5, "function",
                    RatioStats(1 / 3, 1 / 3.5, 1 / 2.5, 9, True)),
        claims.batch_claim(sweep({8: 1, 16: 2}), "-")], columns=claims.COLUMNS)
    view = shown(table)
    assert list(view["verdict"]) == ["holds (eager)", "partly (tf.function)", claims.NOT_MEASURED]
    assert list(view["speedup"]) == ["3.20× [3.10, 3.30]", "3.00× [2.50, 3.50]", units.MISSING]


def test_cli_claims_json_lists_every_claim_and_stores_the_run(data_dir, capsys):
    from profiling.cli.main import main

    assert main(["claims", "--stored"]) == 2  # nothing stored yet: one line, exit 2
    assert "no stored claims run" in capsys.readouterr().err
    assert main(["claims", "--json", "--numel", "4096", "--rounds", "6", "--min-time", "0.002",
                 "--no-run-missing"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert list(dict.fromkeys(r["claim_id"] for r in table)) == list(claims.CLAIMS)
    timings = [r for r in table if r["claim_id"] == "maximum_vs_where"]
    assert [r["setting"] for r in timings] == ["eager", "function"]  # the guide's first
    for timing in timings:
        assert timing["ci95_low"] <= timing["value"] <= timing["ci95_high"]
        assert timing["value"] == timing["speedup"] == pytest.approx(1 / timing["ratio"])
        assert timing["speedup_ci95_low"] == pytest.approx(1 / timing["ratio_ci95_high"])
        assert timing["verdict"] in (claims.HOLDS, claims.PARTLY, claims.NOT_HOLD)
        assert f"{timing['setting'].replace('function', 'tf.function')}" in timing["measured"]
    by_id = {r["claim_id"]: r for r in table}
    assert by_id["batch_64"]["verdict"] == claims.NOT_MEASURED  # nothing stored, not run
    assert "--kind batch_sweep" in by_id["batch_64"]["measured"]
    assert main(["claims", "--stored", "--markdown"]) == 0
    markdown = capsys.readouterr().out
    assert markdown.startswith("| claim | verdict | speedup | measured | source |")
    assert f"{timings[0]['verdict']} (eager)" in markdown
    assert f"{timings[1]['verdict']} (tf.function)" in markdown
    assert units.format_speedup(timings[0]["value"], timings[0]["ci95_low"],
                                timings[0]["ci95_high"]) in markdown
    with Store(data_dir) as store:
        run_id, stored = claims.stored_claims(store)
        assert stored.loc[0, "source"] == f"run {run_id}"
        cases = store.cases([run_id])
        maximum = cases[cases["variant"] == "maximum"].set_index("mode")
        for timing in timings:
            case = maximum.loc[timing["setting"]]
            assert case["ratio_to_baseline"] == pytest.approx(timing["ratio"])
            base = cases.set_index("case_id").loc[case["baseline_case_id"]]
            assert base["variant"] == "where" and base["mode"] == timing["setting"]
        assert (cases["n_samples"] == 6).all()
        assert_one_run_writer(store, run_id, "claim", spec_kind="claims")
        assert list(dict.fromkeys(stored["claim_id"])) == list(claims.CLAIMS)
        document = render_html(store, [run_id])
    assert "Guide claims and scenarios" in document
    assert "tf.maximum is 3–5× faster than the tf.where version" in document
    assert f"{timings[0]['verdict']} (eager)" in document


@pytest.mark.parametrize("argv", [["--numel", "0"], ["--rounds", "3"], ["--min-time", "-1"]])
def test_cli_claims_bad_input(argv, capsys):
    from profiling.cli.main import main

    assert main(["claims", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err


def test_report_shows_a_guide_scenario_and_survives_a_hostile_spec(tmp_path):
    with Store(tmp_path) as store:
        spec = {"kind": "scenario", "scenario": "sparsity", "base": {"model": "wide_deep"},
                "results": {"summary": sparsity_summary(900, 800, 600).assign(
                    mode="sparsity", median_s=0.001).to_dict("records"),
                    "layers": [{"label": "<b>nn_relu</b>", "layer": "deep0_act",
                                "zero_fraction": 0.5}]}}
        good = store.create_run(spec, label="guide")
        store.finish_run(good, "complete")
        odd = store.create_run({"kind": "scenario", "scenario": "qat", "results": {
            "summary": [{"nothing": 1}]}}, label="odd columns")
        bad = store.create_run({"kind": "scenario", "scenario": "qat", "results": {
            "summary": "not a table"}}, label="hostile")
        broken = store.create_run('{"kind": "scenario", ', label="not json")
        for run_id in (odd, bad, broken):
            store.finish_run(run_id, "complete")
        document = render_html(store, [good, odd, bad, broken])
    assert "sparsity · run" in document and "No claims measured yet" in document
    assert "&lt;b&gt;nn_relu&lt;/b&gt;" in document and "<b>nn_relu</b>" not in document
    assert f"qat · run {odd}" in document
    assert f"Run {bad}: results unreadable" in document
    assert f"Run {broken}: results unreadable" in document


def test_variants_page_shows_the_stored_claims(tmp_path, monkeypatch):
    from helpers import open_page

    monkeypatch.setenv("RELU_LAB_DATA", str(tmp_path))
    at = open_page("variants")
    assert any("No claims measured yet" in i.value for i in at.info)
    table = pd.DataFrame([claims.sparsity_claim(sparsity_summary(900, 800, 600), "run s"),
                          claims.batch_claim(sweep({8: 1, 16: 2}), "-")], columns=claims.COLUMNS)
    with Store(tmp_path) as store:
        run_id = claims.save_claims(store, table, 4096, [])
    at = open_page("variants")
    shown = next(d.value for d in at.dataframe if "verdict" in d.value.columns)
    assert list(shown["verdict"]) == [claims.HOLDS, claims.NOT_MEASURED]
    assert any(run_id in c.value for c in at.caption)
