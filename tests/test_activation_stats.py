"""Sparsity, storage bytes and dead units against hand-computed tensors and a constructed layer."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from profiling.analysis import activation_stats as acts

# 2 samples x 4 units: 5 exact zeros (one of them -0.0), 3 non-zeros.
HAND = np.array([[0.0, 1.5, 0.0, -0.0],
                 [2.0, 0.0, 0.0, 3.0]], dtype=np.float32)


def test_zero_fraction_by_hand():
    assert acts.zero_fraction(HAND) == 5 / 8
    assert acts.zero_fraction(np.zeros((0, 3))) == 0.0


def test_storage_bytes_by_hand():
    got = acts.storage_bytes(HAND)
    assert got == {
        "dense_bytes": 8 * 4,
        "coo_bytes": 3 * (2 * 8 + 4) + 2 * 8,  # int64 (row, col) + float32 value; dense_shape
        "csr_bytes": 3 * (4 + 4) + (2 + 1) * 4,  # int32 column + value; 3 row pointers
        "bitmask_bytes": 1 + 3 * 4,  # 8 bits in one byte, then the 3 values
    }
    half = acts.storage_bytes(HAND.astype(np.float16))
    assert half["dense_bytes"] == 16 and half["bitmask_bytes"] == 1 + 3 * 2


def test_coo_bytes_equal_what_tf_sparse_stores():
    rng = np.random.default_rng(0)
    a = np.maximum(rng.standard_normal((16, 8, 3)), 0).astype(np.float32)
    sparse = tf.sparse.from_dense(a)
    stored = (sparse.indices.numpy().nbytes + sparse.values.numpy().nbytes
              + sparse.dense_shape.numpy().nbytes)
    assert acts.storage_bytes(a)["coo_bytes"] == stored


def test_dead_units_on_a_constructed_dense_layer():
    """Units 1 and 3 have zero weights and a negative bias: ReLU outputs 0 for every sample."""
    layer = keras.layers.Dense(4, activation="relu")
    layer.build((None, 3))
    kernel = np.array([[1.0, 0.0, -1.0, 0.0],
                       [0.5, 0.0, 2.0, 0.0],
                       [-1.0, 0.0, 1.0, 0.0]], dtype=np.float32)
    layer.set_weights([kernel, np.array([0.1, -1.0, 0.0, -0.5], dtype=np.float32)])
    x = np.random.default_rng(1).standard_normal((64, 3)).astype(np.float32)
    out = layer(x).numpy()
    peaks = acts.unit_peaks(out)
    assert peaks.shape == (4,)
    assert acts.dead_units(peaks) == 2
    assert peaks[0] > 0 and peaks[2] > 0
    # Over conv-like outputs a unit is a channel: dead only if 0 at every sample and position.
    conv = np.zeros((2, 3, 3, 2), dtype=np.float32)
    conv[1, 2, 0, 0] = 0.25
    assert acts.dead_units(acts.unit_peaks(conv)) == 1

