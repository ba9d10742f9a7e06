"""Peak memory bandwidth per device and thread count: the denominator of utilization.

Preferred: custom_op.bandwidth_probe, a plain copy through TF's intra-op pool, so the peak is
what TF itself can reach with these threads. Fallback when the op is not built: a NumPy copy
(single-threaded, marked method="numpy_copy").
"""

from __future__ import annotations

from typing import Any

import numpy as np

from profiling.stats import summarize_samples
from profiling.timing import measure

DEFAULT_NUMEL = 10_000_000  # 40 MB of float32: well past the last-level cache


def _probe() -> Any | None:
    try:
        from relu_impls import custom_op

        if not custom_op.is_available():
            return None
        custom_op.load()
        return custom_op.bandwidth_probe
    except Exception:  # absent/unbuilt op -> fallback, recorded in `method`
        return None


def calibrate(device: str = "CPU:0", numel: int = DEFAULT_NUMEL, repeats: int = 5,
              min_time: float = 0.05) -> dict:
    """Copy bandwidth in GB/s (1e9 B/s, bytes read + written): peak_gbps, method, size_bytes,
    seconds (median per copy)."""
    nbytes = numel * 4
    probe = _probe()
    if probe is not None:
        import tensorflow as tf

        with tf.device(f"/{device}"):
            x = tf.random.uniform([numel], dtype=tf.float32)
            sync = tf.test.experimental.sync_devices if device.startswith("GPU") else (lambda: None)
            timing = measure(lambda: probe(x), sync, repeats, min_time, warmup=1)
        method = "bandwidth_probe"
    elif device.startswith("GPU"):
        import tensorflow as tf

        with tf.device(f"/{device}"):
            x = tf.random.uniform([numel], dtype=tf.float32)
            timing = measure(lambda: x * 1.0, tf.test.experimental.sync_devices, repeats,
                             min_time, warmup=1)
        method = "tf_multiply_copy"
    else:
        src = np.random.default_rng(0).random(numel, dtype=np.float32)
        dst = np.empty_like(src)
        timing = measure(lambda: np.copyto(dst, src), lambda: None, repeats, min_time, warmup=1)
        method = "numpy_copy"
    median = summarize_samples(timing.samples).median_s
    return {"peak_gbps": 2 * nbytes / median / 1e9, "method": method, "size_bytes": 2 * nbytes,
            "seconds": median}
