"""Each service's whole JWKS, not one key (issue 12, part 1: record signatures, key rotation). Filled in by the record-JWS work.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
