"""A user's module of custom Keras layers, imported by `model --custom-objects` in the tests."""

import keras


@keras.saving.register_keras_serializable(package="relu_lab_tests")
class ScaledRelu(keras.layers.Layer):
    """relu(x) * scale: a custom layer a plain load_model cannot rebuild."""

    def __init__(self, scale: float = 2.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def call(self, x):
        return keras.activations.relu(x) * self.scale

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}
