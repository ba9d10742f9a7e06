"""Result store: SQLite (WAL) plus content-addressed trace files beside it, or PostgreSQL.

Data dir: $RELU_LAB_DATA or ./.relu_lab ; database <data>/relu_lab.sqlite ; traces <data>/traces/.
$RELU_LAB_STORE (or a Store argument) = postgresql://user@host:port/db opens a shared server
instead (profiling.storage.db): the same schema and SQL; trace bytes live in its trace_blobs table and
are copied on first use into a per-user cache ($RELU_LAB_TRACE_CACHE or
~/.cache/relu_lab/traces/<store>), which then serves as the traces dir.
Every write is one short IMMEDIATE transaction retried on a busy database, so readers never block
and concurrent writer processes lose nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import socket
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from profiling import settings
from profiling.process import pid_alive
from profiling.storage.db import PgConnection, migrate_pg, sqlite_path, store_url
from profiling.storage.migrations import MIGRATIONS, migrate
from profiling.tempdirs import remove_dead_temp_dirs

DB_NAME = "relu_lab.sqlite"
# a stored trace file: <sha256 of its bytes><one or two suffixes>, e.g. <sha>.xplane.pb
TRACE_NAME = re.compile(r"(?P<sha>[0-9a-f]{64})(?:\.[A-Za-z0-9_-]{1,32}){1,2}")
RUN_STATUSES = ("running", "complete", "interrupted", "failed", "incomplete")
CASE_STATUSES = ("ok", "skipped", "failed")
CASE_COLUMNS = [
    "run_id", "case_id", "variant", "variant_params", "label", "shape", "numel", "dtype", "device",
    "threads", "allocator", "mode", "pass", "status", "reason", "median_s", "min_s", "iqr_s",
    "ci95_low_s", "ci95_high_s", "ci95_s", "n_samples", "number", "elements_per_s",
    "bytes_per_call", "gbps", "peak_gbps", "utilization", "page_faults_per_call", "peak_rss_mb",
    "kind", "baseline_case_id", "ratio_to_baseline", "ratio_ci95_low", "ratio_ci95_high",
    "floor_s", "working_set_bytes", "roof_gbps",
]
OP_STATS_COLUMNS = ["op_name", "op_type", "occurrences", "self_time_us", "total_time_us", "device"]
BREAKDOWN_COLUMNS = ["case_id", "compute_us", "memcpy_us", "collective_us", "idle_us", "other_us"]
FUSION_COLUMNS = [
    "case_id", "variant", "block", "fused", "fused_into", "kernels", "time_s", "time_vs_fused",
    "hlo_fusions", "instructions_before", "instructions_after", "compiled", "reason",
    "time_ci95_low_s", "time_ci95_high_s", "ratio_ci95_low", "ratio_ci95_high",
]
ROOF_COLUMNS = ["device", "threads", "allocator", "working_set_bytes", "gbps", "gbps_median",
                "gbps_iqr", "n", "method", "roof_gbps"]
CALIBRATION_COLUMNS = ["device", "threads", "allocator", "peak_gbps", "method", "size_bytes",
                       "seconds"]


class UnknownRunError(KeyError):
    def __str__(self) -> str:
        return f"unknown run id: {self.args[0]}"


class RunIdError(UnknownRunError):
    """An id that names no single run: blank, or a prefix of several; str() is one line."""

    def __str__(self) -> str:
        return str(self.args[0])


SHOWN_MATCHES = 6  # an ambiguous prefix names this many of its runs


def ambiguous_prefix(prefix: str, matches: Sequence[tuple[str, str | None]]) -> RunIdError:
    """The error for a prefix of several runs: (run_id, label) pairs, newest first."""
    shown = "; ".join(f"{run_id} ({label or 'no label'})"
                      for run_id, label in matches[:SHOWN_MATCHES])
    more = f"; and {len(matches) - SHOWN_MATCHES} more" if len(matches) > SHOWN_MATCHES else ""
    return RunIdError(f"run id prefix {prefix!r} matches {len(matches)} runs: {shown}{more} "
                      "(give more of the id)")


class RunInUseError(ValueError):
    """The run's process is still writing it; str() is one line."""

    def __str__(self) -> str:
        return f"run {self.args[0]} is still running; stop it before deleting it"


def default_data_dir() -> Path:
    """`$RELU_LAB_DATA`, else ./.relu_lab (profiling.settings.data_dir)."""
    return settings.data_dir()


def trace_cache_dir(url: str) -> Path:
    """Where this user keeps local copies of a PostgreSQL store's traces."""
    return settings.trace_cache_root() / hashlib.sha256(url.encode()).hexdigest()[:16]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


class Store:
    """Handle on one data dir. `path` may be the data dir or the .sqlite file itself, or a
    postgresql:// URL; without one, $RELU_LAB_STORE, else the default data dir."""

    def __init__(self, path: str | os.PathLike | None = None, busy_timeout_s: float = 30.0):
        self.url = store_url(path)
        self.dialect = "postgresql" if self.url else "sqlite"
        if self.url:
            self._open_postgresql(self.url)
            return
        p = sqlite_path(path) or default_data_dir()
        if p.suffix in (".sqlite", ".db"):
            self.db_path, self.data_dir = p, p.parent
        else:
            self.db_path, self.data_dir = p / DB_NAME, p
        self.traces_dir = self.data_dir / "traces"
        self.traces_dir.mkdir(parents=True, exist_ok=True)
        self._busy_timeout_s = busy_timeout_s
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(self.db_path, timeout=busy_timeout_s, isolation_level=None,
                                     check_same_thread=False)
        self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        self._retry(lambda: self._conn.execute("PRAGMA journal_mode=WAL"))
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._retry(lambda: migrate(self._conn))
        self.mark_stale_runs()
        remove_dead_temp_dirs()

    def _open_postgresql(self, url: str) -> None:
        self.db_path = None
        self.data_dir = trace_cache_dir(url)
        self.traces_dir = self.data_dir
        self._busy_timeout_s = 30.0
        self._lock = threading.RLock()
        self._conn = PgConnection(url)
        migrate_pg(self._conn, MIGRATIONS)
        self.traces_dir.mkdir(parents=True, exist_ok=True)  # only for a store that opened
        self.mark_stale_runs()
        remove_dead_temp_dirs()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- low level -------------------------------------------------------------------------
    def _retry(self, fn: Any, attempts: int = 20) -> Any:
        for i in range(attempts):
            try:
                with self._lock:
                    return fn()
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) and "busy" not in str(e) or i == attempts - 1:
                    raise
                time.sleep(0.05 * (i + 1))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction; everything inside commits together or not at all.

        A busy database waits busy_timeout_s; _write retries the whole transaction after that.
        """
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:  # also after a failed COMMIT: never left open
                    self._conn.execute("ROLLBACK")
                raise

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads inside see one state of the database, whatever writers commit meanwhile."""
        with self._lock:
            self._conn.execute("BEGIN")  # deferred: a read transaction from the first SELECT
            try:
                yield
            finally:
                self._conn.execute("COMMIT")

    def _write(self, fn: Any) -> Any:
        """Run fn(conn) in its own transaction, retrying the whole transaction when busy."""
        for i in range(20):
            try:
                with self.transaction() as conn:
                    return fn(conn)
            except sqlite3.OperationalError as e:
                if ("locked" not in str(e) and "busy" not in str(e)) or i == 19:
                    raise
                time.sleep(0.05 * (i + 1))

    def _query(self, sql: str, params: Sequence = ()) -> pd.DataFrame:
        with self._lock:
            if self.dialect == "postgresql":
                rows = self._conn.execute(sql, list(params))
                return pd.DataFrame.from_records(
                    rows.fetchall(), columns=[d[0] for d in rows.description], coerce_float=True)
            return self._retry(lambda: pd.read_sql_query(sql, self._conn, params=list(params)))

    def query(self, sql: str, params: Sequence = ()) -> pd.DataFrame:
        """Rows of a read-only SQL query (retried while a writer holds the database)."""
        return self._query(sql, params)

    def count(self, table: str) -> int:
        """Rows in one of the store's tables."""
        if table not in _table_names(self._conn):
            raise ValueError(f"unknown table {table!r}")
        return int(self._query(f"SELECT COUNT(*) n FROM {table}").n.iloc[0])

    def schema_version(self) -> int:
        """The database's schema version (SQLite: PRAGMA user_version; PostgreSQL: the
        schema_version table)."""
        if self.dialect == "postgresql":
            return int(self._query("SELECT version FROM schema_version").iloc[0, 0])
        return int(self._query("PRAGMA user_version").iloc[0, 0])

    @staticmethod
    def _insert(conn: sqlite3.Connection, table: str, row: Mapping[str, Any]) -> None:
        cols = list(row)
        conn.execute(f"INSERT OR REPLACE INTO {table} ({','.join(cols)}) "
                     f"VALUES ({','.join('?' * len(cols))})", [row[c] for c in cols])

    # ---- writes ----------------------------------------------------------------------------
    def create_run(self, spec_json: Mapping | str, label: str = "", n_cases: int = 0,
                   environment: Mapping | None = None, run_id: str | None = None) -> str:
        from profiling.measurement.machine import machine_columns

        run_id = run_id or new_run_id()
        row = {"run_id": run_id, "created_at": now_iso(), "status": "running", "n_cases": n_cases,
               "label": label or "", "pid": os.getpid(), "host": socket.gethostname(),
               **machine_columns(environment),
               "spec_json": spec_json if isinstance(spec_json, str) else json.dumps(spec_json),
               "environment_json": json.dumps(environment or {}, default=str)}
        self._write(lambda c: self._insert(c, "runs", row))
        return run_id

    @contextlib.contextmanager
    def saving_run(self, spec_json: Mapping | str, label: str = "", n_cases: int = 0,
                   environment: Mapping | None = None, kind: str | None = None,
                   run_id: str | None = None) -> Iterator[str]:
        """Create a run, yield its id, finish it: complete when the block ends, interrupted on
        KeyboardInterrupt (Ctrl-C, a cancelled run), failed on any other exception (re-raised).
        `kind` (scenario, distributed, capture) is recorded in the run's spec."""
        if kind is not None:
            spec_json = {"kind": kind, **(json.loads(spec_json) if isinstance(spec_json, str)
                                          else spec_json)}
        run_id = self.create_run(spec_json, label, n_cases, environment, run_id)
        try:
            yield run_id
        except BaseException as e:
            self.finish_run(run_id, "interrupted" if isinstance(e, KeyboardInterrupt) else "failed")
            raise
        self.finish_run(run_id, "complete")

    def set_environment(self, run_id: str, environment: Mapping) -> None:
        from profiling.measurement.machine import machine_columns

        m = machine_columns(environment)
        self._write(lambda c: c.execute(
            "UPDATE runs SET environment_json=?, machine=?, machine_json=? WHERE run_id=?",
            (json.dumps(environment, default=str), m["machine"], m["machine_json"], run_id)))

    def finish_run(self, run_id: str, status: str) -> None:
        """Set the run's final status. Whoever writes it, "complete" is stored as "failed" when
        some case failed and none is ok: such a run measured nothing."""
        if status not in RUN_STATUSES:
            raise ValueError(f"bad run status {status!r}; accepted: {', '.join(RUN_STATUSES)}")

        def write(c: Any) -> None:
            final = status
            if status == "complete":
                found = {r[0] for r in c.execute(
                    "SELECT DISTINCT status FROM cases WHERE run_id=?", (run_id,)).fetchall()}
                final = "failed" if "failed" in found and "ok" not in found else status
            c.execute("UPDATE runs SET status=?, finished_at=? WHERE run_id=?",
                      (final, now_iso(), run_id))

        self._write(write)

    def add_case(self, row: Mapping[str, Any], samples: Sequence[float] = (),
                 op_stats: pd.DataFrame | None = None, breakdown: Mapping | None = None) -> None:
        """Insert one case with its samples, op stats and breakdown, atomically."""
        row = dict(row)
        row.pop("run_label", None)  # derived by cases() from the run, not a column of cases
        case_id = row["case_id"]

        def write(conn: sqlite3.Connection) -> None:
            self._insert(conn, "cases", row)
            conn.executemany("INSERT OR REPLACE INTO samples VALUES (?,?,?)",
                             [(case_id, i, float(s)) for i, s in enumerate(samples)])
            if op_stats is not None and len(op_stats):
                conn.execute("DELETE FROM op_stats WHERE case_id=?", (case_id,))
                conn.executemany(
                    "INSERT INTO op_stats VALUES (?,?,?,?,?,?,?)",
                    [(case_id, *(None if pd.isna(r[c]) else r[c] for c in OP_STATS_COLUMNS))
                     for r in op_stats.to_dict("records")])
            if breakdown is not None:
                self._insert(conn, "breakdown", {"case_id": case_id, **{
                    k: breakdown.get(k) for k in BREAKDOWN_COLUMNS[1:]}})

        self._write(write)

    def add_fusion(self, run_id: str, rows: pd.DataFrame) -> None:
        records = rows.to_dict("records")

        def write(conn: sqlite3.Connection) -> None:
            for r in records:
                row = {"run_id": run_id, **{k: _plain(r.get(k)) for k in FUSION_COLUMNS}}
                row["ops"] = _plain(r.get("ops"))
                self._insert(conn, "fusion", row)

        self._write(write)

    def add_calibration(self, run_id: str, row: Mapping[str, Any]) -> None:
        self._write(lambda c: self._insert(c, "calibration", {
            "run_id": run_id, **{k: row.get(k) for k in CALIBRATION_COLUMNS}}))

    def add_roof(self, run_id: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """The roof curve measured for one (device, threads, allocator) of a run (ROOF_COLUMNS)."""
        def write(conn: sqlite3.Connection) -> None:
            for r in rows:
                self._insert(conn, "roof", {"run_id": run_id,
                                            **{k: _plain(r.get(k)) for k in ROOF_COLUMNS}})

        self._write(write)

    def set_noise(self, run_id: str, noise: Mapping[str, Any]) -> None:
        """The run's noise verdict (quiet|noisy|unknown) and what it rests on."""
        self._write(lambda c: c.execute(
            "UPDATE runs SET noise_verdict=?, noise_json=? WHERE run_id=?",
            (noise.get("verdict"), json.dumps(noise, default=str), run_id)))

    def put_trace(self, data: bytes, filename: str = "trace.xplane.pb") -> str:
        """Store trace bytes content-addressed; returns the sha256 hex digest."""
        sha = hashlib.sha256(data).hexdigest()
        suffix = "".join(Path(filename).suffixes[-2:]) or ".bin"
        dest = self.write_trace_file(f"{sha}{suffix}", data)

        def write(conn: Any) -> None:
            conn.execute("INSERT OR IGNORE INTO traces VALUES (?,?,?,?)",
                         (sha, dest.name, len(data), now_iso()))
            if self.dialect == "postgresql":  # no shared disk: the bytes go into the database
                conn.execute("INSERT OR IGNORE INTO trace_blobs VALUES (?,?)", (sha, data))

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

    def mark_stale_runs(self) -> int:
        """Runs left 'running' by a process on this host that no longer exists -> interrupted."""
        rows = self._query("SELECT run_id, pid, host, created_at FROM runs "
                           "WHERE status='running'")
        host = socket.gethostname()
        stale = [r.run_id for r in rows.itertuples()
                 if r.host == host and not pid_alive(r.pid, r.created_at)]
        for run_id in stale:
            # only while still 'running': a run that finished between the read above and here
            # (its process then exited) keeps the status it finished with
            self._write(lambda c, run_id=run_id: c.execute(
                "UPDATE runs SET status='interrupted', finished_at=? "
                "WHERE run_id=? AND status='running'", (now_iso(), run_id)))
        return len(stale)

    def delete_runs(self, run_ids: Sequence[str]) -> list[Path]:
        """Remove these runs' rows from every table in one transaction, then the trace files
        no remaining case uses; returns the files removed. UnknownRunError for an id not in the
        store, RunInUseError for a run still running (nothing is deleted then)."""
        ids = list(dict.fromkeys(run_ids))
        if not ids:
            return []
        self.mark_stale_runs()
        q = ",".join("?" * len(ids))

        def write(conn: sqlite3.Connection) -> list[str]:
            status = dict(conn.execute(f"SELECT run_id, status FROM runs WHERE run_id IN ({q})",
                                       ids).fetchall())
            for run_id in ids:
                if run_id not in status:
                    raise UnknownRunError(run_id)
                if status[run_id] == "running":
                    raise RunInUseError(run_id)
            shas = [r[0] for r in conn.execute(
                f"SELECT DISTINCT trace_sha256 FROM cases WHERE run_id IN ({q}) "
                "AND trace_sha256 IS NOT NULL", ids)]
            tables = [r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")]
            columns = {t: _table_columns(conn, t) for t in tables}
            for t in tables:  # rows found through their case go before the cases themselves
                if "case_id" in columns[t] and "run_id" not in columns[t]:
                    conn.execute(f"DELETE FROM {t} WHERE case_id IN "
                                 f"(SELECT case_id FROM cases WHERE run_id IN ({q}))", ids)
            by_run = [t for t in tables if "run_id" in columns[t]]
            for t in sorted(by_run, key=lambda t: t == "runs"):  # the runs rows last
                conn.execute(f"DELETE FROM {t} WHERE run_id IN ({q})", ids)
            names = []
            for sha in shas:
                if conn.execute("SELECT 1 FROM cases WHERE trace_sha256=? LIMIT 1",
                                (sha,)).fetchone():
                    continue  # another run stored the same trace
                row = conn.execute("SELECT filename FROM traces WHERE sha256=?", (sha,)).fetchone()
                names.append(str(row[0]) if row and row[0] else f"{sha}.xplane.pb")
                conn.execute("DELETE FROM traces WHERE sha256=?", (sha,))
                conn.execute("DELETE FROM trace_blobs WHERE sha256=?", (sha,))
            return names

        removed = []
        for name in self._write(write):
            path = self.trace_file(name)
            if path is not None:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed.append(path)
        return removed

    # ---- reads -----------------------------------------------------------------------------
    def list_runs(self) -> pd.DataFrame:
        """run_id, created_at, status (running|complete|interrupted|failed|incomplete: imported
        while running), n_cases (stored so far), label, spec_json, finished_at, n_planned (cases
        in the spec), noise_verdict (quiet|noisy|unknown, None before it is known) and
        noise_json."""
        self.mark_stale_runs()
        return self._query(
            "SELECT r.run_id, r.created_at, r.status, "
            "(SELECT COUNT(*) FROM cases c WHERE c.run_id = r.run_id) AS n_cases, r.label, "
            "r.spec_json, r.finished_at, r.n_cases AS n_planned, r.noise_verdict, r.noise_json, "
            "r.machine FROM runs r "
            "ORDER BY r.created_at DESC, r.run_id DESC")

    def data_version(self) -> tuple:
        """Changes whenever a run or a case is added or a run changes status: a cache key."""
        row = self._query(
            "SELECT (SELECT COUNT(*) FROM cases) AS cases, COUNT(*) AS runs, "
            "COUNT(finished_at) AS finished, MAX(finished_at) AS last, "
            "COUNT(noise_verdict) AS judged FROM runs").iloc[0]
        return tuple(None if pd.isna(v) else v for v in row)

    def matching_runs(self, run_id: str) -> list[tuple[str, str | None]]:
        """(run_id, label) of the runs this id names, newest first: the run itself when the id
        is a full one, else every run it is a prefix of; 'latest' is the newest run. RunIdError
        for an empty or blank id (it would be a prefix of every id)."""
        if not run_id.strip():
            raise RunIdError("empty run id (give a run id, a unique prefix or 'latest')")
        order = "ORDER BY created_at DESC, run_id DESC"
        if run_id == "latest":
            df = self._query(f"SELECT run_id, label FROM runs {order} LIMIT 1")
        else:
            # a literal prefix: LIKE would read '_' and '%' in it as wildcards
            df = self._query("SELECT run_id, label FROM runs "
                             f"WHERE substr(run_id, 1, length(CAST(? AS TEXT))) = ? {order}",
                             (run_id, run_id))
            if run_id in set(df.run_id):  # a full id wins over longer ids it is a prefix of
                df = df[df.run_id == run_id]
        return [(str(r), None if pd.isna(lb) else str(lb))
                for r, lb in zip(df.run_id, df.label, strict=True)]

    def resolve_run(self, run_id: str) -> str:
        """Full run id from an id or unique prefix; 'latest' is the newest run.
        UnknownRunError when none matches, RunIdError (a subclass) for a blank id or a prefix
        of several runs (it names them)."""
        matches = self.matching_runs(run_id)
        if not matches:
            raise UnknownRunError(run_id)
        if len(matches) > 1:
            raise ambiguous_prefix(run_id, matches)
        return matches[0][0]

    def run(self, run_id: str) -> dict:
        df = self._query("SELECT * FROM runs WHERE run_id=?", (run_id,))
        if df.empty:
            raise UnknownRunError(run_id)
        return df.iloc[0].to_dict()

    def cases(self, run_ids: Sequence[str] | str) -> pd.DataFrame:
        """One row per case with the columns in CASE_COLUMNS (times s, bandwidth GB/s) and its
        run's label as run_label."""
        ids = [run_ids] if isinstance(run_ids, str) else list(run_ids)
        if not ids:
            return pd.DataFrame(columns=[*CASE_COLUMNS, "run_label"])
        q = ",".join("?" * len(ids))
        cols = ",".join(f"c.{c}" for c in CASE_COLUMNS)
        return self._query(f"SELECT {cols}, r.label AS run_label FROM cases c JOIN runs r "
                           f"USING (run_id) WHERE c.run_id IN ({q}) ORDER BY c.run_id, c.idx", ids)

    def samples(self, case_id: str) -> pd.DataFrame:
        """repeat, seconds_per_call."""
        return self._query("SELECT repeat, seconds_per_call FROM samples WHERE case_id=? "
                           "ORDER BY repeat", (case_id,))

    def op_stats(self, case_id: str) -> pd.DataFrame:
        """op_name, op_type, occurrences, self_time_us, total_time_us, device."""
        return self._query(f"SELECT {','.join(OP_STATS_COLUMNS)} FROM op_stats WHERE case_id=? "
                           "ORDER BY self_time_us DESC", (case_id,))

    def breakdown(self, run_ids: Sequence[str] | str) -> pd.DataFrame:
        """case_id, compute_us, memcpy_us, collective_us, idle_us, other_us."""
        ids = [run_ids] if isinstance(run_ids, str) else list(run_ids)
        q = ",".join("?" * len(ids)) or "NULL"
        return self._query(f"SELECT b.* FROM breakdown b JOIN cases c USING (case_id) "
                           f"WHERE c.run_id IN ({q}) ORDER BY c.run_id, c.idx", ids)

    def fusion(self, run_ids: Sequence[str] | str) -> pd.DataFrame:
        """Fusion rows (FUSION_COLUMNS plus run_id); fused/compiled as bool."""
        ids = [run_ids] if isinstance(run_ids, str) else list(run_ids)
        q = ",".join("?" * len(ids)) or "NULL"
        df = self._query(f"SELECT run_id, {','.join(FUSION_COLUMNS)} FROM fusion "
                         f"WHERE run_id IN ({q}) ORDER BY run_id, rowid", ids)
        for col in ("fused", "compiled"):
            df[col] = df[col].map(lambda v: None if v is None or pd.isna(v) else bool(v))
        return df

    def roof(self, run_ids: Sequence[str] | str) -> pd.DataFrame:
        """run_id plus ROOF_COLUMNS, by run, device/threads/allocator and working set."""
        ids = [run_ids] if isinstance(run_ids, str) else list(run_ids)
        q = ",".join("?" * len(ids)) or "NULL"
        return self._query(f"SELECT run_id, {','.join(ROOF_COLUMNS)} FROM roof "
                           f"WHERE run_id IN ({q}) ORDER BY run_id, device, threads, allocator, "
                           "working_set_bytes", ids)

    def roof_history(self, host: str, device: str, threads: int, allocator: str,
                     method: str) -> list[dict]:
        """The best copy GB/s each working set has shown in earlier runs of this host and
        configuration: [{"working_set_bytes", "gbps"}]."""
        df = self._query(
            "SELECT r.working_set_bytes, MAX(r.gbps) AS gbps FROM roof r JOIN runs USING (run_id) "
            "WHERE runs.host=? AND r.device=? AND r.threads=? AND r.allocator=? AND r.method=? "
            "AND r.gbps > 0 GROUP BY r.working_set_bytes", (host, device, threads, allocator, method))
        return df.to_dict("records")

    def calibration(self, run_id: str) -> pd.DataFrame:
        return self._query(f"SELECT {','.join(CALIBRATION_COLUMNS)} FROM calibration "
                           "WHERE run_id=?", (run_id,))

    def environment(self, run_id: str) -> dict:
        """The environment captured with the run (TF version, CPU, git commit, ...)."""
        from profiling.storage.stored_json import decode

        return decode(self.run(run_id).get("environment_json"), "environment_json", run_id)

    def trace_sha(self, case_id: str) -> str | None:
        df = self._query("SELECT trace_sha256 FROM cases WHERE case_id=?", (case_id,))
        return None if df.empty or df.iloc[0, 0] is None else str(df.iloc[0, 0])

    def trace_path(self, case_id: str) -> Path | None:
        """Path of the case's captured trace (.xplane.pb), or None."""
        sha = self.trace_sha(case_id)
        if not sha:
            return None
        df = self._query("SELECT filename FROM traces WHERE sha256=?", (sha,))
        name = df.iloc[0, 0] if len(df) and df.iloc[0, 0] else f"{sha}.xplane.pb"
        return self.trace_file(str(name))

    def trace_file(self, name: str) -> Path | None:
        """traces/<name> when it is a regular file directly inside the traces dir, else None:
        a stored name such as ../../x, an absolute path or a symlink out of the dir opens
        nothing."""
        try:
            root = self.traces_dir.resolve()
            path = (self.traces_dir / name).resolve()
            if self.dialect == "postgresql" and path.parent == root and not path.exists():
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
        df = self._query(
            "SELECT c.case_id, c.trace_sha256, t.filename FROM cases c LEFT JOIN traces t "
            f"ON t.sha256 = c.trace_sha256 WHERE c.trace_sha256 IS NOT NULL AND c.run_id IN "
            f"({','.join('?' * len(ids))})", ids)
        paths = {row.case_id: self.traces_dir / (row.filename or f"{row.trace_sha256}.xplane.pb")
                 for row in df.itertuples()}
        return {case_id: path for case_id, path in paths.items() if path.exists()}

    def _materialise(self, name: str) -> None:
        """Copy a trace named <sha256><suffix> from trace_blobs into the local cache."""
        m = TRACE_NAME.fullmatch(name)
        if not m:
            return
        df = self._query("SELECT data FROM trace_blobs WHERE sha256=?", (m.group("sha"),))
        if len(df):
            data = bytes(df.iloc[0, 0])
            if hashlib.sha256(data).hexdigest() == m.group("sha"):  # never serve other bytes
                self.traces_dir.mkdir(parents=True, exist_ok=True)
                self.write_trace_file(name, data)


def _plain(v: Any) -> Any:
    """numpy scalars / NaN -> plain Python for sqlite."""
    if v is None:
        return None
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and v != v:
        return None
    if isinstance(v, (list, dict)):
        return json.dumps(v)
    return v


BUNDLE_TABLES = ("runs", "cases", "samples", "op_stats", "breakdown", "fusion", "calibration",
                 "roof", "traces")


def _table_names(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]


def _table_columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]


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
        t = self.declared.upper()
        if "INT" in t:
            return "integer"
        if any(k in t for k in ("CHAR", "CLOB", "TEXT")):
            return "text"
        if any(k in t for k in ("REAL", "FLOA", "DOUB")):
            return "real"
        return "numeric" if t else "any"


def table_schema(store: Store, tables: Sequence[str] = BUNDLE_TABLES) -> dict[str, list]:
    """Each table's columns as SQLite declares them (`Column`)."""

    def read() -> dict[str, list]:
        return {t: [Column(name=r[1], declared=r[2] or "", not_null=bool(r[3]),
                           has_default=r[4] is not None, primary_key=bool(r[5]))
                    for r in store._conn.execute(f"PRAGMA table_info({t})")] for t in tables}

    return store._retry(read)


def export_rows(store: Store, run_ids: Sequence[str]) -> dict[str, list[dict]]:
    """Every stored row of these runs, table by table (raw columns, for bundles)."""
    ids = list(run_ids)
    q = ",".join("?" * len(ids))
    by_case = f"case_id IN (SELECT case_id FROM cases WHERE run_id IN ({q}))"
    where = {"runs": f"run_id IN ({q})", "cases": f"run_id IN ({q})", "samples": by_case,
             "op_stats": by_case, "breakdown": by_case, "fusion": f"run_id IN ({q})",
             "calibration": f"run_id IN ({q})", "roof": f"run_id IN ({q})",
             "traces": f"sha256 IN (SELECT trace_sha256 FROM cases WHERE run_id IN ({q}))"}
    out = {}
    with store.snapshot():  # a run still writing cases must not add samples of unexported cases
        for table in BUNDLE_TABLES:
            df = store.query(f"SELECT * FROM {table} WHERE {where[table]}", ids)
            out[table] = [{k: _plain(v) for k, v in r.items()} for r in df.to_dict("records")]
    return out


def import_rows(store: Store, tables: Mapping[str, Sequence[Mapping]],
                trace_data: Mapping[str, bytes] | None = None) -> None:
    """Insert bundle rows in ONE transaction: all of them or none. Unknown columns are ignored;
    a run id already present is an error (ValueError). On PostgreSQL `trace_data` (sha256 ->
    bytes) goes into trace_blobs in the same transaction."""

    def write(conn: sqlite3.Connection) -> None:
        if store.dialect == "postgresql":
            conn.executemany("INSERT OR IGNORE INTO trace_blobs VALUES (?,?)",
                             list((trace_data or {}).items()))
        for table in BUNDLE_TABLES:
            cols = set(_table_columns(conn, table))
            for row in tables.get(table, []):
                if table == "runs" and conn.execute(
                        "SELECT 1 FROM runs WHERE run_id=?", (row["run_id"],)).fetchone():
                    raise ValueError(f"run {row['run_id']} is already in the store")
                clean = {k: _plain(v) for k, v in row.items() if k in cols}
                verb = "INSERT OR IGNORE" if table == "traces" else "INSERT"
                names = list(clean)
                conn.execute(f"{verb} INTO {table} ({','.join(names)}) VALUES "
                             f"({','.join('?' * len(names))})", [clean[k] for k in names])

    store._write(write)
