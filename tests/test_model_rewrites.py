"""The model walk and the what-if rewrites on small Keras models the tests build (no worker)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from profiling.models import load, rewrites, steps, walk


def conv_bn_relu(blocks: int = 3, name: str = "cbr", depthwise: bool = False) -> keras.Model:
    inp = keras.Input((16, 16, 4))
    x = inp
    for i in range(blocks):
        x = keras.layers.Conv2D(8, 3, padding="same", use_bias=i % 2 == 1, name=f"conv{i}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{i}")(x)
        x = keras.layers.Activation("relu", name=f"act{i}")(x)
    if depthwise:
        x = keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
        x = keras.layers.BatchNormalization(name="bn_dw")(x)
        x = keras.layers.ReLU(6.0, name="relu6_dw")(x)
    model = keras.Model(inp, x, name=name)
    assert load.randomise_batchnorm(model, seed=3) == blocks + depthwise
    return model


def every_kind_model() -> keras.Model:
    """One layer per way of writing an activation."""
    inp = keras.Input((8,))
    x = keras.layers.Dense(8, activation="gelu", name="d_gelu")(inp)
    x = keras.layers.Dense(8, activation=keras.activations.silu, name="d_silu")(x)
    x = keras.layers.Dense(8, name="d_lin")(x)
    x = keras.layers.ReLU(name="relu_layer")(x)
    x = keras.layers.ReLU(max_value=6.0, name="relu6_layer")(x)
    x = keras.layers.LeakyReLU(0.1, name="leaky_layer")(x)
    x = keras.layers.Activation("hard_silu", name="hswish")(x)
    x = keras.layers.Activation("tanh", name="tanh_act")(x)
    x = keras.layers.Dense(4, activation="softmax", name="head")(x)
    return keras.Model(inp, x)


def batch(shape=(2, 16, 16, 4), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def test_the_walk_finds_every_activation_layer_with_its_kind_and_producer():
    found = {a.layer: a for a in walk.activation_layers(every_kind_model())}
    assert {k: a.kind for k, a in found.items()} == {
        "d_gelu": "gelu", "d_silu": "silu", "relu_layer": "relu", "relu6_layer": "relu6",
        "leaky_layer": "leaky_relu", "hswish": "hard_swish", "tanh_act": "tanh"}  # no softmax
    assert found["d_gelu"].how == "activation=" and found["d_gelu"].producer == "d_gelu"
    assert found["relu_layer"].producer == "d_lin" and found["relu_layer"].has_bias
    cbr = {a.layer: a for a in walk.activation_layers(conv_bn_relu())}
    assert all(a.bn_between and a.producer == f"conv{a.layer[-1]}" for a in cbr.values())


def test_fold_bn_is_numerically_equal_with_random_statistics():
    model = conv_bn_relu(depthwise=True)
    x = batch()
    folded = rewrites.fold_bn(model)
    assert set(folded.changed) >= {"bn0", "bn1", "bn2", "bn_dw", "conv0", "dw"}
    assert not [la for la in folded.model.layers if type(la).__name__ == "BatchNormalization"]
    _, rel = steps.difference(steps.outputs_of(model(x, training=False)),
                              steps.outputs_of(folded.model(x, training=False)))
    assert rel <= 1e-5


@pytest.mark.parametrize("wrong", ["mean", "beta"])
def test_a_wrong_fold_is_caught_by_the_output_check(monkeypatch, wrong):
    model = conv_bn_relu(blocks=1)
    right = rewrites.folded_weights

    def folded_ignoring(conv, bn):
        bn_params = rewrites._bn_parameters

        def params(bn_, n):
            gamma, beta, mean, var = bn_params(bn_, n)
            return (gamma, beta, 0 * mean, var) if wrong == "mean" else \
                (gamma, 0 * beta, mean, var)

        monkeypatch.setattr(rewrites, "_bn_parameters", params)
        try:
            return right(conv, bn)
        finally:
            monkeypatch.setattr(rewrites, "_bn_parameters", bn_params)

    monkeypatch.setattr(rewrites, "folded_weights", folded_ignoring)
    x = batch()
    bad = rewrites.fold_bn(model)
    _, rel = steps.difference(steps.outputs_of(model(x, training=False)),
                              steps.outputs_of(bad.model(x, training=False)))
    assert rel > 1e-2  # randomised statistics make a wrong fold show


def test_swap_replaces_every_activation_of_its_kind_and_no_other():
    model = every_kind_model()
    x = batch((3, 8))
    swapped = rewrites.swap(model, "relu", "maximum")
    assert swapped.changed == ["relu_layer"]
    kinds = {a.layer: (a.kind, a.how) for a in walk.activation_layers(swapped.model)}
    assert kinds["relu_layer"] == ("relu", "swapped to maximum")
    assert kinds["relu6_layer"][1] == "ReLU"  # relu6 is another kind: untouched
    np.testing.assert_allclose(model(x), swapped.model(x), rtol=1e-6)
    gelu = rewrites.swap(model, "gelu", "tanh")
    assert {a.layer: a.how for a in walk.activation_layers(gelu.model)}["d_gelu"] == \
        "activation= swapped to tanh"
    _, rel = steps.difference(steps.outputs_of(model(x)), steps.outputs_of(gelu.model(x)))
    assert 0 < rel < 1e-2  # the tanh approximation differs, a little
    silu = rewrites.swap(model, "silu", "x_sigmoid")
    np.testing.assert_allclose(model(x), silu.model(x), rtol=1e-5, atol=1e-6)


def test_rewrites_that_cannot_apply_say_why_in_one_line():
    model = every_kind_model()
    for text, words in [("swap:relu=nope", "nope"), ("swap:elu=maximum", "no implementation"),
                        ("swap:gelu=maximum", "no implementation"), ("fold_bn", "nothing to fold"),
                        ("bogus", "unknown rewrite"), ("swap:relu", "swap:KIND=VARIANT")]:
        with pytest.raises(rewrites.RewriteError) as e:
            rewrites.rewrite(model, text)
        assert words in str(e.value) and "\n" not in str(e.value)

    with pytest.raises(rewrites.RewriteError, match="no gelu activation to swap"):
        rewrites.rewrite(conv_bn_relu(blocks=1), "swap:gelu=tanh")

    class Sub(keras.Model):
        def call(self, x):
            return tf.nn.relu(x)

    with pytest.raises(rewrites.RewriteError, match="subclassed"):
        rewrites.swap(Sub(), "relu", "maximum")


def test_mixed_bfloat16_computes_in_bfloat16_with_float32_weights():
    model = conv_bn_relu(blocks=1)
    mixed = rewrites.mixed_bfloat16(model).model
    conv = mixed.get_layer("conv0")
    assert conv.compute_dtype == "bfloat16" and conv.kernel.dtype == "float32"
    np.testing.assert_array_equal(conv.kernel.numpy(), model.get_layer("conv0").kernel.numpy())


def test_inputs_and_shapes_are_checked_with_one_line_errors(tmp_path):
    a, b = keras.Input((4,), name="a"), keras.Input((3,), name="b")
    model = keras.Model([a, b], keras.layers.Concatenate()([keras.layers.Dense(2)(a), b]))
    path = tmp_path / "two.keras"
    model.save(path)
    got = load.open_model(str(path), batch=5)
    assert [(n, s) for n, s, _ in got.input_spec] == [("a", (5, 4)), ("b", (5, 3))]
    xs = load.random_inputs(got.input_spec)
    assert [x.shape for x in xs] == [(5, 4), (5, 3)]
    with pytest.raises(load.ModelLoadError, match="one shape; the model has 2 inputs"):
        load.open_model(str(path), input_shape=(4,))
    free = keras.Model(inp := keras.Input((None, None, 3)), keras.layers.Conv2D(2, 3)(inp))
    free.save(tmp_path / "free.keras")
    with pytest.raises(load.ModelLoadError, match="unknown dimensions"):
        load.open_model(str(tmp_path / "free.keras"))
    assert load.open_model(str(tmp_path / "free.keras"), input_shape=(8, 8, 3)).input_spec[0][1] \
        == (1, 8, 8, 3)
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    with pytest.raises(load.ModelLoadError, match="could not load") as e:
        load.open_model(str(tmp_path / "junk.keras"))
    assert "\n" not in str(e.value)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(load.ModelLoadError, match="not a model file"):
        load.open_model(str(tmp_path / "notes.txt"))
    with pytest.raises(load.ModelLoadError, match="no such file"):
        load.open_model(str(tmp_path / "missing.keras"))


def test_a_model_too_large_for_free_memory_is_refused_before_any_step(monkeypatch):
    got = load.LoadedModel("cbr", "x", [("in", (4096, 16, 16, 4), "float32")],
                           model=conv_bn_relu(blocks=1))
    monkeypatch.setattr(load, "free_memory_bytes", lambda: 10 * 2**20)
    with pytest.raises(load.ModelLoadError, match="lower --batch"):
        load.check_fits(got)


def test_keras_applications_models_get_random_batchnorm_statistics():
    got = load.open_model("keras.applications:MobileNetV2", input_shape=(32, 32, 3), batch=2)
    bns = [la for la in walk.flat_layers(got.model) if type(la).__name__ == "BatchNormalization"]
    assert bns and all(float(np.std(la.moving_mean.numpy())) > 0.1 for la in bns)
    assert "random" in got.notes[0]
    with pytest.raises(load.ModelLoadError, match="unknown Keras Applications model"):
        load.open_model("keras.applications:NoSuchNet")
