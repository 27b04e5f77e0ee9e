"""OAuth: pushed authorization requests (RFC 9126), single use, a minute long.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from vault.storage.types import UtcDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oauth_requests",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("client_id", sa.String(40), sa.ForeignKey("services.id"), nullable=False),
        sa.Column("redirect_uri", sa.String(2000), nullable=False),
        sa.Column("state", sa.String(512)),
        sa.Column("code_challenge", sa.String(128), nullable=False),
        sa.Column("authorization_details", sa.JSON, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False, index=True),
        sa.Column("used_at", UtcDateTime()),
    )


def downgrade() -> None:
    op.drop_table("oauth_requests")
