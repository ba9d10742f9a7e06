"""Benchmark CustomRelu against tf.nn.relu and the BandwidthProbe copy, in one process.

`python -m profiling.bench.op [--sizes 1e3,1e6] [--dtypes float32,float16] [--repeats 21] [--json]`

For each size four callables run interleaved by the measurement core (`measure_interleaved`:
each calibrated on its own, then repeat by repeat in a fresh random order): the public
`relu_impls.get("custom_op")` (what a user calls, dtype check included), the raw
`custom_op.custom_relu`, `tf.nn.relu` and `custom_op.bandwidth_probe`. We report median and IQR
seconds per call, the paired speedup of `relu_impls.get("custom_op")` over `tf.nn.relu` with
its 95% CI, GB/s counting one read and one write per element, CustomRelu's share of the probe's
GB/s at the same size, and minor page faults per call. Run with TF_CPU_ALLOCATOR_USE_BFC=true
to measure kernels instead of the default allocator's fresh pages.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from dataclasses import asdict, dataclass

from profiling import spec
from profiling.measurement.stats import paired_ratio, summarize_samples
from profiling.measurement.timing import measure_interleaved, on_fresh_stack

DEFAULT_SIZES = (1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000)
HALF_SIZE = 10_000_000  # where float16/bfloat16 are compared with float32


@dataclass(frozen=True)
class Row:
    """One size and dtype: relu_impls.get("custom_op"), tf.nn.relu and the probe, interleaved."""

    dtype: str
    size: int
    custom_median_s: float  # relu_impls.get("custom_op")(x)
    custom_iqr_s: float
    raw_custom_median_s: float  # custom_op.custom_relu(x)
    nn_relu_median_s: float
    nn_relu_iqr_s: float
    probe_median_s: float
    speedup_vs_nn_relu: float  # 1 / median of the paired custom_i / nn_relu_i; > 1: custom is faster
    speedup_ci95_low: float
    speedup_ci95_high: float
    custom_gbps: float
    nn_relu_gbps: float
    probe_gbps: float
    utilization: float  # custom_gbps / probe_gbps
    custom_elements_per_s: float
    custom_minflt_per_call: float
    nn_relu_minflt_per_call: float
    samples: int
    number: int


def bench_one(dtype: str, size: int, repeats: int) -> Row:
    """Measure the four callables on a random tensor of `size` elements."""
    import tensorflow as tf

    import relu_impls
    from relu_impls import custom_op

    x = tf.cast(tf.random.stateless_normal([size], seed=(1, 2)), getattr(tf, dtype))
    public = relu_impls.get("custom_op")
    fns = {
        "custom": lambda: public(x),
        "raw_custom": lambda: custom_op.custom_relu(x),
        "nn_relu": lambda: tf.nn.relu(x),
        "probe": lambda: custom_op.bandwidth_probe(x),
    }
    t = on_fresh_stack(measure_interleaved, {k: (f, lambda: None) for k, f in fns.items()},
                       repeats=repeats)
    stats = {k: summarize_samples(v.samples) for k, v in t.items()}
    # t_custom / t_nn_relu per pair, inverted: a speedup > 1 means custom is faster
    ratio = paired_ratio(t["nn_relu"].samples, t["custom"].samples)
    bytes_per_call = 2 * x.dtype.size * size
    gbps = {k: bytes_per_call / v.median_s / 1e9 for k, v in stats.items()}
    return Row(
        dtype=dtype,
        size=size,
        custom_median_s=stats["custom"].median_s,
        custom_iqr_s=stats["custom"].iqr_s,
        raw_custom_median_s=stats["raw_custom"].median_s,
        nn_relu_median_s=stats["nn_relu"].median_s,
        nn_relu_iqr_s=stats["nn_relu"].iqr_s,
        probe_median_s=stats["probe"].median_s,
        speedup_vs_nn_relu=ratio.speedup,
        speedup_ci95_low=ratio.speedup_ci95[0],
        speedup_ci95_high=ratio.speedup_ci95[1],
        custom_gbps=gbps["custom"],
        nn_relu_gbps=gbps["nn_relu"],
        probe_gbps=gbps["probe"],
        utilization=gbps["custom"] / gbps["probe"],
        custom_elements_per_s=size / stats["custom"].median_s,
        custom_minflt_per_call=t["custom"].page_faults_per_call,
        nn_relu_minflt_per_call=t["nn_relu"].page_faults_per_call,
        samples=repeats,
        number=t["custom"].number,
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
        f"{'dtype':<9}{'size':>11} {'get(custom_op) median±IQR':>25} {'raw':>10}"
        f" {'nn_relu median±IQR':>21} {'speedup [CI95]':>21} {'custom GB/s':>11} {'nn_relu GB/s':>12} {'probe GB/s':>10}"
        f" {'util':>5} {'minflt/call c|n':>16} {'Gelem/s':>8}"
    )
    lines = [head, "-" * len(head)]
    f32 = {r.size: r.custom_elements_per_s for r in rows if r.dtype == "float32"}
    for r in rows:
        rel = ""
        if r.dtype != "float32" and r.size in f32:
            rel = f"  {r.custom_elements_per_s / f32[r.size]:.2f}x float32 elem/s"
        lines.append(
            f"{r.dtype:<9}{r.size:>11.3g}     {_si(r.custom_median_s)}±"
            f"{_si(r.custom_iqr_s).strip():<9} {_si(r.raw_custom_median_s)}"
            f" {_si(r.nn_relu_median_s)}±{_si(r.nn_relu_iqr_s).strip():<9}"
            f" {r.speedup_vs_nn_relu:5.2f}x [{r.speedup_ci95_low:.2f}, {r.speedup_ci95_high:.2f}]"
            f" {r.custom_gbps:11.2f} {r.nn_relu_gbps:12.2f}"
            f" {r.probe_gbps:10.2f} {r.utilization:5.0%}"
            f" {r.custom_minflt_per_call:7.1f}|{r.nn_relu_minflt_per_call:<8.1f}"
            f" {r.custom_elements_per_s / 1e9:8.3f}{rel}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m profiling.bench.op",
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
        sizes = spec.parse_sizes(args.sizes)
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
            " GB/s counts read+write (2 x itemsize bytes/element); speedup = paired"
            " nn_relu / relu_impls.get('custom_op') time with its 95% CI; raw ="
            " custom_op.custom_relu; util = custom GB/s / BandwidthProbe GB/s at the same size"
        )
        print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
