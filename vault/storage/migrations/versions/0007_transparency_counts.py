"""Transparency counts that never go down (issue 11, bug 3), and what a service's public
pages say about it (issue 11, bug 4).

- `transparency_counts`: erasure folds the erased citizen's grants and reads into these
  totals before their rows go, and the transparency report adds them in.
- `services.controller`, `contact`, `dpia_text`: the rest of what the vault's pages at
  /services/{client_id}/privacy and /dpia show.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "transparency_counts",
        sa.Column("atom", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("service_id", sa.String(40), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("categories", sa.JSON, nullable=False),
        sa.Column("derived", sa.JSON, nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
    )
    with op.batch_alter_table("services") as batch:
        batch.add_column(sa.Column("controller", sa.String(200)))
        batch.add_column(sa.Column("contact", sa.String(320)))
        batch.add_column(sa.Column("dpia_text", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("services") as batch:
        batch.drop_column("dpia_text")
        batch.drop_column("contact")
        batch.drop_column("controller")
    op.drop_table("transparency_counts")
