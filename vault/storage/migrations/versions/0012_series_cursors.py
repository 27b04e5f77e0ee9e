"""Series: where each grant's reading of a series has got to (issue 12, series;
ARCHITECTURE §8).

A series category (health.observations) is stored as one `records` row per batch, each a
version. A read under a grant releases the batches after the grant's cursor, oldest
first, and moves the cursor in the same transaction as the read's `data.accessed` entry,
so each batch reaches each grant exactly once. One row per grant and series category;
it goes with the grant (and so with the citizen) on erasure. The index on records finds
the batches of the last day for a derived answer over the series without reading them all.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from vault.storage.types import UtcDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "series_cursors",
        sa.Column("grant_id", sa.String(40), sa.ForeignKey("grants.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("category", sa.String(64), primary_key=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_records_citizen_category_created", "records",
                    ["citizen_id", "category", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_records_citizen_category_created", table_name="records")
    op.drop_table("series_cursors")
