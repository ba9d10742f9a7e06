"""What an eager op costs under a deeper Python caller: `python -m profiling.bench.stack_depth`

TensorFlow records the Python stack trace of every eager op it executes, so the same
`tf.nn.relu(x)` costs more the more frames sit below its caller. This is why the worker times its
cases on a fresh stack (`profiling.measurement.timing.on_fresh_stack`), and what an eager
activation called deep inside a Keras model pays on top of the tool's numbers.

Each round takes one batch (`time_batch`, the tool's loop, `number` calls calibrated once) of the
op at every depth, in a random order; the loop, which is the op's caller, sits in frame `depth` of
a fresh thread's stack (frame 1 is its bottom; the worker and a top-level `timeit` call ops from
frame 5). Prints, per depth, the median per-call time and the paired ratio to the first depth
with its 95% CI (`--json`: the rows).
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import statistics
import sys
from collections.abc import Callable
from typing import Any

from profiling import spec
from profiling.measurement.stats import paired_ratio
from profiling.measurement.timing import (
    DEFAULT_MIN_TIME,
    autorange,
    no_sync,
    on_fresh_stack,
    time_batch,
)
from profiling.presentation.units import format_time

DEFAULT_DEPTHS = (2, 5, 10, 20, 40, 80)


def _descend(here: int, frame: int, fn: Callable[..., Any], *args: Any) -> Any:
    """fn(*args) with fn's own frame at `frame`, this call's frame being frame `here`."""
    return fn(*args) if here + 1 == frame else _descend(here + 1, frame, fn, *args)


def at_frame(frame: int, fn: Callable[..., Any], *args: Any) -> Any:
    """fn(*args) on a fresh thread, fn's own frame being frame `frame` (>= 2) of its stack."""
    if frame < 2:
        raise ValueError(f"frame must be >= 2, got {frame}")
    return on_fresh_stack(fn, *args) if frame == 2 else on_fresh_stack(_descend, 2, frame, fn, *args)


def depth_costs(numel: int, depths: list[int], rounds: int,
                min_time: float = DEFAULT_MIN_TIME) -> list[dict]:
    """Rows: depth, median_s (over rounds), ratio_to_first with ratio_ci95_low/high (paired by
    round against the first depth), number (calls per batch) and samples (one per round)."""
    import tensorflow as tf

    x = tf.random.uniform([numel], -1.0, 1.0)
    call = functools.partial(tf.nn.relu, x)  # a C partial: the loop itself is the op's caller
    number = at_frame(5, autorange, call, no_sync, min_time)
    samples: dict[int, list[float]] = {d: [] for d in depths}
    for d in depths:  # warm-up at every depth
        at_frame(d, time_batch, call, 2)
    rng = random.Random(0)
    order = list(depths)
    for _ in range(rounds):
        rng.shuffle(order)
        for d in order:
            samples[d].append(at_frame(d, time_batch, call, number) / number)
    first = samples[depths[0]]
    rows = []
    for d in depths:
        r = paired_ratio(first, samples[d])
        rows.append({"depth": d, "median_s": statistics.median(samples[d]),
                     "ratio_to_first": r.ratio, "ratio_ci95_low": r.ci95_low,
                     "ratio_ci95_high": r.ci95_high, "number": number, "samples": samples[d]})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m profiling.bench.stack_depth",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1e3", help="elements of the float32 input")
    parser.add_argument("--depths", default=",".join(map(str, DEFAULT_DEPTHS)))
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        numel = spec.parse_sizes(args.size)[0]
        depths = [int(d) for d in args.depths.split(",") if d.strip()]
    except (spec.SpecError, ValueError) as e:
        parser.error(f"bad --size or --depths: {e}")
    if not depths or min(depths) < 2 or args.rounds < 1:
        parser.error("--depths must be integers >= 2 and --rounds at least 1")
    rows = depth_costs(numel, depths, args.rounds)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"| caller's frame depth | `tf.nn.relu` on {numel:.0e} floats | vs depth {depths[0]} "
          "[95% CI] |")
    print("|---|---|---|")
    for r in rows:
        print(f"| {r['depth']} | {format_time(r['median_s'])} | {r['ratio_to_first']:.2f}× "
              f"[{r['ratio_ci95_low']:.2f}, {r['ratio_ci95_high']:.2f}] |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
