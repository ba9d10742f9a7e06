"""The dialect seam: which database a store URL names, and a PostgreSQL connection that speaks
the store's SQL.

The store's SQL (profiling/storage/store.py, profiling/storage/migrations.py) is written once, in the subset of
SQLite that PostgreSQL also reads. `PgConnection` gives psycopg 3 (connected through a
SQLAlchemy engine) the sqlite3 calls the store makes — `execute`, `executemany`,
`in_transaction` — and rewrites the few SQLite-only forms on the way:

- `?` placeholders -> `%s`; `INSERT OR REPLACE` / `INSERT OR IGNORE` -> `ON CONFLICT` (primary
  keys read with SQLAlchemy's inspector); `BEGIN IMMEDIATE` -> `BEGIN`; a plain `BEGIN` (a read
  snapshot in SQLite) -> `BEGIN ISOLATION LEVEL REPEATABLE READ`;
- `PRAGMA table_info(t)` and the `sqlite_master` table list -> the same rows from
  SQLAlchemy's inspector;
- in DDL, `REAL` -> `DOUBLE PRECISION`, `INTEGER` -> `BIGINT`, `BLOB` -> `BYTEA` (PostgreSQL's
  REAL is 4 bytes, its INTEGER 32 bits).

The schema version lives in `schema_version` (SQLite: PRAGMA user_version); migrations run under
an advisory lock, so two processes opening a new database at once migrate it once.

Every connection is bounded: connecting by RELU_LAB_DB_CONNECT_TIMEOUT_S (libpq's
connect_timeout, which psycopg 3 applies to the whole start-up, so a server that accepts and
never answers is covered too), each statement by RELU_LAB_DB_STATEMENT_TIMEOUT_S (the server's
statement_timeout). Either one running out raises StoreTimeoutError, one line naming the host
and the setting.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from profiling import settings
from profiling.errors import timeout_text

STORE_ENV = "RELU_LAB_STORE"
PG_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://")


class StoreUrlError(ValueError):
    """A store URL this code cannot open; str() is one line."""


class StoreTimeoutError(RuntimeError):
    """The database did not answer within a configured limit; str() is one line naming the
    host and the setting."""


def store_url(path: str | os.PathLike | None) -> str | None:
    """The PostgreSQL URL a Store argument (or $RELU_LAB_STORE) names, or None for SQLite.

    `sqlite:///path` names the SQLite data dir or file at path (returned as None: the caller
    uses sqlite_path)."""
    value = str(path) if path is not None else settings.store_url()
    if value is None or not value.startswith(PG_SCHEMES):
        if value and "://" in value and not value.startswith("sqlite:///"):
            raise StoreUrlError(f"unsupported store URL {value[:80]!r}: use "
                                "postgresql://user@host:port/db or sqlite:///path")
        return None
    return value


def sqlite_path(path: str | os.PathLike | None) -> Path | None:
    """The path a Store argument or $RELU_LAB_STORE names for SQLite (None: the default).
    As in SQLAlchemy, sqlite:///rel/path is relative and sqlite:////abs/path absolute."""
    value = str(path) if path is not None else settings.store_url()
    if value is None:
        return None
    return Path(value[len("sqlite:///"):] if value.startswith("sqlite:///") else value)


def engine_for(url: str) -> Any:
    """A SQLAlchemy engine on psycopg 3 for a postgresql:// URL (StoreUrlError when malformed)."""
    import sqlalchemy as sa

    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as e:
        raise StoreUrlError(f"bad store URL: {e}") from None
    if not parsed.database:
        raise StoreUrlError(f"store URL {url[:80]!r} names no database")
    statement_ms = int(settings.db_statement_timeout_s() * 1000)
    own_options = parsed.query.get("options")  # the URL's ?options=... are kept, ours after
    options = " ".join(filter(None, [own_options if isinstance(own_options, str) else None,
                                     f"-c statement_timeout={statement_ms}"]))
    engine = sa.create_engine(parsed.set(drivername="postgresql+psycopg"), pool_pre_ping=True,
                              connect_args={"connect_timeout": settings.db_connect_timeout_s(),
                                            "options": options})

    @sa.event.listens_for(engine, "handle_error")
    def _one_line_timeouts(context: Any) -> None:  # whatever runs through SQLAlchemy
        translated = timeout_error(context.original_exception, engine)
        if translated is not None:
            raise translated from None

    return engine


def timeout_error(error: BaseException, engine: Any) -> StoreTimeoutError | None:
    """The StoreTimeoutError for a psycopg (or SQLAlchemy-wrapped) error that is a connect or
    statement timeout of `engine`'s server, else None."""
    import psycopg

    cause = getattr(error, "orig", None) or error
    where = f"PostgreSQL at {engine.url.host or 'localhost'}:{engine.url.port or 5432}"
    if isinstance(cause, psycopg.errors.ConnectionTimeout):
        return StoreTimeoutError(timeout_text(where, "did not finish connecting",
                                              settings.db_connect_timeout_s(),
                                              "RELU_LAB_DB_CONNECT_TIMEOUT_S"))
    if isinstance(cause, psycopg.errors.QueryCanceled) and "statement timeout" in str(cause):
        return StoreTimeoutError(timeout_text(where, "did not finish a statement",
                                              settings.db_statement_timeout_s(),
                                              "RELU_LAB_DB_STATEMENT_TIMEOUT_S"))
    return None


def db_errors() -> tuple[type[BaseException], ...]:
    """Exceptions either backend raises for a refused statement (constraint, type, I/O)."""
    try:
        import psycopg

        return (sqlite3.Error, psycopg.Error)
    except ImportError:
        return (sqlite3.Error,)


_PLACEHOLDER = re.compile(r"\?")
_UPSERT = re.compile(r"^\s*INSERT\s+OR\s+(REPLACE|IGNORE)\s+INTO\s+(\w+)\s*(\(([^)]*)\))?\s*"
                     r"VALUES", re.I | re.S)
_TABLE_INFO = re.compile(r"^\s*PRAGMA\s+table_info\((\w+)\)\s*$", re.I)
_DDL_TYPES = ((re.compile(r"\bREAL\b"), "DOUBLE PRECISION"), (re.compile(r"\bINTEGER\b"), "BIGINT"),
              (re.compile(r"\bBLOB\b"), "BYTEA"))


class _Rows:
    """A fetched result with the sqlite3 cursor calls the store uses."""

    def __init__(self, rows: list[tuple], columns: list[str]):
        self._rows, self.description = rows, [(c,) for c in columns]

    def fetchone(self) -> tuple | None:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[tuple]:
        return list(self._rows)

    def __iter__(self) -> Iterator[tuple]:
        return iter(self._rows)


def _param(v: Any) -> Any:
    if hasattr(v, "item") and not isinstance(v, (bytes, str)):
        v = v.item()  # numpy scalars
    if isinstance(v, bool):
        return int(v)  # the schema stores flags as integers, as SQLite does
    if isinstance(v, float) and v != v:
        return None  # SQLite stores NaN as NULL; keep the backends alike
    return v


class PgConnection:
    """psycopg 3 in autocommit mode (explicit BEGIN/COMMIT, as the store issues them)."""

    dialect = "postgresql"

    def __init__(self, url: str):
        self.engine = engine_for(url)
        self._cols: dict[str, list[tuple]] = {}
        try:
            self._connect()
        except BaseException:
            self.engine.dispose()
            raise

    @contextlib.contextmanager
    def timeouts(self) -> Iterator[None]:
        """Inside, a connect or statement timeout raises StoreTimeoutError instead."""
        import psycopg
        import sqlalchemy as sa

        try:
            yield
        except (psycopg.Error, sa.exc.DBAPIError) as e:
            translated = timeout_error(e, self.engine)
            if translated is None:
                raise
            raise translated from None

    def _connect(self) -> None:
        with self.timeouts():
            self._raw = self.engine.raw_connection()
        self._pg = self._raw.driver_connection
        self._pg.autocommit = True

    def _alive(self) -> None:
        """A server restart breaks the connection: open a new one between transactions (one
        broken inside a transaction raises, as the transaction is lost)."""
        if self._pg.closed or self._pg.broken:
            # a reconnect that failed left the invalidated one here: invalidating it again
            # only warns (SAWarning: Can't invalidate an already-closed connection)
            if self._raw.dbapi_connection is not None:
                self._raw.invalidate()
            self._connect()

    # -- sqlite3-like API --------------------------------------------------------------------
    @property
    def in_transaction(self) -> bool:
        import psycopg

        return self._pg.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        special = self._special(sql)
        if special is not None:
            return special
        import psycopg

        self._alive()
        idle = not self.in_transaction
        with self.timeouts():
            try:
                cur = self._run(sql, params)
            except psycopg.OperationalError:
                if not (idle and self._pg.broken):
                    raise
                self._alive()  # the server dropped us between transactions: nothing was lost
                cur = self._run(sql, params)
            if cur.description is None:
                return _Rows([], [])
            return _Rows(cur.fetchall(), [d.name for d in cur.description])

    def _run(self, sql: str, params: Sequence[Any]) -> Any:
        cur = self._pg.cursor()
        if params:
            cur.execute(self.translate(sql, True), [_param(p) for p in params])
        else:
            cur.execute(self.translate(sql, False))
        return cur

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        rows = [[_param(p) for p in r] for r in rows]
        if rows:
            with self.timeouts():
                self._pg.cursor().executemany(self.translate(sql, True), rows)

    def close(self) -> None:
        self._raw.close()
        self.engine.dispose()

    # -- translation ------------------------------------------------------------------------
    def translate(self, sql: str, has_params: bool = True) -> str:
        """SQLite-subset SQL -> PostgreSQL (see the module docstring)."""
        s = sql.strip()
        upper = s.upper()
        if upper == "BEGIN IMMEDIATE":
            return "BEGIN"
        if upper == "BEGIN":
            return "BEGIN ISOLATION LEVEL REPEATABLE READ"
        m = _UPSERT.match(s)
        if m:
            verb, table, cols = m.group(1).upper(), m.group(2), m.group(4)
            names = [c.strip() for c in cols.split(",")] if cols else self.columns(table)
            s = f"INSERT INTO {table} ({','.join(names)}) VALUES{s[m.end():]}"
            keys = self.primary_key(table)
            if verb == "IGNORE":
                s += " ON CONFLICT DO NOTHING"
            elif keys:
                sets = ",".join(f"{c}=EXCLUDED.{c}" for c in names if c not in keys)
                s += f" ON CONFLICT ({','.join(keys)}) " + (
                    f"DO UPDATE SET {sets}" if sets else "DO NOTHING")
        s = re.sub(r"\browid\b", "ctid", s)  # insertion order of rows never updated
        if re.match(r"^\s*(CREATE|ALTER)\s+TABLE", s, re.I):
            for pattern, repl in _DDL_TYPES:
                s = pattern.sub(repl, s)
        if has_params:  # psycopg reads % as a placeholder only when given parameters
            s = _PLACEHOLDER.sub("%s", s.replace("%", "%%"))
        return s

    def _special(self, sql: str) -> _Rows | None:
        m = _TABLE_INFO.match(sql)
        if m:
            return _Rows(self.table_info(m.group(1)),
                         ["cid", "name", "type", "notnull", "dflt_value", "pk"])
        if "sqlite_master" in sql:
            return _Rows([(t,) for t in self.tables()], ["name"])
        return None

    # -- schema, through SQLAlchemy's inspector ----------------------------------------------
    def forget_schema(self) -> None:
        self._cols.clear()

    def tables(self) -> list[str]:
        import sqlalchemy as sa

        with self.timeouts():
            return sorted(sa.inspect(self.engine).get_table_names())

    def table_info(self, table: str) -> list[tuple]:
        """PRAGMA table_info rows: (cid, name, declared type, notnull, default, pk)."""
        if table not in self._cols:
            import sqlalchemy as sa

            with self.timeouts():
                insp = sa.inspect(self.engine)
                keys = insp.get_pk_constraint(table).get("constrained_columns") or []
                self._cols[table] = [
                    (i, c["name"], str(c["type"]), int(not c["nullable"]), c.get("default"),
                     keys.index(c["name"]) + 1 if c["name"] in keys else 0)
                    for i, c in enumerate(insp.get_columns(table))]
        return self._cols[table]

    def columns(self, table: str) -> list[str]:
        return [r[1] for r in self.table_info(table)]

    def primary_key(self, table: str) -> list[str]:
        return [r[1] for r in sorted(self.table_info(table), key=lambda r: r[5]) if r[5]]


def migrate_pg(conn: PgConnection, migrations: Sequence[str]) -> int:
    """Apply pending migrations in one transaction under an advisory lock; returns the version."""
    with conn.timeouts():
        return _migrate_pg(conn, migrations)


def _migrate_pg(conn: PgConnection, migrations: Sequence[str]) -> int:
    conn._pg.execute("BEGIN")  # read committed: see what a process before us migrated
    try:
        conn._pg.execute("SELECT pg_advisory_xact_lock(7316)")  # 7316: this store's migrations
        conn._pg.execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
        row = conn._pg.execute("SELECT MAX(version) FROM schema_version").fetchone()
        version = int(row[0] or 0)
        if version > len(migrations):
            raise RuntimeError(f"store schema v{version} is newer than this code "
                               f"(v{len(migrations)})")
        for i in range(version, len(migrations)):
            for statement in filter(str.strip, migrations[i].split(";")):
                conn.execute(statement)
        if version < len(migrations):
            conn._pg.execute("DELETE FROM schema_version")
            conn._pg.execute("INSERT INTO schema_version VALUES (%s)", [len(migrations)])
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    finally:
        conn.forget_schema()
    return len(migrations)
