"""Initial schema: the ledger and the vault's citizens, records, services and grants.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger.hasher import EMPTY_ROOT
from vault.storage.types import UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ledger_tables() -> None:
    op.create_table(
        "ledger_entries",
        sa.Column("seq", _Seq, primary_key=True, autoincrement=False),
        sa.Column("leaf_hash", sa.LargeBinary, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "ledger_nodes",
        sa.Column("id", _Seq, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "ledger_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("root", sa.LargeBinary, nullable=False),
        sa.Column("last_leaf", sa.LargeBinary, nullable=False),
        sa.Column("last_time", sa.String(24), nullable=False),
        sa.Column("border", sa.LargeBinary, nullable=False),
        sa.CheckConstraint("id = 1", name="ledger_head_single_row"),
    )
    op.create_table(
        "ledger_checkpoints",
        sa.Column("size", _Seq, primary_key=True, autoincrement=False),
        sa.Column("root", sa.LargeBinary, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("published_at", sa.String(24), nullable=False),
    )
    head = sa.table("ledger_head", sa.column("id"), sa.column("size"), sa.column("root"),
                    sa.column("last_leaf"), sa.column("last_time"), sa.column("border"))
    op.bulk_insert(head, [{"id": 1, "size": 0, "root": EMPTY_ROOT, "last_leaf": b"",
                           "last_time": "", "border": b""}])


def upgrade() -> None:
    # Data directories made before migrations existed already hold the ledger tables.
    if not sa.inspect(op.get_bind()).has_table("ledger_entries"):
        _ledger_tables()
    op.create_table(
        "citizens",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("subject", sa.String(40), nullable=False, unique=True),
        sa.Column("kek_id", sa.String(40), nullable=False, index=True),
        sa.Column("wrapped_key", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "records",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("citizen_id", sa.String(40),
                  sa.ForeignKey("citizens.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
        sa.Column("source", sa.String(40), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("citizen_id", "category", "version"),
    )
    op.create_table(
        "services",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.String(2000), nullable=False),
        sa.Column("purposes", sa.JSON, nullable=False),
        sa.Column("categories", sa.JSON, nullable=False),
        sa.Column("derived", sa.JSON, nullable=False),
        sa.Column("max_days", sa.Integer, nullable=False),
        sa.Column("jwk", sa.JSON, nullable=False),
        sa.Column("redirect_uris", sa.JSON, nullable=False),
        sa.Column("webhook_url", sa.String(2000)),
        sa.Column("privacy_notice_url", sa.String(2000), nullable=False),
        sa.Column("dpia_url", sa.String(2000)),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "grants",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("service_id", sa.String(40), sa.ForeignKey("services.id"), nullable=False,
                  index=True),
        sa.Column("citizen_id", sa.String(40),
                  sa.ForeignKey("citizens.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("terms", sa.Text, nullable=False),
        sa.Column("terms_hash", sa.LargeBinary, nullable=False),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("reads", sa.Integer, nullable=False),
        sa.Column("last_read_at", UtcDateTime()),
        sa.Column("requested_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("due_at", UtcDateTime(), nullable=False, index=True),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "passkeys",
        sa.Column("credential_id", sa.String(1400), primary_key=True),
        sa.Column("citizen_id", sa.String(40),
                  sa.ForeignKey("citizens.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("public_key", sa.LargeBinary, nullable=False),
        sa.Column("sign_count", sa.BigInteger, nullable=False),
        sa.Column("label_sealed", sa.LargeBinary),
        sa.Column("transports", sa.JSON, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("last_used_at", UtcDateTime()),
    )


def downgrade() -> None:
    for table in ("passkeys", "grants", "services", "records", "citizens"):
        op.drop_table(table)
