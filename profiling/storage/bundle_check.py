"""Validation of a bundle's rows against the store's own schema, before anything is written.

Each column's expected type comes from its declared type (profiling.storage.schema), so a
column added by a later migration is checked without a change here: INTEGER/REAL columns take
finite JSON numbers or null, TEXT columns strings without NUL. On top of that, ids and hashes
must match their patterns, statuses come from the known sets, `*_json` columns hold JSON of
the shape their readers expect (storage.stored_json), and
trace file names are `<sha256><suffix>` with the row's own hash. `BundleError`, one line,
naming the table, row and column, on the first violation.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from profiling.storage.rows import Column
from profiling.storage.runs import CASE_STATUSES, RUN_STATUSES
from profiling.storage.stored_json import NOT_JSON, is_json_column, shape_problem
from profiling.storage.trace_store import TRACE_NAME

ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}")
SHA256 = re.compile(r"[0-9a-f]{64}")
ID_COLUMNS = ("run_id", "case_id", "baseline_case_id")
SHA_COLUMNS = ("sha256", "trace_sha256")
NOISE_VERDICTS = ("quiet", "noisy", "unknown")
MAX_TEXT_CHARS = 4 << 20
INT64 = 2**63


class BundleError(ValueError):
    """Not a usable bundle; str() is one line."""


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _number(value: Any, integer: bool) -> str | None:
    """Why value is not a finite number (an integral one when `integer`), or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "a finite number or null" if not integer else "an integer or null"
    if isinstance(value, int):
        return None if -INT64 <= value < INT64 else "a number within 64-bit range"
    if not math.isfinite(value):
        return "a finite number or null"
    if integer and (value != int(value) or not -INT64 <= value < INT64):
        return "an integer or null"
    return None


def check_value(table: str, column: Column, value: Any, row: Mapping[str, Any]) -> str | None:
    """Why `value` cannot go into table.column, or None when it can."""
    if value is None:
        return "a value (it may not be null)" if column.not_null or column.primary_key else None
    kind = column.affinity
    if kind in ("integer", "real", "numeric"):
        return _number(value, integer=kind == "integer")
    if not isinstance(value, str):
        return "a string or null" if kind == "text" else "a string, a finite number or null"
    if "\x00" in value:
        return "text without NUL characters"
    if len(value) > MAX_TEXT_CHARS:
        return f"text of at most {MAX_TEXT_CHARS} characters"
    name = column.name
    if name in ID_COLUMNS and not ID.fullmatch(value):
        return "an id of letters, digits and _.:- (at most 200 characters)"
    if name in SHA_COLUMNS and not SHA256.fullmatch(value):
        return "64 lowercase hex digits"
    if table == "traces" and name == "filename":
        m = TRACE_NAME.fullmatch(value)
        if not m or m.group("sha") != row.get("sha256"):
            return "<sha256 of the row>.<suffix> (no path)"
    enums = {("runs", "status"): RUN_STATUSES, ("cases", "status"): CASE_STATUSES,
             ("runs", "noise_verdict"): NOISE_VERDICTS}.get((table, name))
    if enums and value not in enums:
        return f"one of {', '.join(enums)}"
    if is_json_column(name) and (why := shape_problem(name, value)):
        return "JSON text" if why == NOT_JSON else f"JSON of the shape readers expect (it {why})"
    return None


def check_rows(tables: Mapping[str, Sequence[Mapping[str, Any]]],
               schema: Mapping[str, Sequence[Column]]) -> dict[str, list[dict]]:
    """The rows to insert, table by table (only the store's columns; runs exported mid-run
    become 'incomplete'); BundleError on the first bad value or missing required column."""
    out: dict[str, list[dict]] = {}
    for table, columns in schema.items():
        rows = []
        for i, row in enumerate(tables.get(table) or []):
            clean = {}
            for column in columns:
                if column.name not in row:
                    if (column.not_null and not column.has_default) or column.primary_key:
                        raise BundleError(f"bundle {table} row {i} has no {column.name}")
                    continue
                why = check_value(table, column, row[column.name], row)
                if why:
                    raise BundleError(f"bundle {table} row {i}: {column.name} "
                                      f"{_show(row[column.name])} is not {why}")
                clean[column.name] = row[column.name]
            if table == "runs" and clean.get("status") == "running":
                clean["status"] = "incomplete"  # its process is elsewhere: it will never finish
            rows.append(clean)
        out[table] = rows
    for table, key in (("runs", "run_id"), ("cases", "case_id"), ("traces", "sha256")):
        seen = [r[key] for r in out.get(table, [])]
        if len(seen) != len(set(seen)):
            raise BundleError(f"bundle {table} holds the same {key} twice")
    return out


def check_trace_files(files: Any, trace_rows: Sequence[Mapping[str, Any]]) -> None:
    """Embedded trace files: keyed by a sha256 of the traces table, under that row's file name,
    with base64 text; BundleError otherwise (the bytes are checked against the hash later)."""
    if not isinstance(files, Mapping):
        raise BundleError("bundle trace_files is not an object")
    names = {r["sha256"]: r.get("filename") for r in trace_rows}
    for sha, entry in files.items():
        if not SHA256.fullmatch(sha):
            raise BundleError(f"bundle trace file key {_show(sha)} is not 64 lowercase hex digits")
        if sha not in names:
            raise BundleError(f"bundle trace file {sha[:12]} has no row in the traces table")
        if not isinstance(entry, Mapping) or not isinstance(entry.get("data_b64"), str):
            raise BundleError(f"bundle trace file {sha[:12]} has no base64 data")
        name = entry.get("filename")
        if not isinstance(name, str) or not TRACE_NAME.fullmatch(name) or not \
                name.startswith(sha) or name != (names[sha] or name):
            raise BundleError(f"bundle trace file {sha[:12]} has a bad file name {_show(name)}")
