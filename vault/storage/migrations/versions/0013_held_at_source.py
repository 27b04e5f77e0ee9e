"""Categories held at source by an issuer (issue 12, sources; ARCHITECTURE §8).

One row per category registered with `vault service add --issues CAT --source-url URL`:
the vault stores no value of that category for anyone and, on a read under a grant,
asks the issuer's source URL. The category is the key: one source holds a category.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from vault.storage.types import UtcDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "source_categories",
        sa.Column("category", sa.String(100), primary_key=True),
        sa.Column("service_id", sa.String(40), sa.ForeignKey("services.id"), nullable=False,
                  index=True),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("source_categories")
