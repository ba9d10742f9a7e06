"""What one run's stored rows hold, as digests that are the same on SQLite and PostgreSQL:
migrate-store compares them to tell the run it copied from another run under the same id.

Values are canonical before hashing (numbers as floats, booleans as 0/1, NULL apart from
text), rows are sorted (row order is not content), and only the columns both stores have count
(a newer schema may add some). A run exported while running arrives as 'incomplete', so
'running' reads as 'incomplete'. A trace row is shared by every run that uses the file: when the
store first saw it (traces.created_at) is not the run's content.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

NOT_CONTENT = {"traces": {"created_at"}}


def _canonical(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, (int, float)):
        return repr(float(value))
    return json.dumps(str(value))


def _sha(parts: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(sorted(parts)).encode()).hexdigest()


def run_digests(rows: Mapping[str, Sequence[Mapping[str, Any]]],
                columns: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """'table' -> sha256 of the run's whole rows in that table, and 'table.column' -> sha256
    of that column's values, for the tables and columns in `columns` (`rows` as
    store.export_rows gives them for one run)."""
    out = {}
    for table, names in columns.items():
        names = sorted(set(names) - NOT_CONTENT.get(table, set()))
        table_rows = [dict(r) for r in rows.get(table, [])]
        if table == "runs":
            for r in table_rows:
                r["status"] = "incomplete" if r.get("status") == "running" else r.get("status")
        cells = [[_canonical(r.get(c)) for c in names] for r in table_rows]
        out[table] = _sha("\t".join(row) for row in cells)
        for i, name in enumerate(names):
            out[f"{table}.{name}"] = _sha(row[i] for row in cells)
    return out


def differences(a: Mapping[str, str], b: Mapping[str, str]) -> list[str]:
    """What two run_digests of the same columns disagree on: 'table.column' names, or a
    table's name when its columns agree one by one but not row by row."""
    tables = [k for k in a if "." not in k and a[k] != b.get(k)]
    out = []
    for table in tables:
        cols = [k for k in a if k.startswith(f"{table}.") and a[k] != b.get(k)]
        out.extend(cols or [table])
    return out
