"""A store's rows as plain dicts, table by table, and back: what bundles (profiling.storage.bundle)
carry between stores, checked against `table_schema` before they go in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from profiling.storage import schema as t
from profiling.storage.database import plain
from profiling.storage.db import by_columns, upsert
from profiling.storage.trace_store import TraceStore


@dataclass(frozen=True)
class Column:
    """One column of a store table as SQLite declares it."""

    name: str
    declared: str
    not_null: bool
    has_default: bool
    primary_key: bool

    @property
    def affinity(self) -> str:
        """SQLite's type affinity rules (section 3.1 of "Datatypes In SQLite")."""
        kind = self.declared.upper()
        if "INT" in kind:
            return "integer"
        if any(k in kind for k in ("CHAR", "CLOB", "TEXT")):
            return "text"
        if any(k in kind for k in ("REAL", "FLOA", "DOUB")):
            return "real"
        return "numeric" if kind else "any"


def table_schema(tables: Sequence[str] = t.BUNDLE_TABLES) -> dict[str, list[Column]]:
    """Each table's columns (`Column`), from the declared schema."""
    dialect = sqlite.dialect()
    return {name: [Column(name=c.name, declared=c.type.compile(dialect=dialect),
                          not_null=not c.nullable and not c.primary_key,
                          has_default=c.server_default is not None, primary_key=c.primary_key)
                   for c in t.TABLES[name].columns] for name in tables}


def _of_runs(table: sa.Table, ids: list[str]) -> sa.ColumnElement:
    """The rows of `table` that belong to these runs."""
    c = t.cases.c
    if "run_id" in table.c:
        return table.c.run_id.in_(ids)
    if table is t.traces:
        return table.c.sha256.in_(sa.select(c.trace_sha256).where(c.run_id.in_(ids)))
    return table.c.case_id.in_(sa.select(c.case_id).where(c.run_id.in_(ids)))


def export_rows(store: TraceStore, run_ids: Sequence[str]) -> dict[str, list[dict]]:
    """Every stored row of these runs, table by table (raw columns, for bundles)."""
    ids = list(run_ids)
    out = {}
    with store.snapshot():  # a run still writing cases must not add samples of unexported cases
        for name in t.BUNDLE_TABLES:
            table = t.TABLES[name]
            df = store.query(sa.select(table).where(_of_runs(table, ids)))
            out[name] = [{k: plain(v) for k, v in r.items()} for r in df.to_dict("records")]
    return out


def import_rows(store: TraceStore, tables: Mapping[str, Sequence[Mapping]],
                trace_data: Mapping[str, bytes] | None = None) -> None:
    """Insert bundle rows in ONE transaction: all of them or none. Unknown columns are ignored;
    a run id already present is an error (ValueError). `trace_data` (sha256 -> bytes) goes into
    trace_blobs in the same transaction where the store keeps trace bytes in its database."""

    def write(conn: sa.Connection) -> None:
        store.store_trace_blobs(conn, trace_data or {})
        for name in t.BUNDLE_TABLES:
            table = t.TABLES[name]
            rows = [{k: plain(v) for k, v in row.items() if k in table.c}
                    for row in tables.get(name, [])]
            if name == "runs":
                ids = [r["run_id"] for r in rows]
                taken = conn.execute(sa.select(t.runs.c.run_id).where(t.runs.c.run_id.in_(ids))
                                     ).scalars().first()
                if taken is not None:
                    raise ValueError(f"run {taken} is already in the store")
            if name == "traces":  # content-addressed: one already there is the same trace
                upsert(conn, table, rows, replace=False)
            else:
                for group in by_columns(rows):
                    conn.execute(table.insert(), group)

    store._write(write)
