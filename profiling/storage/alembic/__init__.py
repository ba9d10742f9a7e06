"""Alembic's script directory for the store (run by profiling.storage.migrations, no alembic.ini)."""
