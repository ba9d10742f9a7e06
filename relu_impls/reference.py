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


def quant_params_np(x_min: float, x_max: float) -> tuple[np.float32, int]:
    """(scale, zero_point) of `relu_impls.quantized.quant_params`, computed in float32."""
    lo, hi = np.float32(min(x_min, 0.0)), np.float32(max(x_max, 0.0))
    scale = np.float32((hi - lo) / np.float32(255.0))
    scale = scale if scale > 0 else np.float32(1.0)
    zero_point = int(np.clip(np.round(np.float32(-128.0) - lo / scale), -128, 127))
    return scale, zero_point


def quantized_relu_np(x: np.ndarray) -> np.ndarray:
    """Quantize x with its own range, max(q, zero_point), dequantize (float32)."""
    scale, zp = quant_params_np(float(x.min()), float(x.max()))
    q = np.clip(np.round(x.astype(np.float32) / scale) + zp, -128, 127).astype(np.int8)
    q = np.maximum(q, np.int8(zp))
    return ((q.astype(np.float32) - np.float32(zp)) * scale).astype(np.float32)


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
