"""Alembic environment: migrations run on the connection `vault.storage.schema` hands in."""

from __future__ import annotations

from alembic import context

from ledger.sqlstore import metadata as ledger_metadata
from vault.storage.tables import metadata as vault_metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `vault db upgrade` (vault.storage.schema)")

context.configure(
    connection=connection,
    target_metadata=[ledger_metadata, vault_metadata],
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite ALTER needs batch mode
    compare_type=True,
)
context.run_migrations()
