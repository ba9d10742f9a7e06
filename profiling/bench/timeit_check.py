"""Does the tool agree with a plain `timeit`? `python -m profiling.bench.timeit_check`

Two live processes take turns on the same machine moments: the tool's own worker (the process
`python -m profiling run` starts, given the same init and group requests: nn_relu and
custom_op, eager, forward, no trace, the RunSpec defaults) and a plain Python process that
times `tf.nn.relu(x)` and `custom_op.custom_relu(x)` with `timeit.Timer(...).autorange()` and
`repeat(7, number)`. A round measures each size on both sides back to back, in an order that
flips every round; `--sessions` fresh pairs of processes run `--rounds` rounds each. Both use
the same allocator (TF_CPU_ALLOCATOR_USE_BFC=true, the tool's default) and inputs uniform in
[-1, 1). Prints the medians of each side and the tool's difference from timeit: the median over
rounds of tool / timeit, with its 95% CI; `--json` prints the rows.

Why turns and not whole processes: on a shared VM the speed of one process drifts by tens of
percent over seconds (a 1e3 `tf.nn.relu` read 9.5 to 19.5 µs within one minute here), so two
measurements only compare the tool when they share the same seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from profiling import spec
from profiling.execution.runner import (
    INIT_TIMEOUT_S,
    Worker,
    group_cases,
    group_request,
    init_request,
)
from profiling.measurement.stats import paired_ratio, summarize_samples
from profiling.presentation.units import format_time

REPO = Path(__file__).resolve().parents[2]
VARIANTS = {"nn_relu": "tf.nn.relu(x)", "custom_op": "custom_op.custom_relu(x)"}
# One request per line: an element count; one reply per line: {"nn_relu": s, "custom_op": s}.
PLAIN = """
import json, sys, timeit
import tensorflow as tf
from relu_impls import custom_op
custom_op.load()
inputs = {}
for line in sys.stdin:
    n = json.loads(line)
    if n not in inputs:  # once per size (setdefault would draw a new tensor every request)
        inputs[n] = tf.random.uniform([n], -1.0, 1.0)
    x = inputs[n]
    out = {}
    for name, fn in (("nn_relu", lambda: tf.nn.relu(x)),
                     ("custom_op", lambda: custom_op.custom_relu(x))):
        t = timeit.Timer(fn)
        number, _ = t.autorange()
        out[name] = sorted(s / number for s in t.repeat(7, number))[3]
    print(json.dumps(out), flush=True)
"""


def _env() -> dict[str, str]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_CPU_ALLOCATOR_USE_BFC="true")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


class ToolSide:
    """The tool's worker, started and fed exactly as `profiling run` does."""

    def __init__(self, sizes: list[int]):
        self.spec = spec.RunSpec(variants=list(VARIANTS), shapes=[(n,) for n in sizes],
                                 modes=["eager"], trace=False)
        self.groups = {g[0].numel: g for g in group_cases(self.spec.validate())}
        config = next(iter(self.groups.values()))[0].config
        self.worker = Worker(*config)
        ready = self.worker.request(init_request(config, calibrate=True), INIT_TIMEOUT_S)
        if ready.get("type") != "ready":
            self.close()
            raise RuntimeError(f"worker failed to start: {ready.get('reason')}")

    def medians(self, numel: int) -> dict[str, float]:
        """{variant: median seconds per call}, from the samples as the store computes it."""
        cases = self.groups[numel]
        reply = self.worker.request(group_request(self.spec, cases, None),
                                    self.spec.timeout_s * len(cases))
        if reply.get("type") != "group":
            raise RuntimeError(f"worker: {reply.get('reason') or reply}")
        return {c.variant: summarize_samples(r["samples"]).median_s
                for c, r in zip(cases, reply["results"], strict=True) if r["status"] == "ok"}

    def close(self) -> None:
        self.worker.close()


class PlainSide:
    """A plain Python process running timeit on request."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", PLAIN], env=_env(), cwd=REPO,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)

    def medians(self, numel: int) -> dict[str, float]:
        self.proc.stdin.write(f"{numel}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"plain timeit process exited with {self.proc.wait()}")
        return json.loads(line)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def agreement(sizes: list[int], rounds: int, sessions: int = 1) -> list[dict]:
    """Rows: variant, numel, tool_median_s and timeit_median_s (medians over rounds), diff (the
    median over rounds of tool / timeit, minus 1) with diff_ci95_low/high (order-statistic CI of
    that median), and each side's values per round (sessions x rounds of them)."""
    tool: dict[tuple, list[float]] = {}
    plain: dict[tuple, list[float]] = {}
    turn = 0
    for _ in range(sessions):
        tool_side = ToolSide(sizes)
        try:
            plain_side = PlainSide()
        except BaseException:
            tool_side.close()  # a partner that started is never left running
            raise
        sides = [(tool, tool_side), (plain, plain_side)]
        try:
            for _ in range(rounds):
                for n in sizes:
                    for store, side in sides if turn % 2 == 0 else sides[::-1]:
                        for variant, value in side.medians(n).items():
                            store.setdefault((variant, n), []).append(value)
                turn += 1
        finally:
            for _, side in sides:
                side.close()
    rows = []
    for (variant, numel), values in tool.items():
        ratio = paired_ratio(plain[(variant, numel)], values)
        rows.append({"variant": variant, "numel": numel,
                     "tool_median_s": statistics.median(values),
                     "timeit_median_s": statistics.median(plain[(variant, numel)]),
                     "diff": ratio.ratio - 1,
                     "diff_ci95_low": None if ratio.ci95_low is None else ratio.ci95_low - 1,
                     "diff_ci95_high": None if ratio.ci95_high is None else ratio.ci95_high - 1,
                     "tool_rounds": values, "timeit_rounds": plain[(variant, numel)]})
    return sorted(rows, key=lambda r: (r["numel"], r["variant"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m profiling.bench.timeit_check",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1e3,1e5,1e7")
    parser.add_argument("--rounds", type=int, default=4, help="rounds per session")
    parser.add_argument("--sessions", type=int, default=3,
                        help="fresh tool and timeit processes, each pair for --rounds rounds")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        sizes = spec.parse_sizes(args.sizes)
    except spec.SpecError as e:
        parser.error(str(e))
    if args.rounds < 1 or args.sessions < 1:
        parser.error("--rounds and --sessions must be at least 1")
    rows = agreement(sizes, args.rounds, args.sessions)
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
