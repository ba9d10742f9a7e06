"""`python -m profiling history CASE-FILTER` and `python -m profiling migrate-store`.

`add_commands(subparsers)` registers both on the main CLI; each `func(args)` returns the exit
code: 0 ok, 2 bad input (a one-line error).

Examples:
  python -m profiling history variant=nn_relu,shape=1000000,mode=eager
  python -m profiling history variant=nn_relu,shape=1000000,mode=eager,machine=ci --json
  python -m profiling migrate-store --from sqlite:///.relu_lab --to postgresql://me@db:5432/relu
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import pandas as pd

from profiling.storage.bundle_check import BundleError


def add_commands(subparsers: Any) -> None:
    """Add `history` and `migrate-store` to an argparse subparsers object."""
    h = subparsers.add_parser(
        "history", help="one case's median and CI across runs, per machine",
        description="One case across runs over time, per machine; 'slower'/'faster' where two "
                    "consecutive CIs do not overlap. Keys: any cases column (variant, shape, "
                    "dtype, device, threads, mode, pass, ...) and machine, run_label, host, "
                    "status, commit (a prefix).")
    h.add_argument("filter", metavar="CASE-FILTER",
                   help="e.g. variant=nn_relu,shape=1000000,mode=eager")
    h.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    h.set_defaults(func=cmd_history)

    m = subparsers.add_parser(
        "migrate-store", help="copy every run and trace into another store, verified",
        description="Copy every run (rows and trace bytes) from one store into another, run by "
                    "run (each all or nothing), then check both hold the same rows.")
    m.add_argument("--from", dest="source", required=True, help="sqlite:///path or postgresql://")
    m.add_argument("--to", dest="target", required=True, help="postgresql://... or sqlite:///path")
    m.set_defaults(func=cmd_migrate_store)


def cmd_history(args: argparse.Namespace) -> int:
    from profiling.presentation.history import case_history, parse_filter
    from profiling.storage.store import Store

    filters = parse_filter(args.filter)
    history = case_history(Store(), filters)
    if args.json:
        print(json.dumps({"filter": filters, "points": _records(history),
                          "changes": int((history.change != "").sum())}, default=str))
        return 0
    if history.empty:
        print("no run holds a successful case matching the filter")
        return 0
    view = pd.DataFrame({
        "machine": history.machine, "run": history.run_id, "time": history.created_at,
        "commit": history["commit"].fillna("").str[:10],
        "median": (history.median_s * 1e6).map(lambda v: f"{v:.2f} µs"),
        "CI95": [f"[{lo * 1e6:.2f}, {hi * 1e6:.2f}]" for lo, hi in
                 zip(history.ci95_low_s, history.ci95_high_s, strict=True)],
        "change": history.change.str.upper()})
    print(view.to_string(index=False))
    print(f"{int((history.change != '').sum())} change(s) where consecutive CIs do not overlap")
    return 0


def _records(df: pd.DataFrame) -> list[dict]:
    return json.loads(df.to_json(orient="records"))


def migrate_store(source: str, target: str, log: Any = None) -> dict[str, Any]:
    """Copy every run of `source` not yet in `target` (rows and trace bytes, through the
    validated bundle import: each run all or nothing), then verify that every run's rows and
    traces are the same in both. Returns {'copied', 'skipped', 'tables'}; BundleError (one line)
    when a count differs."""
    from profiling.storage.bundle import export_bundle, import_bundle
    from profiling.storage.db import sqlite_path, store_url
    from profiling.storage.store import BUNDLE_TABLES, Store, export_rows

    if store_url(source) is None and not sqlite_path(source).exists():
        raise BundleError(f"no store at {sqlite_path(source)} (sqlite:///relative/path or "
                          "sqlite:////absolute/path)")
    src, dst = Store(source), Store(target)
    try:
        dst.recover()
        have = set(dst.list_runs().run_id)
        run_ids = list(reversed(src.list_runs().run_id))  # oldest first
        copied = []
        for run_id in run_ids:
            if run_id in have:
                continue
            import_bundle(dst, export_bundle(src, [run_id], max_trace_bytes=1 << 62))
            copied.append(run_id)
            if log:
                log(f"copied {run_id}")
        totals = dict.fromkeys(BUNDLE_TABLES, 0)
        for run_id in run_ids:
            a, b = export_rows(src, [run_id]), export_rows(dst, [run_id])
            for table in BUNDLE_TABLES:
                if len(a[table]) != len(b[table]):
                    raise BundleError(f"run {run_id}: {table} has {len(a[table])} rows in the "
                                      f"source but {len(b[table])} in the target")
                totals[table] += len(b[table])
            for row in a["traces"]:
                there = dst.trace_file(str(row["filename"]))
                if src.trace_file(str(row["filename"])) is not None and there is None:
                    raise BundleError(f"trace {row['sha256'][:12]} of run {run_id} did not "
                                      "arrive")
        return {"copied": copied, "skipped": len(run_ids) - len(copied), "tables": totals}
    finally:
        src.close()
        dst.close()


def cmd_migrate_store(args: argparse.Namespace) -> int:
    result = migrate_store(args.source, args.target,
                           log=lambda line: print(line, file=sys.stderr))
    counts = ", ".join(f"{n} {t}" for t, n in result["tables"].items())
    print(f"copied {len(result['copied'])} run(s), {result['skipped']} already there; "
          f"verified: {counts}")
    return 0
