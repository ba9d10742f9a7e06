"""A database that misbehaves: one that accepts and never answers, a statement that waits
forever on a lock, a refused URL. Each ends in one line naming the host (and the setting that
bounds the wait), never a hang or a traceback."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from helpers import open_page, silent_server, texts

from profiling.cli.main import main

CONNECT_LIMIT_S = 2


@pytest.fixture
def silent_url(tmp_path, monkeypatch) -> Iterator[str]:
    monkeypatch.setenv("RELU_LAB_DB_CONNECT_TIMEOUT_S", str(CONNECT_LIMIT_S))
    monkeypatch.setenv("RELU_LAB_TRACE_CACHE", str(tmp_path / "trace_cache"))
    monkeypatch.setenv("RELU_LAB_STORE", "")  # --store sets it for this process; undone after
    with silent_server() as port:
        yield f"postgresql://nobody@127.0.0.1:{port}/relu_lab"


def terminate(url: str, pid: int) -> None:
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def test_a_silent_database_fails_the_cli_within_the_connect_timeout(silent_url, capsys):
    started = time.monotonic()
    assert main(["--store", silent_url, "list"]) == 2
    elapsed = time.monotonic() - started
    line = one_error_line(capsys.readouterr().err)
    assert elapsed < CONNECT_LIMIT_S + 3, elapsed
    port = silent_url.rsplit(":", 1)[1].split("/")[0]
    assert line.startswith("error: ") and f"127.0.0.1:{port}" in line, line
    assert "RELU_LAB_DB_CONNECT_TIMEOUT_S" in line, line


def test_a_silent_database_gives_the_dashboard_one_line(silent_url, monkeypatch):
    monkeypatch.setenv("RELU_LAB_STORE", silent_url)
    started = time.monotonic()
    at = open_page("history")
    assert time.monotonic() - started < 60
    (error,) = texts(at.error)
    assert "127.0.0.1" in error and "RELU_LAB_DB_CONNECT_TIMEOUT_S" in error, error
    assert "\n" not in error


def test_a_statement_stuck_on_a_lock_ends_at_the_statement_timeout(pg_url, capsys,
                                                                   monkeypatch):
    from profiling.storage.store import Store

    Store(pg_url).close()  # the schema exists
    monkeypatch.setenv("RELU_LAB_STORE", "")
    monkeypatch.setenv("RELU_LAB_DB_STATEMENT_TIMEOUT_S", "1")
    locker = psycopg.connect(pg_url)  # e.g. a migration stuck in another process
    locker.execute("LOCK TABLE runs IN ACCESS EXCLUSIVE MODE")
    release = threading.Timer(20, terminate, [pg_url, locker.info.backend_pid])
    release.start()  # bounded even without a statement timeout
    try:
        started = time.monotonic()
        code = main(["--store", pg_url, "list"])
        elapsed = time.monotonic() - started
    finally:
        release.cancel()
        with contextlib.suppress(psycopg.Error):
            locker.close()
    line = one_error_line(capsys.readouterr().err)
    assert code == 2 and elapsed < 10, (code, elapsed)
    assert "127.0.0.1" in line and "RELU_LAB_DB_STATEMENT_TIMEOUT_S" in line, line


def test_a_refused_store_url_leaves_nothing_in_the_trace_cache(pg_server, tmp_path, capsys,
                                                               monkeypatch):
    from profiling.process import free_port

    cache = tmp_path / "trace_cache"
    monkeypatch.setenv("RELU_LAB_TRACE_CACHE", str(cache))
    monkeypatch.setenv("RELU_LAB_STORE", "")
    no_database = pg_server.url.rsplit("/", 1)[0] + "/no_such_database"
    for refused in (f"postgresql://nobody@127.0.0.1:{free_port()}/relu_lab", no_database):
        assert main(["--store", refused, "list"]) == 2
        one_error_line(capsys.readouterr().err)
    assert not cache.exists() or not any(cache.iterdir()), list(cache.iterdir())
