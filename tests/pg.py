"""A real PostgreSQL server for the store's tests, started once per session.

`pg_server` starts a throwaway cluster (profiling.storage.pg_cluster: unprivileged user, temp dir,
loopback port) and stops it at the end; when PostgreSQL is missing or will not start, the tests
that use it FAIL with the reason (`make test` installs it first). `pg_url` is a fresh database
per test. `backend` parametrizes a test over both stores: it gives the location to open
(a data dir for SQLite, a postgresql:// URL) and points RELU_LAB_STORE/RELU_LAB_DATA at it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from profiling.storage.pg_cluster import Cluster, ClusterError, start_cluster


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Cluster]:
    # as root the cluster runs as `postgres`, which must reach the dir: /tmp, not a private TMPDIR
    root = Path(tempfile.mkdtemp(prefix="relu_lab_pg_", dir="/tmp" if os.geteuid() == 0 else None))
    try:
        cluster = start_cluster(root)
    except ClusterError as e:
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"PostgreSQL for the store tests: {e}", pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """postgresql:// URL of a new empty database (dropped afterwards)."""
    import psycopg

    name = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(pg_server.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    monkeypatch.setenv("RELU_LAB_TRACE_CACHE", str(tmp_path / "trace_cache"))
    yield pg_server.url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(pg_server.url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> str:
    """Where a store lives for this test: a SQLite data dir or a PostgreSQL URL (also set as
    RELU_LAB_DATA / RELU_LAB_STORE, for the CLI and the pages)."""
    data = tmp_path / "data"
    monkeypatch.setenv("RELU_LAB_DATA", str(data))
    if request.param == "sqlite":
        monkeypatch.delenv("RELU_LAB_STORE", raising=False)
        return str(data)
    url = request.getfixturevalue("pg_url")
    monkeypatch.setenv("RELU_LAB_STORE", url)
    return url
