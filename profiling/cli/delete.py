"""`python -m profiling delete RUN... [--yes]`: remove runs, their rows in every table and the
trace files no other run uses (`Store.delete_runs`). On a terminal it asks first; elsewhere it
needs --yes. A run still running is refused. Exit 0 deleted, 1 declined, 2 bad input."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_command(subparsers: Any) -> None:
    """Add `delete` to the main CLI's argparse subparsers."""
    d = subparsers.add_parser("delete", help="remove runs and the trace files only they use",
                              description="Delete runs (ids, unique prefixes or 'latest').")
    d.add_argument("runs", nargs="+", metavar="RUN")
    d.add_argument("--yes", action="store_true", help="do not ask (needed when not on a TTY)")
    d.set_defaults(func=cmd_delete)


def _confirmed(store: Any, run_ids: list[str]) -> bool:
    for run_id in run_ids:
        run = store.run(run_id)
        n = len(store.cases([run_id]))
        print(f"  {run_id}  {run['status']}  {n} cases  {run['label'] or ''}".rstrip(),
              file=sys.stderr)
    answer = input(f"Delete {len(run_ids)} run(s) and the trace files only they use? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def cmd_delete(args: argparse.Namespace) -> int:
    from profiling.cli.common import UsageError, open_store
    from profiling.storage.store import RunInUseError

    store = open_store(write=True)
    run_ids = list(dict.fromkeys(store.resolve_run(r) for r in args.runs))
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError("delete removes runs for good: add --yes (stdin is not a terminal)")
        try:
            if not _confirmed(store, run_ids):
                print("nothing deleted", file=sys.stderr)
                return 1
        except EOFError:
            print("nothing deleted", file=sys.stderr)
            return 1
    try:
        removed = store.delete_runs(run_ids)
    except RunInUseError as e:
        raise UsageError(str(e)) from None
    print(f"deleted {', '.join(run_ids)} ({len(removed)} trace files removed)")
    return 0
