"""Schema v5: the team store: the machine a run was measured on (a name and its identity as
JSON, see profiling.measurement.machine), and trace bytes in the database for stores without a
shared disk."""

import sqlalchemy as sa
from alembic import op

from profiling.storage.schema import BLOB, TEXT

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.add_column("runs", sa.Column("machine", TEXT))
    op.add_column("runs", sa.Column("machine_json", TEXT))
    op.create_index("runs_machine", "runs", ["machine", "created_at"])
    op.create_table(
        "trace_blobs",
        sa.Column("sha256", TEXT, primary_key=True), sa.Column("data", BLOB, nullable=False))
