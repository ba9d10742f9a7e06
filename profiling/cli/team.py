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
        description="One case across runs over time, per machine; 'slower'/'faster' where the "
                    "ratio of two consecutive medians has a 95% CI wholly beyond 1. Keys: any cases column (variant, shape, "
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
    from profiling.presentation.units import format_time, format_time_range
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
        "median": history.median_s.map(format_time),
        "CI95": [format_time_range(lo, hi) for lo, hi in
                 zip(history.ci95_low_s, history.ci95_high_s, strict=True)],
        "change": history.change.str.upper()})
    print(view.to_string(index=False))
    print(f"{int((history.change != '').sum())} change(s) where the ratio to the previous run "
          "has a 95% CI wholly beyond 1")
    return 0


def _records(df: pd.DataFrame) -> list[dict]:
    return json.loads(df.to_json(orient="records"))


def _conflict(run_id: str, differ: list[str], others: int = 0) -> BundleError:
    shown = ", ".join(differ[:6]) + (f" and {len(differ) - 6} more" if len(differ) > 6 else "")
    more = f" (and {others} more run(s) like it)" if others else ""
    return BundleError(f"run {run_id}: the target holds a different run under this id "
                       f"({shown} differ){more}")


def migrate_store(source: str, target: str, log: Any = None) -> dict[str, Any]:
    """Copy every run of `source` not yet in `target` (rows and trace bytes, through the
    validated bundle import: each run all or nothing), then verify that every run's rows
    (storage.run_digest: their content, not their count) and traces are the same in both.
    Returns {'copied', 'skipped', 'tables'}; BundleError (one line) when a run already in the
    target differs from the source's (then nothing is copied) or a copy does not verify."""
    from profiling.storage.bundle import export_bundle, import_bundle
    from profiling.storage.db import sqlite_path, store_url
    from profiling.storage.run_digest import differences, run_digests
    from profiling.storage.store import BUNDLE_TABLES, Store, export_rows, table_schema

    if store_url(source) is None and not sqlite_path(source).exists():
        raise BundleError(f"no store at {sqlite_path(source)} (sqlite:///relative/path or "
                          "sqlite:////absolute/path)")
    src, dst = Store(source), Store(target)
    try:
        dst.recover()
        # both stores are at the declared schema once opened: every declared column counts
        columns = {t: {c.name for c in cols} for t, cols in table_schema().items()}

        def differ(run_id: str) -> list[str]:
            return differences(run_digests(export_rows(src, [run_id]), columns),
                               run_digests(export_rows(dst, [run_id]), columns))

        have = set(dst.list_runs().run_id)
        run_ids = list(reversed(src.list_runs().run_id))  # oldest first
        conflicts = {r: d for r in run_ids if r in have and (d := differ(r))}
        if conflicts:  # before anything is written: a refused migration copies nothing
            first = next(iter(conflicts))
            raise _conflict(first, conflicts[first], len(conflicts) - 1)
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
            rows = export_rows(src, [run_id])
            if run_id in copied and (d := differ(run_id)):
                raise BundleError(f"run {run_id} did not arrive as it is in the source "
                                  f"({', '.join(d[:6])} differ)")
            for table in BUNDLE_TABLES:
                totals[table] += len(rows[table])
            for row in rows["traces"]:
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
