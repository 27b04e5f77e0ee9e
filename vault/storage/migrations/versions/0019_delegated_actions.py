"""Issue 14, part B: acting for someone in the wallet.

- `wallet_sessions.acting_for`: whose vault the signed-in person chose to act in (None:
  their own); cleared if that person is erased.
- `delegated_actions`: what each delegate did in a principal's vault, one row per ledger
  entry of the action (keyed by its index), for the principal's activity page and the
  "approved on your behalf by" mark on grants.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from vault.storage.types import UtcDateTime

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("wallet_sessions") as batch:
        batch.add_column(sa.Column(
            "acting_for", sa.String(40),
            sa.ForeignKey("citizens.id", ondelete="SET NULL",
                          name="fk_wallet_sessions_acting_for"), nullable=True))
    op.create_table(
        "delegated_actions",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("principal_id", sa.String(40),
                  sa.ForeignKey("citizens.id", ondelete="CASCADE"), nullable=False),
        sa.Column("actor_id", sa.String(40),
                  sa.ForeignKey("citizens.id", ondelete="SET NULL"), nullable=True),
        sa.Column("relationship_id", sa.String(40),
                  sa.ForeignKey("relationships.id", ondelete="SET NULL"), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("grant_id", sa.String(40), nullable=True),
        sa.Column("category", sa.String(64), nullable=True),
        sa.Column("at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_delegated_actions_principal_seq", "delegated_actions",
                    ["principal_id", "seq"])
    op.create_index("ix_delegated_actions_grant_id", "delegated_actions", ["grant_id"])


def downgrade() -> None:
    op.drop_table("delegated_actions")
    with op.batch_alter_table("wallet_sessions") as batch:
        batch.drop_column("acting_for")
