"""`python -m profiling model` end to end: real Keras models the tests build, the isolated
worker, real traces, the store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import pytest
from helpers import REPO, assert_one_run_writer

from profiling.models import load

FAST = ["--repeats", "3", "--min-time", "0.005", "--batch", "2"]


def cli(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "profiling", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})})


def strict_json(text: str) -> dict:
    def no_nan(token: str):
        raise AssertionError(f"not JSON: {token}")

    return json.loads(text, parse_constant=no_nan)


@pytest.fixture(scope="module")
def cbr_file(tmp_path_factory) -> Path:
    """Conv -> BatchNorm (random statistics) -> ReLU, three times."""
    inp = keras.Input((16, 16, 4))
    x = inp
    for i in range(3):
        x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{i}")(x)
        x = keras.layers.Activation("relu", name=f"act{i}")(x)
    model = keras.Model(inp, x, name="cbr")
    load.randomise_batchnorm(model, seed=5)
    path = tmp_path_factory.mktemp("models") / "cbr.keras"
    model.save(path)
    return path


@pytest.fixture(scope="module")
def cbr_run(cbr_file) -> dict:
    out = cli("model", str(cbr_file), "--what-if", "fold_bn,swap:relu=maximum,swap:gelu=tanh",
              "--json", "--no-store", *FAST)
    assert out.returncode == 0, out.stderr
    return strict_json(out.stdout)


def test_every_conv_bn_relu_layer_is_found_with_its_cause(cbr_run):
    acts = {a["layer"]: a for a in cbr_run["activations"]}
    assert set(acts) == {"act0", "act1", "act2"}
    for a in acts.values():
        assert a["kind"] == "relu" and a["fused"] is False and a["time_us"] > 0
        assert "BatchNormalization between conv" in a["cause"]
    assert cbr_run["step_s"] > 0 and cbr_run["step_ci95_s"][0] <= cbr_run["step_s"]
    assert cbr_run["noise_verdict"] in ("quiet", "noisy")


def test_fold_bn_is_exact_and_fuses_every_relu_read_from_its_trace(cbr_run):
    fold = next(r for r in cbr_run["rewrites"] if r["name"] == "fold_bn")
    assert fold["status"] == "ok", fold["reason"]
    assert fold["max_rel_diff"] <= 1e-4
    assert fold["activations_after"] == 3 and fold["activations_fused_after"] == 3
    assert fold["ci95_low"] <= fold["speedup"] <= fold["ci95_high"]


def test_a_swap_replaces_every_relu_and_a_failing_rewrite_leaves_the_others(cbr_run):
    by_name = {r["name"]: r for r in cbr_run["rewrites"]}
    swap = by_name["swap:relu=maximum"]
    assert swap["status"] == "ok" and sorted(swap["changed"]) == ["act0", "act1", "act2"]
    assert swap["max_abs_diff"] == 0 and swap["activations_fused_after"] == 0
    failed = by_name["swap:gelu=tanh"]
    assert failed["status"] == "failed" and "no gelu" in failed["reason"]
    assert failed["speedup"] is None


def test_a_two_input_model_with_gelu_and_silu_branches_is_stored_as_a_model_run(tmp_path,
                                                                                 data_dir):
    img, vec = keras.Input((12, 12, 3), name="image"), keras.Input((6,), name="features")
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv_silu", activation="silu")(img)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    y = keras.layers.Dense(8, name="dense_gelu", activation="gelu")(vec)
    y = keras.layers.Dense(8, name="dense2")(y)
    y = keras.layers.Activation("gelu", name="gelu_layer")(y)
    out = keras.layers.Dense(3, name="head")(keras.layers.Concatenate(name="cat")([x, y]))
    path = tmp_path / "two.keras"
    keras.Model([img, vec], out, name="two").save(path)
    got = cli("model", str(path), "--what-if", "swap:gelu=tanh,swap:silu=x_sigmoid", "--json",
              *FAST)
    assert got.returncode == 0, got.stderr
    result = strict_json(got.stdout)
    assert [s["name"] for s in result["input_spec"]] == ["image", "features"]
    kinds = {a["layer"]: a["kind"] for a in result["activations"]}
    assert kinds == {"conv_silu": "silu", "dense_gelu": "gelu", "gelu_layer": "gelu"}
    by_name = {r["name"]: r for r in result["rewrites"]}
    assert sorted(by_name["swap:gelu=tanh"]["changed"]) == ["dense_gelu", "gelu_layer"]
    assert 0 < by_name["swap:gelu=tanh"]["max_rel_diff"] < 1e-2
    assert by_name["swap:silu=x_sigmoid"]["max_rel_diff"] < 1e-5
    shown = cli("show", result["run_id"], "--json")
    assert shown.returncode == 0, shown.stderr
    cases = strict_json(shown.stdout)["cases"]
    assert [c["variant"] for c in cases] == ["original", "swap:gelu=tanh", "swap:silu=x_sigmoid"]
    assert all(c["status"] == "ok" for c in cases)
    from profiling.storage.store import Store

    with Store() as store:
        assert_one_run_writer(store, result["run_id"], "model")
        assert store.trace_path(cases[0]["case_id"]) is not None
        spec = json.loads(store.run(result["run_id"])["spec_json"])
    from profiling.presentation.model_summary import decision

    report = tmp_path / "report.html"
    exported = cli("export", result["run_id"], "--format", "html", "-o", str(report))
    assert exported.returncode == 0, exported.stderr
    html = report.read_text()
    assert "Your model: two (inference)" in html and "swap:silu=x_sigmoid" in html
    from markupsafe import escape  # the report's own escaping (Jinja2)

    for line in decision({"rewrites": spec["rewrites"]}):  # the page's sentence, in the report
        assert f'<p class="decision">{escape(line)}</p>' in html


def test_custom_layers_load_only_through_custom_objects(tmp_path):
    sys.path.insert(0, str(REPO / "tests"))
    try:
        from model_custom_layers import ScaledRelu
    finally:
        sys.path.pop(0)
    inp = keras.Input((4,))
    path = tmp_path / "custom.keras"
    keras.Model(inp, ScaledRelu(name="scaled")(keras.layers.Dense(4)(inp))).save(path)
    env = {"PYTHONPATH": os.pathsep.join([str(REPO / "tests"), os.environ.get("PYTHONPATH", "")])}
    bad = cli("model", str(path), "--no-store", *FAST, env=env)
    assert bad.returncode != 0
    assert bad.stderr.strip().count("\n") == 0 and "--custom-objects" in bad.stderr
    good = cli("model", str(path), "--no-store", "--json", "--custom-objects",
               "model_custom_layers", *FAST, env=env)
    assert good.returncode == 0, good.stderr
    assert strict_json(good.stdout)["model"]


@pytest.mark.parametrize(("args", "words"), [
    (["--what-if", "fold_bn,explode"], "unknown rewrite 'explode'"),
    (["--batch", "0"], "--batch must be at least 1"),
    (["--input-shape", "a,b"], "--input-shape"),
])
def test_bad_flags_are_one_line_before_any_worker(cbr_file, args, words):
    got = cli("model", str(cbr_file), "--no-store", *args, timeout=120)
    assert got.returncode == 2 and words in got.stderr
    assert got.stderr.strip().count("\n") == 0


def test_a_file_that_is_not_a_model_and_a_shape_that_does_not_fit_are_one_line(tmp_path,
                                                                               cbr_file):
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"PK\x03\x04 not really a zip")
    got = cli("model", str(junk), "--no-store", *FAST)
    assert got.returncode == 1 and "could not load the model" in got.stderr
    assert got.stderr.strip().count("\n") == 0
    got = cli("model", str(cbr_file), "--no-store", "--input-shape", "16,16", *FAST)
    assert got.returncode == 1 and "has 2 dimensions" in got.stderr


def test_a_training_run_compares_loss_and_gradients_and_measures_each_steps_memory(cbr_file):
    got = cli("model", str(cbr_file), "--mode", "train", "--what-if",
              "swap:relu=maximum,fold_bn", "--json", "--no-store", *FAST)
    assert got.returncode == 0, got.stderr
    result = strict_json(got.stdout)
    assert result["mode"] == "train" and result["peak_memory_bytes"] > 0
    by_name = {r["name"]: r for r in result["rewrites"]}
    swap = by_name["swap:relu=maximum"]
    # maximum's gradient at exactly 0 differs from relu's, nowhere else: loss and gradients match
    assert swap["status"] == "ok" and swap["max_rel_diff"] < 1e-5
    assert swap["peak_memory_bytes"] > 0
    assert by_name["fold_bn"]["status"] == "failed" and "inference" in by_name["fold_bn"]["reason"]


def test_a_saved_model_is_timed_and_audited_through_its_signature_and_rewrites_are_refused(
        tmp_path, data_dir):
    inp = keras.Input((12, 12, 3), name="pixels")
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv")(inp)
    x = keras.layers.Activation("relu6", name="act")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    out = keras.layers.Dense(4, activation="sigmoid", name="head")(x)
    folder = tmp_path / "exported"
    keras.Model(inp, out, name="exported").export(folder, verbose=False)
    got = cli("model", str(folder), "--what-if", "fold_bn", "--json", *FAST)
    assert got.returncode == 0, got.stderr
    result = strict_json(got.stdout)
    assert result["model"] == "exported" and result["source"] == str(folder)
    assert [s["shape"] for s in result["input_spec"]] == [[2, 12, 12, 3]]
    low, high = result["step_ci95_s"]
    assert 0 < low <= result["step_s"] <= high
    assert result["noise_verdict"] in ("quiet", "noisy")
    kinds = sorted(a["kind"] for a in result["activations"])
    assert kinds == ["relu6", "sigmoid"], result["activations"]
    assert all("SavedModel" in a["cause"] for a in result["activations"])
    (fold,) = result["rewrites"]
    assert fold["status"] == "failed" and "no Keras layers" in fold["reason"]
    shown = cli("show", result["run_id"], "--json")
    assert shown.returncode == 0, shown.stderr
    assert [c["variant"] for c in strict_json(shown.stdout)["cases"]][0] == "original"
