"""`python -m profiling model SOURCE`: your model's activations, and what each rewrite saves."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from profiling.cli.common import UsageError, print_table

EPILOG = """SOURCE: a .keras or .h5 file, a SavedModel directory, or keras.applications:NAME
(built with seeded random weights, no download). Rewrites (--what-if, comma-separated):
fold_bn, swap:KIND=VARIANT (relu=custom_op, relu=maximum, relu6=clipped(clip=6), gelu=tanh,
silu=x_sigmoid), xla, mixed_bfloat16. The model loads in an isolated worker process; loading a
.keras file can run its code (custom layers), and --custom-objects imports your module there."""


def add_command(sub: Any) -> None:
    m = sub.add_parser("model", help="profile a Keras model's activations and measure rewrites",
                       description="Profile a model's step, find every activation layer, and "
                                   "measure each what-if rewrite against the original, "
                                   "interleaved, with a 95% CI.", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    m.add_argument("source")
    m.add_argument("--input-shape", help="per-sample shape, e.g. 96,96,3 (default: the model's)")
    m.add_argument("--batch", type=int, default=8)
    m.add_argument("--mode", choices=("inference", "train"), default="inference")
    m.add_argument("--what-if", default="", help="comma-separated rewrites (see below)")
    m.add_argument("--custom-objects", help="module to import first (registers custom layers)")
    m.add_argument("--save-rewritten", metavar="DIR", help="save each rewritten model here")
    m.add_argument("--repeats", type=int, default=7)
    m.add_argument("--min-time", type=float, default=0.05)
    m.add_argument("--time-limit", type=float, default=1800.0, help="seconds (default 1800)")
    m.add_argument("--label", default="")
    m.add_argument("--json", action="store_true")
    m.add_argument("--no-store", action="store_true")
    m.set_defaults(func=cmd_model)


def split_what_if(text: str) -> list[str]:
    """'fold_bn,swap:relu6=clipped(clip=6),xla' -> its three rewrites (commas inside
    parentheses belong to a variant's parameters)."""
    out, depth, current = [], 0, ""
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            out.append(current.strip())
            current = ""
        else:
            current += ch
    out.append(current.strip())
    return [w for w in out if w]


def parse_shape(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        shape = tuple(int(v) for v in text.replace("x", ",").split(",") if v.strip())
    except ValueError:
        raise UsageError(f"--input-shape {text!r}: write dimensions as 96,96,3") from None
    if not shape or any(d < 1 for d in shape):
        raise UsageError(f"--input-shape {text!r}: every dimension must be at least 1")
    return shape


def _check(args: argparse.Namespace) -> None:
    from profiling.models.rewrites import RewriteError, parse_rewrite

    for name, value, low in (("--batch", args.batch, 1), ("--repeats", args.repeats, 2)):
        if value < low:
            raise UsageError(f"{name} must be at least {low}, got {value}")
    for name, value in (("--min-time", args.min_time), ("--time-limit", args.time_limit)):
        if not value > 0:
            raise UsageError(f"{name} must be above 0, got {value:g}")
    for w in split_what_if(args.what_if):
        try:
            parse_rewrite(w)
        except RewriteError as e:
            raise UsageError(str(e)) from None


def cmd_model(args: argparse.Namespace) -> int:
    from profiling.cli.trace import print_json
    from profiling.experiments.model_run import ModelRunError, run_model
    from profiling.models.profile import ModelRequest

    _check(args)
    req = ModelRequest(source=args.source, input_shape=parse_shape(args.input_shape),
                       batch=args.batch, mode=args.mode, what_if=split_what_if(args.what_if),
                       custom_objects=args.custom_objects, repeats=args.repeats,
                       min_time=args.min_time, save_rewritten=args.save_rewritten)
    store = None
    if not args.no_store:
        from profiling.cli.common import open_store

        store = open_store()

    def progress(text: str) -> None:  # for a person at a terminal; a pipe gets results only
        if not args.json and sys.stderr.isatty():
            print(f"  {text}", file=sys.stderr)

    try:
        result = run_model(req, progress, time_limit_s=args.time_limit, store=store,
                           label=args.label)
    except ModelRunError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.json:
        print_json(public(result))
        return 0
    print_result(result)
    return 0


def public(result: dict[str, Any]) -> dict[str, Any]:
    """The `--json` contract: samples and trace paths left out."""
    out = {k: v for k, v in result.items() if k not in ("traces", "step_samples_s")}
    out["rewrites"] = [{k: v for k, v in r.items() if k != "samples_s"}
                       for r in result["rewrites"]]
    return out


def print_result(result: dict[str, Any]) -> None:
    import pandas as pd

    from profiling.presentation import units
    from profiling.presentation.model_summary import decision, rewrite_table

    spec = ", ".join(f"{s['name']} {'x'.join(map(str, s['shape']))} {s['dtype']}"
                     for s in result["input_spec"])
    low, high = result["step_ci95_s"]
    print(f"{result['model']} ({result['mode']}, {spec}): step "
          f"{units.format_time(result['step_s'])} [{units.format_time(low)}, "
          f"{units.format_time(high)}]"
          + (f", step memory {units.format_bytes(result['peak_memory_bytes'])}"
             if result.get("peak_memory_bytes") is not None else "")
          + f"; machine {result['noise_verdict']}")
    acts = pd.DataFrame(result["activations"])
    if len(acts):
        cols = [c for c in ("layer", "kind", "fused", "time_us", "pct", "cause") if c in acts]
        acts = acts[cols].copy()
        if "time_us" in acts:
            acts["time_us"] = acts["time_us"].map(
                lambda v: units.MISSING if v is None or v != v else f"{v:.1f}")
        if "pct" in acts:
            acts["pct"] = acts["pct"].map(
                lambda v: units.format_percent(None if v is None else v / 100))
    print(f"activation layers: {len(acts)}")
    print_table(acts)
    table = rewrite_table(result["rewrites"])
    if len(table):
        print("what-if rewrites (speedup = t_original / t_rewrite, above 1 is faster):")
        print_table(table)
    for line in decision(result):
        print(f"- {line}")
    if result.get("run_id"):
        print(f"stored as run {result['run_id']}")
