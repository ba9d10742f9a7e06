"""Bring a store's schema up to date with Alembic, run from code (no alembic.ini).

The revisions are profiling/storage/alembic/versions/NNNN_*.py; NNNN is the schema version. A
store made before Alembic kept its version in PRAGMA user_version (SQLite) or a schema_version
table (PostgreSQL): it is stamped at that revision first, then upgraded in place. Everything
happens in one transaction under the migration lock (profiling.storage.db), so two processes
opening a new database at once migrate it once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from profiling.storage.db import for_writing, legacy_schema_version, take_migration_lock

SCRIPTS = Path(__file__).resolve().parent / "alembic"


# the newest revision's number, read from the file names: Alembic is imported only to migrate
SCHEMA_VERSION = max(int(p.name[:4]) for p in (SCRIPTS / "versions").glob("[0-9]" * 4 + "_*.py"))
ALEMBIC_VERSION = sa.table("alembic_version", sa.column("version_num"))


def alembic_config() -> Any:
    """Alembic's configuration for the store's scripts (no alembic.ini)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    return config


class SchemaTooNewError(RuntimeError):
    """The store was migrated by newer code; str() is one line."""


def current_version(conn: sa.Connection) -> int:
    """The store's schema version: its Alembic revision, else the pre-Alembic record."""
    revision = _revision(conn)
    return int(revision) if revision else legacy_schema_version(conn)


def _revision(conn: sa.Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(sa.select(ALEMBIC_VERSION.c.version_num)).scalar()


def upgrade(engine: sa.Engine) -> int:
    """Migrate the store to the newest revision (stamping a pre-Alembic store first); returns
    the schema version. SchemaTooNewError when the store is ahead of this code."""
    with engine.connect() as conn, for_writing(conn).begin():
        take_migration_lock(conn)
        revision = _revision(conn)
        version = int(revision) if revision else legacy_schema_version(conn)
        if version > SCHEMA_VERSION:
            raise SchemaTooNewError(f"store schema v{version} is newer than this code "
                                    f"(v{SCHEMA_VERSION})")
        if revision is None or version < SCHEMA_VERSION:
            _upgrade(conn, stamp=None if revision else version)
    return SCHEMA_VERSION


def _upgrade(conn: sa.Connection, stamp: int | None) -> None:
    """Alembic's upgrade to head on conn; a pre-Alembic store at version `stamp` is stamped at
    that revision first (and its schema_version table dropped: alembic_version holds it now)."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    config = alembic_config()
    if stamp:
        MigrationContext.configure(conn).stamp(ScriptDirectory.from_config(config), f"{stamp:04d}")
        if sa.inspect(conn).has_table("schema_version"):
            sa.Table("schema_version", sa.MetaData()).drop(conn)
    config.attributes["connection"] = conn  # alembic/env.py migrates on it
    command.upgrade(config, "head")
