"""Result store: SQLite (WAL) plus content-addressed trace files beside it, or PostgreSQL.

Data dir: $RELU_LAB_DATA or ./.relu_lab ; database <data>/relu_lab.sqlite ; traces <data>/traces/.
$RELU_LAB_STORE (or a Store argument) = postgresql://user@host:port/db opens a shared server
instead: the same schema (profiling.storage.schema) and the same queries; trace bytes live in
its trace_blobs table and are copied on first use into a per-user cache
($RELU_LAB_TRACE_CACHE or ~/.cache/relu_lab/traces/<store>), which then serves as the traces dir.

`Store` is a facade: writing runs (profiling.storage.runs), reading them
(profiling.storage.queries) and trace files (profiling.storage.trace_store). Opening one migrates
the schema (profiling.storage.migrations) and changes nothing else; `recover()` cleans up after
dead processes, and the commands that write call it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from profiling import settings
from profiling.storage.db import enable_wal, engine_for, sqlite_engine, sqlite_path, store_url
from profiling.storage.migrations import upgrade
from profiling.storage.queries import RunQueries
from profiling.storage.rows import Column, export_rows, import_rows, table_schema
from profiling.storage.runs import (
    CASE_STATUSES,
    RUN_STATUSES,
    RunIdError,
    RunInUseError,
    RunWrites,
    UnknownRunError,
    ambiguous_prefix,
    new_run_id,
    now_iso,
)
from profiling.storage.schema import (
    BREAKDOWN_COLUMNS,
    BUNDLE_TABLES,
    CALIBRATION_COLUMNS,
    CASE_COLUMNS,
    FUSION_COLUMNS,
    OP_STATS_COLUMNS,
    ROOF_COLUMNS,
)
from profiling.storage.trace_store import TRACE_NAME, trace_cache_dir

DB_NAME = "relu_lab.sqlite"

__all__ = [
    "BREAKDOWN_COLUMNS", "BUNDLE_TABLES", "CALIBRATION_COLUMNS", "CASE_COLUMNS", "CASE_STATUSES",
    "DB_NAME", "FUSION_COLUMNS", "OP_STATS_COLUMNS", "ROOF_COLUMNS", "RUN_STATUSES", "TRACE_NAME",
    "Column", "RunIdError", "RunInUseError", "Store", "UnknownRunError", "ambiguous_prefix",
    "default_data_dir", "export_rows", "import_rows", "new_run_id", "now_iso", "table_schema",
    "trace_cache_dir",
]


def default_data_dir() -> Path:
    """`$RELU_LAB_DATA`, else ./.relu_lab (profiling.settings.data_dir)."""
    return settings.data_dir()


class Store(RunWrites, RunQueries):
    """Handle on one data dir. `path` may be the data dir or the .sqlite file itself, or a
    postgresql:// URL; without one, $RELU_LAB_STORE, else the default data dir."""

    def __init__(self, path: str | os.PathLike | None = None, busy_timeout_s: float = 30.0):
        self.url = store_url(path)
        if self.url:
            engine = engine_for(self.url)
            self.db_path = None
            self.data_dir = trace_cache_dir(self.url)
            self.traces_dir = self.data_dir
        else:
            p = sqlite_path(path) or default_data_dir()
            if p.suffix in (".sqlite", ".db"):
                self.db_path, self.data_dir = p, p.parent
            else:
                self.db_path, self.data_dir = p / DB_NAME, p
            self.traces_dir = self.data_dir / "traces"
            self.traces_dir.mkdir(parents=True, exist_ok=True)
            engine = sqlite_engine(self.db_path, busy_timeout_s)
        super().__init__(engine)
        try:
            if not self.url:
                self._retry(lambda: enable_wal(engine))
            self._retry(lambda: upgrade(engine))
        except BaseException:
            engine.dispose()
            raise
        # a PostgreSQL store's trace cache only once the server answered and the schema is
        # migrated: a refused URL leaves no empty folder
        self.traces_dir.mkdir(parents=True, exist_ok=True)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
