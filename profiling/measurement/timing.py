"""The one timing loop: every path that times anything (profile cases, scenarios, fusion blocks,
distributed steps, `make bench`, the roof) calls `measure` or `measure_interleaved`.

A batch is `timeit`'s own loop: `number` back-to-back calls through `itertools.repeat` with the
garbage collector off and each result dropped at once, then one device sync (GPU); seconds per
call = batch time / number. `number` is calibrated per callable (autorange) so that a batch lasts
about `min_time`. Nothing else runs inside a batch: validation, input building and wrappers stay
outside, and `harness_floor` measures what the loop itself costs around a call that does nothing.

Where the loop runs matters too: TensorFlow records the Python stack trace of every eager op, so
an eager op costs more the deeper the Python stack of its caller (a 1e3 `tf.nn.relu` here: +12%
at 20 frames, +30% at 40, `make bench-depth`). `on_fresh_stack` runs a measurement on a new
thread at a fixed depth: that of `timeit` called from a script's top level.
"""

from __future__ import annotations

import _thread
import gc
import itertools
import math
import random
import resource
import statistics
import threading
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

DEFAULT_MIN_TIME = 0.05  # seconds per batch, for the CLI, the dashboard, RunSpec and scenarios
DEFAULT_REPEATS = 7  # from n = 6 on the order-statistic CI of the median covers >= 95%
DEFAULT_WARMUP = 2
MAX_NUMBER = 10**7
# In an interleaved run each timed batch follows an untimed one of the same callable, this
# fraction of its calls long: the first calls after a switch pay for the other callable's cache,
# allocator and thread-pool state (here up to 3x at 1e5 floats and +20% at 1e7 for the first
# 3-6 calls), which a callable timed alone, as timeit times it, never pays.
SETTLE_FRACTION = 0.25


def no_sync() -> None:
    """The sync of a CPU device: nothing to wait for."""
    return None


def device_sync(tf: Any, device: str) -> Callable[[], None]:
    """What ends a batch on `device` ("CPU:0", "GPU:1", ...): a device sync on a GPU, else
    nothing (`tf` is the TensorFlow module, passed in so this module never imports it)."""
    return tf.test.experimental.sync_devices if device.startswith("GPU") else no_sync


@dataclass
class Timing:
    """samples: seconds per call, one per repeat (in repeat order); number: calls per repeat;
    page_faults_per_call: minor faults (ru_minflt) per call over the timed repeats;
    peak_rss_mb: the process's peak resident set (MiB) while this callable was warmed up and
    calibrated (Linux), else since the process started."""

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


def _minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def time_batch(call: Callable[[], Any], number: int, sync: Callable[[], None] = no_sync) -> float:
    """Seconds for `number` calls, timed like timeit.Timer.timeit (GC off, results dropped)."""
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in itertools.repeat(None, number):
            call()
        sync()
        return time.perf_counter() - start
    finally:
        if gc_was_on:
            gc.enable()


def autorange(call: Callable[[], Any], sync: Callable[[], None] = no_sync,
              min_time: float = DEFAULT_MIN_TIME) -> int:
    """Calls per batch so that one batch lasts about `min_time` seconds (at least 1).

    Like timeit's autorange it grows the count by 10x until a batch lasts a tenth of min_time,
    then scales the count to the per-call time it saw.
    """
    number = 1
    while True:
        elapsed = time_batch(call, number, sync)
        if elapsed >= min_time / 10 or number >= MAX_NUMBER:
            break
        number *= 10
    per_call = max(elapsed / number, 1e-9)
    return max(1, min(MAX_NUMBER, math.ceil(min_time / per_call)))


@dataclass
class _Prepared:
    call: Callable[[], Any]
    sync: Callable[[], None]
    number: int
    peak_rss_mb: float
    samples: list[float]
    faults: int = 0


def _prepare(call: Callable[[], Any], sync: Callable[[], None], min_time: float,
             warmup: int, number: int | None) -> _Prepared:
    reset_peak_rss()
    for _ in range(warmup):
        time_batch(call, 1, sync)
    number = number or autorange(call, sync, min_time)
    return _Prepared(call, sync, number, peak_rss_mb(), [])


def _timed_repeat(p: _Prepared, settle: bool = False) -> None:
    if settle:
        time_batch(p.call, max(2, math.ceil(p.number * SETTLE_FRACTION)), p.sync)
    before = _minor_faults()
    p.samples.append(time_batch(p.call, p.number, p.sync) / p.number)
    p.faults += _minor_faults() - before


def _timing(p: _Prepared) -> Timing:
    return Timing(p.samples, p.number, p.faults / (len(p.samples) * p.number), p.peak_rss_mb)


def measure(call: Callable[[], Any], sync: Callable[[], None] = no_sync,
            repeats: int = DEFAULT_REPEATS, min_time: float = DEFAULT_MIN_TIME,
            warmup: int = DEFAULT_WARMUP, number: int | None = None) -> Timing:
    """Warm up, calibrate `number` (autorange) unless given, then time `repeats` batches of one
    callable. A fixed `number` is for callables that must run in lockstep (collective steps)."""
    return measure_interleaved({0: (call, sync)}, repeats, min_time, warmup, number=number)[0]


def measure_interleaved(calls: Mapping[Hashable, tuple[Callable[[], Any], Callable[[], None]]],
                        repeats: int = DEFAULT_REPEATS, min_time: float = DEFAULT_MIN_TIME,
                        warmup: int = DEFAULT_WARMUP, seed: int | None = 0,
                        number: int | None = None) -> dict[Hashable, Timing]:
    """Time several callables repeat by repeat, in a fresh random order each repeat.

    Each callable is warmed up and calibrated on its own first; then repeat i of every callable
    runs before repeat i + 1 of any, so drift of a shared machine hits them alike and sample i
    of two callables forms a pair (Google Benchmark's random interleaving; asv's interleaved
    sampling). With more than one callable, each timed batch follows an untimed settle batch of
    the same callable (SETTLE_FRACTION of its calls), so the switch itself is never timed.
    `calls` maps a key to (call, sync); the result has the same keys.
    """
    if not calls:
        return {}
    prepared = {key: _prepare(call, sync, min_time, warmup, number)
                for key, (call, sync) in calls.items()}
    order = list(prepared)
    rng = random.Random(seed)
    for _ in range(repeats):
        rng.shuffle(order)
        for key in order:
            _timed_repeat(prepared[key], settle=len(order) > 1)
    return {key: _timing(p) for key, p in prepared.items()}


def on_fresh_stack(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """fn(*args, **kwargs) on a new thread, one frame above the bottom of its Python stack.

    What fn times then sits at a depth that does not depend on where the caller sits: the
    worker's run_group and `make bench` call each op from the fifth frame (this wrapper's,
    [a scope-entering function,] measure_interleaved, _timed_repeat, time_batch[, a lambda]),
    as `timeit.Timer(lambda: op(x)).repeat()` at a script's top level does (<module>, repeat,
    timeit, inner, the lambda). Thread-local state such as a `tf.device` scope does not cross
    over: enter it inside fn. fn's exception is re-raised in the caller's thread.
    """
    out: dict[str, Any] = {}
    done = threading.Lock()
    done.acquire()

    def run() -> None:
        try:
            out["value"] = fn(*args, **kwargs)
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
            out["error"] = e
        finally:
            done.release()

    _thread.start_new_thread(run, ())  # not threading.Thread: its bootstrap adds three frames
    done.acquire()
    if "error" in out:
        raise out["error"]
    return out["value"]


def harness_floor(repeats: int = DEFAULT_REPEATS, min_time: float = DEFAULT_MIN_TIME) -> float:
    """Median seconds per call of the timing loop around a call that does nothing: what the
    harness itself adds to every per-call time (tens of ns; shown beside small cases)."""
    return statistics.median(measure(no_sync, repeats=repeats, min_time=min_time).samples)
