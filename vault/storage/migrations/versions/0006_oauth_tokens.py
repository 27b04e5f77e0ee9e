"""OAuth: authorization codes, token families with rotated refresh tokens, pairwise
subjects, and backchannel (CIBA) requests.

Every secret a client holds (code, refresh token, auth_req_id) is stored only as its
SHA-256: a copy of the database lets nobody redeem one.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from vault.storage.types import UtcDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _grant() -> sa.Column[str]:
    return sa.Column("grant_id", sa.String(40), sa.ForeignKey("grants.id", ondelete="CASCADE"),
                     nullable=False, index=True)


def upgrade() -> None:
    with op.batch_alter_table("oauth_requests") as batch:
        batch.add_column(sa.Column("grant_id", sa.String(40),
                                   sa.ForeignKey("grants.id", ondelete="CASCADE",
                                                 name="fk_oauth_requests_grant")))
        batch.add_column(sa.Column("answered_at", UtcDateTime()))
        batch.add_column(sa.Column("code_hash", sa.LargeBinary(32)))
        batch.add_column(sa.Column("code_expires_at", UtcDateTime()))
        batch.add_column(sa.Column("code_used_at", UtcDateTime()))
        batch.add_column(sa.Column("family_id", sa.String(40)))
        batch.create_index("ix_oauth_requests_code_hash", ["code_hash"], unique=True)
    op.create_table(
        "oauth_token_families",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("client_id", sa.String(40), sa.ForeignKey("services.id"), nullable=False),
        _grant(),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("revoked_at", UtcDateTime()),
        sa.Column("revoked_because", sa.String(40)),
    )
    op.create_table(
        "oauth_refresh_tokens",
        sa.Column("hash", sa.LargeBinary(32), primary_key=True),
        sa.Column("family_id", sa.String(40),
                  sa.ForeignKey("oauth_token_families.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("used_at", UtcDateTime()),
    )
    op.create_table(
        "oauth_subjects",
        sa.Column("service_id", sa.String(40), sa.ForeignKey("services.id"), primary_key=True),
        sa.Column("sub", sa.String(40), primary_key=True),
        sa.Column("citizen_id", sa.String(40),
                  sa.ForeignKey("citizens.id", ondelete="CASCADE"), nullable=False,
                  index=True),
    )
    op.create_table(
        "oauth_backchannel",
        sa.Column("hash", sa.LargeBinary(32), primary_key=True),
        sa.Column("client_id", sa.String(40), sa.ForeignKey("services.id"), nullable=False),
        _grant(),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("interval", sa.Integer, nullable=False),
        sa.Column("binding_message", sa.String(40)),
        sa.Column("polled_at", UtcDateTime()),
        sa.Column("used_at", UtcDateTime()),
    )


def downgrade() -> None:
    op.drop_table("oauth_backchannel")
    op.drop_table("oauth_subjects")
    op.drop_table("oauth_refresh_tokens")
    op.drop_table("oauth_token_families")
    with op.batch_alter_table("oauth_requests") as batch:
        batch.drop_index("ix_oauth_requests_code_hash")
        for name in ("family_id", "code_used_at", "code_expires_at", "code_hash",
                     "answered_at"):
            batch.drop_column(name)
        batch.drop_constraint("fk_oauth_requests_grant", type_="foreignkey")
        batch.drop_column("grant_id")
