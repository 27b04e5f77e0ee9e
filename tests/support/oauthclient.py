"""A service as the OAuth tests see it: a P-256 key, a registration, and forms signed with
PyJWT (not our code), posted to the app over HTTP."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt as pyjwt
from cryptography.hazmat.primitives.asymmetric import ec
from support.webwallet import Browser

from vault.oauth import CLIENT_ASSERTION_TYPE
from vault.services import registry
from vault.services.context import VaultContext

__all__ = ["DETAILS", "Service", "approve", "b64url", "decline", "location", "s256",
           "to_consent"]

DETAILS: dict[str, Any] = {
    "type": "personal_data", "purpose": "eligibility_assessment",
    "categories": ["identity.name", "address.home"], "derived": ["age_over_65"],
    "duration": "P30D", "access": {"mode": "periodic", "max_reads": 10},
    "data_life": "P30D", "justification": "To check you can have a Blue Badge.",
}
FORM = {"content-type": "application/x-www-form-urlencoded"}
_GO_BACK = re.compile(r'<a class="button" href="([^"]+)" data-go-back>')


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def s256(verifier: str) -> str:
    return b64url(hashlib.sha256(verifier.encode()).digest())


@dataclass
class Service:
    """One registered service speaking to `http` (a TestClient or an httpx.Client)."""

    http: Any
    issuer: str
    client_id: str
    key: ec.EllipticCurvePrivateKey
    redirect_uri: str
    verifier: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    state: str = field(default_factory=lambda: secrets.token_urlsafe(12))

    @classmethod
    def register(cls, ctx: VaultContext, http: Any, issuer: str, *,
                 name: str = "Blue Badge team",
                 redirect_uri: str = "https://badges.example.gov/cb",
                 issues: tuple[str, ...] = ()) -> Service:
        key = ec.generate_private_key(ec.SECP256R1())
        n = key.public_key().public_numbers()
        jwk = {"kty": "EC", "crv": "P-256", "x": b64url(n.x.to_bytes(32, "big")),
               "y": b64url(n.y.to_bytes(32, "big"))}
        client_id = registry.register_service(ctx, registry.Registration(
            name=name, description="Decides Blue Badge applications",
            purposes=["eligibility_assessment"], categories=["identity.name", "address.home"],
            derived=["age_over_65"], jwk=jwk, redirect_uris=[redirect_uri],
            privacy_notice_url="https://badges.example.gov/privacy", max_days=90,
            issues=issues))
        return cls(http, issuer, client_id, key, redirect_uri)

    def assertion(self, **changes: Any) -> str:
        t = int(datetime.now(UTC).timestamp())
        claims: dict[str, Any] = {"iss": self.client_id, "sub": self.client_id,
                                  "aud": self.issuer, "iat": t, "exp": t + 60,
                                  "jti": str(uuid.uuid4())}
        claims.update(changes)
        return pyjwt.encode(claims, self.key, algorithm="ES256")

    def post(self, path: str, **params: Any) -> httpx.Response:
        """A form post to `path`, authenticated as this client (None leaves a field out)."""
        form = {"client_id": self.client_id, "client_assertion_type": CLIENT_ASSERTION_TYPE,
                "client_assertion": self.assertion(), **params}
        body = urlencode({k: v for k, v in form.items() if v is not None})
        r: httpx.Response = self.http.post(path, content=body, headers=FORM)
        return r

    def push(self, details: dict[str, Any] | None = None, **params: Any) -> str:
        """A pushed authorization request; its authorize URL (path and query)."""
        r = self.post("/oauth/par", response_type="code", redirect_uri=self.redirect_uri,
                      code_challenge=s256(self.verifier), code_challenge_method="S256",
                      state=self.state,
                      authorization_details=json.dumps([details or DETAILS]), **params)
        assert r.status_code == 201, r.text
        return "/oauth/authorize?" + urlencode({"client_id": self.client_id,
                                                "request_uri": r.json()["request_uri"]})

    def callback(self, location: str) -> dict[str, str]:
        """The parameters the wallet sent back to the redirect URI (checked to be ours)."""
        assert location.startswith(self.redirect_uri + "?"), location
        return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}

    def redeem(self, code_: str, /, **changes: Any) -> httpx.Response:
        params = {"grant_type": "authorization_code", "code": code_,
                  "redirect_uri": self.redirect_uri, "code_verifier": self.verifier,
                  **changes}
        return self.post("/oauth/token", **params)

    def refresh(self, refresh_token: str) -> httpx.Response:
        return self.post("/oauth/token", grant_type="refresh_token",
                         refresh_token=refresh_token)

    def read(self, access_token: str) -> httpx.Response:
        r: httpx.Response = self.http.get(
            "/v1/data", headers={"authorization": f"Bearer {access_token}"})
        return r


# -- the citizen's side, through the web wallet --------------------------------------------


def location(r: httpx.Response) -> str:
    assert r.status_code == 303, (r.status_code, r.text[:300])
    return r.headers["location"]


def to_consent(b: Browser, svc: Service, **push: Any) -> tuple[str, str]:
    """Through the authorize endpoint to the consent screen: (request id, grant id)."""
    wallet_path = location(b.get(svc.push(**push), follow_redirects=False))
    m = re.fullmatch(r"/wallet/authorize/([A-Za-z0-9_-]{43})", wallet_path)
    assert m, wallet_path
    grant_path = location(b.get(wallet_path, follow_redirects=False))
    assert grant_path.startswith("/wallet/grants/gr_")
    page = b.get(grant_path)
    assert "we take you back to Blue Badge team" in page.text
    return m.group(1), grant_path.rsplit("/", 1)[1]


def decline(b: Browser, grant_id: str) -> str:
    """Decline on the consent screen of a service's authorization, then what a browser
    does on the wallet's "Taking you back" page: the wallet path its link goes to (which
    redirects on to the service)."""
    r = b.form(f"/wallet/grants/{grant_id}/decline")
    page = b.get(location(r))
    assert page.status_code == 200, page.text[:300]
    found = _GO_BACK.search(page.text)
    assert found is not None, page.text
    return html.unescape(found.group(1))


def approve(b: Browser, svc: Service, **push: Any) -> dict[str, str]:
    """The whole front channel; the callback's parameters."""
    request_id, grant_id = to_consent(b, svc, **push)
    r = b.passkey_post(f"/wallet/grants/{grant_id}/approve")
    assert r.status_code == 200, r.text
    back = f"/wallet/authorize/{request_id}/return"
    assert r.json() == {"redirect": back}
    return svc.callback(location(b.get(back, follow_redirects=False)))
