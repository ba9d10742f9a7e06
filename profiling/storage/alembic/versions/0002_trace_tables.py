"""Schema v2: trace-derived tables (op stats, time breakdown) and content-addressed trace files."""

import sqlalchemy as sa
from alembic import op

from profiling.storage.schema import INTEGER, REAL, TEXT

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "op_stats",
        sa.Column("case_id", TEXT, nullable=False), sa.Column("op_name", TEXT),
        sa.Column("op_type", TEXT), sa.Column("occurrences", INTEGER),
        sa.Column("self_time_us", REAL), sa.Column("total_time_us", REAL),
        sa.Column("device", TEXT))
    op.create_index("op_stats_case", "op_stats", ["case_id"])
    op.create_table(
        "breakdown",
        sa.Column("case_id", TEXT, primary_key=True),
        *(sa.Column(n, REAL) for n in ("compute_us", "memcpy_us", "collective_us", "idle_us",
                                       "other_us")))
    op.create_table(
        "traces",
        sa.Column("sha256", TEXT, primary_key=True), sa.Column("filename", TEXT),
        sa.Column("size_bytes", INTEGER), sa.Column("created_at", TEXT))
