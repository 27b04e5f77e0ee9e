"""Issued records: the issuer's sealed JWS, withdrawals, used record jtis (issue 12, writes).

RESERVED skeleton: filled in by the engineer working on that part.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
