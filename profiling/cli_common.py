"""What every `python -m profiling` subcommand module shares: the usage error (exit 2) and the
store it opens. Sub-CLIs (scenario_cli, ...) import these from here, not from profiling.cli,
which imports them: no import cycle between the main CLI and its parts."""

from __future__ import annotations

from typing import Any


class UsageError(Exception):
    """Bad input from the command line; exit 2."""


def open_store() -> Any:
    """The store of the current data dir ($RELU_LAB_DATA or ./.relu_lab)."""
    from profiling.store import Store

    return Store()
