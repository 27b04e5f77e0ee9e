"""Acting for others (issue 14, ARCHITECTURE §9).

- `relationships`: who may act in whose vault, as what, doing what, until when; its
  state (proposed, live, ended), how it began, both people's assertions over the terms
  until the `delegation.granted` entry carries them, and how it ended. Erased with
  either person.
- `relationship_invites`: single-use codes (keyed hashes only) that invite someone to
  act for the principal, or hand a child's vault over to the child.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from vault.storage.types import UtcDateTime

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None



def _citizen(name: str, *, primary_key: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.String(40), sa.ForeignKey("citizens.id", ondelete="CASCADE"),
                     nullable=False, primary_key=primary_key)


def upgrade() -> None:
    op.create_table(
        "relationships",
        sa.Column("id", sa.String(40), primary_key=True),
        _citizen("principal_id"),
        _citizen("delegate_id"),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("actions", sa.String(64), nullable=False),
        sa.Column("until", UtcDateTime(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("issuer", sa.String(40), sa.ForeignKey("services.id"), nullable=True),
        sa.Column("terms_hash", sa.LargeBinary, nullable=False),
        sa.Column("principal_assertion", sa.Text, nullable=True),
        sa.Column("delegate_assertion", sa.Text, nullable=True),
        sa.Column("ledger_index", sa.BigInteger, nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("ended_at", UtcDateTime(), nullable=True),
        sa.Column("ended_by", sa.String(16), nullable=True),
    )
    op.create_index("ix_relationships_delegate_state", "relationships",
                    ["delegate_id", "state"])
    op.create_index("ix_relationships_principal_state", "relationships",
                    ["principal_id", "state"])
    op.create_table(
        "relationship_invites",
        sa.Column("code_hash", sa.String(64), primary_key=True),
        _citizen("principal_id"),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=True),
        sa.Column("actions", sa.String(64), nullable=True),
        sa.Column("until", UtcDateTime(), nullable=True),
        sa.Column("relationship_id", sa.String(40),
                  sa.ForeignKey("relationships.id", ondelete="CASCADE"), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("used_at", UtcDateTime(), nullable=True),
    )
    op.create_index("ix_relationship_invites_principal_id", "relationship_invites",
                    ["principal_id"])


def downgrade() -> None:
    op.drop_table("relationship_invites")
    op.drop_table("relationships")
