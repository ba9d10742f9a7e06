"""`python -m profiling claims [--json]`: the guide's claims, measured, with verdicts.

Exit codes: 0 ok, 2 bad input. See profiling.experiments.claims for what is measured and how it is judged.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from profiling.experiments.claims import GUIDE_NUMEL


def add_command(subparsers: Any) -> None:
    """Add `claims` to an argparse subparsers object."""
    c = subparsers.add_parser(
        "claims", help="the guide's claims: measured answer and verdict for each",
        description="Measure tf.maximum vs tf.where and the custom op vs tf.nn.relu now (paired "
                    "rounds, eager as the guide measured them, then tf.function); judge sparsity, batch size and mixed precision from the newest "
                    "stored guide scenarios (running small ones when missing).",
    )
    c.add_argument("--numel", type=int, default=GUIDE_NUMEL,
                   help="elements for the timing claims (default: %(default)s, the guide's)")
    c.add_argument("--rounds", type=int, default=15, help="paired rounds (default: %(default)s)")
    c.add_argument("--min-time", type=float, default=0.05, help="seconds per timed sample")
    c.add_argument("--no-run-missing", action="store_true",
                   help="do not run a missing guide scenario; report it as not measured")
    c.add_argument("--no-store", action="store_true", help="do not save the claims run")
    c.add_argument("--stored", action="store_true",
                   help="print the newest stored claims run instead of measuring")
    c.add_argument("--json", action="store_true", help="print the table as JSON")
    c.add_argument("--markdown", action="store_true", help="print a Markdown table")
    c.set_defaults(func=cmd_claims)


def cmd_claims(args: argparse.Namespace) -> int:
    if not 1 <= args.numel <= 1 << 28:
        return _error(f"--numel {args.numel}; accepted: 1..268435456")
    if not 6 <= args.rounds <= 1000:
        return _error(f"--rounds {args.rounds}; accepted: 6..1000 (a 95% CI needs 6)")
    if not 0 <= args.min_time <= 10:
        return _error(f"--min-time {args.min_time}; accepted: seconds in [0, 10]")
    from profiling.cli.common import open_store
    from profiling.experiments.claims import claims_table, stored_claims
    from profiling.presentation.claims import shown

    store = open_store(write=not args.stored)
    if args.stored:
        found = stored_claims(store)
        if found is None:
            return _error("no stored claims run; run `python -m profiling claims` first")
        table = found[1]
    else:
        table = claims_table(store, numel=args.numel, rounds=args.rounds,
                             min_time=args.min_time, run_missing=not args.no_run_missing,
                             save=not args.no_store)
    if args.json:
        print(json.dumps(json.loads(table.to_json(orient="records")), indent=1))
    elif args.markdown:
        from relu_impls.semantics import to_markdown

        print(to_markdown(shown(table)))
    else:
        from profiling.presentation.units import MISSING

        for r in shown(table).itertuples():
            speedup = "" if r.speedup == MISSING else f"{r.speedup} = "
            print(f"[{r.verdict}] {r.claim}\n    {speedup}{r.measured}  ({r.source})")
    return 0


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2
