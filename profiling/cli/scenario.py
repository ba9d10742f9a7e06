"""`python -m profiling scenario ...` and `python -m profiling capture grpc://...`.

`add_commands(subparsers)` registers both on the main CLI's argparse subparsers; each command's
`func(args)` returns the exit code: 0 ok, 1 the run or capture failed, 2 bad input.
`python -m profiling.cli.scenario ...` runs them without the main CLI.

Examples:
  python -m profiling scenario resnet --variants nn_relu,maximum,where,"leaky(alpha=0.2)"
  python -m profiling scenario wide_deep --variants nn_relu,adaptive --repeats 9
  python -m profiling scenario resnet --kind mixed_precision --variants nn_relu,leaky
  python -m profiling scenario resnet --kind qat --variants nn_relu,int8
  python -m profiling scenario wide_deep --kind batch_sweep --batches 8,16,32,64,128,256,512
  python -m profiling scenario wide_deep --kind sparsity --variants nn_relu,leaky,clipped
  python -m profiling scenario resnet --strategy mirrored --logical-cpus 2
  python -m profiling scenario resnet --strategy multiworker --workers 2 --communication RING
  python -m profiling capture grpc://127.0.0.1:6009,grpc://127.0.0.1:6010 --duration-ms 2000
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import pandas as pd

from profiling.cli.trace import print_json

SUMMARY_SHOWN = ["label", "status", "train_median_s", "train_ci95_low_s", "train_ci95_high_s",
                 "infer_median_s", "infer_ci95_low_s", "infer_ci95_high_s", "fused_sites",
                 "fusable_sites", "activation_kernels",
                 "final_loss", "loss_vs_baseline", "params", "learned", "reason"]


def add_commands(subparsers: Any) -> None:
    """Add `scenario` and `capture` to an argparse subparsers object."""
    from profiling.experiments.guide_scenarios import KINDS, POLICIES
    from profiling.experiments.scenarios import MODELS

    sc = subparsers.add_parser(
        "scenario", help="ResNet block / Wide & Deep step time, fusion and loss per variant",
        description="Train and run a small Keras model with each ReLU variant; or run its "
                    "training step under MirroredStrategy / MultiWorkerMirroredStrategy.",
    )
    sc.add_argument("model", choices=MODELS)
    sc.add_argument("--variants", default="nn_relu,maximum,where",
                    help="comma-separated ids, params as id(name=value) (default: %(default)s)")
    sc.add_argument("--batch", type=int, default=16)
    sc.add_argument("--image-size", type=int, default=16, help="ResNet input height=width")
    sc.add_argument("--channels", type=int, default=16, help="ResNet conv channels")
    sc.add_argument("--blocks", type=int, default=2, help="ResNet residual blocks")
    sc.add_argument("--hidden", default="64,32", help="Wide & Deep tower widths")
    sc.add_argument("--kind", choices=("variants", *KINDS), default="variants",
                    help="variants: step time, fusion and loss per variant; the others are the "
                         "guide's scenarios (default: %(default)s)")
    sc.add_argument("--guide-block", action="store_true",
                    help="ResNet: the guide's block, conv -> BatchNorm -> activation")
    sc.add_argument("--policies", default=",".join(POLICIES),
                    help="mixed_precision: Keras policies (default: %(default)s)")
    sc.add_argument("--batches", default="8,16,32,64,128,256,512",
                    help="batch_sweep: batch sizes (default: %(default)s)")
    sc.add_argument("--int8-numel", type=int, default=1 << 20,
                    help="qat: elements for the int8 path timing (default: %(default)s)")
    sc.add_argument("--repeats", type=int, default=7, help="timed samples per step kind")
    sc.add_argument("--min-time", type=float, default=0.05,
                    help="seconds per timed sample (calls per sample chosen to fill it)")
    sc.add_argument("--train-steps", type=int, default=40, help="loss sanity-check steps")
    sc.add_argument("--train-samples", type=int, default=256, help="training set size")
    sc.add_argument("--no-trace", action="store_true", help="skip the fusion trace")
    sc.add_argument("--strategy", choices=("none", "mirrored", "multiworker"), default="none")
    sc.add_argument("--devices", default="",
                    help="mirrored: comma-separated devices, e.g. GPU:0,GPU:1 (default: all "
                         "GPUs, else --logical-cpus logical CPUs)")
    sc.add_argument("--logical-cpus", type=int, default=2)
    sc.add_argument("--workers", type=int, default=2, help="multiworker: worker processes")
    sc.add_argument("--communication", default="AUTO", help="multiworker: AUTO, RING or NCCL")
    sc.add_argument("--steps", type=int, default=5, help="distributed: timed steps")
    sc.add_argument("--timeout", type=float, default=300.0, help="distributed: seconds")
    sc.add_argument("--no-store", action="store_true", help="do not save the run")
    sc.add_argument("--json", action="store_true", help="print the result as JSON")
    sc.set_defaults(func=cmd_scenario)

    cap = subparsers.add_parser(
        "capture", help="profile running TF processes (tf.profiler server) over gRPC",
        description="Capture a trace from processes that called "
                    "tf.profiler.experimental.server.start(port).",
    )
    cap.add_argument("addresses", help="grpc://host:port[,grpc://host:port...]")
    cap.add_argument("--duration-ms", type=int, default=1000)
    cap.add_argument("--logdir", default=None, help="where the .xplane.pb files go")
    cap.add_argument("--timeout", type=float, default=None,
                     help="seconds for the whole capture (default: duration + 60)")
    cap.add_argument("--label", default="")
    cap.add_argument("--no-store", action="store_true", help="do not save the traces")
    cap.add_argument("--json", action="store_true", help="print the result as JSON")
    cap.set_defaults(func=cmd_capture)


def _error(message: str, code: int) -> int:
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
    return code


def _store(args: argparse.Namespace):
    if args.no_store:
        return None
    from profiling.cli.common import open_store

    return open_store(write=True)


def _print_frame(df: pd.DataFrame, columns: list[str]) -> None:
    shown = df[[c for c in columns if c in df]]
    print(shown.to_string(index=False) if len(shown) else "(no rows)")


def cmd_scenario(args: argparse.Namespace) -> int:
    from profiling.traces.xplane import quiet_stderr

    with quiet_stderr():  # TensorFlow's start-up log lines would bury our one-line errors
        import relu_impls  # imports TensorFlow: keep it out of `--help`
    from profiling.experiments.distributed import (
        DistributedConfig,
        DistributedError,
        run_distributed,
    )
    from profiling.experiments.scenarios import (
        ScenarioConfig,
        ScenarioError,
        parse_hidden,
        run_scenario,
    )

    variants = relu_impls.split_variant_list(args.variants)
    try:
        hidden = parse_hidden(args.hidden)
    except ScenarioError as error:
        return _error(f"--{error}", 2)
    try:
        if args.devices and args.strategy != "mirrored":
            raise ScenarioError(f"--devices {args.devices} with --strategy {args.strategy}; "
                                "--devices applies to --strategy mirrored")
        if args.strategy != "none":
            if args.kind != "variants":
                raise ScenarioError(f"--kind {args.kind} with --strategy {args.strategy}; a "
                                    "distributed run takes --kind variants")
            if len(variants) != 1:
                raise ScenarioError(f"--variants {args.variants!r}: a distributed run takes "
                                    "exactly one variant")
            cfg = DistributedConfig(
                strategy=args.strategy, model=args.model, variant=variants[0],
                devices=[d.strip() for d in args.devices.split(",") if d.strip()] or None,
                logical_cpus=args.logical_cpus, workers=args.workers,
                communication=args.communication.upper(), global_batch=args.batch,
                image_size=args.image_size, channels=args.channels, blocks=args.blocks,
                steps=args.steps, timeout_s=args.timeout,
            )
            cfg.validate()  # before the store is opened
            result = run_distributed(cfg, store=_store(args))
            if args.json:
                print_json({"run_id": result.run_id, "config": result.config,
                            "workers": result.workers})
            else:
                _print_frame(result.workers, [c for c in result.workers.columns
                                              if c != "xplane_path"])
                print(f"traces: {', '.join(p for p in result.workers['xplane_path'] if p)}")
                if result.run_id:
                    print(f"run {result.run_id} saved")
            return 0
        cfg = ScenarioConfig(
            model=args.model, variants=variants, batch=args.batch, image_size=args.image_size,
            channels=args.channels, blocks=args.blocks, hidden=hidden, repeats=args.repeats,
            min_time=args.min_time, train_steps=args.train_steps,
            train_samples=args.train_samples, trace=not args.no_trace,
            guide_block=args.guide_block,
        )
        cfg.validate()
        if args.kind != "variants":
            return _guide(args, cfg)
        result = run_scenario(cfg, store=_store(args))
    except ScenarioError as exc:
        return _error(str(exc), 2)
    except DistributedError as exc:
        return _error(str(exc), 1)
    if args.json:
        print_json({"run_id": result.run_id, "config": result.config,
                    "summary": result.summary, "fusion": result.fusion})
    else:
        _print_frame(result.summary, SUMMARY_SHOWN)
        if result.run_id:
            print(f"run {result.run_id} saved")
    return report_failures(result.summary)


def report_failures(summary: pd.DataFrame, noun: str = "variant") -> int:
    """Exit code of a scenario from its summary's status column (a row per `noun`): 1, with
    one line on stderr naming the first failure, when a row failed; else 0."""
    failed = summary[summary["status"] == "failed"]
    if not len(failed):
        return 0
    first = failed.iloc[0]
    count = f"every {noun}" if len(failed) == len(summary) else \
        f"{len(failed)} of {len(summary)} {noun}s"
    return _error(f"{count} failed; {first['label']}: {first['reason']}", 1)


def _guide(args: argparse.Namespace, cfg: Any) -> int:
    from profiling.experiments.guide_scenarios import GuideConfig, parse_int_list, run_guide
    from profiling.experiments.scenarios import ScenarioError

    try:
        gcfg = GuideConfig(kind=args.kind, base=cfg, batches=parse_int_list("--batches",
                                                                            args.batches),
                           policies=tuple(p.strip() for p in args.policies.split(",")
                                          if p.strip()), int8_numel=args.int8_numel)
        gcfg.validate()
    except ScenarioError as exc:
        return _error(str(exc), 2)
    result = run_guide(gcfg, store=_store(args))
    if args.json:
        print_json({"run_id": result.run_id, "kind": result.kind, "config": result.config,
                    "summary": result.shown(), "layers": result.layers, **result.extra})
    else:
        shown = result.shown()
        _print_frame(shown, [c for c in shown.columns if c not in ("params", "variant",
                                                                   "half_op_types")])
        if len(result.layers):
            print()
            _print_frame(result.layers, list(result.layers.columns))
        if result.run_id:
            print(f"run {result.run_id} saved")
    return report_failures(result.summary, "case")


def cmd_capture(args: argparse.Namespace) -> int:
    from profiling.experiments.capture import CaptureError, capture, check_arguments

    try:
        check_arguments(args.addresses, args.duration_ms, args.logdir, args.timeout)
    except CaptureError as exc:
        return _error(str(exc), 2)
    try:
        result = capture(args.addresses, args.duration_ms, logdir=args.logdir,
                         timeout_s=args.timeout, store=_store(args), label=args.label)
    except CaptureError as exc:
        return _error(str(exc), 1)
    if args.json:
        print_json({"run_id": result.run_id, "logdir": result.logdir,
                    "traces": result.traces})
    else:
        _print_frame(result.traces, ["address", "status", "event_count", "duration_us",
                                     "compute_us", "collective_us", "path", "reason"])
        if result.run_id:
            print(f"run {result.run_id} saved")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m profiling.cli.scenario")
    add_commands(parser.add_subparsers(dest="command", required=True))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed its one-line usage error
        return int(exc.code or 0)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
