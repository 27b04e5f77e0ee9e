"""Citizens stop a service asking (issue 11, bug 8): one row per (citizen, service)
block, erased with the citizen.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from vault.storage.types import UtcDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "service_blocks",
        sa.Column("citizen_id", sa.String(40),
                  sa.ForeignKey("citizens.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("service_id", sa.String(40), sa.ForeignKey("services.id"),
                  primary_key=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("service_blocks")
