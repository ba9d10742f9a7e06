"""The bandwidth roof: copy GB/s as a curve over working-set sizes, the denominator of
utilization.

One copy at one size is a fragile peak: on a CPU whose last-level cache holds hundreds of MB a
40 MB copy is not DRAM, and one busy moment during it makes every case look faster than
possible. So the roof is measured at a few points per cache level (read from
/sys/devices/system/cpu/cpu0/cache), from inside L1 to several times the last-level cache;
each point is timed in several interleaved passes and keeps its best (a peak is a maximum), with
its median and IQR stored beside it. A case's utilization is its GB/s over the roof at its own
working set (bytes read plus written), interpolated in log-log between points.

The copy is `custom_op.bandwidth_probe` (through TF's intra-op pool, so the roof is what TF
can reach with these threads), else a NumPy copy (one thread; `method` says which).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from profiling.measurement.machine import CACHE_DIR, sysfs_caches
from profiling.measurement.stats import summarize_samples
from profiling.measurement.timing import device_sync, measure_interleaved, no_sync, on_fresh_stack

MIN_WORKING_SET = 4 << 10
LLC_MULTIPLE = 4  # the largest point: this many times the last-level cache
PASSES = 5  # repeats per point, interleaved across points
ROOF_MIN_TIME = 0.02


@dataclass(frozen=True)
class RoofPoint:
    """Copy bandwidth at one working set (bytes read + written): best, median, IQR in GB/s."""

    working_set_bytes: int
    gbps: float
    gbps_median: float
    gbps_iqr: float
    n: int
    method: str

    def to_dict(self) -> dict:
        return asdict(self)


def cache_sizes(cache_dir: Path = CACHE_DIR) -> dict[int, int]:
    """Data/unified cache bytes by level, e.g. {1: 49152, 2: 2097152, 3: 314572800}."""
    sizes: dict[int, int] = {}
    for level, kind, size in sysfs_caches(cache_dir):
        text = size.upper()
        if kind == "Instruction":
            continue
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        try:
            sizes[level] = int(text.rstrip("KMG")) * scale
        except ValueError:
            continue
    return sizes


def working_sets(caches: dict[int, int], memory_bytes: int) -> list[int]:
    """Working-set sizes to measure: x4 steps from 4 KiB, plus half and twice each cache level,
    up to LLC_MULTIPLE x the last-level cache (at least 256 MiB), within an eighth of memory."""
    llc = max(caches.values(), default=32 << 20)
    top = min(max(LLC_MULTIPLE * llc, 256 << 20), memory_bytes // 8)
    points = {MIN_WORKING_SET << (2 * i) for i in range(32) if MIN_WORKING_SET << (2 * i) <= top}
    for size in caches.values():
        points.update(p for p in (size // 2, 2 * size) if MIN_WORKING_SET <= p <= top)
    out: list[int] = []
    for p in sorted(points):  # drop points within 25% of the previous one
        if not out or p > out[-1] * 1.25:
            out.append(p)
    if out and top < out[-1] * 1.25:  # the largest point is always `top` itself
        out.pop()
    return [*out, top]


def _copy_fn(device: str) -> tuple[str, Callable[[int], tuple[Callable, Callable]]]:
    """(method, make(numel) -> (call, sync)) for the best copy available on `device`."""
    try:
        from relu_impls import custom_op

        if custom_op.is_available():
            custom_op.load()
            import tensorflow as tf

            sync = device_sync(tf, device)

            def make_probe(numel: int) -> tuple[Callable, Callable]:
                with tf.device(f"/{device}"):
                    x = tf.random.uniform([numel], dtype=tf.float32)
                return (lambda: custom_op.bandwidth_probe(x)), sync

            return "bandwidth_probe", make_probe
    except Exception:  # absent or unbuildable op: the NumPy fallback, recorded in `method`
        pass

    def make_numpy(numel: int) -> tuple[Callable, Callable]:
        src = np.random.default_rng(0).random(numel, dtype=np.float32)
        dst = np.empty_like(src)
        return (lambda: np.copyto(dst, src)), no_sync

    return "numpy_copy", make_numpy


def _copy_numel(working_set: int) -> int:
    """float32 elements of a copy that reads + writes about `working_set` bytes (8 per element)."""
    return max(1, working_set // 8)


def probe_at(device: str, working_set: int) -> tuple[Callable, Callable, int]:
    """(call, sync, bytes per call) of the roof's copy at `working_set` bytes (read + written),
    for timing beside the cases that move that many bytes, in the same seconds."""
    _, make = _copy_fn(device)
    call, sync = make(_copy_numel(working_set))
    return call, sync, 8 * _copy_numel(working_set)


def measure_roof(device: str = "CPU:0", sizes: Sequence[int] | None = None,
                 passes: int = PASSES, min_time: float = ROOF_MIN_TIME) -> list[RoofPoint]:
    """Copy GB/s (1e9 B/s, bytes read + written) at each working set, best of `passes`."""
    sizes = list(sizes) if sizes else working_sets(cache_sizes(), psutil.virtual_memory().total)
    method, make = _copy_fn(device)
    calls = {ws: make(_copy_numel(ws)) for ws in sizes}
    # at the cases' stack depth (on_fresh_stack): a small copy is mostly eager dispatch, which
    # costs more under a deeper caller, and would make the roof lower than the cases' speed
    timings = on_fresh_stack(measure_interleaved, calls, repeats=passes, min_time=min_time,
                             warmup=1)
    points = []
    for ws, timing in timings.items():
        gbps = [8 * _copy_numel(ws) / s / 1e9 for s in timing.samples]
        stats = summarize_samples(gbps)
        points.append(RoofPoint(ws, max(gbps), stats.median_s, stats.iqr_s, len(gbps), method))
    return sorted(points, key=lambda p: p.working_set_bytes)


def best_of(*curves: Sequence[dict]) -> list[dict]:
    """Point-wise maximum of roof curves (dicts with working_set_bytes, gbps): the roof keeps
    the best this machine has shown at each working set."""
    best: dict[int, dict] = {}
    for curve in curves:
        for p in curve:
            ws = int(p["working_set_bytes"])
            if ws not in best or p["gbps"] > best[ws]["gbps"]:
                best[ws] = dict(p)
    return [best[k] for k in sorted(best)]


def roof_at(curve: Sequence[dict | RoofPoint], working_set_bytes: float) -> float | None:
    """The roof's GB/s at a working set: log-log interpolation between the measured points,
    the nearest end point outside them; None for an empty curve."""
    pts = sorted((int(_get(p, "working_set_bytes")), float(_get(p, "gbps"))) for p in curve
                 if _get(p, "gbps") and _get(p, "gbps") > 0)
    if not pts or not working_set_bytes or working_set_bytes <= 0:
        return None
    if working_set_bytes <= pts[0][0]:
        return pts[0][1]
    if working_set_bytes >= pts[-1][0]:
        return pts[-1][1]
    for (x0, y0), (x1, y1) in zip(pts, pts[1:], strict=False):
        if x0 <= working_set_bytes <= x1:
            t = (math.log(working_set_bytes) - math.log(x0)) / (math.log(x1) - math.log(x0))
            return math.exp(math.log(y0) + t * (math.log(y1) - math.log(y0)))
    return pts[-1][1]


def _get(p: Any, key: str) -> Any:
    return p[key] if isinstance(p, dict) else getattr(p, key)


def calibrate(device: str = "CPU:0") -> dict:
    """The roof curve of a device with these threads, and its single best point:
    {"peak_gbps", "method", "size_bytes" (working set of the best point), "curve": [RoofPoint
    dicts]}."""
    curve = measure_roof(device)
    best = max(curve, key=lambda p: p.gbps)
    return {"peak_gbps": best.gbps, "method": best.method, "size_bytes": best.working_set_bytes,
            "seconds": None, "curve": [p.to_dict() for p in curve]}
