"""Trace ingestion at scale: `python -m profiling.bench.traces [--events 1e6,8e6]` (`make
bench-traces`).

Generates Chrome traces of the requested sizes: PyTorch-like (nested cpu_op events with args on
a few threads, ~150 bytes an event) and TF CPU (an executor thread running ops with nested
scopes such as `model/conv1/Relu`, intra-op Eigen pool threads running
`ThreadpoolListener::Region` tasks for them), and a gzipped copy of the smallest. Then, each
in a fresh process, repeats interleaved, it times and measures the peak RSS of: plain
`json.load` and `msgspec.json.decode` of the file (the decode floor; up to 2M events, as both
hold every event as a dict), `trace-summary` (streamed load + summary; also with the reader
held to one process), `audit` and `trace-diff` (the trace against itself, read twice and, as
the CLI does, reduced to its diff side before the second read).
Prints the interpreter's own baseline RSS (bare, and after the commands' imports), then one
Markdown table: median seconds (imports excluded), MB/s and events/s (uncompressed bytes), the
largest peak RSS of the process and of its largest child (xprof's converter, for an
xplane), the peak minus the RSS after imports, and the peak over the file's size.

`--xplane-steps N` adds a row group for a large .xplane.pb: a tf.profiler capture of N steps of
the ResNet scenario's training step, made at bench time (about 85 KB a step), then xprof's
conversion alone (profiling.traces.xplane's child, under its limits), `trace-summary` and
`audit` of it. The generated files live in a temp dir removed at the end.
"""

from __future__ import annotations

import argparse
import gzip
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
# (scope, op type) of a small CNN, run in order by the executor every step
TF_OPS = [("model/conv1", "Conv2D"), ("model/conv1", "BiasAdd"), ("model/conv1", "Relu"),
          ("model/conv2", "Conv2D"), ("model/conv2", "BiasAdd"), ("model/conv2", "Relu"),
          ("model/pool", "MaxPool"), ("model/flatten", "Reshape"), ("model/dense", "MatMul"),
          ("model/dense", "BiasAdd"), ("model/dense", "Relu"), ("model/logits", "MatMul"),
          ("model/logits", "Softmax")]
TF_POOL_THREADS = 4

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


def generate_tf(path: Path, events: int) -> int:
    """Write a TF CPU Chrome trace of about `events` X events to `path`: per op, the op on the
    executor thread (tf_Compute) and two Regions on pool threads, one with an Eigen task under
    it; returns its size in bytes."""
    region = ('{"ph": "X", "name": "ThreadpoolListener::Region", "pid": 1, "tid": %d, '
              '"ts": %.3f, "dur": %.3f}')
    with open(path, "w") as f:
        f.write('{"displayTimeUnit": "ns", "traceEvents": [\n'
                '{"ph": "M", "name": "process_name", "pid": 1, "args": {"name": "/host:CPU"}},\n'
                '{"ph": "M", "name": "thread_name", "pid": 1, "tid": 1, '
                '"args": {"name": "tf_Compute"}}')
        for k in range(TF_POOL_THREADS):
            f.write(f',\n{{"ph": "M", "name": "thread_name", "pid": 1, "tid": {10 + k}, '
                    f'"args": {{"name": "tf_numa_0_Eigen/{k}"}}}}')
        for g in range(max(1, events // 4)):
            scope, op = TF_OPS[g % len(TF_OPS)]
            t = 1e9 + 50.0 * g
            a, b = 10 + g % TF_POOL_THREADS, 10 + (g + 1) % TF_POOL_THREADS
            f.write(f',\n{{"ph": "X", "cat": "Op", "name": "{op}", "pid": 1, "tid": 1, '
                    f'"ts": {t:.3f}, "dur": 40.000, '
                    f'"args": {{"long_name": "{scope}/{op}:{op}"}}}},\n')
            f.write(region % (a, t + 2, 28.0))
            f.write(f',\n{{"ph": "X", "name": "Eigen::ParallelFor", "pid": 1, "tid": {a}, '
                    f'"ts": {t + 4:.3f}, "dur": 20.000}},\n')
            f.write(region % (b, t + 3, 22.0))
        f.write('\n], "traceName": "generated TF CPU"}\n')
    return path.stat().st_size


def gzip_copy(path: Path) -> Path:
    """`path` gzipped (level 1) beside it."""
    out = path.with_name(path.name + ".gz")
    with open(path, "rb") as src, gzip.open(out, "wb", compresslevel=1) as dst:
        shutil.copyfileobj(src, dst, 8 << 20)
    return out


DECODE_MAX_EVENTS = 2_000_000  # json.load and msgspec.json.decode hold every event as a dict
_SUMMARY = ("from profiling.traces import load_trace, summarize\n"
            "from profiling.cli.trace import return_big_frees_to_the_os")
TASKS = {
    "json.load": ("import json",
                  "with open(P, 'rb') as f:\n    json.load(f)"),
    "msgspec.json.decode": ("import msgspec",
                            "with open(P, 'rb') as f:\n    msgspec.json.decode(f.read())"),
    # what `trace-summary`, `audit` and `trace-diff` run, allocator setting included
    "trace-summary": (_SUMMARY,
                      "return_big_frees_to_the_os()\n"
                      "summarize(load_trace(P, keep_args=False))"),
    "trace-summary (1 thread)": (  # the scanner without its second thread
        _SUMMARY + "\nfrom profiling.traces import chrome_scan\nchrome_scan.SPLIT_FROM = 1 << 62",
        "return_big_frees_to_the_os()\n"
        "summarize(load_trace(P, keep_args=False))"),
    # the Traces page's read of an upload: the upload is held before the RSS baseline, so
    # "RSS added" is what the analysis adds on top of it
    "Traces page": ("from profiling.presentation.explore import explore_trace\n"
                    "from profiling.cli.trace import return_big_frees_to_the_os\n"
                    "UPLOAD = open(P, 'rb').read()",
                    "return_big_frees_to_the_os()\n"
                    "explore_trace(UPLOAD, P.rsplit('/', 1)[-1])"),
    "audit": ("from profiling.traces import load_trace\n"
              "from profiling.analysis.activations import audit_trace\n"
              "from profiling.cli.trace import return_big_frees_to_the_os",
              "return_big_frees_to_the_os()\n"
              "audit_trace(load_trace(P, keep_args=False).events)"),
    "trace-diff": ("from profiling.traces import load_trace\n"
                   "from profiling.analysis.diff import diff_side, trace_diff\n"
                   "from profiling.cli.trace import return_big_frees_to_the_os",
                   "return_big_frees_to_the_os()\n"
                   "a = diff_side(load_trace(P, keep_args=False).events)\n"
                   "b = diff_side(load_trace(P, keep_args=False).events)\n"
                   "trace_diff(a, b)"),
}
CHILD = """import resource, sys, time
P = sys.argv[1]
N = -1  # events read, where the work says
{imports}
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
{work}
print(time.perf_counter() - t0, base, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
      resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, N)
"""
# The interpreter's own peak RSS, bare and after the commands' imports (what "RSS added" is
# measured from), reported beside the table.
BASELINES = {"python": "", "python + trace-summary imports": _SUMMARY}
# xprof's converter (profiling.traces.xplane's child, under its limits) and the commands on
# the large xplane; N is the converted trace's event count.
XPLANE_TASKS = {
    "xprof convert": ("import tempfile\nfrom profiling.traces.xplane import tool_data_file",
                      "with tempfile.TemporaryDirectory() as d:\n"
                      "    tool_data_file(P, 'trace_viewer', d)"),
    "trace-summary": (_SUMMARY,
                      "return_big_frees_to_the_os()\n"
                      "N = summarize(load_trace(P, keep_args=False))['event_count']"),
    "audit": ("from profiling.traces import load_trace\n"
              "from profiling.analysis.activations import audit_trace\n"
              "from profiling.cli.trace import return_big_frees_to_the_os",
              "return_big_frees_to_the_os()\n"
              "ev = load_trace(P, keep_args=False).events\nN = len(ev)\naudit_trace(ev)"),
}
# A long tf.profiler capture of the ResNet scenario's training step (profiling.experiments'
# model, deeper and on smaller images than the default so each step is many short ops).
XPLANE_CHILD = """import os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf
from profiling.experiments.scenario_models import (ScenarioConfig, build_model, make_steps,
                                                   synthetic_data)
from profiling.traces.record import capture_trace
cfg = ScenarioConfig(blocks=8, image_size=4)
model = build_model("nn_relu", {}, cfg)
train_step, _ = make_steps(model, cfg)
x, y = (tf.constant(a) for a in synthetic_data(cfg, cfg.batch, 0))
train_step(x, y).numpy()  # traced and built before the capture
print(capture_trace(tf, lambda: train_step(x, y), None, sys.argv[2], steps=int(sys.argv[1])))
"""


ROOT = Path(__file__).resolve().parents[2]


def make_xplane(trace_dir: Path, steps: int) -> tuple[Path, float, float]:
    """(path, seconds, the capturing process's peak RSS MiB) of a `steps`-step tf.profiler
    capture of the ResNet scenario's training step, written under trace_dir."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", XPLANE_CHILD + _PEAK, str(steps),
                           str(trace_dir)], capture_output=True, text=True, cwd=ROOT,
                          check=False)
    if proc.returncode:
        lines = proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"]
        raise RuntimeError(f"the ResNet capture failed: {lines[-1]}")
    path, peak = proc.stdout.split()[-2:]
    return Path(path), time.perf_counter() - t0, int(peak) / 1024


_PEAK = "import resource\nprint(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"


def baseline_rss_mb(imports: str) -> float:
    """Peak RSS (MiB) of a fresh interpreter that runs only `imports`."""
    proc = subprocess.run([sys.executable, "-c", imports + "\n" + _PEAK], capture_output=True,
                          text=True, cwd=ROOT, check=True)
    return int(proc.stdout.split()[-1]) / 1024


def measure(task: str, path: Path, tasks: dict | None = None) -> dict:
    """seconds (imports excluded), peak RSS MiB, the largest child's (xprof's converter's)
    peak RSS MiB, peak minus the RSS after imports, and the events read (-1:
    not counted) of one task (of `tasks`, default TASKS) run in a fresh interpreter."""
    imports, work = (tasks or TASKS)[task]
    env = {**os.environ, "RELU_LAB_MAX_TRACE_BYTES": str(4 << 30)}
    proc = subprocess.run([sys.executable, "-c", CHILD.format(imports=imports, work=work),
                           str(path)], capture_output=True, text=True, env=env, cwd=ROOT,
                          check=False)
    if proc.returncode:
        lines = proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"]
        return {"task": task, "error": lines[-1]}
    seconds, base, peak, worker, events = proc.stdout.split()[-5:]
    return {"task": task, "seconds": float(seconds), "peak_rss_mb": int(peak) / 1024,
            "worker_rss_mb": int(worker) / 1024, "added_rss_mb": (int(peak) - int(base)) / 1024,
            "events": int(events)}


def _rate(value: float) -> str:
    """A throughput with 2 significant digits below 10, whole numbers above."""
    return f"{value:.0f}" if value >= 10 else f"{value:.2g}"


def _row(label: str, n: int, size: int, raw_size: int, task: str, runs: list[dict]) -> str:
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return f"| {label} | {n:,} | {size / 1e6:.0f} | {task} | failed: {runs[0]['error']} |" \
               + " |" * 6
    seconds = statistics.median(r["seconds"] for r in ok)
    peak = max(r["peak_rss_mb"] for r in ok)
    worker = max(r["worker_rss_mb"] for r in ok)
    added = max(r["added_rss_mb"] for r in ok)
    events = f"{n / seconds / 1e6:.2f}" if n > 0 else ""
    return (f"| {label} | {n:,} | {size / 1e6:.0f} | {task} | {seconds:.2f} | "
            f"{_rate(raw_size / 1e6 / seconds)} | {events} | {peak:.0f} | "
            f"{worker:.0f} | {added:.0f} | {peak * 2**20 / raw_size:.2f} |")


def _group(name: str, file: Path, file_size: int, raw_size: int, events: int,
           shown: list[str], tasks: dict, repeats: int) -> None:
    """Print one row per task of `shown` on `file`, each the median of `repeats` runs taken
    in turns (a load change hits every task alike)."""
    runs: dict[str, list[dict]] = {t: [] for t in shown}
    for _ in range(repeats):
        for task in shown:
            runs[task].append(measure(task, file, tasks))
    if events < 0:  # counted by the tasks that read the events (a converted xplane)
        events = max((r.get("events", -1) for rs in runs.values() for r in rs), default=-1)
    for task in shown:
        print(_row(name, events, file_size, raw_size, task, runs[task]), flush=True)


def _xplane_group(tmp: Path, steps: int, repeats: int) -> None:
    """The large-xplane rows: a `steps`-step ResNet capture, converted and summarized."""
    path, seconds, capture_mb = make_xplane(tmp / "xplane", steps)
    size = path.stat().st_size
    print(f"<!-- captured the ResNet scenario's training step {steps} times: {size / 1e6:.0f} "
          f"MB .xplane.pb in {seconds:.0f} s, the capturing process at {capture_mb:.0f} MB "
          "peak RSS -->", flush=True)
    _group(f"ResNet .xplane.pb ({steps} steps)", path, size, size, -1, list(XPLANE_TASKS),
           XPLANE_TASKS, repeats)
    shutil.rmtree(tmp / "xplane", ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", default="1e6,8e6",
                        help="comma list of PyTorch-like trace sizes in events "
                             "(default %(default)s)")
    parser.add_argument("--tf-events", default="1e6,8e6",
                        help="comma list of TF CPU trace sizes (default %(default)s)")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs per task, interleaved; the median time is shown")
    parser.add_argument("--xplane-steps", type=int, default=0,
                        help="also capture the ResNet scenario's training step this many "
                             "times with tf.profiler (1000 steps: ~85 MB .xplane.pb, ~6 GB "
                             "RSS while capturing) and time xprof's conversion, "
                             "trace-summary and audit of it (default 0: off)")
    args = parser.parse_args(argv)
    counts = [("PyTorch", int(float(c))) for c in args.events.split(",") if c.strip()
              and float(c) > 0]
    counts += [("TF CPU", int(float(c))) for c in args.tf_events.split(",") if c.strip()
               and float(c) > 0]
    tasks = [t for t in args.tasks.split(",") if t in TASKS]
    tmp = Path(tempfile.mkdtemp(prefix="relu_lab_trace_bench_"))
    smallest = min((n for _, n in counts), default=0)
    try:
        print(f"<!-- {os.cpu_count()} CPUs; load average at start "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} -->")
        print("Interpreter baseline (peak RSS of a fresh process, in every row below): "
              + ", ".join(f"{label} {baseline_rss_mb(imports):.0f} MB"
                          for label, imports in BASELINES.items()) + ".\n")
        print("| trace | events | file MB | task | seconds | MB/s | M events/s | peak RSS MB | "
              "child peak RSS MB | RSS added MB | peak RSS / file bytes |")
        print("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for label, n in counts:
            path = tmp / f"trace_{label.split()[0]}_{n}.json"
            t0 = time.perf_counter()
            size = (generate if label == "PyTorch" else generate_tf)(path, n)
            events = n if label == "PyTorch" else max(1, n // 4) * 4
            files = [(path, size)]
            if label == "PyTorch" and n == smallest:
                gz = gzip_copy(path)
                files.append((gz, gz.stat().st_size))
            print(f"<!-- generated {label} {events} events, {size / 1e6:.0f} MB "
                  f"({size / events:.0f} bytes an event) in {time.perf_counter() - t0:.0f} s "
                  "-->", flush=True)
            for file, file_size in files:
                shown = [t for t in tasks if not (t in ("json.load", "msgspec.json.decode")
                                                  and (n > DECODE_MAX_EVENTS
                                                       or file.suffix == ".gz"))]
                if file.suffix == ".gz":
                    shown = [t for t in shown if t.startswith("trace-summary")]
                name = label + (" .json.gz" if file.suffix == ".gz" else "")
                _group(name, file, file_size, size, events, shown, TASKS, args.repeats)
                file.unlink()
        if args.xplane_steps > 0:
            _xplane_group(tmp, args.xplane_steps, args.repeats)
        print(f"<!-- load average at end {' '.join(f'{x:.2f}' for x in os.getloadavg())} -->")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
