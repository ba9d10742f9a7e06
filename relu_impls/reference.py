"""Pure NumPy references, one per variant, that the TensorFlow implementations are tested against."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, np.zeros_like(x))


def fake_quant_relu(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Dequantize int8 -> float ReLU -> quantize again: what int8 ReLU must equal."""
    real = (q.astype(np.float64) - zero_point) * scale
    requant = np.round(_relu(real) / scale) + zero_point
    return np.clip(requant, -128, 127).astype(np.int8)


REFERENCES: dict[str, Callable[[np.ndarray, Mapping[str, float]], np.ndarray]] = {
    "where": lambda x, p: np.where(x > 0, x, np.zeros_like(x)),
    "maximum": lambda x, p: _relu(x),
    "nn_relu": lambda x, p: _relu(x),
    "keras": lambda x, p: _relu(x),
    "custom_op": lambda x, p: _relu(x),
    "mixed_precision": lambda x, p: _relu(x.astype(np.float32)).astype(x.dtype),
    "stable": lambda x, p: _relu(x) + x.dtype.type(p["epsilon"]),
    "clipped": lambda x, p: np.minimum(_relu(x), x.dtype.type(p["clip"])),
    "leaky": lambda x, p: np.where(x > 0, x, x.dtype.type(p["alpha"]) * x),
    "adaptive": lambda x, p: _relu(x) - x.dtype.type(p["alpha_init"]) * _relu(-x),
    "adaptive_stats": lambda x, p: _relu(x) - x.dtype.type(
        np.float32(p["alpha_max"]) * np.float32(np.mean(x < 0))) * _relu(-x),
    "int8": lambda q, p: fake_quant_relu(q, p["scale"], p["zero_point"]),
}


def reference(variant_id: str, x: np.ndarray, params: Mapping[str, float]) -> np.ndarray:
    """The NumPy reference output of `variant_id` on `x` with (validated) `params`."""
    return REFERENCES[variant_id](x, params)
