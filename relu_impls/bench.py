"""Benchmark CustomRelu against tf.nn.relu and the BandwidthProbe copy, in one process.

`python -m relu_impls.bench [--sizes 1e3,1e6] [--dtypes float32,float16] [--repeats 21] [--json]`

For each size the three ops run interleaved (round-robin, rotating which goes first), each
sample timing `number` back-to-back eager calls after one untimed call of the same op. We
report median and IQR seconds per call, GB/s counting one read and one write per element,
CustomRelu's share of the probe's GB/s at the same size, and minor page faults per call. Run with TF_CPU_ALLOCATOR_USE_BFC=true to
measure kernels instead of the default allocator's fresh pages.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

DEFAULT_SIZES = (1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000)
HALF_SIZE = 10_000_000  # where float16/bfloat16 are compared with float32
TARGET_SAMPLE_S = 0.004  # each sample long enough that the timer's resolution does not matter


@dataclass(frozen=True)
class Timing:
    """Seconds per call of one op at one size, from all samples."""

    samples: tuple[float, ...]
    number: int
    minflt_per_call: float

    @property
    def median_s(self) -> float:
        return statistics.median(self.samples)

    @property
    def iqr_s(self) -> float:
        if len(self.samples) < 4:
            return max(self.samples) - min(self.samples)
        q = statistics.quantiles(self.samples, n=4)
        return q[2] - q[0]


@dataclass(frozen=True)
class Row:
    """One size and dtype: CustomRelu, tf.nn.relu and the probe, interleaved."""

    dtype: str
    size: int
    custom_median_s: float
    custom_iqr_s: float
    nn_relu_median_s: float
    nn_relu_iqr_s: float
    probe_median_s: float
    speedup_vs_nn_relu: float  # nn_relu median / custom median; >= 1 means CustomRelu is faster
    custom_gbps: float
    nn_relu_gbps: float
    probe_gbps: float
    utilization: float  # custom_gbps / probe_gbps
    custom_elements_per_s: float
    custom_minflt_per_call: float
    nn_relu_minflt_per_call: float
    samples: int
    number: int


def parse_sizes(text: str) -> list[int]:
    """'1e3,10000' -> [1000, 10000]; ValueError on anything not a positive integer."""
    sizes = []
    for part in text.split(","):
        value = float(part.strip())
        if value < 1 or value != int(value):
            raise ValueError(f"--sizes: {part!r} is not a positive whole number")
        sizes.append(int(value))
    return sizes


def time_interleaved(
    fns: dict[str, Callable[[], object]], repeats: int, number: int
) -> dict[str, Timing]:
    """Round-robin `repeats` samples of `number` calls of each fn, rotating the order; each
    sample follows one untimed call of the same fn."""
    names = list(fns)
    samples: dict[str, list[float]] = {n: [] for n in names}
    faults = dict.fromkeys(names, 0)
    for r in range(repeats):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            fn = fns[name]
            # One untimed call first: the previous op's dirty cache lines (tf.nn.relu leaves
            # its whole output there) are written back on its time, not on the next op's.
            fn()
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            start = time.perf_counter()
            for _ in range(number):
                fn()
            elapsed = time.perf_counter() - start
            faults[name] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
            samples[name].append(elapsed / number)
    return {n: Timing(tuple(samples[n]), number, faults[n] / (repeats * number)) for n in names}


def calls_per_sample(fn: Callable[[], object]) -> int:
    """Back-to-back calls needed for a sample of about TARGET_SAMPLE_S (after a warm-up)."""
    for _ in range(3):
        fn()
    start = time.perf_counter()
    fn()
    one = max(time.perf_counter() - start, 1e-7)
    return max(1, min(2000, round(TARGET_SAMPLE_S / one)))


def bench_one(dtype: str, size: int, repeats: int) -> Row:
    """Measure CustomRelu, tf.nn.relu and BandwidthProbe on a random tensor of `size` elements."""
    import tensorflow as tf

    from relu_impls import custom_op

    x = tf.cast(tf.random.stateless_normal([size], seed=(1, 2)), getattr(tf, dtype))
    fns = {
        "custom": lambda: custom_op.custom_relu(x),
        "nn_relu": lambda: tf.nn.relu(x),
        "probe": lambda: custom_op.bandwidth_probe(x),
    }
    number = max(calls_per_sample(f) for f in fns.values())
    t = time_interleaved(fns, repeats, number)
    bytes_per_call = 2 * x.dtype.size * size
    gbps = {k: bytes_per_call / v.median_s / 1e9 for k, v in t.items()}
    return Row(
        dtype=dtype,
        size=size,
        custom_median_s=t["custom"].median_s,
        custom_iqr_s=t["custom"].iqr_s,
        nn_relu_median_s=t["nn_relu"].median_s,
        nn_relu_iqr_s=t["nn_relu"].iqr_s,
        probe_median_s=t["probe"].median_s,
        speedup_vs_nn_relu=t["nn_relu"].median_s / t["custom"].median_s,
        custom_gbps=gbps["custom"],
        nn_relu_gbps=gbps["nn_relu"],
        probe_gbps=gbps["probe"],
        utilization=gbps["custom"] / gbps["probe"],
        custom_elements_per_s=size / t["custom"].median_s,
        custom_minflt_per_call=t["custom"].minflt_per_call,
        nn_relu_minflt_per_call=t["nn_relu"].minflt_per_call,
        samples=repeats,
        number=number,
    )


def allocator() -> str:
    """The CPU allocator TF uses in this process, from TF_CPU_ALLOCATOR_USE_BFC."""
    value = os.environ.get("TF_CPU_ALLOCATOR_USE_BFC")
    if value is None:
        return "default (TF_CPU_ALLOCATOR_USE_BFC unset)"
    return f"{'BFC' if value.lower() in ('1', 'true') else 'default'} (TF_CPU_ALLOCATOR_USE_BFC={value})"


def _si(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:7.2f} {unit}"
    return f"{seconds / 1e-9:7.1f} ns"


def format_table(rows: list[Row]) -> str:
    """Fixed-width text table; float16/bfloat16 rows add elements/s relative to float32."""
    head = (
        f"{'dtype':<9}{'size':>11} {'custom median±IQR':>21} {'nn_relu median±IQR':>21}"
        f" {'speedup':>7} {'custom GB/s':>11} {'nn_relu GB/s':>12} {'probe GB/s':>10}"
        f" {'util':>5} {'minflt/call c|n':>16} {'Gelem/s':>8}"
    )
    lines = [head, "-" * len(head)]
    f32 = {r.size: r.custom_elements_per_s for r in rows if r.dtype == "float32"}
    for r in rows:
        rel = ""
        if r.dtype != "float32" and r.size in f32:
            rel = f"  {r.custom_elements_per_s / f32[r.size]:.2f}x float32 elem/s"
        lines.append(
            f"{r.dtype:<9}{r.size:>11.3g} {_si(r.custom_median_s)}±{_si(r.custom_iqr_s).strip():<9}"
            f" {_si(r.nn_relu_median_s)}±{_si(r.nn_relu_iqr_s).strip():<9}"
            f" {r.speedup_vs_nn_relu:6.2f}x {r.custom_gbps:11.2f} {r.nn_relu_gbps:12.2f}"
            f" {r.probe_gbps:10.2f} {r.utilization:5.0%}"
            f" {r.custom_minflt_per_call:7.1f}|{r.nn_relu_minflt_per_call:<8.1f}"
            f" {r.custom_elements_per_s / 1e9:8.3f}{rel}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m relu_impls.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--sizes",
        default=",".join(str(s) for s in DEFAULT_SIZES),
        help="comma-separated element counts for float32 (default 1e3..1e8)",
    )
    parser.add_argument(
        "--dtypes",
        default="float32,float16,bfloat16",
        help="float32 runs at every size, other dtypes at 1e7 (default: float32,float16,bfloat16)",
    )
    parser.add_argument("--repeats", type=int, default=21, help="samples per op (default 21)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    try:
        sizes = parse_sizes(args.sizes)
    except ValueError as exc:
        parser.error(str(exc))
    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    bad = [d for d in dtypes if d not in ("float16", "bfloat16", "float32", "float64")]
    if bad:
        parser.error(f"--dtypes: {bad[0]!r} is not one of float16, bfloat16, float32, float64")
    if args.repeats < 3:
        parser.error("--repeats must be at least 3")

    import tensorflow as tf

    from relu_impls import custom_op

    custom_op.load()
    plan = [(d, s) for d in dtypes if d == "float32" for s in sizes]
    plan += [(d, HALF_SIZE) for d in dtypes if d != "float32"]
    rows = []
    for dtype, size in plan:
        rows.append(bench_one(dtype, size, args.repeats))
        if not args.json:
            print(f"  measured {dtype} {size:.0e}", file=sys.stderr, flush=True)
    env = {
        "allocator": allocator(),
        "tf_version": tf.__version__,
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "library": custom_op.build_info()["path"],
    }
    if args.json:
        print(json.dumps({"environment": env, "rows": [asdict(r) for r in rows]}, indent=2))
    else:
        print(
            f"allocator: {env['allocator']}; TF {env['tf_version']}; {env['cpu_count']} CPUs;"
            " GB/s counts read+write (2 x itemsize bytes/element); speedup = nn_relu/custom"
            " median time; util = custom GB/s / BandwidthProbe GB/s at the same size"
        )
        print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
