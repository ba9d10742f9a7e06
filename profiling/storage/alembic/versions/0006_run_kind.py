"""Schema v6: the run's kind (profile, scenario, claims, distributed, capture, model) as a column
that queries filter on, filled in from each stored run's spec_json (its "kind", else profile)."""

import json

import sqlalchemy as sa
from alembic import op

from profiling.storage.schema import TEXT

revision = "0006"
down_revision = "0005"


def _kind(spec_json: str | None) -> str:
    try:
        spec = json.loads(spec_json or "{}")
    except (TypeError, ValueError):
        return "profile"
    kind = spec.get("kind") if isinstance(spec, dict) else None
    return kind if isinstance(kind, str) and kind else "profile"


def upgrade() -> None:
    op.add_column("runs", sa.Column("kind", TEXT, nullable=False, server_default="profile"))
    op.create_index("runs_kind", "runs", ["kind", "created_at"])
    runs = sa.table("runs", sa.column("run_id", TEXT), sa.column("spec_json", TEXT),
                    sa.column("kind", TEXT))
    conn = op.get_bind()
    for run_id, spec_json in conn.execute(sa.select(runs.c.run_id, runs.c.spec_json)).all():
        kind = _kind(spec_json)
        if kind != "profile":
            conn.execute(runs.update().where(runs.c.run_id == run_id).values(kind=kind))
