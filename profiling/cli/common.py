"""What every `python -m profiling` subcommand module shares: the usage error (exit 2), the
store it opens and how a table is printed. Sub-CLIs (scenario_cli, ...) import these from here, not from profiling.cli.main,
which imports them: no import cycle between the main CLI and its parts."""

from __future__ import annotations

from typing import Any


class UsageError(Exception):
    """Bad input from the command line; exit 2."""


def open_store(write: bool = False) -> Any:
    """The store of the current data dir ($RELU_LAB_DATA or ./.relu_lab); a command that
    writes (`write`) first cleans up after dead processes (Store.recover)."""
    from profiling.storage.store import Store

    store = Store()
    if write:
        store.recover()
    return store


def print_table(df: Any) -> None:
    """A DataFrame as plain text on stdout, '(none)' when empty."""
    import pandas as pd

    if df.empty:
        print("(none)")
        return
    with pd.option_context("display.width", 200, "display.max_columns", 40,
                           "display.max_colwidth", 60):
        print(df.to_string(index=False))
