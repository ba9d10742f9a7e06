"""The store's connection to its database: the engine, short write transactions retried while
SQLite is busy, reads into DataFrames, and read snapshots. Backend-neutral: what differs lives in
profiling.storage.db."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pandas as pd
import sqlalchemy as sa

from profiling.storage.db import for_writing, is_busy, read_snapshot

T = TypeVar("T")
ATTEMPTS = 20


class Database:
    """An engine plus the transaction discipline every store job shares."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self._lock = threading.RLock()
        self._snapshot: sa.Connection | None = None

    @property
    def dialect(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self.engine.dialect.name

    def close(self) -> None:
        with self._lock:
            self.engine.dispose()

    def _retry(self, fn: Callable[[], T]) -> T:
        for i in range(ATTEMPTS):
            try:
                with self._lock:
                    return fn()
            except sa.exc.OperationalError as e:
                if not is_busy(e) or i == ATTEMPTS - 1:
                    raise
                time.sleep(0.05 * (i + 1))
        raise AssertionError("unreachable")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """One write transaction (SQLite: BEGIN IMMEDIATE); everything inside commits together
        or not at all."""
        with self._lock, self.engine.connect() as conn, for_writing(conn).begin():
            yield conn

    def _write(self, fn: Callable[[sa.Connection], T]) -> T:
        """Run fn(conn) in its own transaction, retrying the whole transaction when busy."""
        def attempt() -> T:
            with self.transaction() as conn:
                return fn(conn)

        return self._retry(attempt)

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads inside see one state of the database, whatever writers commit meanwhile."""
        with self._lock:
            if self._snapshot is not None:  # nested: the outer snapshot holds
                yield
                return
            with self.engine.connect() as conn:
                conn = read_snapshot(conn)
                with conn.begin():
                    self._snapshot = conn
                    try:
                        yield
                    finally:
                        self._snapshot = None

    def query(self, statement: sa.Executable) -> pd.DataFrame:
        """The rows of a SQLAlchemy select as a DataFrame (retried while SQLite is busy)."""
        def read() -> pd.DataFrame:
            if self._snapshot is not None:
                return _frame(self._snapshot.execute(statement))
            with self.engine.connect() as conn:
                return _frame(conn.execute(statement))

        return self._retry(read)

    def scalar(self, statement: sa.Executable) -> Any:
        """The first column of the first row of a select (None when there is none)."""
        df = self.query(statement)
        return None if df.empty else df.iloc[0, 0]


def _frame(result: sa.CursorResult) -> pd.DataFrame:
    # plain tuples: pandas reads SQLAlchemy's Row objects as arrays with a dtype of their own
    return pd.DataFrame.from_records([tuple(r) for r in result], columns=list(result.keys()),
                                     coerce_float=True)


def plain(v: Any) -> Any:
    """A value as the store keeps it: numpy scalars -> Python, NaN -> NULL, bool -> 0/1 (flags
    are integers in both backends), lists and dicts -> JSON text."""
    if v is None:
        return None
    if hasattr(v, "item") and not isinstance(v, (bytes, str)):
        v = v.item()
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, float) and v != v:
        return None
    if isinstance(v, (list, dict)):
        return json.dumps(v)
    return v
