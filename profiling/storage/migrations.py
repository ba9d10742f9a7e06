"""Bring a store's schema up to date with Alembic, run from code (no alembic.ini).

The revisions are profiling/storage/alembic/versions/NNNN_*.py; NNNN is the schema version. A
store made before Alembic kept its version in PRAGMA user_version (SQLite) or a schema_version
table (PostgreSQL): it is stamped at that revision first, then upgraded in place. Everything
happens in one transaction under the migration lock (profiling.storage.db), so two processes
opening a new database at once migrate it once.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from profiling.storage.db import for_writing, take_migration_lock

SCRIPTS = Path(__file__).resolve().parent / "alembic"


def _scripts() -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    return ScriptDirectory.from_config(config)


SCHEMA_VERSION = int(_scripts().get_current_head())


class SchemaTooNewError(RuntimeError):
    """The store was migrated by newer code; str() is one line."""


def _legacy_version(conn: sa.Connection) -> int:
    """The schema version a store made before Alembic records (0: none, a new database)."""
    if conn.dialect.name == "sqlite":
        return int(conn.exec_driver_sql("PRAGMA user_version").scalar() or 0)
    if not sa.inspect(conn).has_table("schema_version"):
        return 0
    table = sa.table("schema_version", sa.column("version"))
    return int(conn.execute(sa.select(sa.func.max(table.c.version))).scalar() or 0)


def current_version(conn: sa.Connection) -> int:
    """The store's schema version: its Alembic revision, else the pre-Alembic record."""
    revision = MigrationContext.configure(conn).get_current_revision()
    return int(revision) if revision else _legacy_version(conn)


def upgrade(engine: sa.Engine) -> int:
    """Migrate the store to the newest revision (stamping a pre-Alembic store first); returns
    the schema version. SchemaTooNewError when the store is ahead of this code."""
    script = _scripts()
    with engine.connect() as conn, for_writing(conn).begin():
        take_migration_lock(conn)
        version = current_version(conn)
        if version > SCHEMA_VERSION:
            raise SchemaTooNewError(f"store schema v{version} is newer than this code "
                                    f"(v{SCHEMA_VERSION})")
        context = MigrationContext.configure(conn)
        if context.get_current_revision() is None and version:
            context.stamp(script, f"{version:04d}")
            if conn.dialect.name == "postgresql":  # alembic_version now holds it
                sa.Table("schema_version", sa.MetaData()).drop(conn)
        if version < SCHEMA_VERSION:
            _run(script, conn)
    return SCHEMA_VERSION


def _run(script: ScriptDirectory, conn: sa.Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    with EnvironmentContext(config, script,
                            fn=lambda rev, _ctx: script._upgrade_revs("head", rev),
                            destination_rev="head") as env:
        env.configure(connection=conn)
        with env.begin_transaction():
            env.run_migrations()
