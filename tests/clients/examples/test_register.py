"""The reference register (clients/examples/register) on its own: what it loads, what it
answers, and what it refuses (ARCHITECTURE §8 "Held at source"). Over real sockets with a
vault in tests/vault/api/test_sources.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from clients.examples.register import RegisterConfig, create_app
from clients.examples.register.__main__ import load
from clients.service import ServiceKey, verify_record
from vault.crypto.source_key import load_source_keys
from vault.crypto.token_key import TokenKeys
from vault.oauth.tokens import jwks
from vault.services.sources import sign_request

VAULT = "https://vault.example.gov"
PUBLIC = "https://register.example.gov"
ADDRESS = {"lines": ["1 Guildhall Yard"], "town": "London", "postcode": "EC2V 5AE",
           "local_authority": "City of London"}


def _vault(keys: TokenKeys) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        assert str(request.url) == f"{VAULT}/oauth/jwks"
        return httpx.Response(200, json=jwks(keys))
    return httpx.MockTransport(answer)


def _ask(keys: TokenKeys, *, sub: str = "psub_ada", url: str = f"{PUBLIC}/source",
         category: str = "address.home") -> str:
    return sign_request(keys, issuer=VAULT, url=url, sub=sub, category=category,
                        purpose="service_provision", grant_id="gr_1", now=datetime.now(UTC))


def test_the_register_loads_answers_once_and_refuses_the_rest(tmp_path: Path) -> None:
    key = ServiceKey.generate()
    key.save(tmp_path / "service-key.pem")
    (tmp_path / "client.json").write_text(json.dumps({"client_id": "svc_register"}))
    (tmp_path / "residents.json").write_text(json.dumps({"psub_ada": {"address.home": ADDRESS}}))
    config, held = load(tmp_path, vault_url=VAULT, public_url=PUBLIC)
    assert isinstance(config, RegisterConfig) and config.source_url == f"{PUBLIC}/source"
    keys = load_source_keys(tmp_path / "k", secret=None, production=False)
    with TestClient(create_app(config, held, transport=_vault(keys))) as client:
        ask = _ask(keys)
        r = client.post("/source", json={"request": ask})
        assert r.status_code == 200, r.text
        record = verify_record(r.json()["record"], key.public_jwks(), issuer="svc_register",
                               category="address.home")
        assert record.value == ADDRESS
        assert held.answered == [("psub_ada", "address.home", "service_provision",
                                  held.answered[0][3])]
        again = client.post("/source", json={"request": ask})
        assert (again.status_code, again.json()["error"]) == (401, "replayed")
        elsewhere = client.post("/source", json={"request": _ask(keys, url="https://x/source")})
        assert (elsewhere.status_code, elsewhere.json()["error"]) == (401, "wrong_audience")
        assert client.post("/source", json={"request": "x.y.z"}).status_code == 401
        assert client.post("/source", content=b"not json").status_code == 401
        # Not on the register, or not a category it holds: 404, which the vault reads as
        # "nothing held for this citizen".
        assert client.post("/source", json={"request": _ask(keys, sub="psub_bob")}
                           ).status_code == 404
        assert client.post("/source", json={"request": _ask(keys, category="identity.name")}
                           ).status_code == 404


def test_the_register_refuses_to_start_unregistered(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not hold a registered register"):
        load(tmp_path, vault_url=VAULT, public_url=PUBLIC)
