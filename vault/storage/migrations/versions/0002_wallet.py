"""The wallet's tables: grant events, accesses, recovery codes, sessions, ceremonies.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from vault.storage.types import UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _citizen_fk(*, index: bool = True) -> sa.Column[str]:
    return sa.Column("citizen_id", sa.String(40),
                     sa.ForeignKey("citizens.id", ondelete="CASCADE"), nullable=False,
                     index=index)


def upgrade() -> None:
    op.create_table(
        "grant_events",
        sa.Column("seq", _Seq, primary_key=True, autoincrement=False),
        sa.Column("grant_id", sa.String(40), sa.ForeignKey("grants.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "accesses",
        sa.Column("seq", _Seq, primary_key=True, autoincrement=False),
        sa.Column("grant_id", sa.String(40), sa.ForeignKey("grants.id", ondelete="CASCADE"),
                  nullable=False),
        _citizen_fk(index=False),
        sa.Column("service_id", sa.String(40), nullable=False),
        sa.Column("categories", sa.JSON, nullable=False),
        sa.Column("derived", sa.JSON, nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Index("ix_accesses_citizen_seq", "citizen_id", "seq"),
        sa.Index("ix_accesses_grant_seq", "grant_id", "seq"),
    )
    op.create_table(
        "recovery_codes",
        sa.Column("code_hash", sa.String(64), primary_key=True),
        _citizen_fk(),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("used_at", UtcDateTime()),
    )
    op.create_table(
        "wallet_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        _citizen_fk(),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("seen_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "ceremonies",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("challenge", sa.LargeBinary, nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("citizen_id", sa.String(40)),
        sa.Column("expires_at", UtcDateTime(), nullable=False, index=True),
    )


def downgrade() -> None:
    for table in ("ceremonies", "wallet_sessions", "recovery_codes", "accesses",
                  "grant_events"):
        op.drop_table(table)
