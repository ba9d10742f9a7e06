"""Exported bundles: a run (or several) with its cases, samples, analyses, environment and,
optionally, its trace files, as one JSON document; and CSV of the cases table.

An import is all or nothing: the file is read within MAX_BUNDLE_BYTES (regular files only),
every row is checked against the store's schema (profiling.storage.bundle_check), the trace files are
written first, then all rows in one transaction; on any failure the files this import wrote are
removed again, so the store is left exactly as it was.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from profiling.files import FileRefused, read_bounded
from profiling.storage.bundle_check import BundleError, check_rows, check_trace_files
from profiling.storage.db import db_errors
from profiling.storage.store import (
    BUNDLE_TABLES,
    Store,
    export_rows,
    import_rows,
    now_iso,
    table_schema,
)
from profiling.traces.model import Trace, TraceError

FORMAT = "relu_lab_bundle"
VERSION = 1
MAX_EMBEDDED_TRACE_BYTES = 64 << 20
MAX_BUNDLE_BYTES = 256 << 20  # the file as given (gzip or not): 64 MiB of traces in base64 + rows


def export_bundle(store: Store, run_ids: Sequence[str], include_traces: bool = True,
                  max_trace_bytes: int = MAX_EMBEDDED_TRACE_BYTES) -> dict:
    """The runs as a JSON-able dict; trace files embedded (base64) up to max_trace_bytes total."""
    tables = export_rows(store, run_ids)
    traces: dict[str, dict] = {}
    total = 0
    if include_traces:
        for row in tables["traces"]:
            path = store.trace_file(str(row["filename"]))
            if path is not None and total + path.stat().st_size <= max_trace_bytes:
                data = path.read_bytes()
                total += len(data)
                traces[row["sha256"]] = {"filename": row["filename"],
                                         "data_b64": base64.b64encode(data).decode()}
    return {"format": FORMAT, "version": VERSION, "exported_at": now_iso(),
            "run_ids": list(run_ids), "tables": tables, "trace_files": traces}


def export_json(store: Store, run_ids: Sequence[str], path: str | os.PathLike) -> Path:
    path = Path(path)
    path.write_text(json.dumps(export_bundle(store, run_ids), default=str))
    return path


def export_csv(store: Store, run_ids: Sequence[str], path: str | os.PathLike) -> Path:
    """The cases table (store.cases columns) as CSV."""
    path = Path(path)
    store.cases(run_ids).to_csv(path, index=False)
    return path


def _check(obj: Any) -> dict:
    if not isinstance(obj, Mapping) or obj.get("format") != FORMAT:
        raise BundleError("not a ReLU Lab bundle (missing format: relu_lab_bundle)")
    if obj.get("version") != VERSION:
        raise BundleError(f"unsupported bundle version {obj.get('version')!r}; this reads {VERSION}")
    tables = obj.get("tables")
    if not isinstance(tables, Mapping) or not isinstance(tables.get("runs"), list):
        raise BundleError("bundle has no tables.runs list")
    for name in BUNDLE_TABLES:
        rows = tables.get(name, [])
        if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
            raise BundleError(f"bundle table {name} is not a list of objects")
    if not all(isinstance(r.get("run_id"), str) for r in tables["runs"]):
        raise BundleError("bundle run without a run_id")
    run_ids = {r["run_id"] for r in tables["runs"]}
    for r in tables.get("cases", []):
        if not isinstance(r.get("case_id"), str) or not isinstance(r.get("run_id"), str) \
                or r.get("run_id") not in run_ids:
            raise BundleError("bundle case without a case_id or with a run not in the bundle")
    case_ids = {r["case_id"] for r in tables.get("cases", [])}
    for name, key, owners in (("samples", "case_id", case_ids), ("op_stats", "case_id", case_ids),
                              ("breakdown", "case_id", case_ids), ("fusion", "run_id", run_ids),
                              ("calibration", "run_id", run_ids),
                              ("roof", "run_id", run_ids)):
        if any(not isinstance(r.get(key), str) or r.get(key) not in owners  # touch other runs
               for r in tables.get(name, [])):
            raise BundleError(f"bundle {name} row whose {key} is not in the bundle")
    for r in tables.get("traces", []):
        sha, name = str(r.get("sha256", "")), str(r.get("filename", ""))
        if not name.startswith(sha) or len(sha) != 64 or "/" in name or "\\" in name:
            raise BundleError(f"bundle trace row has a bad file name {name[:80]!r}")
    files = obj.get("trace_files", {})
    if not isinstance(files, Mapping):
        raise BundleError("bundle trace_files is not an object")
    return dict(obj)


def _decoded_traces(obj: Mapping) -> dict[str, tuple[str, bytes]]:
    out = {}
    for sha, entry in (obj.get("trace_files") or {}).items():
        try:
            data = base64.b64decode(entry["data_b64"], validate=True)
            name = Path(str(entry["filename"])).name
        except (KeyError, TypeError, binascii.Error):
            raise BundleError(f"bundle trace {sha[:12]} is not valid base64 data") from None
        if hashlib.sha256(data).hexdigest() != sha:
            raise BundleError(f"bundle trace {sha[:12]} does not match its sha256")
        out[sha] = (name, data)
    return out


def read_bundle(path: str | os.PathLike) -> dict:
    """Decode and check a bundle file (JSON, optionally gzip); BundleError/TraceError one-line."""
    from profiling.traces import TraceError as _TE
    from profiling.traces.chrome import decode_json

    try:
        data = read_bounded(path, MAX_BUNDLE_BYTES, "bundle")
    except FileRefused as e:
        raise BundleError(str(e)) from None
    try:
        obj = decode_json(data)
    except _TE as e:
        raise BundleError(str(e)) from None
    return _check(obj)


def import_bundle(store: Store, path_or_obj: str | os.PathLike | Mapping) -> list[str]:
    """Add the bundle's runs to the store; returns their run ids. BundleError (one line) when
    anything in the bundle is invalid or collides with the store, and then the store's rows and
    trace files are exactly what they were. Runs exported mid-run are stored as 'incomplete'."""
    obj = _check(path_or_obj) if isinstance(path_or_obj, Mapping) else read_bundle(path_or_obj)
    tables = check_rows(obj["tables"], table_schema())
    check_trace_files(obj.get("trace_files", {}), tables["traces"])
    traces = _decoded_traces(obj)
    written: list[Path] = []
    try:
        for name, data in traces.values():
            dest = store.traces_dir / name  # name checked: <sha256>.<suffix>, no path
            if not dest.exists():  # content-addressed: a file already there is this one
                store.write_trace_file(name, data)
                written.append(dest)
        import_rows(store, tables, {sha: data for sha, (_, data) in traces.items()})
    except BaseException as e:
        for path in written:
            path.unlink(missing_ok=True)
        if isinstance(e, ValueError):
            raise BundleError(str(e)) from None
        if isinstance(e, (*db_errors(), OSError)):  # constraint errors, a full disk
            first = (str(e).strip().splitlines() or [""])[0]  # PostgreSQL adds a DETAIL line
            raise BundleError(f"bundle rejected by the store: {first}") from None
        raise
    return [r["run_id"] for r in tables["runs"]]


def load_any_trace(path_or_bytes: str | os.PathLike | bytes, filename: str | None = None,
                   keep_args: bool = True) -> Trace:
    """profiling.traces.load_trace, and for an exported bundle every trace it embeds
    (`trace_from_bundle`); TraceError (one line) on anything else."""
    from profiling.traces import OtherFormat, load_trace

    try:
        return load_trace(path_or_bytes, filename, keep_args=keep_args)
    except OtherFormat as e:
        if e.document.get("format") != FORMAT:
            raise
        return trace_from_bundle(e.document)


def trace_from_bundle(obj: Mapping) -> Trace:
    """All traces embedded in a bundle as one Trace (pids prefixed with the case id)."""
    try:
        obj = _check(obj)
        traces = _decoded_traces(obj)
    except BundleError as e:
        raise TraceError(str(e)) from None
    if not traces:
        raise TraceError("bundle holds no trace files (exported without traces?)")
    from profiling.traces.model import concat_events
    from profiling.traces.xplane import load_xplane

    case_of = {r.get("trace_sha256"): r.get("case_id") for r in obj["tables"].get("cases", [])}
    parts = [(str(case_of.get(sha, sha[:12])), load_xplane(data).events)
             for sha, (_, data) in traces.items()]
    return Trace(concat_events(parts), "bundle",
                 {"runs": obj.get("run_ids"), "traces": len(traces)})
