"""Trace ingestion at scale: `python -m profiling.bench.traces [--events 1e6,8e6]` (`make
bench-traces`).

Generates Chrome traces of the requested sizes (PyTorch-like: nested cpu_op events with args on
a few threads), then, each in a fresh process, times and measures the peak RSS of plain
`json.load` of the file (up to 2M events) and of `trace-summary` (streamed load + summary) and
`audit` on it, repeats interleaved. Prints a Markdown table: median seconds (imports excluded),
the largest peak RSS, and the peak minus the RSS after imports. The generated files live in a
temp dir removed at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OPS = ["aten::conv2d", "aten::convolution", "aten::_convolution", "aten::mkldnn_convolution",
       "aten::relu", "aten::clamp_min", "aten::linear", "aten::addmm", "aten::empty",
       "aten::add_", "aten::copy_", "aten::view", "aten::t", "aten::transpose"]


def generate(path: Path, events: int, threads: int = 4) -> int:
    """Write a Chrome trace of `events` X events (groups of a parent op and three nested
    children per thread) to `path`; returns its size in bytes."""
    with open(path, "w") as f:
        f.write('{"schemaVersion": 1, "traceEvents": [\n')
        for t in range(threads):
            f.write(f'{{"ph": "M", "name": "thread_name", "pid": 1, "tid": {t}, '
                    f'"args": {{"name": "thread {t}"}}}},\n')
        ts = [1.7e15 + 0.0] * threads
        for i in range(events):
            t = i % threads
            k = (i // threads) % 4
            if k == 0:
                start, dur = ts[t], 40.0
            else:
                start, dur = ts[t] + 1 + 10 * (k - 1), 8.0
            if k == 3:
                ts[t] += 45
            name = OPS[(i // threads + k) % len(OPS)]
            sep = ",\n" if i < events - 1 else "\n"
            f.write(f'{{"ph": "X", "cat": "cpu_op", "name": "{name}", "pid": 1, "tid": {t}, '
                    f'"ts": {start:.3f}, "dur": {dur:.3f}, "args": {{"External id": {i}}}}}{sep}')
        f.write('], "traceName": "generated"}\n')
    return path.stat().st_size


JSON_LOAD_MAX_EVENTS = 2_000_000
TASKS = {
    "json.load": ("import json",
                  "with open(P, 'rb') as f:\n    json.load(f)"),
    # what `trace-summary` and `audit` run, allocator setting included
    "trace-summary": ("from profiling.traces import load_trace, summarize\n"
                      "from profiling.cli.trace import return_big_frees_to_the_os",
                      "return_big_frees_to_the_os()\n"
                      "summarize(load_trace(P, keep_args=False))"),
    "audit": ("from profiling.traces import load_trace\n"
              "from profiling.analysis.activations import audit\n"
              "from profiling.cli.trace import return_big_frees_to_the_os",
              "return_big_frees_to_the_os()\n"
              "audit(load_trace(P, keep_args=False).events)"),
}
CHILD = """import resource, sys, time
P = sys.argv[1]
{imports}
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
{work}
print(time.perf_counter() - t0, base, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def measure(task: str, path: Path) -> dict:
    """seconds (imports excluded), peak RSS MiB, and peak minus the RSS after imports, of one
    task run in a fresh interpreter."""
    imports, work = TASKS[task]
    env = {**os.environ, "RELU_LAB_MAX_TRACE_BYTES": str(4 << 30)}
    proc = subprocess.run([sys.executable, "-c", CHILD.format(imports=imports, work=work),
                           str(path)], capture_output=True, text=True, env=env,
                          cwd=Path(__file__).resolve().parents[2], check=False)
    if proc.returncode:
        lines = proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"]
        return {"task": task, "error": lines[-1]}
    seconds, base, peak = proc.stdout.split()
    return {"task": task, "seconds": float(seconds), "peak_rss_mb": int(peak) / 1024,
            "added_rss_mb": (int(peak) - int(base)) / 1024}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", default="1e6,8e6",
                        help="comma list of event counts (default %(default)s)")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs per task, interleaved; the median time is shown")
    args = parser.parse_args(argv)
    counts = [int(float(c)) for c in args.events.split(",") if c.strip()]
    tasks = [t for t in args.tasks.split(",") if t in TASKS]
    tmp = Path(tempfile.mkdtemp(prefix="relu_lab_trace_bench_"))
    try:
        print("| events | file MB | task | seconds | peak RSS MB | RSS added MB | "
              "peak RSS / file |")
        print("| ---: | ---: | --- | ---: | ---: | ---: | ---: |")
        for n in counts:
            path = tmp / f"trace_{n}.json"
            t0 = time.perf_counter()
            size = generate(path, n)
            print(f"<!-- generated {n} events, {size / 1e6:.0f} MB in "
                  f"{time.perf_counter() - t0:.0f} s -->", flush=True)
            shown = [t for t in tasks if t != "json.load" or n <= JSON_LOAD_MAX_EVENTS]
            runs: dict[str, list[dict]] = {t: [] for t in shown}
            for _ in range(args.repeats):  # interleaved, so load changes hit every task alike
                for task in shown:
                    runs[task].append(measure(task, path))
            for task in shown:
                ok = [r for r in runs[task] if "error" not in r]
                if not ok:
                    print(f"| {n:,} | {size / 1e6:.0f} | {task} | failed: "
                          f"{runs[task][0]['error']} | | | |")
                    continue
                seconds = statistics.median(r["seconds"] for r in ok)
                peak = max(r["peak_rss_mb"] for r in ok)
                added = max(r["added_rss_mb"] for r in ok)
                print(f"| {n:,} | {size / 1e6:.0f} | {task} | {seconds:.2f} | {peak:.0f} | "
                      f"{added:.0f} | {peak * 2**20 / size:.2f} |", flush=True)
            path.unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
