"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from ledger.sqlstore import metadata as ledger_metadata
from vault.storage.database import make_engine
from vault.storage.schema import current_revision, head_revision, migrate
from vault.storage.tables import metadata as vault_metadata


def test_migrated_schema_matches_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        migrate(engine)
        migrate(engine)  # idempotent
        assert current_revision(engine) == head_revision()
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, [ledger_metadata, vault_metadata])
        assert diff == [], f"models and migrations disagree: {diff}"
    finally:
        engine.dispose()
