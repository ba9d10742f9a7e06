"""Does the tool agree with a plain `timeit`? `python -m profiling.bench.timeit_check`

Alternates, `--rounds` times (the order flips every round): a `python -m profiling run` of
nn_relu and custom_op (eager, forward, no trace) in its own data dir, and a fresh plain Python process that times
`tf.nn.relu(x)` and `custom_op.custom_relu(x)` with `timeit.Timer(...).autorange()` and
`repeat(7, number)`. Both use the same allocator setting (TF_CPU_ALLOCATOR_USE_BFC=true, as the
tool's default) and inputs uniform in [-1, 1). Prints the median of each side over the rounds
and the tool's difference from timeit: the median over rounds of tool / timeit, with its 95% CI;
`--json` prints the rows.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from profiling import spec
from profiling.measurement.stats import paired_ratio
from profiling.presentation.units import format_time

REPO = Path(__file__).resolve().parents[2]
VARIANTS = {"nn_relu": "tf.nn.relu(x)", "custom_op": "custom_op.custom_relu(x)"}
PLAIN = """
import json, sys, timeit
import tensorflow as tf
from relu_impls import custom_op
custom_op.load()
out = {}
for n in json.loads(sys.argv[1]):
    x = tf.random.uniform([n], -1.0, 1.0)
    for name, fn in (("nn_relu", lambda: tf.nn.relu(x)),
                     ("custom_op", lambda: custom_op.custom_relu(x))):
        t = timeit.Timer(fn)
        number, _ = t.autorange()
        samples = sorted(s / number for s in t.repeat(7, number))
        out[f"{name} {n}"] = samples[3]
print(json.dumps(out))
"""


def _env() -> dict[str, str]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_CPU_ALLOCATOR_USE_BFC="true")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def tool_medians(sizes: list[int]) -> dict[str, float]:
    """{"nn_relu 1000": median seconds per call, ...} from one `profiling run`."""
    with tempfile.TemporaryDirectory(prefix="relu_lab_timeit_") as data:
        out = subprocess.run(
            [sys.executable, "-m", "profiling", "run", "--variants", ",".join(VARIANTS),
             "--sizes", ",".join(map(str, sizes)), "--modes", "eager", "--no-trace", "--json",
             "--quiet"], env={**_env(), "RELU_LAB_DATA": data}, capture_output=True, text=True,
            check=True, cwd=REPO)
    return {f"{c['variant']} {c['numel']}": c["median_s"]
            for c in json.loads(out.stdout)["cases"] if c["status"] == "ok"}


def timeit_medians(sizes: list[int]) -> dict[str, float]:
    """The same keys, from a plain timeit in a fresh Python process."""
    out = subprocess.run([sys.executable, "-c", PLAIN, json.dumps(sizes)], env=_env(),
                         capture_output=True, text=True, check=True, cwd=REPO)
    return json.loads(out.stdout)


def agreement(sizes: list[int], rounds: int) -> list[dict]:
    """Rows: variant, numel, tool_median_s and timeit_median_s (medians over rounds), diff (the
    median over rounds of tool / timeit, minus 1) with diff_ci95_low/high (order-statistic CI of
    that median), and each side's values per round.

    A round is one tool run and one plain run back to back, in alternating order, so each
    round's ratio compares two processes that shared the machine's state: on a VM whose speed
    drifts by tens of percent between minutes, the per-round ratio is far steadier than two
    medians taken apart.
    """
    tool: dict[str, list[float]] = {}
    plain: dict[str, list[float]] = {}
    for r in range(rounds):
        sides = [(tool, tool_medians), (plain, timeit_medians)]
        for side, fetch in sides if r % 2 == 0 else sides[::-1]:
            for key, value in fetch(sizes).items():
                side.setdefault(key, []).append(value)
    rows = []
    for key in tool:
        variant, numel = key.split()
        ratio = paired_ratio(plain[key], tool[key])
        rows.append({"variant": variant, "numel": int(numel),
                     "tool_median_s": statistics.median(tool[key]),
                     "timeit_median_s": statistics.median(plain[key]),
                     "diff": ratio.ratio - 1,
                     "diff_ci95_low": None if ratio.ci95_low is None else ratio.ci95_low - 1,
                     "diff_ci95_high": None if ratio.ci95_high is None else ratio.ci95_high - 1,
                     "tool_rounds": tool[key], "timeit_rounds": plain[key]})
    return sorted(rows, key=lambda r: (r["numel"], r["variant"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m profiling.bench.timeit_check",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1e3,1e5,1e7")
    parser.add_argument("--rounds", type=int, default=6)  # n >= 6: a >= 95% CI
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        sizes = spec.parse_sizes(args.sizes)
    except spec.SpecError as e:
        parser.error(str(e))
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    rows = agreement(sizes, args.rounds)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print("| call | elements | tool median | plain timeit median | tool vs timeit, paired by "
          "round [95% CI] |")
    print("|---|---|---|---|---|")
    for r in rows:
        ci = ("" if r["diff_ci95_low"] is None
              else f" [{r['diff_ci95_low']:+.1%}, {r['diff_ci95_high']:+.1%}]")
        print(f"| `{VARIANTS[r['variant']]}` | {r['numel']:.0e} | {format_time(r['tool_median_s'])} | "
              f"{format_time(r['timeit_median_s'])} | {r['diff']:+.1%}{ci} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
