"""What activations hold: exact zeros, storage dense vs sparse, dead units.

Pure NumPy functions over activation arrays (last axis = units/channels), used by the guide
scenarios (profiling.experiments.guide_scenarios) and tested on hand-built tensors.
"""

from __future__ import annotations

import math

import numpy as np

INDEX_BYTES = 8  # tf.sparse.SparseTensor indices are int64


def zero_fraction(activation: np.ndarray) -> float:
    """Fraction (0..1) of elements that are exactly 0 (-0.0 counts as 0)."""
    a = np.asarray(activation)
    return float(np.count_nonzero(a == 0) / a.size) if a.size else 0.0


def storage_bytes(activation: np.ndarray) -> dict[str, int]:
    """Bytes to store `activation` (n elements, nnz non-zeros, itemsize b, rank r):

    dense   = n * b
    coo     = nnz * (r * 8 + b) + r * 8   (tf.sparse: int64 indices, values, dense_shape)
    csr     = nnz * (4 + b) + (rows + 1) * 4  (int32 column ids and row pointers; rows = all
              axes but the last flattened; a 1-D array is one row)
    bitmask = ceil(n / 8) + nnz * b        (one bit per element, then the non-zero values)
    """
    a = np.asarray(activation)
    n, b = a.size, a.dtype.itemsize
    rank = max(a.ndim, 1)
    nnz = int(np.count_nonzero(a))
    rows = int(np.prod(a.shape[:-1])) if a.ndim > 1 else 1
    return {
        "dense_bytes": n * b,
        "coo_bytes": nnz * (rank * INDEX_BYTES + b) + rank * INDEX_BYTES,
        "csr_bytes": nnz * (4 + b) + (rows + 1) * 4,
        "bitmask_bytes": math.ceil(n / 8) + nnz * b,
    }


def unit_peaks(activation: np.ndarray) -> np.ndarray:
    """Per unit (last axis): the largest |output| over every other axis (samples, positions)."""
    a = np.abs(np.asarray(activation, dtype=np.float64))
    return a.reshape(-1, a.shape[-1]).max(axis=0) if a.ndim > 1 else a


def dead_units(peaks: np.ndarray) -> int:
    """Units whose output was exactly 0 for every sample seen (peak |output| == 0)."""
    return int(np.count_nonzero(np.asarray(peaks) == 0))

