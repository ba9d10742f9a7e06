"""`python -m profiling scenario ...` and `python -m profiling capture grpc://...`.

`add_commands(subparsers)` registers both on the main CLI's argparse subparsers; each command's
`func(args)` returns the exit code: 0 ok, 1 the run or capture failed, 2 bad input.
`python -m profiling.scenario_cli ...` runs them without the main CLI.

Examples:
  python -m profiling scenario resnet --variants nn_relu,maximum,where,"leaky(alpha=0.2)"
  python -m profiling scenario wide_deep --variants nn_relu,adaptive --repeats 9
  python -m profiling scenario resnet --strategy mirrored --logical-cpus 2
  python -m profiling scenario resnet --strategy multiworker --workers 2 --communication RING
  python -m profiling capture grpc://127.0.0.1:6009,grpc://127.0.0.1:6010 --duration-ms 2000
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import pandas as pd

SUMMARY_SHOWN = ["label", "status", "train_median_s", "train_iqr_s", "infer_median_s",
                 "infer_iqr_s", "fused_sites", "fusable_sites", "activation_kernels",
                 "final_loss", "loss_vs_baseline", "params", "learned", "reason"]


def add_commands(subparsers: Any) -> None:
    """Add `scenario` and `capture` to an argparse subparsers object."""
    from profiling.scenarios import MODELS

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
    sc.add_argument("--repeats", type=int, default=7, help="timed samples per step kind")
    sc.add_argument("--number", type=int, default=3, help="calls per timed sample")
    sc.add_argument("--train-steps", type=int, default=40, help="loss sanity-check steps")
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
    from profiling.store import Store

    return Store()


def _print_frame(df: pd.DataFrame, columns: list[str]) -> None:
    shown = df[[c for c in columns if c in df]]
    print(shown.to_string(index=False) if len(shown) else "(no rows)")


def cmd_scenario(args: argparse.Namespace) -> int:
    from profiling.traces.xplane import quiet_stderr

    with quiet_stderr():  # TensorFlow's start-up log lines would bury our one-line errors
        import relu_impls  # imports TensorFlow: keep it out of `--help`
    from profiling.distributed import DistributedConfig, DistributedError, run_distributed
    from profiling.scenarios import ScenarioConfig, ScenarioError, parse_hidden, run_scenario

    variants = relu_impls.split_variant_list(args.variants)
    try:
        hidden = parse_hidden(args.hidden)
    except ScenarioError as error:
        return _error(f"--{error}", 2)
    try:
        if args.strategy != "none":
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
            result = run_distributed(cfg, store=_store(args))
            if args.json:
                print(json.dumps({"run_id": result.run_id, "config": result.config,
                                  "workers": result.workers.to_dict("records")}, default=str))
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
            number=args.number, train_steps=args.train_steps, trace=not args.no_trace,
        )
        cfg.validate()
        result = run_scenario(cfg, store=_store(args))
    except ScenarioError as exc:
        return _error(str(exc), 2)
    except DistributedError as exc:
        return _error(str(exc), 1)
    if args.json:
        print(json.dumps({"run_id": result.run_id, "config": result.config,
                          "summary": result.summary.to_dict("records"),
                          "fusion": result.fusion.to_dict("records")}, default=str))
    else:
        _print_frame(result.summary, SUMMARY_SHOWN)
        if result.run_id:
            print(f"run {result.run_id} saved")
    return 0 if (result.summary["status"] != "failed").all() else 1


def cmd_capture(args: argparse.Namespace) -> int:
    from profiling.capture import CaptureError, capture, parse_addresses

    try:
        parse_addresses(args.addresses)
    except CaptureError as exc:
        return _error(str(exc), 2)
    if args.timeout is not None and args.timeout <= 0:
        return _error(f"--timeout {args.timeout}; accepted: seconds > 0", 2)
    if not 1 <= args.duration_ms <= 600_000:
        return _error(f"--duration-ms {args.duration_ms}; accepted: 1..600000", 2)
    try:
        result = capture(args.addresses, args.duration_ms, logdir=args.logdir,
                         timeout_s=args.timeout, store=_store(args), label=args.label)
    except CaptureError as exc:
        return _error(str(exc), 1)
    if args.json:
        print(json.dumps({"run_id": result.run_id, "logdir": result.logdir,
                          "traces": result.traces.to_dict("records")}, default=str))
    else:
        _print_frame(result.traces, ["address", "status", "event_count", "duration_us",
                                     "compute_us", "collective_us", "path", "reason"])
        if result.run_id:
            print(f"run {result.run_id} saved")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m profiling.scenario_cli")
    add_commands(parser.add_subparsers(dest="command", required=True))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed its one-line usage error
        return int(exc.code or 0)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
