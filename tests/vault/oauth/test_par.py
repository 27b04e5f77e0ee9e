"""Pushed authorization requests (RFC 9126) with the grant terms as authorization_details
(RFC 9396): a service authenticated by private_key_jwt (assertions signed by PyJWT, and
by authlib, as a real service would) pushes its request and gets a single-use request_uri
that lives a minute; anything outside its registration is refused with the RFC 6749 error
that names the rule. The request_uri is taken once, by the client that pushed it, before
it expires (on SQLite and PostgreSQL, also under a race)."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import hashlib
import json
import re
import threading
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt as pyjwt
import pytest
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oauth2.rfc7523 import PrivateKeyJWT, private_key_jwt_sign
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from fastapi.testclient import TestClient
from joserfc.jwk import ECKey
from sqlalchemy import func, select
from sqlmodel import Session
from support.vaultworld import Clock

from vault.api.deps import AppState
from vault.app import create_app
from vault.config import Settings
from vault.crypto import load_keyring
from vault.domain.grants import Access
from vault.oauth import CLIENT_ASSERTION_TYPE, InvalidRequestUriError, MemoryJtiStore, OAuthError
from vault.oauth.par import (
    PURGE_AFTER,
    REQUEST_LIFETIME,
    REQUEST_URI_PREFIX,
    PersonalDataRequest,
    PushedRequest,
    authenticate_client,
    push_request,
    take_request,
)
from vault.services import citizens, grants, registry
from vault.services.context import VaultContext
from vault.storage.database import make_engine
from vault.storage.schema import migrate
from vault.storage.tables import OAuthRequestRow
from wallet.passkeys import PasskeyApprovalVerifier, RelyingParty

ISSUER = "https://vault.example.gov"
PAR_URL = ISSUER + "/oauth/par"
TOKEN_URL = ISSUER + "/oauth/token"
A_KEY = ec.generate_private_key(ec.SECP256R1())
B_KEY = ec.generate_private_key(ec.SECP256R1())
A_REDIRECT = "https://badges.example.gov/cb"
B_REDIRECT = "https://meals.example.gov/cb"
VERIFIER = "dBjftJeZ4CVP-mJ92K9qRmQ3KhlHXpG6a1s0wQyHgM4xQbNfAeZg"
DETAILS: dict[str, Any] = {
    "type": "personal_data", "purpose": "eligibility_assessment",
    "categories": ["address.home"], "derived": ["age_over_65"], "duration": "P30D",
    "access": {"mode": "periodic", "max_reads": 3}, "data_life": "P30D",
    "justification": "To check you can have a Blue Badge.",
}
REQUEST_URI = re.compile(r"urn:ietf:params:oauth:request_uri:[A-Za-z0-9_-]{43}")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def s256(verifier: str) -> str:
    return b64(hashlib.sha256(verifier.encode()).digest())


def public_jwk(private: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    n = private.public_key().public_numbers()
    return {"kty": "EC", "crv": "P-256", "x": b64(n.x.to_bytes(32, "big")),
            "y": b64(n.y.to_bytes(32, "big"))}


def register(ctx: VaultContext, key: ec.EllipticCurvePrivateKey, redirect: str) -> str:
    return registry.register_service(ctx, registry.Registration(
        name="Blue Badge team", description="Decides Blue Badge applications",
        purposes=["eligibility_assessment"], categories=["identity.name", "address.home"],
        derived=["age_over_65"], jwk=public_jwk(key), redirect_uris=[redirect],
        privacy_notice_url="https://badges.example.gov/privacy", max_days=90))


def assertion(client_id: str, key: ec.EllipticCurvePrivateKey = A_KEY, *,
              now: datetime | None = None, **changes: Any) -> str:
    """Signed by PyJWT, as a service's own library would."""
    t = int((now or datetime.now(UTC)).timestamp())
    claims: dict[str, Any] = {"iss": client_id, "sub": client_id, "aud": PAR_URL,
                              "iat": t, "exp": t + 60, "jti": str(uuid.uuid4())}
    claims.update(changes)
    return pyjwt.encode(claims, key, algorithm="ES256")


def par_form(cid: str, key: ec.EllipticCurvePrivateKey = A_KEY, /, *,
             now: datetime | None = None, **changes: Any) -> dict[str, str]:
    """A good PAR form of client `cid`; a change to None leaves that parameter out."""
    form: dict[str, Any] = {
        "response_type": "code", "client_id": cid, "redirect_uri": A_REDIRECT,
        "code_challenge": s256(VERIFIER), "code_challenge_method": "S256",
        "state": "af0ifjsldkj", "authorization_details": json.dumps([DETAILS]),
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": assertion(cid, key, now=now),
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


# -- over HTTP -------------------------------------------------------------------------


@dataclass
class Vault:
    http: TestClient
    state: AppState
    a: str
    b: str

    def push(self, form: dict[str, str] | list[tuple[str, str]]) -> httpx.Response:
        r: httpx.Response = self.http.post("/oauth/par", content=urlencode(form), headers={
            "content-type": "application/x-www-form-urlencoded"})
        return r

    def stored(self) -> list[OAuthRequestRow]:
        with Session(self.state.engine) as s:
            return list(s.execute(select(OAuthRequestRow)).scalars())


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[Vault]:
    settings = Settings(data_dir=tmp_path / "v", ledger_public=True, public_url=ISSUER)
    with TestClient(create_app(settings), base_url="http://localhost:8000") as c:
        state: AppState = c.app.state.vault  # type: ignore[attr-defined]
        yield Vault(c, state, register(state.ctx, A_KEY, A_REDIRECT),
                    register(state.ctx, B_KEY, B_REDIRECT))


def refused(r: httpx.Response, error: str, fragment: str, status: int = 400) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] == error, body
    assert fragment in body["error_description"], body
    assert r.headers["cache-control"] == "no-store"


def test_a_pushed_request_answers_a_single_use_request_uri(vault: Vault) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    r = vault.push(par_form(vault.a))
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert set(body) == {"request_uri", "expires_in"}
    assert REQUEST_URI.fullmatch(body["request_uri"]) and body["expires_in"] == 60
    [row] = vault.stored()
    assert body["request_uri"] == REQUEST_URI_PREFIX + row.id
    assert (row.client_id, row.redirect_uri, row.state) == (vault.a, A_REDIRECT, "af0ifjsldkj")
    assert row.code_challenge == s256(VERIFIER)
    assert row.created_at >= before and row.expires_at - row.created_at == timedelta(seconds=60)
    assert row.used_at is None
    assert row.authorization_details == [{**DETAILS, "access": {
        "mode": "periodic", "max_reads": 3, "min_interval": None}}]
    again = vault.push(par_form(vault.a)).json()["request_uri"]
    assert again != body["request_uri"]


def test_stored_terms_are_normalised_as_a_grant_holds_them(vault: Vault) -> None:
    details = {**DETAILS, "categories": ["address.home", "identity.name", "address.home"],
               "data_life": "PT720H", "duration": "PT48H"}
    r = vault.push(par_form(vault.a, authorization_details=json.dumps([details]),
                            state=None))
    assert r.status_code == 201, r.text
    [row] = vault.stored()
    stored = row.authorization_details[0]
    assert stored["categories"] == ["address.home", "identity.name"]
    assert (stored["data_life"], stored["duration"]) == ("P30D", "P2D")
    assert row.state is None


@pytest.mark.parametrize("aud", [ISSUER, TOKEN_URL, PAR_URL, [PAR_URL, "https://other"]])
def test_the_assertion_may_name_the_issuer_the_token_or_the_par_endpoint(
        vault: Vault, aud: Any) -> None:
    r = vault.push(par_form(vault.a, client_assertion=assertion(vault.a, aud=aud)))
    assert r.status_code == 201, r.text


# -- client authentication ---------------------------------------------------------------


def test_no_client_assertion_is_refused(vault: Vault) -> None:
    r = vault.push(par_form(vault.a, client_assertion=None, client_assertion_type=None))
    refused(r, "invalid_client", "client_assertion", 401)
    r = vault.push(par_form(vault.a, client_assertion=None))
    refused(r, "invalid_client", "client_assertion", 401)
    r = vault.push(par_form(vault.a, client_assertion_type="urn:x:secret"))
    refused(r, "invalid_client", "client_assertion_type must be", 401)
    assert vault.stored() == []


@pytest.mark.parametrize("bad", ["not-a-jwt", "a.b.c", "e30.e30."])
def test_a_malformed_assertion_is_refused(vault: Vault, bad: str) -> None:
    refused(vault.push(par_form(vault.a, client_assertion=bad)), "invalid_client",
            "client assertion", 401)


def test_a_replayed_assertion_is_refused(vault: Vault) -> None:
    form = par_form(vault.a)
    assert vault.push(form).status_code == 201
    refused(vault.push(form), "invalid_client", "jti replay", 401)
    assert len(vault.stored()) == 1


def test_an_assertion_signed_with_another_services_key_is_refused(vault: Vault) -> None:
    # A's client id, signed with B's (registered, but for B) key.
    refused(vault.push(par_form(vault.a, B_KEY)), "invalid_client", "signature", 401)
    # B's own valid assertion, presented for A: A's key does not verify it.
    r = vault.push(par_form(vault.a, client_assertion=assertion(vault.b, B_KEY)))
    refused(r, "invalid_client", "signature", 401)
    # Made with A's key but claiming to be B, for A.
    r = vault.push(par_form(vault.a, client_assertion=assertion(vault.b, A_KEY)))
    refused(r, "invalid_client", "another client", 401)
    assert vault.stored() == []


def test_an_assertion_for_another_audience_or_expired_is_refused(vault: Vault) -> None:
    r = vault.push(par_form(vault.a, client_assertion=assertion(
        vault.a, aud="https://elsewhere.example/oauth/par")))
    refused(r, "invalid_client", "aud", 401)
    past = datetime.now(UTC) - timedelta(minutes=10)
    r = vault.push(par_form(vault.a, client_assertion=assertion(vault.a, now=past)))
    refused(r, "invalid_client", "expired", 401)


def test_an_unknown_or_suspended_service_is_refused(vault: Vault) -> None:
    ghost = "svc_nobodyxxxxxxxxxxxxxxx"
    refused(vault.push(par_form(ghost)), "invalid_client", "unknown client", 401)
    refused(vault.push(par_form("x" * 41)), "invalid_client", "unknown client", 401)
    registry.suspend_service(vault.state.ctx, vault.a)
    refused(vault.push(par_form(vault.a)), "invalid_client", "suspended", 401)
    # ...but only to a caller holding its key: a forged assertion learns nothing more.
    refused(vault.push(par_form(vault.a, B_KEY)), "invalid_client", "signature", 401)
    assert vault.stored() == []


def test_client_id_is_required(vault: Vault) -> None:
    refused(vault.push(par_form(vault.a, client_id=None)), "invalid_request", "client_id")


def test_without_client_id_the_assertion_names_the_client(vault: Vault) -> None:
    """For the token endpoint, where client_id is optional (RFC 7523 §3)."""
    now = datetime.now(UTC)
    form = par_form(vault.a, client_id=None)
    service = authenticate_client(vault.state.ctx, form, audience=[PAR_URL],
                                  seen=MemoryJtiStore(), now=now)
    assert service.id == vault.a
    with pytest.raises(OAuthError, match="signature"):
        authenticate_client(vault.state.ctx, par_form(vault.a, B_KEY, client_id=None),
                            audience=[PAR_URL], seen=MemoryJtiStore(), now=now)


# -- the request -------------------------------------------------------------------------


CHALLENGE_NOT_CANONICAL = "A" * 42 + "B"  # 43 characters, but not 32 bytes' base64url

REQUEST_CASES = [
    ({"response_type": None}, "invalid_request", "response_type is required"),
    ({"response_type": "token"}, "unsupported_response_type", "code"),
    ({"redirect_uri": None}, "invalid_request", "redirect_uri is required"),
    ({"redirect_uri": "https://evil.example/cb"}, "invalid_request", "not one registered"),
    ({"redirect_uri": A_REDIRECT + "/"}, "invalid_request", "not one registered"),
    ({"redirect_uri": A_REDIRECT.upper()}, "invalid_request", "not one registered"),
    ({"redirect_uri": B_REDIRECT}, "invalid_request", "not one registered"),
    ({"code_challenge": None, "code_challenge_method": None}, "invalid_request",
     "code_challenge is required"),
    ({"code_challenge": None}, "invalid_request", "code_challenge is required"),
    ({"code_challenge_method": None}, "invalid_request", "must be S256"),
    ({"code_challenge_method": "plain", "code_challenge": VERIFIER}, "invalid_request",
     "must be S256"),
    ({"code_challenge_method": "plain"}, "invalid_request", "must be S256"),
    ({"code_challenge_method": "s256"}, "invalid_request", "must be S256"),
    ({"code_challenge": "short"}, "invalid_request", "43 characters"),
    ({"code_challenge": s256(VERIFIER) + "A"}, "invalid_request", "43 characters"),
    ({"code_challenge": CHALLENGE_NOT_CANONICAL}, "invalid_request", "43 characters"),
    ({"code_challenge": "+" * 43}, "invalid_request", "43 characters"),
    ({"state": "s" * 513}, "invalid_request", "state must be at most 512"),
    ({"state": "line\nbreak"}, "invalid_request", "printable ASCII"),
    ({"state": "caf\u00e9"}, "invalid_request", "printable ASCII"),
    ({"scope": "openid"}, "invalid_scope", "authorization_details"),
    ({"request_uri": REQUEST_URI_PREFIX + "x" * 43}, "invalid_request", "request_uri"),
    ({"request": "eyJhbGciOiJub25lIn0.e30."}, "invalid_request", "request objects"),
    ({"authorization_details": None}, "invalid_request", "authorization_details is required"),
]


@pytest.mark.parametrize(("changes", "error", "fragment"), REQUEST_CASES)
def test_a_bad_request_is_refused(vault: Vault, changes: dict[str, Any], error: str,
                                  fragment: str) -> None:
    refused(vault.push(par_form(vault.a, **changes)), error, fragment)
    assert vault.stored() == []


def test_state_up_to_its_limit_is_kept_as_sent(vault: Vault) -> None:
    state = "".join(chr(c) for c in range(0x20, 0x7F)) * 5 + "x" * 37  # 512 characters
    assert vault.push(par_form(vault.a, state=state)).status_code == 201
    assert vault.stored()[0].state == state


def details(**changes: Any) -> str:
    obj = {**DETAILS, **changes}
    return json.dumps([{k: v for k, v in obj.items() if v is not ...}])


DETAILS_CASES = [
    ("not json", "not valid JSON"),
    (json.dumps(DETAILS), "must be a JSON array"),
    ("[]", "exactly one object of type 'personal_data', not 0"),
    (json.dumps([DETAILS, DETAILS]), "exactly one object of type 'personal_data', not 2"),
    (json.dumps(["personal_data"]), "must be a JSON object"),
    (details(type="payment_initiation"), "'payment_initiation' is not supported"),
    (details(type=...), "needs a type"),
    (details(type=["personal_data"]), "needs a type"),
    (details(locations=["https://vault.example.gov"]), "unexpected field(s): locations"),
    (details(justification=...), "missing justification"),
    (details(purpose=..., access=...), "missing purpose, access"),
    (details(purpose="research_with_consent"), "not registered for the purpose"),
    (details(purpose="world_domination"), "unknown purpose"),
    (details(purpose=7), "purpose must be text"),
    (details(categories=["health.prescriptions"]),
     "not registered to read the category 'health.prescriptions'"),
    (details(categories=["address.home", "contact.email"]),
     "not registered to read the category 'contact.email'"),
    (details(categories=["nonsense.thing"]), "unknown category"),
    (details(categories="address.home"), "categories must be a JSON array of text"),
    (details(derived=["age_over_18"]), "not registered for the derived answer 'age_over_18'"),
    (details(derived=["no_such_answer"]), "unknown derived answer"),
    (details(categories=[], derived=[]), "at least one category or derived answer"),
    (details(duration="P91D"), "at most 90 days"),
    (details(duration="P1M"), "not a duration the vault accepts"),
    (details(duration=30), "duration must be text"),
    (details(duration="PT0S"), "longer than zero"),
    (details(expires_at="2026-12-01T09:00:00Z"), "either a duration or an expires_at"),
    (details(duration=...), "either a duration or an expires_at"),
    (details(duration=..., expires_at="2026-13-01T09:00:00Z"), "not a real date"),
    (details(duration=..., expires_at="next tuesday"), "times must be written like"),
    (details(duration=..., expires_at="2000-01-01T00:00:00Z"), "after not_before"),
    (details(not_before="2000-01-01T00:00:00Z"), "not_before is in the past"),
    (details(access={"mode": "sometimes"}), "access mode must be"),
    (details(access={"mode": "periodic"}), "needs max_reads, min_interval or both"),
    (details(access={"mode": "periodic", "max_reads": 2.0}), "max_reads must be a whole"),
    (details(access={"mode": "one_time", "every": "P1D"}), "unexpected field(s): every"),
    (details(access="one_time"), "access must be a JSON object"),
    (details(data_life="forever"), "not a duration the vault accepts"),
    (details(data_life="P3651D"), "data_life must be at most 3650 days"),
    (details(justification=""), "a justification"),
    (details(justification="x" * 501), "at most 500 characters"),
    (details(justification="evil\u202etxt"), "control characters"),
    ('[{"type": "personal_data", "type": "personal_data"}]', "not valid JSON"),
    ('[{"type": "personal_data", "max_reads": NaN}]', "not valid JSON"),
    ("[" * 4000 + "]" * 4000, "not valid JSON"),  # too deep to parse, not a crash
    ("[" * 5000 + "]" * 5000, "at most 8192 characters"),
    (details(justification="x" * 8100), "at most 8192 characters"),
]


@pytest.mark.parametrize(("text", "fragment"), DETAILS_CASES)
def test_authorization_details_outside_the_registration_are_refused(
        vault: Vault, text: str, fragment: str) -> None:
    r = vault.push(par_form(vault.a, authorization_details=text))
    refused(r, "invalid_authorization_details", fragment)
    assert r.json()["error_description"].startswith("authorization_details: ")
    assert vault.stored() == []


def test_an_end_may_be_given_as_expires_at_with_a_start(vault: Vault) -> None:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    text = details(duration=..., not_before=f"{start:%Y-%m-%dT%H:%M:%SZ}",
                   expires_at=f"{start + timedelta(days=90):%Y-%m-%dT%H:%M:%SZ}")
    assert vault.push(par_form(vault.a, authorization_details=text)).status_code == 201
    too_long = details(duration=..., expires_at=f"{start + timedelta(days=91):%Y-%m-%dT%H:%M:%SZ}")
    refused(vault.push(par_form(vault.a, authorization_details=too_long)),
            "invalid_authorization_details", "at most 90 days")


# -- the form itself ---------------------------------------------------------------------


def test_a_repeated_parameter_is_refused(vault: Vault) -> None:
    form = [*par_form(vault.a).items(), ("redirect_uri", A_REDIRECT)]
    refused(vault.push(form), "invalid_request", "'redirect_uri' is given more than once")
    assert vault.stored() == []


def test_an_empty_parameter_counts_as_omitted(vault: Vault) -> None:
    refused(vault.push(par_form(vault.a, code_challenge="")), "invalid_request",
            "code_challenge is required")
    form = [*par_form(vault.a).items(), ("state", "")]  # "state" twice, once empty
    assert vault.push(form).status_code == 201


def test_only_a_small_utf8_form_is_read(vault: Vault) -> None:
    r = vault.http.post("/oauth/par", json=par_form(vault.a))
    refused(r, "invalid_request", "application/x-www-form-urlencoded")
    r = vault.http.post("/oauth/par", content=b"client_id=%ff%fe",
                        headers={"content-type": "application/x-www-form-urlencoded"})
    refused(r, "invalid_request", "UTF-8")
    r = vault.http.post("/oauth/par", content=b"a=" + b"x" * 70_000,
                        headers={"content-type": "application/x-www-form-urlencoded"})
    refused(r, "invalid_request", "over 65536 bytes")
    many = "&".join(f"f{i}=v" for i in range(60))
    r = vault.http.post("/oauth/par", content=many.encode(),
                        headers={"content-type": "application/x-www-form-urlencoded"})
    refused(r, "invalid_request", "more than 50 fields")
    assert vault.http.get("/oauth/par").status_code == 405


# -- authlib, an independent OAuth client ----------------------------------------------


def run_in_new_loop(coro: Coroutine[Any, Any, Any]) -> Any:
    """asyncio.run on a thread of its own: the browser tests' Playwright (sync API)
    leaves an event loop running on the main thread for the whole session."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


class ShortLivedPrivateKeyJWT(PrivateKeyJWT):  # type: ignore[misc]
    """authlib's private_key_jwt with a 2-minute assertion (its default lives an hour)."""

    def sign(self, auth: Any, token_endpoint: str) -> str:
        return str(private_key_jwt_sign(auth.client_secret, client_id=auth.client_id,
                                        token_endpoint=token_endpoint, alg=self.alg,
                                        header=self.headers, expires_in=120))


async def authlib_par(app: FastAPI, client_id: str, auth_method: PrivateKeyJWT | None,
                      ) -> tuple[httpx.Response, str]:
    pem = A_KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    async with AsyncOAuth2Client(
        client_id=client_id, client_secret=ECKey.import_key(pem),
        token_endpoint_auth_method="private_key_jwt",
        transport=httpx.ASGITransport(app=app), base_url="http://localhost:8000",
    ) as oauth:
        meta = (await oauth.request("GET", "/.well-known/oauth-authorization-server",
                                    withhold_token=True)).json()
        par_endpoint = meta["pushed_authorization_request_endpoint"]
        oauth.register_client_auth_method(
            auth_method or ShortLivedPrivateKeyJWT(par_endpoint, alg="ES256"))
        verifier = generate_token(48)
        r = await oauth.request("POST", par_endpoint, withhold_token=True,
                                auth=oauth.client_auth("private_key_jwt"), data={
                                 "response_type": "code", "client_id": client_id,
                                 "redirect_uri": A_REDIRECT, "state": generate_token(20),
                                 "code_challenge": create_s256_code_challenge(verifier),
                                 "code_challenge_method": "S256",
                                 "authorization_details": json.dumps([DETAILS])})
        return r, create_s256_code_challenge(verifier)


def test_authlib_pushes_a_request_with_private_key_jwt(vault: Vault) -> None:
    app = vault.http.app
    assert isinstance(app, FastAPI)
    r, challenge = run_in_new_loop(authlib_par(app, vault.a, None))
    assert r.status_code == 201, r.text
    assert REQUEST_URI.fullmatch(r.json()["request_uri"]) and r.json()["expires_in"] == 60
    [row] = vault.stored()
    assert (row.client_id, row.code_challenge) == (vault.a, challenge)
    # A second push with the same client signs a fresh assertion (a new jti): accepted.
    r, _ = run_in_new_loop(authlib_par(app, vault.a, None))
    assert r.status_code == 201, r.text


def test_authlibs_default_hour_long_assertion_is_refused(vault: Vault) -> None:
    """The vault takes assertions that live at most 5 minutes (vault.oauth.client_auth):
    a service using authlib must sign shorter ones than authlib's default hour."""
    app = vault.http.app
    assert isinstance(app, FastAPI)
    r, _ = run_in_new_loop(authlib_par(app, vault.a, PrivateKeyJWT(PAR_URL, alg="ES256")))
    refused(r, "invalid_client", "more than 0:05:00 ahead", 401)


# -- storing and taking, on SQLite and PostgreSQL --------------------------------------


@dataclass
class Parts:
    ctx: VaultContext
    clock: Clock
    seen: MemoryJtiStore
    a: str
    b: str

    def push(self, client_id: str | None = None, key: ec.EllipticCurvePrivateKey = A_KEY,
             **changes: Any) -> PushedRequest:
        client_id = client_id or self.a
        return push_request(self.ctx, par_form(client_id, key, now=self.clock.now, **changes),
                            audience=(ISSUER, PAR_URL), seen=self.seen, now=self.clock.now)

    def count(self) -> int:
        with Session(self.ctx.engine) as s:
            return int(s.execute(select(func.count()).select_from(OAuthRequestRow)).scalar_one())


@pytest.fixture
def parts(database_url: str, tmp_path: Path) -> Iterator[Parts]:
    clock = Clock()
    engine = make_engine(database_url)
    migrate(engine)
    ctx = VaultContext(
        engine=engine, keyring=load_keyring(tmp_path / "keys", master_key=None,
                                            production=False),
        clock=clock,
        approvals=PasskeyApprovalVerifier(RelyingParty.from_public_url("http://localhost:8000")))
    yield Parts(ctx, clock, MemoryJtiStore(), register(ctx, A_KEY, A_REDIRECT),
                register(ctx, B_KEY, B_REDIRECT))
    engine.dispose()


def test_a_request_uri_is_taken_once(parts: Parts) -> None:
    pushed = parts.push()
    assert pushed.expires_at == parts.clock.now + REQUEST_LIFETIME
    parts.clock.advance(seconds=10)
    taken = take_request(parts.ctx, pushed.request_uri, client_id=parts.a)
    assert taken.used_at == parts.clock.now
    assert taken.id == pushed.id and taken.details == pushed.details
    assert (taken.redirect_uri, taken.state, taken.code_challenge) == (
        A_REDIRECT, "af0ifjsldkj", s256(VERIFIER))
    assert taken.authorization_details == pushed.authorization_details
    with pytest.raises(InvalidRequestUriError, match="already been used"):
        take_request(parts.ctx, pushed.request_uri, client_id=parts.a)


def test_an_expired_request_uri_is_refused(parts: Parts) -> None:
    first, second = parts.push(), parts.push()
    parts.clock.advance(seconds=59)
    take_request(parts.ctx, first.request_uri, client_id=parts.a)
    parts.clock.advance(seconds=1)
    with pytest.raises(InvalidRequestUriError, match="expired"):
        take_request(parts.ctx, second.request_uri, client_id=parts.a)
    assert second.expires_in(parts.clock.now) == 0


def test_another_clients_request_uri_is_refused_and_left_alone(parts: Parts) -> None:
    pushed = parts.push()
    with pytest.raises(InvalidRequestUriError, match="another client"):
        take_request(parts.ctx, pushed.request_uri, client_id=parts.b)
    assert take_request(parts.ctx, pushed.request_uri, client_id=parts.a).id == pushed.id


@pytest.mark.parametrize("uri", [
    "", "urn:ietf:params:oauth:request_uri:", "urn:ietf:params:oauth:request_uri:short",
    "https://vault.example.gov/req/abc", REQUEST_URI_PREFIX + "x" * 43,
    REQUEST_URI_PREFIX + "x" * 42 + "!",
])
def test_a_request_uri_that_was_never_pushed_is_refused(parts: Parts, uri: str) -> None:
    parts.push()
    with pytest.raises(InvalidRequestUriError):
        take_request(parts.ctx, uri, client_id=parts.a)


def test_of_two_concurrent_takes_one_wins(parts: Parts) -> None:
    for _ in range(3):
        pushed = parts.push()
        gate = threading.Barrier(4)
        results: list[str] = []

        def take(uri: str = pushed.request_uri) -> None:
            gate.wait()
            try:
                take_request(parts.ctx, uri, client_id=parts.a)
                results.append("taken")
            except InvalidRequestUriError as exc:
                results.append(exc.description)

        threads = [threading.Thread(target=take) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == ["taken"] + ["the request_uri has already been used"] * 3


def test_long_expired_requests_are_purged_by_the_next_push(parts: Parts) -> None:
    old = parts.push()
    parts.clock.advance(seconds=60)
    parts.push()
    assert parts.count() == 2  # expired, but kept a while: its taker learns it "expired"
    parts.clock.advance(seconds=PURGE_AFTER.total_seconds())
    parts.push()
    assert parts.count() == 2
    with pytest.raises(InvalidRequestUriError, match="unknown"):
        take_request(parts.ctx, old.request_uri, client_id=parts.a)


def test_a_refused_request_stores_nothing(parts: Parts) -> None:
    with pytest.raises(OAuthError) as info:
        parts.push(authorization_details=details(purpose="research_with_consent"))
    assert info.value.error == "invalid_authorization_details"
    assert parts.count() == 0


def test_the_taken_terms_request_the_grant_the_service_pushed(parts: Parts) -> None:
    """What the authorize endpoint will do: request the grant with the pushed terms."""
    pushed = parts.push(authorization_details=details(
        categories=["identity.name", "address.home"], access={"mode": "one_time"}))
    taken = take_request(parts.ctx, pushed.request_uri, client_id=parts.a)
    citizen = citizens.enrol_citizen(parts.ctx)
    grant = grants.request_grant(parts.ctx, service_id=taken.client_id, citizen_id=citizen.id,
                                 **taken.details.grant_arguments())
    terms = grant.terms
    assert (terms.purpose, terms.categories, terms.derived) == (
        "eligibility_assessment", ("address.home", "identity.name"), ("age_over_65",))
    assert terms.ends - terms.starts == timedelta(days=30)
    assert terms.access == Access("one_time")
    assert (terms.data_life, terms.justification) == ("P30D", DETAILS["justification"])


def test_personal_data_round_trips_through_its_json() -> None:
    parsed = PersonalDataRequest.from_json({**DETAILS, "duration": "PT36H"})
    assert parsed.duration == "P1DT12H"
    assert PersonalDataRequest.from_json(parsed.to_json()) == parsed
    assert parsed.grant_arguments()["duration"] == timedelta(hours=36)
    assert parsed.grant_arguments()["expires_at"] is None
