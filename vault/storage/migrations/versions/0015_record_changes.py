"""Changes services are yet to be told of (issue 12, `record.changed`): one row per
change, written with it, expanded into webhooks and deleted by the change teller.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from vault.storage.types import UtcDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

#: A ledger index: BIGINT, but INTEGER on SQLite (as tables._SEQ).
_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "record_changes",
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=False),
        sa.Column("citizen_id", sa.String(40),
                  sa.ForeignKey("citizens.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("categories", sa.JSON, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("record_changes")
