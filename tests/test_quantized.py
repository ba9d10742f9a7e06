"""INT8 path: quantize -> int8 ReLU -> dequantize against NumPy, its error bound, fake quant."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from relu_impls import quantized
from relu_impls.reference import quant_params_np, quantized_relu_np


@settings(max_examples=40, deadline=None)
@given(x=hnp.arrays(np.float32, st.integers(2, 300),
                    elements=st.floats(-50, 50, width=32, allow_subnormal=False)))
def test_quantized_relu_matches_numpy_and_stays_within_half_a_step(x):
    got = quantized.quantized_relu(tf.constant(x)).numpy()
    want = quantized_relu_np(x)
    scale, _ = quant_params_np(float(x.min()), float(x.max()))
    np.testing.assert_allclose(got, want, rtol=0, atol=scale * 1e-5)
    relu = np.maximum(x, 0)
    # Round-to-nearest: at most scale / 2 (float32 rounding of the step adds a hair).
    assert np.max(np.abs(got - relu)) <= scale * (0.5 + 1e-4)
    assert (got[x <= 0] == 0).all()  # real 0 is exactly zero_point: negatives map to 0


def test_quant_params_by_hand():
    scale, zp = quantized.quant_params(tf.constant(-1.0), tf.constant(2.0))
    assert float(scale) == pytest.approx(3.0 / 255)
    assert int(zp) == round(-128 + 1.0 / (3.0 / 255))  # = -43
    assert (float(scale), int(zp)) == pytest.approx(quant_params_np(-1.0, 2.0))
    # An all-positive range still includes 0, so ReLU on int8 stays exact.
    _, zp_pos = quantized.quant_params(tf.constant(1.0), tf.constant(5.0))
    assert int(zp_pos) == -128


def test_quantize_dequantize_round_trip_on_the_grid():
    scale, zp = tf.constant(0.5), tf.constant(3)
    x = tf.constant([-10.0, -0.25, 0.0, 0.3, 1.0, 1000.0])
    q = quantized.quantize(x, scale, zp)
    np.testing.assert_array_equal(q.numpy(), [-17, 3, 3, 4, 5, 127])  # -0.5 rounds to even 0
    np.testing.assert_allclose(quantized.dequantize(q, scale, zp), [-10.0, 0.0, 0.0, 0.5, 1.0,
                                                                     62.0])


def test_fake_quant_activation_puts_int8_relu_on_the_grid_and_passes_gradients():
    layer = quantized.FakeQuantActivation("int8")
    x = tf.constant(np.linspace(-3, 3, 64, dtype=np.float32).reshape(4, 16))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        total = tf.reduce_sum(y)
    grad = tape.gradient(total, x).numpy()
    assert (y.numpy() >= 0).all() and (y.numpy()[x.numpy() < 0] == 0).all()
    step = (float(layer.out_max) - float(layer.out_min)) / 255
    assert np.unique(np.round(y.numpy() / step, 3)).size <= 256
    assert (grad[x.numpy() > 0.1] == 1).all() and (grad[x.numpy() < -0.1] == 0).all()
    assert float(layer.in_min) == pytest.approx(0.9 * -6 + 0.1 * -3)  # moving average
