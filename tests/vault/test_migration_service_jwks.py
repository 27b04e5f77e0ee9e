"""Migration 0010: each service's one registered key becomes a JWK Set of one, the key
named by its own kid or else its RFC 7638 thumbprint; downgrading gives the key back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import command

from clients.service.keys import ServiceKey
from vault.storage.database import make_engine
from vault.storage.schema import _config

NAMED, BARE = ServiceKey.generate(kid="svc-key-1"), ServiceKey.generate()
SERVICES = sa.table(
    "services", *(sa.column(c) for c in ("id", "name", "description", "max_days",
                                          "privacy_notice_url", "active", "created_at")),
    *(sa.column(c, sa.JSON) for c in ("purposes", "categories", "derived", "redirect_uris",
                                      "jwk", "jwks")))


def _to(engine: sa.Engine, revision: str, *, down: bool = False) -> None:
    with engine.begin() as conn:
        (command.downgrade if down else command.upgrade)(_config(conn), revision)


def _row(service_id: str, jwk: dict[str, Any]) -> dict[str, Any]:
    return {"id": service_id, "name": "S", "description": "S", "max_days": 30,
            "privacy_notice_url": "https://s.example/p", "active": True,
            "created_at": datetime(2026, 12, 1, tzinfo=UTC), "purposes": ["p"],
            "categories": ["identity.name"], "derived": [], "redirect_uris": ["https://s/cb"],
            "jwk": jwk}


def test_one_key_becomes_a_set_of_one_and_back(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        _to(engine, "0009")
        with engine.begin() as conn:
            conn.execute(sa.insert(SERVICES), [
                _row("svc_named", NAMED.public_jwk()), _row("svc_bare", BARE.public_jwk())])
        _to(engine, "0010")
        with engine.connect() as conn:
            got = dict(conn.execute(sa.select(SERVICES.c.id, SERVICES.c.jwks)).all())
            assert "jwk" not in {c["name"] for c in sa.inspect(conn).get_columns("services")}
        assert got == {"svc_named": {"keys": [NAMED.public_jwk()]},
                       "svc_bare": {"keys": [{**BARE.public_jwk(), "kid": BARE.thumbprint()}]}}
        _to(engine, "0009", down=True)
        with engine.connect() as conn:
            back = dict(conn.execute(sa.select(SERVICES.c.id, SERVICES.c.jwk)).all())
        assert back == {"svc_named": NAMED.public_jwk(),
                        "svc_bare": {**BARE.public_jwk(), "kid": BARE.thumbprint()}}
    finally:
        engine.dispose()
