"""The guide's scenarios on tiny models: stored with CIs, half-precision ops from the trace, QAT
with int8 through fake quantization, batch sweep, sparsity, and the claims they feed."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from helpers import assert_one_run_writer

from profiling.analysis.half_precision import half_summary, precision_of_ops
from profiling.experiments import claims
from profiling.experiments.guide_scenarios import GuideConfig, parse_int_list, run_guide
from profiling.experiments.scenarios import ScenarioConfig, ScenarioError
from profiling.presentation import scenario_charts

TINY = {"batch": 8, "image_size": 8, "channels": 4, "blocks": 1, "hidden": (16, 8),
        "repeats": 3, "min_time": 0.0, "warmup": 1, "train_steps": 4, "train_samples": 32}


def base(model: str, variants: list[str], **kw) -> ScenarioConfig:
    return ScenarioConfig(model=model, variants=variants, **{**TINY, **kw})


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from profiling.storage.store import Store

    return Store(tmp_path_factory.mktemp("guide_store"))


def assert_stored_with_cis(store, result) -> pd.DataFrame:
    cases = assert_one_run_writer(store, result.run_id, "scenario")
    assert len(cases) == len(result.summary)
    ok = cases[cases["status"] == "ok"]
    assert len(ok) and set(cases["kind"]) == {"scenario"} and set(ok["device"]) == {"CPU:0"}
    assert ok["numel"].notna().all() and (ok["n_samples"] == TINY["repeats"]).all()
    assert ((ok["ci95_low_s"] <= ok["median_s"]) & (ok["median_s"] <= ok["ci95_high_s"])).all()
    for case_id in ok["case_id"]:
        assert len(store.samples(case_id)) == TINY["repeats"]
    spec = json.loads(store.run(result.run_id)["spec_json"])
    assert spec["kind"] == "scenario" and spec["scenario"] == result.kind
    assert len(spec["results"]["summary"]) == len(result.summary)
    return cases


def test_mixed_precision_reads_half_ops_from_the_trace_and_compares_losses(store):
    result = run_guide(GuideConfig(
        kind="mixed_precision", base=base("wide_deep", ["nn_relu", "leaky"]),
        policies=("float32", "mixed_float16", "mixed_float16_noscale", "mixed_bfloat16")),
        store=store)
    s = result.summary.set_index(["label", "mode"])
    assert (result.summary["status"] == "ok").all(), result.summary["reason"].tolist()
    assert s.loc[("nn_relu", "float32"), "half_ops"] == 0
    for mode, dtype in (("mixed_float16", "float16"), ("mixed_bfloat16", "bfloat16")):
        assert s.loc[("nn_relu", mode), "dtype"] == dtype
        assert s.loc[("nn_relu", mode), "half_ops"] > 0
        assert "MatMul" in s.loc[("nn_relu", mode), "half_op_types"]
    assert s.loc[("nn_relu", "mixed_float16"), "loss_scaling"]
    assert not s.loc[("nn_relu", "mixed_float16_noscale"), "loss_scaling"]
    # Same init, same data, 4 steps: half precision lands near float32's loss.
    assert s.loc[("nn_relu", "mixed_bfloat16"), "loss_vs_float32"] == pytest.approx(1, abs=0.1)
    assert s.loc[("leaky", "float32"), "loss_vs_float32"] == 1.0
    half = result.extra["half_ops"]
    assert set(half["dtype"]) <= {"float16", "bfloat16"} and len(half)
    cases = assert_stored_with_cis(store, result)
    assert set(cases["mode"]) == {"float32", "mixed_float16", "mixed_float16_noscale",
                                  "mixed_bfloat16"}
    assert set(cases["dtype"]) == {"float32", "float16", "bfloat16"}
    assert len(scenario_charts.guide_figures("mixed_precision", result.summary, result.layers,
                                             result.extra)) == 2


def test_qat_runs_int8_through_fake_quant_and_times_the_int8_path(store):
    result = run_guide(GuideConfig(kind="qat", base=base("resnet", ["nn_relu", "int8"]),
                                   int8_numel=4096), store=store)
    s = result.summary.set_index(["label", "mode"])
    assert (result.summary["status"] == "ok").all(), result.summary["reason"].tolist()
    assert ("int8", "qat") in s.index and ("int8", "float") not in s.index
    assert s.loc[("nn_relu", "qat"), "loss_vs_float"] == pytest.approx(
        s.loc[("nn_relu", "qat"), "final_loss"] / s.loc[("nn_relu", "float"), "final_loss"])
    path = s.xs("int8_path", level="mode")
    assert list(path.index) == ["nn_relu", "quantize+int8 relu+dequantize", "int8 relu on q"]
    quant = path.loc["quantize+int8 relu+dequantize"]
    assert 0 < quant["error_in_scales"] <= 0.5 + 1e-4
    assert list(result.extra["int8_error"]["label"]) == ["quantize+int8 relu+dequantize"]
    cases = assert_stored_with_cis(store, result)
    assert set(cases[cases["mode"] == "int8_path"]["dtype"]) == {"float32", "int8"}


@pytest.fixture(scope="module")
def sweep(store):
    return run_guide(GuideConfig(kind="batch_sweep", base=base("wide_deep", ["nn_relu"]),
                                 batches=(8, 64)), store=store)


def test_batch_sweep_gives_samples_per_second_with_a_ci(store, sweep):
    result = sweep
    s = result.summary.set_index("batch")
    for batch in (8, 64):
        r = s.loc[batch]
        assert r["samples_per_s"] == pytest.approx(batch / r["median_s"])
        assert r["samples_per_s_low"] <= r["samples_per_s"] <= r["samples_per_s_high"]
    cases = assert_stored_with_cis(store, result)
    assert list(cases["mode"]) == ["batch=8", "batch=64"]
    assert list(cases["numel"]) == [8 * 12, 64 * 12]  # dense 8 + 4 ids per sample
    row = claims.batch_claim(result.summary, "test")
    assert row["verdict"] in (claims.HOLDS, claims.PARTLY, claims.NOT_HOLD)


def test_a_guide_run_appears_in_compare_and_the_html_report(store, sweep, monkeypatch):
    from helpers import open_page

    from profiling.presentation.report import render_html

    document = render_html(store, [sweep.run_id])
    assert f"batch_sweep · run {sweep.run_id}" in document and "batch=64" in document
    monkeypatch.setenv("RELU_LAB_DATA", str(store.data_dir))
    at = open_page("compare", {"runs": sweep.run_id, "view": "Table"})  # only the open tab draws
    assert at.multiselect(key="compare_runs").value == [sweep.run_id]
    assert not at.error
    # The results table has a column per input shape: batch 8 and batch 64.
    assert any({"8x8+8x4", "64x8+64x4"} <= set(map(str, d.value.columns)) for d in at.dataframe)


def test_sparsity_counts_zeros_and_bytes_per_layer_and_dead_units(store):
    result = run_guide(GuideConfig(kind="sparsity",
                                   base=base("wide_deep", ["nn_relu", "leaky"])), store=store)
    layers = result.layers.set_index(["label", "layer"])
    assert list(layers.loc["nn_relu"].index) == ["deep0_act", "deep1_act"]
    assert (layers.loc["nn_relu", "zero_fraction"] > 0).all()
    assert (layers.loc["leaky", "zero_fraction"] == 0).all()  # leaky never outputs exact 0
    assert (layers.loc["leaky", "dead_units"] == 0).all()
    units = layers.loc["nn_relu", "units"]
    assert list(units) == [16, 8]
    # 32 samples x 16 units float32, dense
    assert layers.loc[("nn_relu", "deep0_act"), "dense_bytes"] == 32 * 16 * 4
    s = result.summary.set_index("label")
    assert s.loc["nn_relu", "dense_bytes"] == layers.loc["nn_relu", "dense_bytes"].sum()
    assert 0 <= s.loc["nn_relu", "dead_fraction"] <= 1
    assert s.loc["nn_relu", "max_grad_norm"] > 0 and s.loc["nn_relu", "max_activation_norm"] > 0
    assert_stored_with_cis(store, result)
    row = claims.sparsity_claim(result.summary, "test")
    assert "exact zeros" in row["measured"]
    assert len(scenario_charts.guide_figures("sparsity", result.summary, result.layers,
                                             result.extra)) == 2


def test_precision_of_ops_joins_trace_ops_with_graph_dtypes():
    stats = pd.DataFrame({"op_name": ["m/dense/MatMul", "m/act/Relu", "m/cast/Cast", "renamed"],
                          "op_type": ["_MklMatMul", "Relu", "Cast", "_Fused"],
                          "self_time_us": [30.0, 10.0, 5.0, 5.0]})
    dtypes = {"m/dense/MatMul": "float16", "m/act/Relu": "bfloat16", "m/cast/Cast": "float32"}
    ops = precision_of_ops(stats, dtypes)
    assert list(ops["half"]) == [True, True, False, False]
    assert list(ops["dtype"]) == ["float16", "bfloat16", "float32", ""]
    assert half_summary(ops) == {"half_ops": 2, "half_time_fraction": 0.8,
                                 "half_op_types": "Relu,_MklMatMul"}


@pytest.mark.parametrize("kwargs, fragment", [
    ({"kind": "fp8"}, "kind='fp8'"),
    ({"policies": ("float64",)}, "policies"),
    ({"batches": (0,)}, "batches"),
    ({"int8_numel": 0}, "int8_numel"),
])
def test_bad_guide_config_is_a_one_line_error(kwargs, fragment):
    with pytest.raises(ScenarioError) as info:
        GuideConfig(**kwargs).validate()
    assert fragment in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ScenarioError, match="--batches"):
        parse_int_list("--batches", "8,x")


def test_cli_guide_kind_json_and_bad_input(capsys):
    from profiling.cli.scenario import main

    assert main(["scenario", "wide_deep", "--kind", "batch_sweep", "--batches", "8,16",
                 "--variants", "nn_relu",
                 "--hidden", "8", "--repeats", "2", "--min-time", "0", "--no-store",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kind"] == "batch_sweep" and [r["batch"] for r in out["summary"]] == [8, 16]
    assert main(["scenario", "resnet", "--kind", "mixed_precision", "--policies", "fp8",
                 "--no-store"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: policies=['fp8']") and "\n" not in err
    assert main(["scenario", "resnet", "--kind", "qat", "--strategy", "mirrored",
                 "--variants", "nn_relu", "--no-store"]) == 2
    assert "--kind qat with --strategy mirrored" in capsys.readouterr().err
