"""Ledger v2 openings (issue 13, part S1): the salt and private body beside each sealed entry.

A nullable column of `ledger_entries` rather than a table of its own: the opening is
written in the entry's own row, by the same INSERT, so an append stays one statement a
batch and no entry can be committed without its opening. v1 entries (written before
this migration) have none: NULL.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ledger_entries", sa.Column("opening", sa.LargeBinary, nullable=True))


def downgrade() -> None:
    # Loses the openings: sealed entries then verify as public entries only.
    with op.batch_alter_table("ledger_entries") as batch:
        batch.drop_column("opening")
