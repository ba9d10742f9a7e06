"""Schema v3: fusion results and bandwidth calibration."""

import sqlalchemy as sa
from alembic import op

from profiling.storage.schema import INTEGER, REAL, TEXT

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "fusion",
        sa.Column("run_id", TEXT, nullable=False), sa.Column("case_id", TEXT, nullable=False),
        sa.Column("variant", TEXT), sa.Column("block", TEXT), sa.Column("fused", INTEGER),
        sa.Column("fused_into", TEXT), sa.Column("kernels", REAL), sa.Column("time_s", REAL),
        sa.Column("time_vs_fused", REAL), sa.Column("hlo_fusions", INTEGER),
        sa.Column("instructions_before", INTEGER), sa.Column("instructions_after", INTEGER),
        sa.Column("compiled", INTEGER), sa.Column("reason", TEXT), sa.Column("ops", TEXT))
    op.create_index("fusion_run", "fusion", ["run_id"])
    op.create_table(
        "calibration",
        sa.Column("run_id", TEXT, nullable=False), sa.Column("device", TEXT),
        sa.Column("threads", INTEGER), sa.Column("allocator", TEXT),
        sa.Column("peak_gbps", REAL), sa.Column("method", TEXT),
        sa.Column("size_bytes", INTEGER), sa.Column("seconds", REAL))
