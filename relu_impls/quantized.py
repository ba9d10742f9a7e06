"""INT8 ReLU done properly: quantize (scale and zero point from the tensor's range), ReLU on int8,
dequantize; plus the fake-quantized activation that quantization-aware training uses.

Affine int8 (as in TFLite): real = scale * (q - zero_point), q in [-128, 127]. The range is widened
to include 0 so that real 0 is exactly `zero_point` and ReLU on int8 is `max(q, zero_point)`
(`relu_impls.variants.int8_relu`). For x inside [min, max] the round trip errs by at most
scale / 2, so `quantized_relu(x)` is within scale / 2 of `relu(x)` (NumPy reference:
`relu_impls.reference.quantized_relu_np`).
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from relu_impls.variants import variant as lookup_variant

QMIN, QMAX = -128, 127


def quant_params(x_min: tf.Tensor, x_max: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(scale float32, zero_point int32) for int8 covering [min(x_min, 0), max(x_max, 0)].

    scale = (hi - lo) / 255 (1.0 for an all-zero range); zero_point = round(-128 - lo / scale),
    clipped to [-128, 127].
    """
    lo = tf.minimum(tf.cast(x_min, tf.float32), 0.0)
    hi = tf.maximum(tf.cast(x_max, tf.float32), 0.0)
    scale = (hi - lo) / float(QMAX - QMIN)
    scale = tf.where(scale > 0, scale, tf.ones_like(scale))
    zero_point = tf.clip_by_value(tf.round(QMIN - lo / scale), QMIN, QMAX)
    return scale, tf.cast(zero_point, tf.int32)


def quantize(x: tf.Tensor, scale: tf.Tensor, zero_point: tf.Tensor) -> tf.Tensor:
    """int8 q = clip(round(x / scale) + zero_point, -128, 127) (round half to even)."""
    q = tf.round(tf.cast(x, tf.float32) / scale) + tf.cast(zero_point, tf.float32)
    return tf.cast(tf.clip_by_value(q, QMIN, QMAX), tf.int8)


def dequantize(q: tf.Tensor, scale: tf.Tensor, zero_point: tf.Tensor,
               dtype: tf.DType = tf.float32) -> tf.Tensor:
    """real = scale * (q - zero_point), in `dtype`."""
    real = (tf.cast(q, tf.float32) - tf.cast(zero_point, tf.float32)) * scale
    return tf.cast(real, dtype)


def quantized_relu(x: tf.Tensor) -> tf.Tensor:
    """Quantize x with its own range, int8 ReLU (max(q, zero_point)), dequantize to x's dtype."""
    scale, zero_point = quant_params(tf.reduce_min(x), tf.reduce_max(x))
    q = quantize(x, scale, zero_point)
    return dequantize(int8_q_relu(q, zero_point), scale, zero_point, x.dtype)


def int8_q_relu(q: tf.Tensor, zero_point: tf.Tensor) -> tf.Tensor:
    """`variants.int8_relu` with a tensor zero point: max(q, zero_point)."""
    return tf.maximum(q, tf.cast(zero_point, tf.int8))


@keras.saving.register_keras_serializable(package="relu_lab")
class FakeQuantActivation(keras.layers.Layer):
    """Quantization-aware activation: fake_quant(input) -> variant -> fake_quant(output).

    Each fake-quant point keeps a moving-average [min, max] (non-trainable, momentum 0.9, updated
    only in training) and calls `tf.quantization.fake_quant_with_min_max_vars` (8 bits), whose
    gradient is the straight-through estimator inside the range. Variant "int8" is the int8 ReLU
    on the fake-quantized grid: max(dequant(q), 0), i.e. max(q, zero_point) dequantized.
    """

    def __init__(self, variant: str = "nn_relu", params: dict[str, Any] | None = None,
                 momentum: float = 0.9, **kwargs):
        super().__init__(**kwargs)
        self.variant_id = variant
        self.params = dict(params or {})
        self.momentum = momentum
        spec = lookup_variant(variant)
        spec.validate_params(self.params)
        # int8 runs as ReLU on values already on the int8 grid; others as themselves.
        self._fn = tf.nn.relu if variant == "int8" else spec.make(**self.params)

    def build(self, input_shape: tuple) -> None:
        def pair(name: str, lo: float, hi: float):
            # float32 even under a mixed policy: fake_quant takes float32 min/max
            return (self.add_weight(name=f"{name}_min", shape=(), trainable=False,
                                    initializer=keras.initializers.Constant(lo), autocast=False),
                    self.add_weight(name=f"{name}_max", shape=(), trainable=False,
                                    initializer=keras.initializers.Constant(hi), autocast=False))

        self.in_min, self.in_max = pair("in", -6.0, 6.0)
        self.out_min, self.out_max = pair("out", 0.0, 6.0)

    def _fake_quant(self, x: tf.Tensor, lo, hi, training: bool) -> tf.Tensor:
        if training:
            m = self.momentum
            lo.assign(m * lo + (1 - m) * tf.minimum(tf.reduce_min(tf.cast(x, tf.float32)), 0.0))
            hi.assign(m * hi + (1 - m) * tf.maximum(tf.reduce_max(tf.cast(x, tf.float32)), 0.0))
        out = tf.quantization.fake_quant_with_min_max_vars(
            tf.cast(x, tf.float32), tf.convert_to_tensor(lo), tf.convert_to_tensor(hi),
            num_bits=8)
        return tf.cast(out, x.dtype)

    def call(self, inputs: tf.Tensor, training: bool = False) -> tf.Tensor:
        x = self._fake_quant(inputs, self.in_min, self.in_max, bool(training))
        return self._fake_quant(self._fn(x), self.out_min, self.out_max, bool(training))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "variant": self.variant_id, "params": self.params,
                "momentum": self.momentum}
