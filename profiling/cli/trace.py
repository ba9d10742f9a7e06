"""`python -m profiling trace-summary | audit | trace-diff`: questions about any trace file.

`add_commands(subparsers)` registers them on the main CLI. Bad files exit 2 with one line
(TraceError, caught by profiling.cli.main.main); JSON output never holds Infinity or NaN.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
from collections.abc import Iterator
from typing import Any

import pandas as pd

from profiling.cli.common import print_table
from profiling.plain import json_safe
from profiling.presentation.units import MISSING

LIMIT_ENV = "RELU_LAB_MAX_TRACE_BYTES"


def return_big_frees_to_the_os() -> None:
    """Pin glibc's mmap threshold at 1 MiB, so every freed array of a big trace goes straight
    back to the OS instead of being kept on the heap (glibc raises the threshold as big blocks
    are freed); lowers the commands' peak RSS. A no-op off glibc."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


def print_json(obj: Any) -> None:
    print(json.dumps(json_safe(obj), allow_nan=False, default=str))


@contextlib.contextmanager
def _trace_limit(max_bytes: float | None) -> Iterator[None]:
    from profiling.cli.common import UsageError

    if max_bytes is not None and not 0 < max_bytes < math.inf:
        raise UsageError(f"--max-bytes {max_bytes:g}; accepted: a positive number of bytes")
    saved = os.environ.get(LIMIT_ENV)
    if max_bytes:  # the parsers read the cap from the environment; restored below
        os.environ[LIMIT_ENV] = str(int(max_bytes))
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(LIMIT_ENV, None)
        else:
            os.environ[LIMIT_ENV] = saved


def _check_top(top: int) -> None:
    from profiling.cli.common import UsageError

    if top < 1:
        raise UsageError(f"--top {top}; accepted: integers >= 1")


# ---- trace-summary -----------------------------------------------------------------------
def cmd_trace_summary(args: argparse.Namespace) -> int:
    from profiling.storage.bundle import load_any_trace
    from profiling.traces import summarize

    _check_top(args.top)
    return_big_frees_to_the_os()
    with _trace_limit(args.max_bytes):
        s = summarize(load_any_trace(args.file, keep_args=False), top=args.top)
    if args.json:
        print_json(s)
        return 0
    print(f"{args.file}: {s['source']} trace, {s['event_count']} events, "
          f"{s['duration_us'] / 1e3:.3f} ms")
    b, t = s["breakdown"], s["thread_time"]
    span = sum(b.values()) or 1.0
    print("breakdown (µs): wall = the span split by what ran on any thread (innermost event "
          "per thread; compute > communication > memcpy > other); thread = self time summed "
          "over threads")
    print(f"  {'':<14}{'wall':>12}  {'%':>5}{'thread':>14}")
    for k in ("compute", "memcpy", "collective", "idle", "other"):
        thread = f"{t[k + '_us']:>14.1f}" if k + "_us" in t else f"{'':>14}"
        label = "communication" if k == "collective" else k
        print(f"  {label:<14}{b[k + '_us']:>12.1f}  {100 * b[k + '_us'] / span:5.1f}{thread}")
    ratio = s["compute_comm_ratio"]
    print("  compute/communication: "
          + ("n/a: no communication in this trace" if ratio is None else f"{ratio:.2f}"))
    print(f"top {args.top} ops by {s['op_time']} (self = own thread only):")
    pool = s["pool_work"]
    if pool["pool_us"]:
        print(f"  intra-op pool work: {pool['pool_us']:.1f} µs, of which "
              f"{pool['unattributed_us']:.1f} µs ran under no dispatching op; "
              f"{pool['split_count']} pool events split between concurrent ops")
    top = s["top_ops"].copy()
    if len(top):
        for c in ("self_us", "cpu_us", "total_us"):
            top[c] = top[c].round(1)
        top["pct"] = top.pct.map(lambda v: f"{v:.1f}%")
    print_table(top)
    return 0


# ---- audit -------------------------------------------------------------------------------
def cmd_audit(args: argparse.Namespace) -> int:
    from profiling.analysis.activations import audit_trace
    from profiling.storage.bundle import load_any_trace

    return_big_frees_to_the_os()
    with _trace_limit(args.max_bytes):
        result = audit_trace(load_any_trace(args.file, keep_args=False).events)
    if args.json:
        print_json(result)
        return 0
    acts = pd.DataFrame(result["activations"])
    per = f"{result['steps']} steps" if result["steps"] else "no step events: µs per trace"
    print(f"{args.file}: {len(acts)} activation sites, {result['activation_pct']:.1f}% of all ops' "
          f"time, {result['unfused_pct']:.1f}% in separate (unfused) ops ({per}); a fused "
          f"activation has no time of its own: its kernel's time is shown as kernel_us")
    if len(acts):
        acts = acts.drop(columns=["ops"])
        for c in ("self_us", "kernel_us", "backward_us"):
            acts[c] = acts[c].map(lambda v: MISSING if v is None or v != v else f"{v:.1f}")
        acts["pct"] = acts.pct.map(lambda v: MISSING if v is None or v != v else f"{v:.1f}%")
    print_table(acts)
    for a in result["advice"]:
        print(f"- {a['text']}")
    return 0


# ---- trace-diff --------------------------------------------------------------------------
def cmd_trace_diff(args: argparse.Namespace) -> int:
    from profiling.analysis.diff import diff_side, trace_diff
    from profiling.storage.bundle import load_any_trace

    _check_top(args.top)
    return_big_frees_to_the_os()
    with _trace_limit(args.max_bytes):  # one trace in memory at a time: A is reduced first
        a = diff_side(load_any_trace(args.a, keep_args=False).events)
        b = diff_side(load_any_trace(args.b, keep_args=False).events)
    d = trace_diff(a, b, top=args.top)
    if args.json:
        print_json(d)
        return 0
    print(f"A {args.a}: {d['duration_a_us'] / 1e3:.3f} ms   B {args.b}: "
          f"{d['duration_b_us'] / 1e3:.3f} ms")
    print("breakdown (wall µs):")
    print_table(d["breakdown"].round(1))
    print(f"ops by |change| of {d['op_time']} (top {args.top}; delta and ratio of cpu_us):")
    ops = d["ops"].copy()
    for c in ("self_us_a", "self_us_b", "cpu_us_a", "cpu_us_b", "delta_us"):
        ops[c] = ops[c].round(1)
    ops["ratio"] = ops["ratio"].map(lambda v: MISSING if v != v else f"{v:.2f}x")
    print_table(ops)
    return 0


def add_commands(sub: Any) -> None:
    """Add trace-summary, audit and trace-diff to an argparse subparsers object."""
    t = sub.add_parser("trace-summary", help="top ops and time breakdown of a trace file",
                       description="Summarize a .xplane.pb, Chrome trace .json/.json.gz "
                                   "(TensorBoard, PyTorch, ...) or an exported bundle.")
    t.add_argument("file")
    t.add_argument("--top", type=int, default=20)
    t.add_argument("--max-bytes", type=float, help="cap on decompressed size (default 1 GiB)")
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=cmd_trace_summary)

    a = sub.add_parser("audit", help="every activation that ran in a trace, fused or not",
                       description="Activation audit of any model's trace (.xplane.pb, "
                                   "Chrome/PyTorch JSON): scope, kind, fused, time, advice.")
    a.add_argument("file")
    a.add_argument("--max-bytes", type=float, help="cap on decompressed size (default 1 GiB)")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=cmd_audit)

    d = sub.add_parser("trace-diff", help="op and breakdown changes from trace A to trace B",
                       description="Compare two traces: op CPU-time (own + pool work) and "
                                   "count deltas sorted by impact, and both breakdowns side "
                                   "by side.")
    d.add_argument("a")
    d.add_argument("b")
    d.add_argument("--top", type=int, default=30)
    d.add_argument("--max-bytes", type=float, help="cap on decompressed size (default 1 GiB)")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=cmd_trace_diff)
