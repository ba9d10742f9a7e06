"""Schema v1: runs, cases and their timed samples."""

import sqlalchemy as sa
from alembic import op

from profiling.storage.schema import INTEGER, REAL, TEXT

revision = "0001"
down_revision = None

_CASE_TEXT = ("variant", "variant_params", "label", "shape")
_CASE_REAL = ("median_s", "min_s", "iqr_s", "ci95_low_s", "ci95_high_s", "ci95_s")


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("run_id", TEXT, primary_key=True), sa.Column("created_at", TEXT, nullable=False),
        sa.Column("finished_at", TEXT), sa.Column("status", TEXT, nullable=False),
        sa.Column("n_cases", INTEGER, nullable=False, server_default=sa.text("0")),
        sa.Column("label", TEXT, nullable=False, server_default=""),
        sa.Column("spec_json", TEXT, nullable=False), sa.Column("pid", INTEGER),
        sa.Column("host", TEXT), sa.Column("environment_json", TEXT))
    op.create_table(
        "cases",
        sa.Column("case_id", TEXT, primary_key=True),
        sa.Column("run_id", TEXT, sa.ForeignKey("runs.run_id"), nullable=False),
        sa.Column("idx", INTEGER), *(sa.Column(n, TEXT) for n in _CASE_TEXT),
        sa.Column("numel", INTEGER), sa.Column("dtype", TEXT), sa.Column("device", TEXT),
        sa.Column("threads", INTEGER),
        *(sa.Column(n, TEXT) for n in ("allocator", "mode", "pass", "status", "reason")),
        *(sa.Column(n, REAL) for n in _CASE_REAL),
        sa.Column("n_samples", INTEGER), sa.Column("number", INTEGER),
        sa.Column("elements_per_s", REAL), sa.Column("bytes_per_call", INTEGER),
        *(sa.Column(n, REAL) for n in ("gbps", "peak_gbps", "utilization",
                                       "page_faults_per_call", "peak_rss_mb")),
        sa.Column("trace_sha256", TEXT))
    op.create_index("cases_run", "cases", ["run_id"])
    op.create_table(
        "samples",
        sa.Column("case_id", TEXT, primary_key=True), sa.Column("repeat", INTEGER, primary_key=True),
        sa.Column("seconds_per_call", REAL, nullable=False))
