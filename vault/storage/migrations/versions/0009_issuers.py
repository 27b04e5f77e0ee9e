"""Issuers: which categories a service may issue (issue 12, part 1).

`services.issues` lists the categories the operator registered the service to issue
(write grants may cover only these); every service registered before has none.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A server default so that rows already there (and SQLite's ALTER TABLE, which
    # cannot add a NOT NULL column without one) get "issues nothing".
    with op.batch_alter_table("services") as batch:
        batch.add_column(sa.Column("issues", sa.JSON, nullable=False,
                                   server_default=sa.text("'[]'")))


def downgrade() -> None:
    with op.batch_alter_table("services") as batch:
        batch.drop_column("issues")
