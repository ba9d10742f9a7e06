"""Content-addressed trace files: <sha256><suffix> in the store's traces dir, one `traces` row
each. A SQLite store keeps the bytes only in those files (its disk is the store's); a PostgreSQL
store has no shared disk, so the bytes also go into its trace_blobs table and are copied on
first use into a per-user cache that serves as its traces dir (`trace_bytes_in_database`)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from profiling import settings
from profiling.storage import schema as t
from profiling.storage.database import Database
from profiling.storage.db import trace_bytes_in_database, upsert

# a stored trace file: <sha256 of its bytes><one or two suffixes>, e.g. <sha>.xplane.pb
TRACE_NAME = re.compile(r"(?P<sha>[0-9a-f]{64})(?:\.[A-Za-z0-9_-]{1,32}){1,2}")


def trace_cache_dir(url: str) -> Path:
    """Where this user keeps local copies of a PostgreSQL store's traces."""
    return settings.trace_cache_root() / hashlib.sha256(url.encode()).hexdigest()[:16]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def default_name(sha: str) -> str:
    """The file name of a trace whose traces row names none."""
    return f"{sha}.xplane.pb"


class TraceStore(Database):
    """Trace files of a store; `traces_dir` is set by the Store."""

    traces_dir: Path

    def store_trace_blobs(self, conn: sa.Connection, blobs: Mapping[str, bytes]) -> None:
        """sha256 -> bytes into trace_blobs, where this store keeps them (else nothing)."""
        if trace_bytes_in_database(self.engine):
            upsert(conn, t.trace_blobs, [{"sha256": s, "data": d} for s, d in blobs.items()],
                   replace=False)

    def put_trace(self, data: bytes, filename: str = "trace.xplane.pb") -> str:
        """Store trace bytes content-addressed; returns the sha256 hex digest."""
        sha = hashlib.sha256(data).hexdigest()
        suffix = "".join(Path(filename).suffixes[-2:]) or ".bin"
        dest = self.write_trace_file(f"{sha}{suffix}", data)

        def write(conn: sa.Connection) -> None:
            upsert(conn, t.traces, [{"sha256": sha, "filename": dest.name,
                                     "size_bytes": len(data), "created_at": _now()}],
                   replace=False)
            self.store_trace_blobs(conn, {sha: data})

        self._write(write)
        return sha

    def write_trace_file(self, name: str, data: bytes) -> Path:
        """traces/<name>, written whole or not at all (content-addressed: kept if present)."""
        dest = self.traces_dir / name
        if not dest.exists():
            # a temp name of its own: two threads of one process may store the same trace
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=self.traces_dir)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, dest)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        return dest

    def trace_sha(self, case_id: str) -> str | None:
        """The sha256 of the case's captured trace, or None."""
        sha = self.scalar(sa.select(t.cases.c.trace_sha256).where(t.cases.c.case_id == case_id))
        return None if sha is None else str(sha)

    def trace_path(self, case_id: str) -> Path | None:
        """Path of the case's captured trace (.xplane.pb), or None."""
        sha = self.trace_sha(case_id)
        if not sha:
            return None
        name = self.scalar(sa.select(t.traces.c.filename).where(t.traces.c.sha256 == sha))
        return self.trace_file(str(name) if name else default_name(sha))

    def trace_file(self, name: str) -> Path | None:
        """traces/<name> when it is a regular file directly inside the traces dir, else None:
        a stored name such as ../../x, an absolute path or a symlink out of the dir opens
        nothing."""
        try:
            root = self.traces_dir.resolve()
            path = (self.traces_dir / name).resolve()
            if trace_bytes_in_database(self.engine) and path.parent == root and not path.exists():
                self._materialise(path.name)
            if path.parent != root or not path.is_file():
                return None
        except (OSError, ValueError):  # ValueError: a NUL byte in the name
            return None
        return self.traces_dir / path.name

    def trace_paths(self, run_ids: Sequence[str]) -> dict[str, Path]:
        """case_id -> its captured trace file, for the cases of these runs that have one (one
        query for all, where ``trace_path`` asks per case)."""
        ids = list(run_ids)
        if not ids:
            return {}
        c = t.cases.c
        df = self.query(
            sa.select(c.case_id, c.trace_sha256, t.traces.c.filename)
            .select_from(t.cases.outerjoin(t.traces, t.traces.c.sha256 == c.trace_sha256))
            .where(c.trace_sha256.is_not(None), c.run_id.in_(ids)))
        paths = {row.case_id: self.traces_dir / (row.filename or default_name(row.trace_sha256))
                 for row in df.itertuples()}
        return {case_id: path for case_id, path in paths.items() if path.exists()}

    def _materialise(self, name: str) -> None:
        """Copy a trace named <sha256><suffix> from trace_blobs into the local cache."""
        m = TRACE_NAME.fullmatch(name)
        if not m:
            return
        data = self.scalar(sa.select(t.trace_blobs.c.data)
                           .where(t.trace_blobs.c.sha256 == m.group("sha")))
        if data is not None:
            data = bytes(data)
            if hashlib.sha256(data).hexdigest() == m.group("sha"):  # never serve other bytes
                self.traces_dir.mkdir(parents=True, exist_ok=True)
                self.write_trace_file(name, data)
