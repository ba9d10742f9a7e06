"""Schema v4: the measurement core: the kind of case, paired ratios to the baseline, the harness
floor, utilization against the roof at the case's working set, the roof curve, machine noise."""

import sqlalchemy as sa
from alembic import op

from profiling.storage.schema import INTEGER, REAL, TEXT

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.add_column("cases", sa.Column("kind", TEXT, nullable=False, server_default="profile"))
    op.add_column("cases", sa.Column("baseline_case_id", TEXT))
    for name in ("ratio_to_baseline", "ratio_ci95_low", "ratio_ci95_high", "floor_s"):
        op.add_column("cases", sa.Column(name, REAL))
    op.add_column("cases", sa.Column("working_set_bytes", INTEGER))
    op.add_column("cases", sa.Column("roof_gbps", REAL))
    for name in ("time_ci95_low_s", "time_ci95_high_s", "ratio_ci95_low", "ratio_ci95_high"):
        op.add_column("fusion", sa.Column(name, REAL))
    op.add_column("runs", sa.Column("noise_verdict", TEXT))
    op.add_column("runs", sa.Column("noise_json", TEXT))
    op.create_table(
        "roof",
        sa.Column("run_id", TEXT, nullable=False), sa.Column("device", TEXT),
        sa.Column("threads", INTEGER), sa.Column("allocator", TEXT),
        sa.Column("working_set_bytes", INTEGER), sa.Column("gbps", REAL),
        sa.Column("gbps_median", REAL), sa.Column("gbps_iqr", REAL), sa.Column("n", INTEGER),
        sa.Column("method", TEXT), sa.Column("roof_gbps", REAL))
    op.create_index("roof_run", "roof", ["run_id"])
