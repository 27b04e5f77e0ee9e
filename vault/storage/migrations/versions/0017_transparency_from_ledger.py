"""Transparency counted from the public ledger (issue 13, part T).

- `transparency_atoms`: the report's atoms (grants by month asked and state now; reads by
  month, service, purpose and released sets), counted from public ledger entries;
- `transparency_grants`: what counting needs of each grant (month asked, purpose, state
  now: all public on the ledger);
- `transparency_cursor`: one row, the next ledger index to count. A counter moves it and
  the counts in one transaction, so every entry is counted exactly once.
- `transparency_counts` goes: erasure kept an erased citizen's totals there because the
  report counted tables that erasure empties; the ledger keeps every entry, so counting
  from it never goes down. The counter counts the whole ledger again from index 0.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def _atoms_columns(service_id_length: int) -> list[sa.Column[object]]:
    return [
        sa.Column("atom", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("service_id", sa.String(service_id_length), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("categories", sa.JSON, nullable=False),
        sa.Column("derived", sa.JSON, nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
    ]


def upgrade() -> None:
    op.create_table("transparency_atoms", *_atoms_columns(64))
    op.create_table(
        "transparency_grants",
        sa.Column("grant_id", sa.String(64), primary_key=True),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
    )
    cursor = op.create_table(
        "transparency_cursor",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("next_seq", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(cursor, [{"id": 1, "next_seq": 0}])
    op.drop_table("transparency_counts")


def downgrade() -> None:
    # 0007's table comes back empty: its totals are what the ledger says anyway.
    op.create_table("transparency_counts", *_atoms_columns(40))
    op.drop_table("transparency_cursor")
    op.drop_table("transparency_grants")
    op.drop_table("transparency_atoms")
