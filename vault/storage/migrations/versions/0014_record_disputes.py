"""Disputes of issued records (issue 12, wallet; ARCHITECTURE §8).

One row per issued record version the citizen told its issuer was wrong ("Tell them
this is wrong"): the key makes a second dispute of the same version find the first
instead of telling the issuer again. The reason is a code from a fixed list, never free
text (free text would be personal data sent to the issuer and kept here). The row shows
the dispute in the record's history; it is erased with the citizen.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from vault.storage.types import UtcDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "record_disputes",
        sa.Column("citizen_id", sa.String(40),
                  sa.ForeignKey("citizens.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("category", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("issuer", sa.String(40), sa.ForeignKey("services.id"), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("ledger_index", sa.BigInteger, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("record_disputes")
