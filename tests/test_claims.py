"""The guide's claims: verdict rules on constructed results, paired timing, the CLI, the report
and the Variants page."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from profiling.experiments import claims
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
    (0.8, 6.0, claims.PARTLY),
])
def test_at_least_verdict_reads_the_ci_against_the_claimed_factor(low, high, verdict):
    assert claims.at_least_verdict(low, high, 3.0) == verdict


def test_at_least_verdict_strict_for_faster_than():
    assert claims.at_least_verdict(1.0, 1.2, 1.0, strict=True) == claims.PARTLY
    assert claims.at_least_verdict(1.01, 1.2, 1.0, strict=True) == claims.HOLDS
    assert claims.at_least_verdict(0.5, 0.9, 1.0, strict=True) == claims.NOT_HOLD


def test_paired_ratio_of_the_same_call_is_near_one():
    m = claims.paired_ratio(lambda: sum(range(2000)), lambda: sum(range(2000)), rounds=6,
                            min_time=0.005)
    assert len(m["samples_a"]) == len(m["samples_b"]) == 6
    assert m["low"] <= m["ratio"] <= m["high"]
    assert 0.2 < m["ratio"] < 5


def test_cli_claims_json_lists_every_claim_and_stores_the_run(data_dir, capsys):
    from profiling.cli.main import main

    assert main(["claims", "--stored"]) == 2  # nothing stored yet: one line, exit 2
    assert "no stored claims run" in capsys.readouterr().err
    assert main(["claims", "--json", "--numel", "4096", "--rounds", "6", "--min-time", "0.002",
                 "--no-run-missing"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert [r["claim_id"] for r in table] == list(claims.CLAIMS)
    by_id = {r["claim_id"]: r for r in table}
    timing = by_id["maximum_vs_where"]
    assert timing["ci95_low"] <= timing["value"] <= timing["ci95_high"]
    assert timing["verdict"] in (claims.HOLDS, claims.PARTLY, claims.NOT_HOLD)
    assert by_id["batch_64"]["verdict"] == claims.NOT_MEASURED  # nothing stored, not run
    assert "--kind batch_sweep" in by_id["batch_64"]["measured"]
    assert main(["claims", "--stored", "--markdown"]) == 0
    markdown = capsys.readouterr().out
    assert markdown.startswith("| claim | verdict | measured | source |")
    assert f"{timing['value']:.2f}×" in markdown
    with Store(data_dir) as store:
        run_id, stored = claims.stored_claims(store)
        assert stored.loc[0, "source"] == f"run {run_id}"
        cases = store.cases([run_id])
        where = cases[cases["variant"] == "where"].iloc[0]
        assert where["ratio_to_baseline"] == pytest.approx(timing["value"])
        assert set(cases["kind"]) == {"scenario"} and (cases["n_samples"] == 6).all()
        assert list(stored["claim_id"]) == list(claims.CLAIMS)
        document = render_html(store, [run_id])
    assert "Guide claims and scenarios" in document
    assert "tf.maximum is 3–5× faster than the tf.where version" in document


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
