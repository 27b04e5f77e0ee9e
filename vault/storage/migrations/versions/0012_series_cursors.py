"""Series: where each grant's reading of a series has got to (issue 12, series).

RESERVED skeleton: filled in by the engineer working on that part.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
