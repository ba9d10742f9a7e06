"""The store's tables, declared once as SQLAlchemy Core metadata; every query and column list
of the store is built from them, on SQLite and PostgreSQL alike.

Column types keep what the store has always declared: INTEGER / REAL / TEXT / BLOB in SQLite,
BIGINT / DOUBLE PRECISION / TEXT / BYTEA in PostgreSQL (whose REAL is 4 bytes, INTEGER 32 bits).
The Alembic revisions in profiling/storage/alembic/versions build exactly this schema.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement

INTEGER = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
REAL = sa.Double().with_variant(sa.REAL(), "sqlite")
TEXT = sa.Text()
BLOB = sa.LargeBinary()

metadata = sa.MetaData()


runs = sa.Table(
    "runs", metadata,
    sa.Column("run_id", TEXT, primary_key=True), sa.Column("created_at", TEXT, nullable=False),
    sa.Column("finished_at", TEXT), sa.Column("status", TEXT, nullable=False),
    sa.Column("n_cases", INTEGER, nullable=False, server_default=sa.text("0")),
    sa.Column("label", TEXT, nullable=False, server_default=""),
    sa.Column("spec_json", TEXT, nullable=False), sa.Column("pid", INTEGER), sa.Column("host", TEXT),
    sa.Column("environment_json", TEXT), sa.Column("noise_verdict", TEXT), sa.Column("noise_json", TEXT),
    sa.Column("machine", TEXT), sa.Column("machine_json", TEXT),
    sa.Column("kind", TEXT, nullable=False, server_default="profile"),
    sa.Index("runs_machine", "machine", "created_at"), sa.Index("runs_kind", "kind", "created_at"),
)

_CASE_REAL = ("median_s", "min_s", "iqr_s", "ci95_low_s", "ci95_high_s", "ci95_s")
cases = sa.Table(
    "cases", metadata,
    sa.Column("case_id", TEXT, primary_key=True),
    sa.Column("run_id", TEXT, sa.ForeignKey("runs.run_id"), nullable=False), sa.Column("idx", INTEGER),
    *(sa.Column(n, TEXT) for n in ("variant", "variant_params", "label", "shape")),
    sa.Column("numel", INTEGER), sa.Column("dtype", TEXT), sa.Column("device", TEXT), sa.Column("threads", INTEGER),
    *(sa.Column(n, TEXT) for n in ("allocator", "mode", "pass", "status", "reason")),
    *(sa.Column(n, REAL) for n in _CASE_REAL),
    sa.Column("n_samples", INTEGER), sa.Column("number", INTEGER), sa.Column("elements_per_s", REAL),
    sa.Column("bytes_per_call", INTEGER),
    *(sa.Column(n, REAL) for n in ("gbps", "peak_gbps", "utilization", "page_faults_per_call",
                              "peak_rss_mb")),
    sa.Column("trace_sha256", TEXT), sa.Column("kind", TEXT, nullable=False, server_default="profile"),
    sa.Column("baseline_case_id", TEXT),
    *(sa.Column(n, REAL) for n in ("ratio_to_baseline", "ratio_ci95_low", "ratio_ci95_high",
                              "floor_s")),
    sa.Column("working_set_bytes", INTEGER), sa.Column("roof_gbps", REAL),
    sa.Index("cases_run", "run_id"),
)

samples = sa.Table(
    "samples", metadata,
    sa.Column("case_id", TEXT, primary_key=True), sa.Column("repeat", INTEGER, primary_key=True),
    sa.Column("seconds_per_call", REAL, nullable=False),
)

op_stats = sa.Table(
    "op_stats", metadata,
    sa.Column("case_id", TEXT, nullable=False), sa.Column("op_name", TEXT), sa.Column("op_type", TEXT),
    sa.Column("occurrences", INTEGER), sa.Column("self_time_us", REAL), sa.Column("total_time_us", REAL),
    sa.Column("device", TEXT),
    sa.Index("op_stats_case", "case_id"),
)

breakdown = sa.Table(
    "breakdown", metadata,
    sa.Column("case_id", TEXT, primary_key=True),
    *(sa.Column(n, REAL) for n in ("compute_us", "memcpy_us", "collective_us", "idle_us",
                              "other_us")),
)

traces = sa.Table(
    "traces", metadata,
    sa.Column("sha256", TEXT, primary_key=True), sa.Column("filename", TEXT), sa.Column("size_bytes", INTEGER),
    sa.Column("created_at", TEXT),
)

fusion = sa.Table(
    "fusion", metadata,
    sa.Column("run_id", TEXT, nullable=False), sa.Column("case_id", TEXT, nullable=False),
    sa.Column("variant", TEXT), sa.Column("block", TEXT), sa.Column("fused", INTEGER), sa.Column("fused_into", TEXT),
    sa.Column("kernels", REAL), sa.Column("time_s", REAL), sa.Column("time_vs_fused", REAL),
    sa.Column("hlo_fusions", INTEGER), sa.Column("instructions_before", INTEGER),
    sa.Column("instructions_after", INTEGER), sa.Column("compiled", INTEGER), sa.Column("reason", TEXT),
    sa.Column("ops", TEXT),
    *(sa.Column(n, REAL) for n in ("time_ci95_low_s", "time_ci95_high_s", "ratio_ci95_low",
                              "ratio_ci95_high")),
    sa.Index("fusion_run", "run_id"),
)

calibration = sa.Table(
    "calibration", metadata,
    sa.Column("run_id", TEXT, nullable=False), sa.Column("device", TEXT), sa.Column("threads", INTEGER),
    sa.Column("allocator", TEXT), sa.Column("peak_gbps", REAL), sa.Column("method", TEXT),
    sa.Column("size_bytes", INTEGER), sa.Column("seconds", REAL),
)

roof = sa.Table(
    "roof", metadata,
    sa.Column("run_id", TEXT, nullable=False), sa.Column("device", TEXT), sa.Column("threads", INTEGER),
    sa.Column("allocator", TEXT), sa.Column("working_set_bytes", INTEGER), sa.Column("gbps", REAL),
    sa.Column("gbps_median", REAL), sa.Column("gbps_iqr", REAL), sa.Column("n", INTEGER), sa.Column("method", TEXT),
    sa.Column("roof_gbps", REAL),
    sa.Index("roof_run", "run_id"),
)

trace_blobs = sa.Table(
    "trace_blobs", metadata,
    sa.Column("sha256", TEXT, primary_key=True), sa.Column("data", BLOB, nullable=False),
)

TABLES: dict[str, sa.Table] = dict(metadata.tables)
# the tables a bundle carries, in the order rows go in (trace_blobs travel as trace files)
BUNDLE_TABLES = ("runs", "cases", "samples", "op_stats", "breakdown", "fusion", "calibration",
                 "roof", "traces")


def columns(table: sa.Table, *leave_out: str) -> list[str]:
    """The table's column names in declared order, without `leave_out`."""
    return [c.name for c in table.columns if c.name not in leave_out]


# what store.cases returns (plus run_label): every column but the row order and the trace hash
CASE_COLUMNS = ["run_id", *columns(cases, "run_id", "idx", "trace_sha256")]
OP_STATS_COLUMNS = columns(op_stats, "case_id")
BREAKDOWN_COLUMNS = columns(breakdown)
FUSION_COLUMNS = columns(fusion, "run_id", "ops")
ROOF_COLUMNS = columns(roof, "run_id")
CALIBRATION_COLUMNS = columns(calibration, "run_id")


class insertion_order(ColumnElement):  # noqa: N801 (an SQL expression, named as a function)
    """The order rows were inserted in, for tables without a key of their own: SQLite's rowid,
    PostgreSQL's ctid (the physical order, which is insertion order for rows never updated)."""

    inherit_cache = True
    type = sa.Integer()

    def __init__(self, table: sa.Table):
        self.table = table


@compiles(insertion_order)
def _insertion_order_sqlite(element: insertion_order, compiler: object, **kw: object) -> str:
    return f"{element.table.name}.rowid"


@compiles(insertion_order, "postgresql")
def _insertion_order_postgresql(element: insertion_order, compiler: object, **kw: object) -> str:
    return f"{element.table.name}.ctid"
