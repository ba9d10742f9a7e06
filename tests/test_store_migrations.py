"""Alembic upgrades stores made before it, in place: the committed v5 fixtures (a SQLite store
made by the pre-Alembic code and the same rows loaded into PostgreSQL by it, see
tests/fixtures/store_v5*), a v1 SQLite store, and a new database opened by three processes at
once (migrated once), on both backends."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from helpers import FIXTURES, connect, sql

from profiling.storage.migrations import SCHEMA_VERSION
from profiling.storage.rows import export_rows
from profiling.storage.schema import BUNDLE_TABLES, TABLES
from profiling.storage.store import Store

REPO = Path(__file__).resolve().parents[1]
FIXTURE_DB = FIXTURES / "store_v5.sqlite"
FIXTURE_PG = FIXTURES / "store_v5_pg.sql"
FIXTURE_TRACES = FIXTURES / "store_v5_traces"

# schema v1 exactly as the pre-Alembic code created it (its MIGRATIONS[0])
V1_SQL = """
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, finished_at TEXT,
    status TEXT NOT NULL, n_cases INTEGER NOT NULL DEFAULT 0, label TEXT NOT NULL DEFAULT '',
    spec_json TEXT NOT NULL, pid INTEGER, host TEXT, environment_json TEXT
);
CREATE TABLE cases (
    case_id TEXT PRIMARY KEY, run_id TEXT NOT NULL REFERENCES runs(run_id), idx INTEGER,
    variant TEXT, variant_params TEXT, label TEXT, shape TEXT, numel INTEGER, dtype TEXT,
    device TEXT, threads INTEGER, allocator TEXT, mode TEXT, pass TEXT, status TEXT,
    reason TEXT, median_s REAL, min_s REAL, iqr_s REAL, ci95_low_s REAL, ci95_high_s REAL,
    ci95_s REAL, n_samples INTEGER, number INTEGER, elements_per_s REAL,
    bytes_per_call INTEGER, gbps REAL, peak_gbps REAL, utilization REAL,
    page_faults_per_call REAL, peak_rss_mb REAL, trace_sha256 TEXT
);
CREATE INDEX cases_run ON cases(run_id);
CREATE TABLE samples (
    case_id TEXT NOT NULL, repeat INTEGER NOT NULL, seconds_per_call REAL NOT NULL,
    PRIMARY KEY (case_id, repeat)
);
PRAGMA user_version = 1;
"""


def _norm(value: object) -> object:
    """Integers and floats compared as numbers (a column with NULLs reads back as floats)."""
    return float(value) if isinstance(value, (int, float)) else value


def _sorted(rows: list[dict]) -> list[dict]:
    rows = [{k: _norm(v) for k, v in r.items()} for r in rows]
    return sorted(rows, key=lambda r: repr(sorted(r.items())))


def fixture_rows() -> dict[str, list[dict]]:
    """Every row of the v5 fixture, table by table, read with sqlite3 from the committed file."""
    conn = sqlite3.connect(f"file:{FIXTURE_DB}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return {t: [dict(r) for r in conn.execute(f"SELECT * FROM {t}")]
                for t in (*BUNDLE_TABLES, "trace_blobs")}
    finally:
        conn.close()


def load_pg_fixture(url: str) -> None:
    """The v5 rows as the pre-Alembic code left them in PostgreSQL (schema_version table, its
    column types), loaded into the empty database at url."""
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"),
                         autocommit=True) as conn:
        conn.execute(FIXTURE_PG.read_text())


def assert_fixture_reads_back(store: Store) -> None:
    """Every fixture row, read through the Store, equals what the fixture file holds."""
    expected = fixture_rows()
    (run_id,) = [r["run_id"] for r in expected["runs"]]
    got = export_rows(store, [run_id])
    for table in BUNDLE_TABLES:
        # columns a later revision added (runs.kind, v6) are checked below, the rest as stored
        old = [{k: r[k] for k in expected[table][0]} for r in got[table]] if expected[table] \
            else got[table]
        assert _sorted(old) == _sorted(expected[table]), table
    # v6 fills runs.kind from the spec: the fixture is a profile run
    assert [r["kind"] for r in got["runs"]] == ["profile"]
    assert store.list_runs().run_id.tolist() == [run_id]
    cases = store.cases(run_id)
    assert sorted(cases.case_id) == sorted(r["case_id"] for r in expected["cases"])
    for case in expected["cases"]:
        want = [r["seconds_per_call"] for r in sorted(expected["samples"], key=lambda r: r["repeat"])
                if r["case_id"] == case["case_id"]]
        assert store.samples(case["case_id"]).seconds_per_call.tolist() == want
        ops = [r for r in expected["op_stats"] if r["case_id"] == case["case_id"]]
        assert len(store.op_stats(case["case_id"])) == len(ops)
        trace = store.trace_path(case["case_id"])
        assert trace is not None and trace.read_bytes() == (FIXTURE_TRACES / trace.name).read_bytes()
    fusion = store.fusion(run_id)
    assert fusion.fused.tolist() == [bool(r["fused"]) for r in expected["fusion"]]  # in order
    assert len(store.roof(run_id)) == len(expected["roof"]) > 0
    assert len(store.calibration(run_id)) == len(expected["calibration"]) == 1
    assert len(store.breakdown(run_id)) == len(expected["breakdown"]) == len(expected["cases"])
    assert store.schema_version() == SCHEMA_VERSION


def test_the_sqlite_fixture_upgrades_in_place(tmp_path):
    shutil.copy(FIXTURE_DB, tmp_path / "relu_lab.sqlite")
    shutil.copytree(FIXTURE_TRACES, tmp_path / "traces")
    with Store(tmp_path) as store:
        assert_fixture_reads_back(store)
        assert sql(store, "SELECT version_num FROM alembic_version") == [(f"{SCHEMA_VERSION:04d}",)]
    with Store(tmp_path) as again:  # opened again: stamped, nothing left to do
        assert_fixture_reads_back(again)


def test_the_run_kind_comes_from_the_stored_spec_and_queries_filter_on_it(tmp_path):
    shutil.copy(FIXTURE_DB, tmp_path / "relu_lab.sqlite")
    conn = sqlite3.connect(tmp_path / "relu_lab.sqlite")
    (run_id,) = [r[0] for r in conn.execute("SELECT run_id FROM runs")]
    conn.execute("UPDATE runs SET spec_json = '{\"kind\": \"claims\"}'")  # a v5 claims run
    conn.commit()
    conn.close()
    from profiling.storage.run_writer import CaseResult, RunWriter

    with Store(tmp_path) as store:
        assert store.list_runs(kind="claims").run_id.tolist() == [run_id]
        assert store.list_runs(kind="profile").empty
        with RunWriter(store, "model", {"model": "m"}) as w:
            w.add(CaseResult(0, "model", "original", samples=[1.0, 1.1, 0.9]))
        assert store.list_runs(kind="model").run_id.tolist() == [w.run_id]
        assert set(store.list_runs().kind) == {"claims", "model"}


def test_the_postgresql_fixture_upgrades_under_three_concurrent_openers(pg_url, monkeypatch,
                                                                        tmp_path):
    load_pg_fixture(pg_url)
    opener = "import sys; from profiling.storage.store import Store; Store(sys.argv[1]).close()"
    procs = [subprocess.Popen([sys.executable, "-c", opener, pg_url], cwd=REPO,
                              stderr=subprocess.PIPE) for _ in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0], [p.stderr.read() for p in procs]
    with Store(pg_url) as store:
        assert sql(store, "SELECT version_num FROM alembic_version") == [(f"{SCHEMA_VERSION:04d}",)]
        with connect(store) as conn:
            inspector = sa.inspect(conn)
            assert "schema_version" not in inspector.get_table_names()
            types = {c["name"]: str(c["type"]) for c in inspector.get_columns("cases")}
        assert types["median_s"] == "DOUBLE PRECISION" and types["numel"] == "BIGINT"
        assert_fixture_reads_back(store)  # trace bytes from trace_blobs, into an empty cache


def test_a_v1_sqlite_store_upgrades_to_the_newest_schema(tmp_path):
    conn = sqlite3.connect(tmp_path / "relu_lab.sqlite")
    conn.executescript(V1_SQL)
    conn.execute("INSERT INTO runs (run_id, created_at, status, spec_json) "
                 "VALUES ('old', '2020-01-01', 'complete', '{}')")
    conn.commit()
    conn.close()
    store = Store(tmp_path)
    assert store.schema_version() == SCHEMA_VERSION
    runs = store.list_runs()
    assert runs.run_id.tolist() == ["old"] and runs.machine.isna().all()
    assert store.fusion(["old"]).empty  # tables from later revisions exist
    with connect(store) as c:
        cols = {t: {x["name"] for x in sa.inspect(c).get_columns(t)} for t in TABLES}
    assert cols == {name: set(table.c.keys()) for name, table in TABLES.items()}


def test_a_new_database_is_created_once_by_concurrent_openers(backend):
    opener = "import sys; from profiling.storage.store import Store; Store(sys.argv[1]).close()"
    procs = [subprocess.Popen([sys.executable, "-c", opener, backend], cwd=REPO,
                              stderr=subprocess.PIPE) for _ in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0], [p.stderr.read() for p in procs]
    with Store(backend) as store:
        assert store.schema_version() == SCHEMA_VERSION and store.list_runs().empty
        assert sql(store, "SELECT version_num FROM alembic_version") == [(f"{SCHEMA_VERSION:04d}",)]


def test_a_store_newer_than_the_code_is_refused_in_one_line(tmp_path):
    Store(tmp_path).close()
    conn = sqlite3.connect(tmp_path / "relu_lab.sqlite")
    conn.execute("UPDATE alembic_version SET version_num = '9999'")
    conn.commit()
    conn.close()
    with pytest.raises(RuntimeError, match=r"^store schema v9999 is newer than this code"):
        Store(tmp_path)


def test_schema_version_is_alembics_head_and_the_head_builds_the_declared_schema(tmp_path):
    from alembic.script import ScriptDirectory

    from profiling.storage.migrations import alembic_config
    from profiling.storage.schema import metadata

    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == \
        f"{SCHEMA_VERSION:04d}"
    with Store(tmp_path) as store, connect(store) as conn:  # a new store, built by the revisions
        inspector = sa.inspect(conn)
        for name, table in metadata.tables.items():
            got = [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(name)]
            want = [(c.name, str(c.type.compile(dialect=conn.dialect)), c.nullable)
                    for c in table.columns]
            assert got == want, name
            assert {i["name"] for i in inspector.get_indexes(name)} == {i.name for i in table.indexes}
