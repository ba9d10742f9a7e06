"""`python -m profiling`: run, list, show, compare, export, import, trace-summary, calibrate
(+ scenario/capture from profiling.cli.scenario). Errors: one line on stderr, exit 2."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any, NoReturn

import pandas as pd

from profiling.cli.common import UsageError, print_table
from profiling.cli.common import open_store as _store
from profiling.cli.trace import print_json as _print_json  # the one JSON printer: strict JSON
from profiling.measurement.timing import DEFAULT_MIN_TIME, DEFAULT_REPEATS
from profiling.plain import json_safe
from profiling.presentation.units import (
    format_bytes,
    format_gbps,
    format_number,
    format_percent,
    format_speedup,
    format_time,
)
from profiling.storage.schema import CASE_COLUMNS

CLI_DEFAULT_SIZES = "1e3,1e4,1e5,1e6,1e7"
# what --json prints of each case: the cases table's columns but the run's id and the kind, and
# the speedup over nn_relu computed from the ratio
JSON_CASE_FIELDS = [*(c for c in CASE_COLUMNS if c not in ("run_id", "kind")),
                    "speedup", "speedup_ci95_low", "speedup_ci95_high"]


class Terminated(KeyboardInterrupt):
    """SIGTERM during `run`: stopped like Ctrl-C (finished cases kept, run marked interrupted)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not usage + message
        self.exit(2, f"{self.prog}: error: {message}\n")

    def _get_values(self, action: argparse.Action, arg_strings: list[str]) -> Any:
        # `--variants ""` is a mistake (an unset shell variable), not a request for the default
        if action.option_strings and any(not a.strip() for a in arg_strings):
            self.error(f"argument {'/'.join(action.option_strings)}: empty value; give a value "
                       "or leave the flag out")
        return super()._get_values(action, arg_strings)


def _csv(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def _records(df: pd.DataFrame, cols: Sequence[str] | None = None) -> list[dict]:
    cols = [c for c in (cols or df.columns) if c in df.columns]
    return json_safe(df[cols])


def _quiet_tensorflow() -> None:
    """Import TF with fd 2 muted: its start-up chatter would bury our one-line errors."""
    if "tensorflow" in sys.modules:
        return
    from profiling.traces.xplane import quiet_stderr

    with quiet_stderr():
        import tensorflow  # noqa: F401


# ---- run ---------------------------------------------------------------------------------
def _progress_printer(enabled: bool) -> Any:
    def show(p: Any) -> None:
        if not enabled:
            return
        width = 24
        filled = int(width * p.done / p.total) if p.total else width
        bar = "#" * filled + "-" * (width - filled)
        end = "\n" if p.status in ("complete", "interrupted", "failed") and not p.current else ""
        text = f"\r[{bar}] {p.done}/{p.total} {p.status:<9} {p.current}"[:150]
        sys.stderr.write(f"{text:<150}{end}")
        sys.stderr.flush()

    return show


def spec_from_args(args: argparse.Namespace) -> Any:
    from profiling.spec import (
        RunSpec,
        SpecError,
        parse_shapes,
        parse_sizes,
        split_variants,
        variant_registry,
    )

    shapes: list = []
    if args.sizes:
        shapes += [(n,) for n in parse_sizes(args.sizes)]
    if args.shapes:
        shapes += parse_shapes(args.shapes)
    if not shapes:
        shapes = parse_shapes(CLI_DEFAULT_SIZES)
    threads = None
    if args.threads:
        try:
            threads = [int(t) for t in _csv(args.threads)]
        except ValueError:
            raise SpecError("threads", args.threads, "comma-separated integers") from None
    variants = split_variants(args.variants) if args.variants else list(variant_registry())
    return RunSpec(variants=variants, shapes=shapes,
                   dtypes=_csv(args.dtypes) or ["float32"], devices=_csv(args.devices),
                   threads=threads, modes=_csv(args.modes) or ["eager", "function"],
                   passes=_csv(args.passes) or ["forward"], repeats=args.repeats,
                   allocator=args.allocator, trace=not args.no_trace, fusion=args.fusion,
                   timeout_s=args.timeout, min_time=args.min_time, label=args.label or "",
                   baseline=args.baseline)


def cmd_run(args: argparse.Namespace) -> int:
    from profiling.execution.runner import run_profile

    _quiet_tensorflow()
    spec = spec_from_args(args)
    spec.validate()  # SpecError before the store is touched
    store = _store()
    cancel = threading.Event()

    def on_sigterm(signum: int, frame: Any) -> None:
        raise Terminated()

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, on_sigterm) if in_main_thread else None
    try:
        run_id = run_profile(spec, store, _progress_printer(not args.quiet), cancel)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
    run = store.run(run_id)
    cases = store.cases([run_id])
    noise = _noise(run)
    _warn_noise(run_id, noise)
    if args.json:
        out = {"run_id": run_id, "status": run["status"], "noise": noise,
               "cases": _records(_with_speedup(cases), JSON_CASE_FIELDS)}
        if spec.fusion:
            out["fusion"] = _fusion_records(store, run_id)
        _print_json(out)
    else:
        _print_cases(cases)
        if spec.fusion:
            _print_fusion(store.fusion([run_id]))
        print(f"run {run_id}: {run['status']}, {len(cases)} cases "
              f"({(cases.status == 'ok').sum()} ok, {(cases.status == 'skipped').sum()} skipped, "
              f"{(cases.status == 'failed').sum()} failed)")
    if run["status"] == "failed":  # the store's rule: nothing was measured
        failed = cases[cases.status == "failed"]
        what = (f"every case of run {run_id} failed" if len(failed) == len(cases) else
                f"no case of run {run_id} succeeded ({len(failed)} failed, the rest skipped)")
        first = failed.iloc[0]
        print(f"error: {what}; {first.label}: {' '.join(str(first.reason).split())}",
              file=sys.stderr)
    return 0 if run["status"] == "complete" else 1


def _noise(run: dict) -> dict:
    from profiling.presentation.noise_text import stored

    return stored(run.get("noise_json"), run["run_id"])


def _warn_noise(run_id: str, noise: dict) -> None:
    """One short stderr line for a noisy run (the pages' line); `show RUN` has the details."""
    from profiling.presentation.noise_text import headline

    line = headline(noise)
    if line:
        print(f"warning: run {run_id} {line} (details: show {run_id})", file=sys.stderr)


def _with_speedup(frame: pd.DataFrame, ratio: str = "ratio_to_baseline") -> pd.DataFrame:
    """frame plus speedup, speedup_ci95_low/high: the inverse of each stored ratio (cases:
    ratio_to_baseline, fusion rows: time_vs_fused) and its CI; NaN where none was measured."""
    from profiling.measurement.stats import ratio_stats

    fields = [ratio_stats(r.get(ratio), r.get("ratio_ci95_low"), r.get("ratio_ci95_high"))
              .speedup_fields() for r in frame.to_dict("records")]
    return frame.assign(**{k: [f[k] for f in fields] for k in
                           ("speedup", "speedup_ci95_low", "speedup_ci95_high")})


def _fusion_records(store: Any, run_id: str) -> list[dict]:
    return _records(_with_speedup(store.fusion([run_id]), "time_vs_fused"))


def _print_fusion(fusion: pd.DataFrame) -> None:
    from profiling.presentation.charts import fusion_table

    print_table(fusion_table(fusion))


def _print_cases(cases: pd.DataFrame) -> None:
    cases = _with_speedup(cases)
    view = pd.DataFrame({
        "variant": cases.label, "shape": cases["shape"], "dtype": cases.dtype,
        "device": cases.device, "thr": cases.threads, "mode": cases["mode"],
        "pass": cases["pass"], "status": cases.status,
        "median": cases.median_s.map(format_time), "±ci95": cases.ci95_s.map(format_time),
        "GB/s": cases.gbps.map(format_number),
        "util": cases.utilization.map(format_percent),
        "faults/call": cases.page_faults_per_call.map(lambda v: format_number(v, 2)),
        "speedup [CI95]": [format_speedup(r.speedup, r.speedup_ci95_low, r.speedup_ci95_high)
                           for r in cases.itertuples()],
        "floor": cases.floor_s.map(format_time),
        "reason": cases.reason.fillna("").str.slice(0, 60)})
    print_table(view)


# ---- list / show -------------------------------------------------------------------------
def cmd_list(args: argparse.Namespace) -> int:
    runs = _store().list_runs()
    if args.json:
        _print_json({"runs": _records(runs.drop(columns=["spec_json"]))})
    else:
        # the noise details are JSON: `show RUN` (or --json) prints them readably
        print_table(runs.drop(columns=["spec_json", "finished_at", "noise_json"],
                              errors="ignore"))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    store = _store()
    run_id = store.resolve_run(args.run)
    run, cases, env = store.run(run_id), store.cases([run_id]), store.environment(run_id)
    if args.json:
        _print_json({"run_id": run_id, "status": run["status"], "label": run["label"],
                     "created_at": run["created_at"], "environment": env, "noise": _noise(run),
                     "calibration": _records(store.calibration(run_id)),
                     "roof": _records(store.roof(run_id)),
                     "cases": _records(_with_speedup(cases), JSON_CASE_FIELDS),
                     "fusion": _fusion_records(store, run_id)})
        return 0
    print(f"run {run_id}  status={run['status']}  created={run['created_at']}  "
          f"label={run['label'] or '-'}")
    keys = ("tf_version", "cpu_model", "cores_logical", "intra_op_threads", "allocator",
            "git_commit", "hostname", "python")
    print("  " + "  ".join(f"{k}={env.get(k)}" for k in keys if k in env))
    noise = _noise(run)
    print(f"  machine: {noise['verdict']}" + (f" ({'; '.join(noise['reasons'])})"
                                             if noise.get("reasons") else ""))
    for c in _records(store.calibration(run_id)):
        print(f"  peak {c['device']} t{c['threads']} {c['allocator']}: "
              f"{format_gbps(c['peak_gbps'])} ({c['method']})")
    _print_cases(cases)
    fusion = store.fusion([run_id])
    if len(fusion):
        _print_fusion(fusion)
    return 0


# ---- compare -----------------------------------------------------------------------------
def _parse_pct(text: str) -> float:
    try:
        value = float(text.strip().rstrip("%")) / (100 if text.strip().endswith("%") else 1)
    except ValueError:
        raise UsageError(f"--max-regression {text!r}; accepted: e.g. 5% or 0.05") from None
    if not 0 <= value < 10:
        raise UsageError(f"--max-regression {text!r}; accepted: 0%..1000%")
    return value


def cmd_compare(args: argparse.Namespace) -> int:
    from profiling.analysis.compare import compare_runs

    store = _store()
    if args.against:  # `compare RUN --against FILTER`: RUN against the newest matching run
        from profiling.presentation.history import newest_matching_run

        b = store.resolve_run(args.run_a)
        a = newest_matching_run(store, args.against, exclude=b)
    elif args.run_b is None:
        raise UsageError("compare needs two runs, or one run and --against FILTER")
    else:
        a, b = store.resolve_run(args.run_a), store.resolve_run(args.run_b)
    threshold = _parse_pct(args.max_regression)
    table = compare_runs(store.cases([a]), store.cases([b]), threshold)
    noise = {a: _noise(store.run(a)), b: _noise(store.run(b))}
    noisy = [r for r in (a, b) if noise[r]["verdict"] == "noisy"]
    for r in noisy:
        _warn_noise(r, noise[r])
    if args.json:
        _print_json({"run_a": a, "run_b": b, "max_regression": threshold,
                     "regressions": int(table.regression.sum()), "noisy_runs": noisy,
                     "cases": _records(table)})
    else:
        view = pd.DataFrame({
            "variant": table.label, "shape": table["shape"], "dtype": table.dtype,
            "mode": table["mode"], "pass": table["pass"],
            "A": table.median_s_a.map(format_time), "B": table.median_s_b.map(format_time),
            "speedup B vs A [CI95]": [
                format_speedup(r.speedup, r.speedup_ci95_low, r.speedup_ci95_high)
                for r in table.itertuples()],
            "verdict": ["REGRESSION" if r else ("faster" if i else "") for r, i in
                        zip(table.regression, table.improvement, strict=True)]})
        print_table(view)
        print(f"{int(table.regression.sum())} regression(s): slowdown CI wholly beyond "
              f"{format_percent(threshold)} ({len(table)} matched cases)"
              + (f"; noisy machine during {', '.join(noisy)}" if noisy else ""))
    return 1 if table.regression.any() else 0


# ---- export / import ---------------------------------------------------------------------
def cmd_export(args: argparse.Namespace) -> int:
    from profiling.storage import bundle

    store = _store()
    run_ids = [store.resolve_run(r) for r in args.runs]
    if args.format == "html":
        _quiet_tensorflow()
        from profiling.presentation.report import render_html
        from relu_impls import VARIANTS
        from relu_impls.semantics import semantics_table

        variants = [v for v in VARIANTS if v in set(store.cases(run_ids)["variant"])]
        html = render_html(store, run_ids, baseline=args.baseline,
                           semantics=semantics_table(variants) if variants else None)
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(html)
    elif args.format == "json":
        bundle.export_json(store, run_ids, args.output)
    else:
        bundle.export_csv(store, run_ids, args.output)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from profiling.storage.bundle import import_bundle

    run_ids = import_bundle(_store(write=True), args.bundle)
    if args.json:
        _print_json({"run_ids": run_ids})
    else:
        print("imported " + ", ".join(run_ids))
    return 0


# ---- calibrate ---------------------------------------------------------------------------
def cmd_calibrate(args: argparse.Namespace) -> int:
    from profiling.execution.runner import INIT_TIMEOUT_S, Worker, WorkerLost
    from profiling.spec import check_devices, check_threads

    _quiet_tensorflow()
    device = args.device
    check_devices([device])
    threads = args.threads or os.cpu_count() or 1
    check_threads([threads])
    worker = Worker(device, threads, args.allocator)
    try:
        reply = worker.request({"cmd": "init", "device": device, "allocator": args.allocator,
                                "calibrate": True}, INIT_TIMEOUT_S)
    except WorkerLost as e:
        raise UsageError(str(e)) from None
    finally:
        worker.close()
    if reply.get("type") != "ready":  # e.g. a device this machine does not have
        raise UsageError(reply.get("reason") or f"calibration failed: {reply}")
    calib = {"device": device, "threads": threads, "allocator": args.allocator,
             **(reply.get("calibration") or {})}
    calib["harness_floor_s"] = reply.get("floor_s")
    if args.json:
        _print_json(calib)
    else:
        print(f"{device} threads={threads} allocator={args.allocator}: best "
              f"{format_gbps(calib.get('peak_gbps'))} copy bandwidth "
              f"({calib.get('method')}, at a {format_bytes(calib.get('size_bytes', 0))} "
              f"working set); harness floor {format_time(reply.get('floor_s'))} per call")
        print("roof (working set = bytes read + written; best, median and IQR of the passes):")
        print_table(pd.DataFrame([{
            "working set": format_bytes(p["working_set_bytes"]),
            "best": format_gbps(p["gbps"]), "median": format_gbps(p["gbps_median"]),
            "IQR": format_gbps(p["gbps_iqr"])} for p in calib.get("curve") or []]))
    return 0


# ---- parser ------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m profiling",
                description="Profile ReLU implementations: run, inspect, compare, export.")
    p.add_argument("--store", help="postgresql://user@host:port/db or sqlite:///path "
                                   "(default: $RELU_LAB_STORE, else $RELU_LAB_DATA)")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    r = sub.add_parser("run", help="measure variants × shapes × dtypes × devices × modes",
                       description="Measure; with no flags: every variant, float32, "
                                   f"sizes {CLI_DEFAULT_SIZES}, eager+function, forward.")
    r.add_argument("--variants", help="comma list, params as id:name=value or id(name=value) "
                                      "(e.g. nn_relu,leaky:alpha=0.2; default: all)")
    r.add_argument("--sizes", help=f"1-D element counts (default {CLI_DEFAULT_SIZES})")
    r.add_argument("--shapes", help="shapes such as 10000x10000,64x1024")
    r.add_argument("--dtypes", help="float16,bfloat16,float32,float64,int8 (default float32)")
    r.add_argument("--devices", help="e.g. CPU:0,GPU:0 (default: every device TF sees)")
    r.add_argument("--threads", help="intra-op thread counts, e.g. 1,2 (default: all cores)")
    r.add_argument("--modes", help="eager,function,xla (default eager,function)")
    r.add_argument("--passes", help="forward,backward (default forward)")
    r.add_argument("--repeats", type=int, default=DEFAULT_REPEATS,
                   help="timed repeats, >= 5 (default %(default)s; from 6 on the CI95 truly "
                        "covers 95%%)")
    r.add_argument("--min-time", type=float, default=DEFAULT_MIN_TIME,
                   help="target seconds per repeat (default %(default)s)")
    r.add_argument("--baseline", default="nn_relu",
                   help="variant the paired ratios refer to (default %(default)s; the first "
                        "variant when the run lacks it)")
    r.add_argument("--timeout", type=float, default=120.0, help="seconds per case (default 120)")
    r.add_argument("--allocator", choices=("bfc", "default"), default="bfc")
    r.add_argument("--no-trace", action="store_true", help="skip the per-case profiler trace")
    r.add_argument("--fusion", action="store_true", help="also run the fusion report")
    r.add_argument("--label", help="free text stored with the run")
    r.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    r.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    r.set_defaults(func=cmd_run)

    ls = sub.add_parser("list", help="stored runs", description="List stored runs.")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)

    sh = sub.add_parser("show", help="one run's cases and environment",
                        description="Show a run (id, unique prefix or 'latest').")
    sh.add_argument("run")
    sh.add_argument("--json", action="store_true")
    sh.set_defaults(func=cmd_show)

    c = sub.add_parser("compare", help="B vs A ratios with CIs; exit 1 on regression",
                       description="Compare run B against run A case by case.")
    c.add_argument("run_a")
    c.add_argument("run_b", nargs="?")
    c.add_argument("--against", metavar="FILTER",
                   help="run_a against the newest other run matching e.g. machine=ci,label=main")
    c.add_argument("--max-regression", default="5%",
                   help="slowdown tolerated before exit 1 (default %(default)s)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_compare)

    e = sub.add_parser("export", help="a run as html, json bundle or csv",
                       description="Export runs to a file.")
    e.add_argument("runs", nargs="+", metavar="RUN")
    e.add_argument("--format", choices=("html", "json", "csv"), default="json")
    e.add_argument("-o", "--output", required=True, help="output file")
    e.add_argument("--baseline", default="nn_relu", help="html: variant ratios refer to")
    e.set_defaults(func=cmd_export)

    i = sub.add_parser("import", help="add a json bundle's runs to the store",
                       description="Import an exported JSON bundle (all or nothing).")
    i.add_argument("bundle")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_import)
    from profiling.cli import delete as delete_cli

    delete_cli.add_command(sub)

    from profiling.cli import trace as trace_cli

    trace_cli.add_commands(sub)

    k = sub.add_parser("calibrate", help="peak copy bandwidth of a device",
                       description="Measure peak copy bandwidth in a worker.")
    k.add_argument("--device", default="CPU:0")
    k.add_argument("--threads", type=int)
    k.add_argument("--allocator", choices=("bfc", "default"), default="bfc")
    k.add_argument("--json", action="store_true")
    k.set_defaults(func=cmd_calibrate)

    try:
        from profiling.cli import scenario as scenario_cli

        scenario_cli.add_commands(sub)
    except ImportError:
        pass
    from profiling.cli import claims as claims_cli  # `claims`: the guide's claims with verdicts

    claims_cli.add_command(sub)

    from profiling.cli import team as team_cli

    team_cli.add_commands(sub)

    from profiling.cli import model as model_cli  # `model`: your model, measured

    model_cli.add_command(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 1 failed/regression, 2 bad input)."""
    from profiling.spec import SpecError
    from profiling.storage.bundle import BundleError
    from profiling.storage.db import StoreTimeoutError
    from profiling.storage.store import UnknownRunError
    from profiling.traces import TraceError

    args = build_parser().parse_args(argv)
    if args.store:
        os.environ["RELU_LAB_STORE"] = args.store
    try:
        return int(args.func(args) or 0)
    except (SpecError, TraceError, BundleError, UsageError, UnknownRunError,
            StoreTimeoutError) as e:
        print(f"error: {e}", file=sys.stderr)
    except BrokenPipeError:  # `… | head`: the reader left; nothing to report
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except FileNotFoundError as e:
        print(f"error: no such file: {e.filename}", file=sys.stderr)
    except OSError as e:
        print(f"error: {e.strerror or e}: {getattr(e, 'filename', '') or ''}", file=sys.stderr)
    except KeyboardInterrupt as e:
        print("interrupted (finished cases are kept; the run is marked interrupted)",
              file=sys.stderr)
        return 128 + (signal.SIGTERM if isinstance(e, Terminated) else signal.SIGINT)
    except Exception as e:  # last resort: still one line, never a traceback
        from profiling.errors import one_line

        print(f"error: {one_line(e)}", file=sys.stderr)
    return 2
