"""Scenarios on tiny shapes: fusion read from real profiler traces, loss parity, the store, CLI."""

from __future__ import annotations

import json
import math

import pandas as pd
import plotly.graph_objects as go
import pytest
from helpers import assert_one_run_writer, click_run, scenarios_page

from profiling.experiments.scenarios import (
    ScenarioConfig,
    ScenarioError,
    fusion_sites,
    parse_variant,
    run_scenario,
)
from profiling.presentation import scenario_charts

ALL_VARIANTS = ["nn_relu", "maximum", "where", "keras", "custom_op", "mixed_precision",
                "stable(epsilon=0.001)", "clipped", "leaky", "adaptive", "int8"]
TINY = {"batch": 8, "image_size": 8, "channels": 8, "blocks": 1, "repeats": 2, "min_time": 0.0,
        "warmup": 1, "train_steps": 25, "train_samples": 64, "learning_rate": 0.02}


@pytest.fixture(scope="module")
def resnet(tmp_path_factory):
    from profiling.storage.store import Store

    store = Store(tmp_path_factory.mktemp("store"))
    result = run_scenario(ScenarioConfig(model="resnet", variants=ALL_VARIANTS, **TINY),
                          store=store)
    return result, store


def row(result, variant: str) -> dict:
    return result.summary.set_index("variant").loc[variant].to_dict()


def sites(result, variant: str) -> pd.DataFrame:
    return result.fusion[result.fusion["variant"] == variant].set_index("site")


def test_nn_relu_fuses_into_the_conv_but_not_after_the_residual_add(resnet):
    result, _ = resnet
    s = sites(result, "nn_relu")
    conv = s[s["kind"] == "conv"]
    assert len(conv) == 2 and conv["fused"].all()
    assert conv["fused_into"].str.contains("FusedConv2D").all()
    assert (conv["kernels"] == "").all()  # no separate Relu ran for these sites
    after_add = s.loc["block0_act_out"]
    assert not after_add["fused"] and after_add["kernels"] == "Relu"
    assert row(result, "nn_relu")["fused_sites"] == 2


@pytest.mark.parametrize("variant, kernel", [("maximum", "Maximum"), ("where", "SelectV2")])
def test_maximum_and_where_stay_separate_ops(resnet, variant, kernel):
    result, _ = resnet
    s = sites(result, variant)
    assert not s["fused"].any()
    assert s["kernels"].str.contains(kernel).all()
    assert row(result, variant)["fused_sites"] == 0


def test_keras_activation_fuses_like_nn_relu(resnet):
    result, _ = resnet
    assert sites(result, "keras")[lambda d: d["kind"] == "conv"]["fused"].all()


def test_custom_op_is_not_fused(resnet):
    result, _ = resnet
    r = row(result, "custom_op")
    if r["status"] == "skipped":
        pytest.skip(f"custom op unavailable: {r['reason']}")
    assert r["status"] == "ok", r["reason"]
    s = sites(result, "custom_op")
    assert not s["fused"].any()
    assert s["kernels"].str.contains("CustomRelu").all()


def test_stable_keeps_the_relu_fused_and_adds_epsilon_separately(resnet):
    result, _ = resnet
    conv = sites(result, "stable")[lambda d: d["kind"] == "conv"]
    assert conv["fused"].all() and conv["kernels"].str.contains("AddV2").all()
    assert json.loads(row(result, "stable")["params"]) == {"epsilon": 0.001}


def test_every_variant_trains_to_a_loss_comparable_with_nn_relu(resnet):
    result, _ = resnet
    ok = result.summary[result.summary["status"] == "ok"]
    assert {"nn_relu", "maximum", "where", "stable", "leaky", "adaptive"} <= set(ok["variant"])
    base = row(result, "nn_relu")["final_loss"]
    for r in ok.itertuples():
        assert r.final_loss < 0.8 * r.initial_loss, r.label
        assert abs(r.final_loss - base) <= 0.1 + 0.5 * base, (r.label, r.final_loss, base)
        assert math.isclose(r.loss_vs_baseline, r.final_loss / base, rel_tol=1e-9)


def test_adaptive_slope_is_learned_and_shown(resnet):
    result, _ = resnet
    learned = row(result, "adaptive")["learned"]
    assert learned.startswith("alpha mean=")
    assert float(learned.split("=")[1].split()[0]) != pytest.approx(0.25, abs=1e-6)


def test_int8_runs_through_fake_quantization(resnet):
    result, _ = resnet
    r = row(result, "int8")
    assert r["status"] == "ok", r["reason"]
    assert sites(result, "int8")["kernels"].str.contains("FakeQuantWithMinMaxVars").all()


def test_guide_block_puts_batchnorm_before_the_activation_and_grappler_fuses_nothing_there():
    cfg = ScenarioConfig(model="resnet", variants=["nn_relu"], guide_block=True,
                         **{**TINY, "train_steps": 2})
    result = run_scenario(cfg)
    s = sites(result, "nn_relu")
    assert s.loc["block0_act1", "kind"] == "post_bn"
    # Keras 3 BatchNorm lowers to Mul/Add (no FusedBatchNorm): conv1 -> BN -> Relu stays apart.
    assert not s.loc["block0_act1", "fused"] and s.loc["block0_act1", "kernels"] == "Relu"
    assert s.loc["stem_act", "fused"]
    conv1 = result.op_stats["nn_relu"]
    conv1 = conv1[conv1["op_name"].str.contains("block0_conv1")]["op_type"]
    assert not conv1.str.contains("Fused").any()


def test_step_times_are_summarised_from_all_samples(resnet):
    result, _ = resnet
    for r in result.summary[result.summary["status"] == "ok"].itertuples():
        for step, key in (("train", "train"), ("inference", "infer")):
            part = result.samples[(result.samples["label"] == r.label)
                                  & (result.samples["step"] == step)]["seconds"]
            assert len(part) == TINY["repeats"]
            assert getattr(r, f"{key}_median_s") == pytest.approx(part.median())
            assert getattr(r, f"{key}_ci95_low_s") <= getattr(r, f"{key}_median_s") \
                <= getattr(r, f"{key}_ci95_high_s")


def test_the_run_is_in_the_store(resnet):
    result, store = resnet
    cases = assert_one_run_writer(store, result.run_id, "scenario")
    assert len(cases) == 2 * len(ALL_VARIANTS)
    assert set(cases["pass"]) == {"train", "inference"}
    inference = cases[(cases["pass"] == "inference") & (cases["variant"] == "nn_relu")].iloc[0]
    assert store.trace_path(inference["case_id"]).name.endswith(".xplane.pb")
    assert len(store.op_stats(inference["case_id"])) > 0
    fusion = store.fusion([result.run_id])
    nn = fusion[(fusion["variant"] == "nn_relu") & fusion["reason"].str.contains(r"\(conv\)")]
    assert nn["fused"].all() and len(nn) == 2
    assert not fusion[fusion["variant"] == "maximum"]["fused"].any()
    ok = cases[cases["status"] == "ok"]
    assert set(cases["kind"]) == {"scenario"} and set(ok["device"]) == {"CPU:0"}
    assert (ok["numel"] == TINY["batch"] * TINY["image_size"] ** 2 * 3).all()
    assert (ok["ci95_low_s"] <= ok["median_s"]).all() and (ok["median_s"] <= ok["ci95_high_s"]).all()
    assert ok["ci95_s"].notna().all()


def test_wide_deep_fuses_nn_relu_into_the_matmul():
    cfg = ScenarioConfig(model="wide_deep", variants=["nn_relu", "maximum"], hidden=(16, 8),
                         **{k: v for k, v in TINY.items() if k not in ("image_size", "channels",
                                                                         "blocks")})
    result = run_scenario(cfg)
    nn, mx = sites(result, "nn_relu"), sites(result, "maximum")
    assert list(nn.index) == ["deep0_act", "deep1_act"]
    assert nn["fused"].all() and nn["fused_into"].str.contains("FusedMatMul").all()
    assert not mx["fused"].any() and mx["kernels"].str.contains("Maximum").all()
    finals = result.summary.set_index("variant")["final_loss"]
    assert abs(finals["maximum"] - finals["nn_relu"]) <= 0.1 + 0.5 * finals["nn_relu"]


def test_fusion_sites_reads_op_names_and_types():
    stats = pd.DataFrame({
        "op_name": ["m/conv_a/BiasAdd", "m/act_a/Relu", "m/act_b/Maximum", "m/act_b_1/Mul"],
        "op_type": ["_FusedConv2D", "_FusedConv2D", "Maximum", "Mul"],
        "self_time_us": [10.0, 20.0, 3.0, 1.0],
    })
    out = fusion_sites(stats, [("act_a", "conv"), ("act_b", "conv"), ("act_c", "post_add")])
    out = out.set_index("site")
    assert out.loc["act_a", "fused"] and out.loc["act_a", "fused_into"] == "_FusedConv2D"
    assert not out.loc["act_b", "fused"] and out.loc["act_b", "kernels"] == "Maximum,Mul"
    assert out.loc["act_b", "self_time_us"] == 4.0
    assert not out.loc["act_c", "fused"] and out.loc["act_c", "kernels"] == ""


@pytest.mark.parametrize("spec, expected", [
    ("leaky(alpha=0.2)", ("leaky", {"alpha": 0.2})),
    ({"id": "int8", "params": {"zero_point": 3}}, ("int8", {"zero_point": 3})),
    ("nn_relu", ("nn_relu", {})),
])
def test_parse_variant(spec, expected):
    assert parse_variant(spec) == expected


@pytest.mark.parametrize("kwargs, fragment", [
    ({"model": "vgg"}, "model='vgg'"),
    ({"variants": ["relu9"]}, "relu9"),
    ({"variants": ["leaky(alpha=7)"]}, "alpha"),
    ({"variants": ["leaky(alpha=x)"]}, "name=number"),
    ({"variants": []}, "variants=[]"),
    ({"repeats": 0}, "repeats=0"),
    ({"hidden": ()}, "hidden"),
])
def test_bad_config_is_a_one_line_error(kwargs, fragment):
    with pytest.raises(ScenarioError) as info:
        ScenarioConfig(**kwargs).validate()
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_charts_are_figures_of_the_result(resnet):
    result, _ = resnet
    ok_labels = list(result.summary[result.summary["status"] == "ok"]["label"])
    steps = scenario_charts.step_time_figure(result.summary)
    assert isinstance(steps, go.Figure) and [t.name for t in steps.data] == ["train",
                                                                             "inference"]
    assert list(steps.data[0].x) == ok_labels
    fusion = scenario_charts.fusion_figure(result.fusion)
    assert list(fusion.data[0].x) == ok_labels
    nn_col = ok_labels.index("nn_relu")
    assert [r[nn_col] for r in fusion.data[0].z] == [1, 1, 0]
    assert len(scenario_charts.loss_figure(result.losses).data) == len(ok_labels)
    empty = scenario_charts.step_time_figure(result.summary.iloc[0:0])
    assert not empty.data and empty.layout.annotations


def test_cli_scenario_json_and_bad_input(capsys):
    from profiling.cli.scenario import main

    assert main(["scenario", "resnet", "--variants", "leaky(alpha=0.2),nn_relu",
                 "--image-size", "8", "--channels", "4", "--blocks", "1", "--repeats", "1",
                 "--train-steps", "2", "--no-trace", "--no-store", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["label"] for r in out["summary"]] == ["leaky(alpha=0.2)", "nn_relu"]
    assert main(["scenario", "resnet", "--variants", "relu9", "--no-store"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown variant 'relu9'") and "\n" not in err
    assert main(["scenario", "wide_deep", "--hidden", "a,b", "--no-store"]) == 2
    assert main(["scenario", "resnet", "--strategy", "mirrored", "--variants",
                 "nn_relu,maximum", "--no-store"]) == 2
    assert main(["scenario", "mlp"]) == 2  # argparse choice error


def test_scenarios_page_runs_variants_and_draws_charts(data_dir):
    at = scenarios_page()
    at.multiselect(key="sc_variants").set_value(["nn_relu", "maximum"])
    at.number_input(key="sc_channels").set_value(4)
    at.number_input(key="sc_repeats").set_value(1)
    at.number_input(key="sc_train_steps").set_value(3)
    click_run(at)
    assert not at.exception and not at.error
    assert len(at.get("plotly_chart")) == 3  # step time, fusion, loss
    assert any("Saved as run" in s.value for s in at.success)


def test_scenarios_page_runs_a_guide_scenario_and_stores_it(data_dir):
    from profiling.storage.store import Store

    at = scenarios_page()
    at.radio(key="sc_mode").set_value("Guide scenario").run()
    at.selectbox(key="sc_kind").set_value("sparsity").run()
    at.selectbox(key="sc_model").set_value("wide_deep").run()
    at.multiselect(key="sc_variants").set_value(["nn_relu", "leaky"])
    at.text_input(key="sc_hidden").set_value("8")
    at.number_input(key="sc_repeats").set_value(2)
    at.number_input(key="sc_train_steps").set_value(2)
    click_run(at)
    assert not at.exception and not at.error
    assert len(at.get("plotly_chart")) == 2  # zeros per layer, storage bytes
    assert any("Saved as run" in s.value for s in at.success)
    with Store(data_dir) as store:
        cases = store.cases(list(store.list_runs()["run_id"]))
    assert set(cases["mode"]) == {"sparsity"} and cases["ci95_s"].notna().all()


def test_scenarios_page_runs_mirrored_and_draws_compute_vs_communication(data_dir):
    at = scenarios_page()
    at.radio(key="sc_mode").set_value("MirroredStrategy").run()
    at.number_input(key="sc_channels").set_value(4)
    at.number_input(key="sc_steps").set_value(1)
    click_run(at)
    assert not at.exception and not at.error
    assert len(at.get("plotly_chart")) == 1


def test_scenarios_page_shows_one_line_for_bad_input(data_dir):
    at = scenarios_page()
    at.multiselect(key="sc_variants").set_value([])
    click_run(at)
    assert not at.exception
    assert len(at.error) == 1 and "at least one variant" in at.error[0].value


def test_capture_charts_show_op_names_and_addresses_literally():
    top_ops = pd.DataFrame({"address": ["grpc://<w0>:6009"], "name": ["<built-in method relu>"],
                            "self_us": [1500.0]})
    figure = scenario_charts.top_ops_figure(top_ops)
    assert list(figure.data[0].y) == ["&lt;built-in method relu&gt;"]
    assert figure.data[0].name == "grpc://&lt;w0&gt;:6009"
    assert list(figure.data[0].x) == [1.5]  # ms
