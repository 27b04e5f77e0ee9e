"""Issued records: the issuer's sealed JWS, withdrawals, used record jtis (issue 12, writes).

- `records.record_jws`: the issuer's compact JWS exactly as written, sealed under the
  citizen's data key beside the value (its own associated data, `envelope.record_jws_ad`).
  NULL for the citizen's own values and for issued values written without one (the
  operator's `vault citizen write --source`, the demo).
- `records.withdrawn_at`: when the issuer withdrew the record (DELETE /v1/records/{cat}).
  The row stays, so the history does; a category whose newest version is withdrawn
  reads as absent.
- `record_jtis`: each issuer's used record `jti`, with the SHA-256 of the payload of the
  JWS that used it and the answer it got, so that the same record again gets the same
  answer and nothing new, and another payload with that jti is refused. Erased with the
  citizen.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from vault.storage.types import UtcDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("records") as batch:
        batch.add_column(sa.Column("record_jws", sa.LargeBinary, nullable=True))
        batch.add_column(sa.Column("withdrawn_at", UtcDateTime(), nullable=True))
    op.create_table(
        "record_jtis",
        sa.Column("service_id", sa.String(40), sa.ForeignKey("services.id"),
                  primary_key=True),
        sa.Column("jti", sa.String(200), primary_key=True),
        sa.Column("digest", sa.LargeBinary(32), nullable=False),
        sa.Column("citizen_id", sa.String(40),
                  sa.ForeignKey("citizens.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("answer", sa.JSON, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("record_jtis")
    with op.batch_alter_table("records") as batch:
        batch.drop_column("withdrawn_at")
        batch.drop_column("record_jws")
