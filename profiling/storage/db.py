"""The engine set-up: which database a store URL names, the SQLAlchemy engine for it, and the
few things the two backends do differently, each in one function named for it.

SQLite: one file in WAL mode (readers never block the writer), a busy timeout, and writes in
`BEGIN IMMEDIATE` transactions (the write lock taken up front, so two writers queue instead of
failing half-way); a read snapshot is a deferred `BEGIN`. PostgreSQL (psycopg 3): a pooled
engine whose dropped connections are replaced between transactions (pool_pre_ping); a read
snapshot is a REPEATABLE READ transaction; the migration lock is an advisory lock.

Every PostgreSQL connection is bounded: connecting by RELU_LAB_DB_CONNECT_TIMEOUT_S (libpq's
connect_timeout, which psycopg 3 applies to the whole start-up, so a server that accepts and
never answers is covered too), each statement by RELU_LAB_DB_STATEMENT_TIMEOUT_S (the server's
statement_timeout). Either one running out raises StoreTimeoutError, one line naming the host
and the setting.
"""

from __future__ import annotations

import functools
import os
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from profiling import settings
from profiling.errors import timeout_text

STORE_ENV = "RELU_LAB_STORE"
PG_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://")
MIGRATION_LOCK_ID = 7316  # the advisory lock this store's migrations hold (PostgreSQL)


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


def engine_for(url: str) -> sa.Engine:
    """A SQLAlchemy engine on psycopg 3 for a postgresql:// URL (StoreUrlError when malformed)."""
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
    def _one_line_timeouts(context: Any) -> None:  # every statement and connect of the engine
        translated = timeout_error(context.original_exception, engine)
        if translated is not None:
            raise translated from None

    return engine


def timeout_error(error: BaseException, engine: sa.Engine) -> StoreTimeoutError | None:
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


def sqlite_engine(db_path: Path, busy_timeout_s: float = 30.0) -> sa.Engine:
    """A SQLAlchemy engine on one SQLite file: synchronous=NORMAL, the busy timeout, a deferred
    BEGIN for reads and `BEGIN IMMEDIATE` for writes (see `for_writing`)."""
    engine = sa.create_engine(
        f"sqlite:///{db_path}", poolclass=sa.pool.QueuePool, pool_size=4, max_overflow=8,
        connect_args={"timeout": busy_timeout_s, "isolation_level": None,
                      "check_same_thread": False})

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        dbapi_conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        dbapi_conn.execute("PRAGMA synchronous=NORMAL")

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        # pysqlite's own transaction handling is off (isolation_level=None): begin here
        write = conn.get_execution_options().get("write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def enable_wal(engine: sa.Engine) -> None:
    """Switch a SQLite database to WAL (persistent in the file; a no-op once set)."""
    with engine.connect() as conn:
        conn.connection.driver_connection.execute("PRAGMA journal_mode=WAL")


def for_writing(conn: sa.Connection) -> sa.Connection:
    """`conn` set so that its transactions take the write lock up front (SQLite's BEGIN
    IMMEDIATE; PostgreSQL locks rows as it writes them)."""
    return conn.execution_options(write=True)


def read_snapshot(conn: sa.Connection) -> sa.Connection:
    """`conn` set so that its next transaction reads one state of the database, whatever
    writers commit meanwhile: SQLite's deferred BEGIN already does; PostgreSQL needs
    REPEATABLE READ."""
    if conn.dialect.name == "postgresql":
        return conn.execution_options(isolation_level="REPEATABLE READ")
    return conn


def take_migration_lock(conn: sa.Connection) -> None:
    """Make concurrent openers migrate one after the other, inside the current transaction:
    SQLite's BEGIN IMMEDIATE already holds the write lock; PostgreSQL takes an advisory lock."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(MIGRATION_LOCK_ID)))


def trace_bytes_in_database(engine: sa.Engine) -> bool:
    """Whether a store keeps trace bytes in its trace_blobs table (PostgreSQL: no shared disk)
    rather than only in files beside the database (SQLite)."""
    return engine.dialect.name == "postgresql"


def legacy_schema_version(conn: sa.Connection) -> int:
    """The schema version a store made before Alembic records: PRAGMA user_version in SQLite,
    the schema_version table in PostgreSQL (0: none, a new database)."""
    if conn.dialect.name == "sqlite":
        return int(conn.exec_driver_sql("PRAGMA user_version").scalar() or 0)
    if not sa.inspect(conn).has_table("schema_version"):
        return 0
    table = sa.table("schema_version", sa.column("version"))
    return int(conn.execute(sa.select(sa.func.max(table.c.version))).scalar() or 0)


def upsert(conn: sa.Connection, table: sa.Table, rows: Iterable[Mapping[str, Any]],
           replace: bool = True) -> None:
    """Insert rows; a row whose primary key is already stored replaces it (`replace`) or is
    kept (not `replace`). Tables without a primary key just insert."""
    for group in by_columns([dict(r) for r in rows]):
        conn.execute(_upsert_statement(conn.dialect.name, table, tuple(group[0]), replace), group)


@functools.lru_cache(maxsize=256)
def _upsert_statement(dialect: str, table: sa.Table, names: tuple[str, ...],
                      replace: bool) -> sa.Executable:
    """The upsert construct of this dialect (built once: building `excluded` is costly)."""
    keys = [c.name for c in table.primary_key.columns]
    if not keys:
        return table.insert()
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    sets = {n: insert.excluded[n] for n in names if n not in keys} if replace else {}
    if not sets:
        return insert.on_conflict_do_nothing(index_elements=keys)
    return insert.on_conflict_do_update(index_elements=keys, set_=sets)


def by_columns(rows: list[dict]) -> list[list[dict]]:
    """Rows grouped by their key set (one executemany needs the same columns in every row)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r), []).append(r)
    return list(groups.values())


def is_busy(error: BaseException) -> bool:
    """A refusal that waiting cures: SQLite's database-locked/busy."""
    text = str(getattr(error, "orig", error))
    return isinstance(error, sa.exc.OperationalError) and ("locked" in text or "busy" in text)


def db_errors() -> tuple[type[BaseException], ...]:
    """Exceptions either backend raises for a refused statement (constraint, type, I/O)."""
    return (sa.exc.DBAPIError, sqlite3.Error)
