"""The Keras layer: Sequential and functional use, `.keras` save/load with every variant."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import relu_impls
from relu_impls.keras_layer import ReluActivation

FLOAT32_VARIANTS = [v.id for v in relu_impls.VARIANTS.values() if "float32" in v.dtypes]


@pytest.mark.parametrize("variant_id", FLOAT32_VARIANTS)
def test_save_and_load_round_trip(tmp_path, variant_id):
    if relu_impls.VARIANTS[variant_id].needs_build:
        from relu_impls import custom_op

        custom_op.load()
    params = {"leaky": {"alpha": 0.2}, "clipped": {"clip": 6.0}}.get(variant_id, {})
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3), ReluActivation(variant_id, params)]
    )
    x = np.random.default_rng(0).standard_normal((5, 4)).astype("float32")
    path = tmp_path / f"{variant_id}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    layer = loaded.layers[-1]
    assert isinstance(layer, ReluActivation)
    assert (layer.variant_id, layer.params) == (variant_id, params)
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())


def test_functional_api_and_adaptive_weight_survive_training(tmp_path):
    inputs = keras.Input((6,))
    outputs = ReluActivation("adaptive", {"alpha_init": 0.3})(keras.layers.Dense(6)(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((32, 6)), rng.standard_normal((32, 6))
    model.fit(x, y, epochs=2, verbose=0)
    alpha = model.layers[-1].alpha.numpy()
    assert alpha.shape == (6,) and not np.allclose(alpha, 0.3)  # the slope learned
    path = tmp_path / "adaptive.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.layers[-1].alpha.numpy(), alpha)
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), rtol=1e-6)


def test_bad_variant_fails_at_construction():
    with pytest.raises(ValueError, match="unknown variant 'nope'"):
        ReluActivation("nope")
    with pytest.raises(ValueError, match="clip"):
        ReluActivation("clipped", {"clip": -1})


def test_layer_matches_variant_function():
    x = tf.constant([[-1.5, 0.0, 2.0]])
    layer = ReluActivation("leaky", {"alpha": 0.1})
    np.testing.assert_allclose(layer(x), relu_impls.get("leaky", alpha=0.1)(x))
