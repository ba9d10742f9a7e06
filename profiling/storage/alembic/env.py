"""Alembic's environment for the store: migrations run on the connection the caller passes in
`config.attributes["connection"]` (profiling.storage.migrations), inside its transaction and
under its lock; from the alembic command line, on `sqlalchemy.url`."""

import sqlalchemy as sa
from alembic import context

from profiling.storage.schema import metadata


def _run(connection: sa.Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = sa.create_engine(context.config.get_main_option("sqlalchemy.url"))
    with engine.begin() as conn:
        _run(conn)
