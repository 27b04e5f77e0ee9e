"""RFC 8414 metadata names every endpoint of ARCHITECTURE §4 under the issuer; the JWKS
publishes public keys only, and a second JOSE library (PyJWT) verifies our access
tokens with it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt as pyjwt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from vault.api.deps import AppState
from vault.app import create_app
from vault.config import Settings
from vault.oauth import issue_access_token
from vault.oauth.metadata import Endpoints, server_metadata

ISSUER = "https://vault.example.gov"

#: ARCHITECTURE §4, exactly.
PATHS = {
    "authorization_endpoint": "/oauth/authorize",
    "token_endpoint": "/oauth/token",
    "pushed_authorization_request_endpoint": "/oauth/par",
    "backchannel_authentication_endpoint": "/oauth/bc-authorize",
    "introspection_endpoint": "/oauth/introspect",
    "revocation_endpoint": "/oauth/revoke",
    "jwks_uri": "/oauth/jwks",
}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path / "v", ledger_public=True, public_url=ISSUER)
    with TestClient(create_app(settings), base_url="http://localhost:8000") as c:
        yield c


def test_metadata_lists_every_endpoint_under_the_issuer(client: TestClient) -> None:
    r = client.get("/.well-known/oauth-authorization-server")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert "max-age=" in r.headers["cache-control"]
    doc = r.json()
    assert doc["issuer"] == ISSUER
    for field, path in PATHS.items():
        assert doc[field] == ISSUER + path, field
    # RFC 8414 §2: every *_endpoint member is an absolute URL; none is missing from PATHS.
    urls = {k for k, v in doc.items() if k.endswith("_endpoint") or k == "jwks_uri"}
    assert urls == set(PATHS)


def test_metadata_says_what_the_server_supports(client: TestClient) -> None:
    doc = client.get("/.well-known/oauth-authorization-server").json()
    assert doc["require_pushed_authorization_requests"] is True
    assert doc["response_types_supported"] == ["code"]
    assert doc["grant_types_supported"] == [
        "authorization_code", "refresh_token", "urn:openid:params:grant-type:ciba"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["authorization_response_iss_parameter_supported"] is True  # RFC 9207
    assert doc["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert doc["token_endpoint_auth_signing_alg_values_supported"] == ["ES256"]
    assert doc["authorization_details_types_supported"] == ["personal_data"]
    assert doc["backchannel_token_delivery_modes_supported"] == ["poll"]
    for endpoint in ("introspection", "revocation"):
        assert doc[f"{endpoint}_endpoint_auth_methods_supported"] == ["private_key_jwt"]
        assert doc[f"{endpoint}_endpoint_auth_signing_alg_values_supported"] == ["ES256"]


def test_the_served_endpoints_are_where_the_metadata_says(client: TestClient) -> None:
    doc = client.get("/.well-known/oauth-authorization-server").json()
    app = client.app
    assert isinstance(app, FastAPI)
    routes = {(m.upper(), path) for path, ops in app.openapi()["paths"].items() for m in ops}
    assert ("GET", PATHS["jwks_uri"]) in routes
    assert ("POST", PATHS["pushed_authorization_request_endpoint"]) in routes
    assert ("GET", "/.well-known/oauth-authorization-server") in routes
    assert client.get(doc["jwks_uri"].removeprefix(ISSUER)).status_code == 200


def test_the_issuer_comes_from_the_settings_without_a_trailing_slash(tmp_path: Path) -> None:
    assert server_metadata("http://localhost:8000")["token_endpoint"] == (
        "http://localhost:8000/oauth/token")
    e = Endpoints.of("https://vault.example.gov/")
    assert e.par == "https://vault.example.gov/oauth/par"
    assert e.par_audience == ("https://vault.example.gov/", "https://vault.example.gov/oauth/token",
                              "https://vault.example.gov/oauth/par")
    settings = Settings(data_dir=tmp_path / "d")  # no public URL: http://localhost:<port>
    with TestClient(create_app(settings)) as c:
        doc = c.get("/.well-known/oauth-authorization-server").json()
    assert doc["issuer"] == "http://localhost:8000"
    assert doc["jwks_uri"] == "http://localhost:8000/oauth/jwks"


# -- JWKS ------------------------------------------------------------------------------


_PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k", "oth"}


def test_jwks_publishes_public_keys_only(client: TestClient) -> None:
    r = client.get("/oauth/jwks")
    assert r.status_code == 200
    assert "max-age=" in r.headers["cache-control"]
    keys = r.json()["keys"]
    state: AppState = client.app.state.vault  # type: ignore[attr-defined]
    # The token keys, then the source-request keys (ARCHITECTURE §8), each its own kid.
    assert state.source_keys is not None
    assert [k["kid"] for k in keys] == ([k.kid for k in state.token_keys]
                                        + [k.kid for k in state.source_keys])
    for k in keys:
        assert not _PRIVATE_MEMBERS & set(k), k
        assert (k["kty"], k["crv"], k["alg"], k["use"]) == ("EC", "P-256", "ES256", "sig")


def test_pyjwt_verifies_an_access_token_with_the_served_jwks(client: TestClient) -> None:
    state: AppState = client.app.state.vault  # type: ignore[attr-defined]
    now = datetime.now(UTC)  # PyJWT checks exp and iat against the real clock
    token, claims = issue_access_token(
        state.token_keys.current, issuer=ISSUER, audience=ISSUER, client_id="svc_a",
        sub="pairwise-sub", grant_id="gr_1", authorization_details=[{"type": "personal_data"}],
        now=now, grant_expires_at=now + timedelta(days=1))
    keyset = pyjwt.PyJWKSet.from_dict(client.get("/oauth/jwks").json())
    kid = pyjwt.get_unverified_header(token)["kid"]
    key = next(k for k in keyset.keys if k.key_id == kid)
    got = pyjwt.decode(token, key, algorithms=["ES256"], audience=ISSUER, issuer=ISSUER,
                       options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]})
    assert got["jti"] == claims.jti and got["grant_id"] == "gr_1"
    # A token signed by a key the JWKS does not hold does not verify with any of its keys.
    from vault.crypto.token_key import TokenKey

    forged, _ = issue_access_token(
        TokenKey.generate(), issuer=ISSUER, audience=ISSUER, client_id="svc_a", sub="s",
        grant_id="gr_1", authorization_details=[], now=now,
        grant_expires_at=now + timedelta(days=1))
    for k in keyset.keys:
        with pytest.raises(pyjwt.InvalidSignatureError):
            pyjwt.decode(forged, k, algorithms=["ES256"], audience=ISSUER)
