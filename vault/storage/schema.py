"""Bringing the database schema up to date."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from ledger.sqlstore import init_schema

__all__ = ["migrate"]


def migrate(engine: Engine) -> None:
    """Create what is missing. The ledger tables are the whole schema for now; the vault's
    own tables arrive with Alembic migrations, which will take this over."""
    with engine.begin() as conn:
        init_schema(conn)
