"""GET /services/{client_id}/jwks serves each registered service's public JWK Set (RFC
7517 §5, ARCHITECTURE §8), briefly cached, a 404 problem for no such service; a rotation
(`registry.replace_service_keys`) is what it serves next, and what readers check the
service's records with."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.webwallet import ORIGIN

from clients.service import RecordInvalid, ServiceKey, verify_record
from vault.app import create_app
from vault.config import Settings
from vault.domain.errors import InvalidService
from vault.errors import NotFound
from vault.services import registry
from vault.services.context import VaultContext

OLD, NEW = ServiceKey.generate(kid="2026"), ServiceKey.generate()


def _registration(**keys: Any) -> registry.Registration:
    return registry.Registration(
        name="Benefits agency", description="Pays Attendance Allowance.",
        purposes=["eligibility_assessment"], categories=["identity.name"],
        redirect_uris=["https://benefits.example.gov/cb"], max_days=90, **keys)


@dataclass
class Site:
    client: TestClient
    ctx: VaultContext


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    app = create_app(Settings(data_dir=tmp_path_factory.mktemp("vault")))
    with TestClient(app, base_url=ORIGIN) as client:
        yield Site(client, app.state.vault.ctx)


def _register(site: Site, **keys: Any) -> str:
    return registry.register_service(site.ctx, _registration(**keys), public_url=ORIGIN)


def test_the_registered_set_is_served_as_json_briefly_cached(site: Site) -> None:
    client_id = _register(site, jwks={"keys": [*OLD.public_jwks()["keys"], NEW.public_jwk()]})
    got = site.client.get(f"/services/{client_id}/jwks")
    assert got.status_code == 200
    assert got.headers["content-type"] == "application/json"
    assert got.headers["cache-control"] == "public, max-age=300"
    # Every key named: its own kid, or the thumbprint the SDK signs with for a key without.
    assert got.json() == {"keys": [OLD.public_jwks()["keys"][0],
                                   {**NEW.public_jwk(), "kid": NEW.key_id}]}


def test_one_key_registered_alone_is_a_set_of_one_and_a_suspended_service_keeps_it(
        site: Site) -> None:
    client_id = _register(site, jwk=NEW.public_jwk())
    registry.suspend_service(site.ctx, client_id)
    got = site.client.get(f"/services/{client_id}/jwks")
    assert got.status_code == 200
    assert got.json() == {"keys": [{**NEW.public_jwk(), "kid": NEW.key_id}]}


@pytest.mark.parametrize("client_id", ["svc_nobody", "x" * 300, "%00"])
def test_an_unknown_service_is_a_404_problem(site: Site, client_id: str) -> None:
    got = site.client.get(f"/services/{client_id}/jwks")
    assert got.status_code == 404
    assert got.headers["content-type"] == "application/problem+json"
    assert got.json()["status"] == 404


def test_a_rotation_is_served_and_readers_follow_it(site: Site) -> None:
    client_id = _register(site, jwks=OLD.public_jwks())
    before = OLD.sign_record("identity.name", {"given": "Ada"}, issuer=client_id)
    url = f"/services/{client_id}/jwks"
    assert verify_record(before, site.client.get(url).json()).kid == "2026"
    registry.replace_service_keys(site.ctx, client_id, NEW.public_jwks())
    served = site.client.get(url).json()
    assert served == NEW.public_jwks()
    after = NEW.sign_record("identity.name", {"given": "Ada"}, issuer=client_id)
    assert verify_record(after, served, issuer=client_id).kid == NEW.key_id
    with pytest.raises(RecordInvalid) as refused:
        verify_record(before, served)
    assert refused.value.code == "unknown_key"


def test_keys_are_checked_when_registered_and_replaced(site: Site) -> None:
    private = {"keys": [{**OLD.public_jwk(), "d": "AAAA"}]}
    for keys in ({}, {"jwk": NEW.public_jwk(), "jwks": NEW.public_jwks()}, {"jwks": private},
                 {"jwks": {"keys": [OLD.public_jwk(), OLD.public_jwk()]}}):
        with pytest.raises(InvalidService):
            _register(site, **keys)
    client_id = _register(site, jwks=OLD.public_jwks())
    with pytest.raises(InvalidService, match="private key"):
        registry.replace_service_keys(site.ctx, client_id, private)
    with pytest.raises(NotFound):
        registry.replace_service_keys(site.ctx, "svc_nobody", NEW.public_jwks())
    assert site.client.get(f"/services/{client_id}/jwks").json() == OLD.public_jwks()
