"""`python -m profiling delete RUN... [--yes] [--all-matching]`: remove runs, their rows in every
table and the trace files no other run uses (`Store.delete_runs`). It lists what it will delete
first; on a terminal it then asks, elsewhere it needs --yes. A blank id, a prefix of several runs
(unless --all-matching) and a run still running are refused. Exit 0 deleted, 1 declined, 2 bad
input."""

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
    d.add_argument("--all-matching", action="store_true",
                   help="a prefix deletes every run it matches (default: it must match one)")
    d.set_defaults(func=cmd_delete)


def _list(store: Any, run_ids: list[str]) -> None:
    """What is about to be deleted, one line per run on stderr; UsageError (and nothing
    printed) when one of them is still running."""
    from profiling.cli.common import UsageError
    from profiling.storage.store import RunInUseError

    store.mark_stale_runs()
    runs = [store.run(run_id) for run_id in run_ids]
    for run in runs:
        if run["status"] == "running":
            raise UsageError(str(RunInUseError(run["run_id"])))
    print(f"to delete: {len(run_ids)} run(s)", file=sys.stderr)
    for run in runs:
        n = len(store.cases([run["run_id"]]))
        print(f"  {run['run_id']}  {run['status']}  {n} cases  {run['label'] or ''}".rstrip(),
              file=sys.stderr)


def _confirmed(run_ids: list[str]) -> bool:
    answer = input(f"Delete {len(run_ids)} run(s) and the trace files only they use? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def _resolve(store: Any, text: str, all_matching: bool) -> list[str]:
    """The runs one argument names: exactly one, or with `all_matching` every run of a
    prefix; UnknownRunError/RunIdError (one line) otherwise."""
    from profiling.storage.store import UnknownRunError

    if not all_matching:
        return [store.resolve_run(text)]
    matches = [run_id for run_id, _ in store.matching_runs(text)]
    if not matches:
        raise UnknownRunError(text)
    return matches


def cmd_delete(args: argparse.Namespace) -> int:
    from profiling.cli.common import UsageError, open_store
    from profiling.storage.store import RunInUseError

    store = open_store(write=True)
    run_ids = list(dict.fromkeys(r for text in args.runs
                                 for r in _resolve(store, text, args.all_matching)))
    if args.yes or sys.stdin.isatty():
        _list(store, run_ids)
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError("delete removes runs for good: add --yes (stdin is not a terminal)")
        try:
            if not _confirmed(run_ids):
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
