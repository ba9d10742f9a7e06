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
from helpers import open_page, silent_server, sql, texts

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


def test_the_server_stopped_mid_run_gives_one_line_and_keeps_the_run(tmp_path):
    import os
    import shutil
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from profiling.storage.pg_cluster import create_database, start_cluster
    from profiling.storage.store import Store

    # a cluster of its own: stopping it must not stop the other tests' server
    root = Path(tempfile.mkdtemp(prefix="relu_lab_pg_stop_",
                                 dir="/tmp" if os.geteuid() == 0 else None))
    cluster = start_cluster(root)
    try:
        url = create_database(cluster, "relu_lab")
        repo = Path(__file__).resolve().parents[1]
        env = {**os.environ, "RELU_LAB_STORE": url, "PYTHONPATH": str(repo),
               "RELU_LAB_TRACE_CACHE": str(tmp_path / "trace_cache")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "profiling", "run", "--variants", "nn_relu,maximum,where",
             "--sizes", "100,200,300", "--modes", "eager", "--threads", "1", "--no-trace",
             "--min-time", "0.05", "--quiet"], cwd=repo, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None and not stored_cases(url):
            time.sleep(0.1)
        assert proc.poll() is None, "the run ended before the server could be stopped"
        cluster.stop()
        _, err = proc.communicate(timeout=120)
        line = one_error_line(err)
        assert proc.returncode != 0 and line.startswith("error: "), (proc.returncode, line)
        assert "127.0.0.1" in line and "Warning" not in line, line
        start_cluster(root, cluster.port)  # the server is back
        store = Store(url)
        (run,) = store.list_runs().to_dict("records")
        assert run["status"] == "interrupted"
        cases = store.cases([run["run_id"]])
        assert 1 <= len(cases) < 9 and (cases.status == "ok").all()
        samples = dict(sql(store, "SELECT case_id, COUNT(*) FROM samples GROUP BY case_id"))
        assert samples == dict(zip(cases.case_id, cases.n_samples, strict=True))
        store.close()
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def stored_cases(url: str) -> int:
    """Cases in the store at url, read directly (0 before its schema exists)."""
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            return conn.execute("SELECT COUNT(*) FROM cases").fetchone()[0]
    except psycopg.Error:
        return 0


def test_a_slow_statement_through_sqlalchemy_is_one_line_too(pg_url, monkeypatch):
    import sqlalchemy as sa

    from profiling.storage.db import StoreTimeoutError, engine_for

    monkeypatch.setenv("RELU_LAB_DB_STATEMENT_TIMEOUT_S", "0.5")
    engine = engine_for(pg_url + "?options=-c%20search_path%3Dpublic")  # the URL's own kept
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SHOW search_path")).scalar() == "public"
            started = time.monotonic()
            with pytest.raises(StoreTimeoutError) as info:
                conn.execute(sa.text("SELECT pg_sleep(30)"))
        assert time.monotonic() - started < 10
    finally:
        engine.dispose()
    assert str(info.value) == (f"PostgreSQL at 127.0.0.1:{engine.url.port} did not finish a "
                               "statement within 0.5 s (limit: RELU_LAB_DB_STATEMENT_TIMEOUT_S)")
