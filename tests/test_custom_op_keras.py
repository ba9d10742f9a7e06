"""CustomRelu inside a Keras model that is saved to a .keras file and loaded back."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from relu_impls import custom_op


@keras.saving.register_keras_serializable(package="relu_lab_test")
class CustomReluLayer(keras.layers.Layer):
    """A layer that applies the compiled CustomRelu op."""

    def call(self, inputs):
        return custom_op.custom_relu(inputs)


def test_model_with_custom_relu_survives_save_and_load(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8),
            CustomReluLayer(),
            keras.layers.Dense(2),
        ]
    )
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(0).normal(size=(16, 6)).astype("float32")
    y = np.random.default_rng(1).normal(size=(16, 2)).astype("float32")
    model.fit(x, y, epochs=2, verbose=0)  # gradients flow through CustomReluGrad
    path = tmp_path / "model.keras"
    model.save(path)

    loaded = keras.models.load_model(path)
    assert isinstance(loaded.layers[1], CustomReluLayer)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    dense = loaded.layers[0](x)
    hidden = loaded.layers[1](dense)
    reference = tf.nn.relu(dense)
    np.testing.assert_array_equal(np.asarray(hidden), reference.numpy())
