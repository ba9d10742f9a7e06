"""Ordered schema migrations for the store; PRAGMA user_version = number applied (SQLite).

Written in the SQL subset both backends read: profiling.storage.db applies the same list to
PostgreSQL (schema_version table)."""

from __future__ import annotations

import sqlite3

MIGRATIONS: list[str] = [
    # 1: runs, cases, samples
    """
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
    """,
    # 2: trace-derived tables and content-addressed trace files
    """
    CREATE TABLE op_stats (
        case_id TEXT NOT NULL, op_name TEXT, op_type TEXT, occurrences INTEGER,
        self_time_us REAL, total_time_us REAL, device TEXT
    );
    CREATE INDEX op_stats_case ON op_stats(case_id);
    CREATE TABLE breakdown (
        case_id TEXT PRIMARY KEY, compute_us REAL, memcpy_us REAL, collective_us REAL,
        idle_us REAL, other_us REAL
    );
    CREATE TABLE traces (
        sha256 TEXT PRIMARY KEY, filename TEXT, size_bytes INTEGER, created_at TEXT
    );
    """,
    # 3: fusion results and calibration
    """
    CREATE TABLE fusion (
        run_id TEXT NOT NULL, case_id TEXT NOT NULL, variant TEXT, block TEXT, fused INTEGER,
        fused_into TEXT, kernels REAL, time_s REAL, time_vs_fused REAL, hlo_fusions INTEGER,
        instructions_before INTEGER, instructions_after INTEGER, compiled INTEGER, reason TEXT,
        ops TEXT
    );
    CREATE INDEX fusion_run ON fusion(run_id);
    CREATE TABLE calibration (
        run_id TEXT NOT NULL, device TEXT, threads INTEGER, allocator TEXT, peak_gbps REAL,
        method TEXT, size_bytes INTEGER, seconds REAL
    );
    """,
    # 4: measurement core: the kind of case, paired ratios to the baseline, the harness floor,
    # utilization against the roof at the case's working set, the roof curve, machine noise
    """
    ALTER TABLE cases ADD COLUMN kind TEXT NOT NULL DEFAULT 'profile';
    ALTER TABLE cases ADD COLUMN baseline_case_id TEXT;
    ALTER TABLE cases ADD COLUMN ratio_to_baseline REAL;
    ALTER TABLE cases ADD COLUMN ratio_ci95_low REAL;
    ALTER TABLE cases ADD COLUMN ratio_ci95_high REAL;
    ALTER TABLE cases ADD COLUMN floor_s REAL;
    ALTER TABLE cases ADD COLUMN working_set_bytes INTEGER;
    ALTER TABLE cases ADD COLUMN roof_gbps REAL;
    ALTER TABLE fusion ADD COLUMN time_ci95_low_s REAL;
    ALTER TABLE fusion ADD COLUMN time_ci95_high_s REAL;
    ALTER TABLE fusion ADD COLUMN ratio_ci95_low REAL;
    ALTER TABLE fusion ADD COLUMN ratio_ci95_high REAL;
    ALTER TABLE runs ADD COLUMN noise_verdict TEXT;
    ALTER TABLE runs ADD COLUMN noise_json TEXT;
    CREATE TABLE roof (
        run_id TEXT NOT NULL, device TEXT, threads INTEGER, allocator TEXT,
        working_set_bytes INTEGER, gbps REAL, gbps_median REAL, gbps_iqr REAL, n INTEGER,
        method TEXT, roof_gbps REAL
    );
    CREATE INDEX roof_run ON roof(run_id);
    """,
    # 5: team store: the machine a run was measured on (a name and its identity as JSON, see
    # profiling.measurement.machine), and trace bytes in the database for stores without a shared disk
    """
    ALTER TABLE runs ADD COLUMN machine TEXT;
    ALTER TABLE runs ADD COLUMN machine_json TEXT;
    CREATE INDEX runs_machine ON runs(machine, created_at);
    CREATE TABLE trace_blobs (sha256 TEXT PRIMARY KEY, data BLOB NOT NULL);
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection) -> int:
    """Apply pending migrations in one IMMEDIATE transaction (safe against a concurrent opener)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError(f"store schema v{version} is newer than this code (v{SCHEMA_VERSION})")
        for i in range(version, SCHEMA_VERSION):
            for statement in filter(str.strip, MIGRATIONS[i].split(";")):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {i + 1}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return SCHEMA_VERSION
