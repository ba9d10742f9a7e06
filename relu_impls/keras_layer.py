"""A Keras layer that applies any registered variant, so models can swap activations."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from relu_impls.variants import prelu
from relu_impls.variants import variant as lookup_variant


@keras.saving.register_keras_serializable(package="relu_lab")
class ReluActivation(keras.layers.Layer):
    """Applies variant `variant` with `params`; saved and loaded with `.keras` files.

    The adaptive variant keeps its per-channel slope as a trainable layer weight.
    """

    def __init__(self, variant: str = "nn_relu", params: dict[str, Any] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.variant_id = variant
        self.params = dict(params or {})
        self._spec = lookup_variant(variant)
        self._values = self._spec.validate_params(self.params)
        self._fn = None if variant == "adaptive" else self._spec.make(**self.params)

    def build(self, input_shape: tuple) -> None:
        if self.variant_id == "adaptive":
            self.alpha = self.add_weight(
                name="alpha",
                shape=(input_shape[-1],),
                initializer=keras.initializers.Constant(self._values["alpha_init"]),
                trainable=True,
            )

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        if self.variant_id == "adaptive":
            return prelu(inputs, tf.cast(self.alpha, inputs.dtype))
        return self._fn(inputs)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "variant": self.variant_id, "params": self.params}
