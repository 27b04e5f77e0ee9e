"""Each service's whole JWK Set, not one key (issue 12, part 1: record signatures, key
rotation).

`services.jwk` (one public key) becomes `services.jwks` (`{"keys": [...]}`). A service
registered before keeps its key as a set of one; a key without a `kid` gets its RFC 7638
thumbprint, as `vault.domain.service_keys` gives any such key now, so every stored key
can be named by the records and assertions it signs. The thumbprint is computed here,
not imported, so this migration means the same thing whatever the code becomes.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_services = sa.table("services", sa.column("id", sa.String), sa.column("jwk", sa.JSON),
                     sa.column("jwks", sa.JSON))


def _thumbprint(jwk: dict[str, Any]) -> str:
    # RFC 7638 §3.2: the required EC members, sorted, no whitespace; SHA-256, base64url.
    members = {name: jwk[name] for name in ("crv", "kty", "x", "y")}
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def upgrade() -> None:
    with op.batch_alter_table("services") as batch:
        batch.add_column(sa.Column("jwks", sa.JSON, nullable=True))
    conn = op.get_bind()
    for service_id, jwk in conn.execute(sa.select(_services.c.id, _services.c.jwk)).all():
        kid = jwk.get("kid")
        key = {**jwk, "kid": kid if isinstance(kid, str) and kid else _thumbprint(jwk)}
        conn.execute(_services.update().where(_services.c.id == service_id)
                     .values(jwks={"keys": [key]}))
    with op.batch_alter_table("services") as batch:
        batch.alter_column("jwks", existing_type=sa.JSON, nullable=False)
        batch.drop_column("jwk")


def downgrade() -> None:
    # Back to one key: the first of each set (the one a single-key service registered).
    with op.batch_alter_table("services") as batch:
        batch.add_column(sa.Column("jwk", sa.JSON, nullable=True))
    conn = op.get_bind()
    for service_id, jwks in conn.execute(sa.select(_services.c.id, _services.c.jwks)).all():
        conn.execute(_services.update().where(_services.c.id == service_id)
                     .values(jwk=jwks["keys"][0]))
    with op.batch_alter_table("services") as batch:
        batch.alter_column("jwk", existing_type=sa.JSON, nullable=False)
        batch.drop_column("jwks")
