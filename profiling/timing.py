"""The measurement loop (runs inside a worker): warm-up, autorange, repeats, page faults.

Per-call times are wall-clock (time.perf_counter) over `number` back-to-back calls whose
results stay referenced; on a GPU each batch ends with a device sync.
"""

from __future__ import annotations

import math
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Timing:
    """samples: seconds per call, one per repeat; number: calls per repeat;
    page_faults_per_call: minor faults (ru_minflt) per call over the repeats;
    peak_rss_mb: the process's peak resident set (MiB) since reset_peak_rss() (Linux), else
    since it started."""

    samples: list[float]
    number: int
    page_faults_per_call: float
    peak_rss_mb: float


def reset_peak_rss() -> bool:
    """Start a new peak-RSS window (Linux: clears VmHWM); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """Peak resident set in MiB since reset_peak_rss() (VmHWM), else since the process started."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _batch(call: Callable[[], Any], sync: Callable[[], None], number: int) -> float:
    t0 = time.perf_counter()
    out = None
    for _ in range(number):
        out = call()
    sync()
    elapsed = time.perf_counter() - t0
    del out
    return elapsed


def autorange(call: Callable[[], Any], sync: Callable[[], None], min_time: float) -> int:
    """Calls per repeat so that one repeat lasts about `min_time` seconds (at least 1)."""
    number = 1
    while True:
        elapsed = _batch(call, sync, number)
        if elapsed >= min_time / 10 or number >= 10**7:
            break
        number *= 10
    per_call = max(elapsed / number, 1e-9)
    return max(1, math.ceil(min_time / per_call))


def measure(call: Callable[[], Any], sync: Callable[[], None] = lambda: None, repeats: int = 5,
            min_time: float = 0.2, warmup: int = 2) -> Timing:
    """Warm up, pick `number` by autorange, then time `repeats` batches."""
    for _ in range(max(1, warmup)):
        _batch(call, sync, 1)
    number = autorange(call, sync, min_time)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    samples = [_batch(call, sync, number) / number for _ in range(repeats)]
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    return Timing(samples, number, faults / (repeats * number), peak_rss_mb())
