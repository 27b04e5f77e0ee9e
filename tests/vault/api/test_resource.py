"""The resource server over HTTP: GET /v1/data and GET /v1/grants/{id} (ARCHITECTURE §4).

A valid token reads exactly what the grant's terms allow, logged before the answer; every
way a grant ends is refused on the very next request with the same, unexpired token; every
forged or misdirected token is a 401 with an RFC 6750 challenge and reads nothing; a
revocation racing eight readers lets no read that started after it return data.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from fastapi import FastAPI
from fastapi.testclient import TestClient
from livevault import serve
from support.ledgerview import full_entries
from support.vaultworld import World, add_passkey, ask, blue_badge, world

from vault.api.deps import AppState
from vault.api.ratelimit import DEFAULT_BURST, DEFAULT_RATE, ClientRateLimiter
from vault.api.resource_routes import LIMITER_ATTRIBUTE, resource_audience
from vault.app import create_app
from vault.config import Settings
from vault.crypto.token_key import TokenKey
from vault.domain.grants import Access, GrantAction
from vault.oauth import issue_access_token, pairwise_sub
from vault.services import citizens, grants, registry
from vault.services.context import VaultContext
from vault.services.group_commit import Overloaded
from vault.storage.database import read_only
from wallet.passkeys.software import SoftAuthenticator

ORIGIN = "http://localhost:8000"
PROBLEM = "urn:citizen-vault:problem:"
ADDRESS = {"lines": ["12 St James's Square"], "town": "London", "postcode": "SW1Y 4JH",
           "local_authority": "Westminster"}


# -- the vault under test ------------------------------------------------------------------------


@dataclass
class Granted:
    world: World
    device: SoftAuthenticator
    grant: grants.GrantView

    @property
    def id(self) -> str:
        return self.grant.id


@dataclass
class Vault:
    client: TestClient | httpx.Client
    state: AppState
    app: FastAPI
    base_url: str = ORIGIN
    origin: str = ORIGIN
    extra_services: list[str] = field(default_factory=list)

    @property
    def ctx(self) -> VaultContext:
        return self.state.ctx

    def granted(self, **terms: Any) -> Granted:
        """A citizen with data, a passkey, and an approved grant of the Blue Badge team."""
        w = world(self.ctx)
        device = add_passkey(self.ctx, w.citizen_id, SoftAuthenticator(origin=self.origin))
        g = ask(self.ctx, w, **terms)
        grants.approve_grant(self.ctx, g.id, citizen_id=w.citizen_id,
                             proof=device.proof(challenge=g.terms_hash))
        return Granted(w, device, g)

    def act(self, granted: Granted, action: GrantAction) -> None:
        """The citizen pauses, resumes or revokes, signing with the passkey."""
        cid = granted.world.citizen_id
        challenge = grants.signing_challenge(self.ctx, granted.id, citizen_id=cid,
                                             action=action)
        do = {GrantAction.PAUSE: grants.pause_grant, GrantAction.RESUME: grants.resume_grant,
              GrantAction.REVOKE: grants.revoke_grant}[action]
        do(self.ctx, granted.id, citizen_id=cid, proof=granted.device.proof(challenge=challenge))

    def token(self, granted: Granted, *, key: TokenKey | None = None, **kw: Any) -> str:
        """An access token as the token endpoint issues it (valid for 5 minutes)."""
        w = granted.world
        now = datetime.now(UTC)
        args: dict[str, Any] = {
            "issuer": self.base_url, "audience": resource_audience(self.base_url),
            "client_id": w.service_id, "grant_id": granted.id,
            "sub": pairwise_sub(self.state.app_secret, w.service_id, w.citizen_id),
            "authorization_details": [{"type": "personal_data", **granted.grant.terms.to_json()}],
            "now": now,
            # Far beyond the grant on purpose: the grant's own end must stop reads, not
            # the token's (the token endpoint caps exp at the grant's end as well).
            "grant_expires_at": now + timedelta(days=1)}
        args.update(kw)
        return issue_access_token(key or self.state.token_keys.current, **args)[0]

    def get(self, path: str, token: str | None = None, **headers: str) -> httpx.Response:
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.client.get(path, headers=headers)

    def read(self, token: str) -> httpx.Response:
        return self.get("/v1/data", token)

    def entries(self) -> list[dict[str, Any]]:
        with read_only(self.state.engine).begin() as conn:
            return full_entries(conn)

    def accesses(self, grant_id: str) -> list[dict[str, Any]]:
        return [e for e in self.entries()
                if e["kind"] == "data.accessed" and e["body"]["grant_id"] == grant_id]


def _vault(settings: Settings) -> Iterator[Vault]:
    app = create_app(settings)
    with TestClient(app, base_url=ORIGIN) as client:
        yield Vault(client, app.state.vault, app)


@pytest.fixture
def vault(database_url: str, tmp_path: Path) -> Iterator[Vault]:
    """The whole app on SQLite, then on PostgreSQL."""
    yield from _vault(Settings(data_dir=tmp_path / "v", ledger_public=True,
                               database_url=database_url))


@pytest.fixture
def lite(tmp_path: Path) -> Iterator[Vault]:
    """The whole app on SQLite only: for what the database cannot change."""
    yield from _vault(Settings(data_dir=tmp_path / "v", ledger_public=True))


def refused(r: httpx.Response, reason: str) -> None:
    assert r.status_code == 403, r.text
    assert r.headers["content-type"] == "application/problem+json"
    doc = r.json()
    assert doc["reason"] == reason
    assert doc["type"] == f"{PROBLEM}access-denied:{reason}"
    assert "data" not in doc and "derived" not in doc


# -- reading -----------------------------------------------------------------------------------


def test_a_token_reads_exactly_what_the_terms_allow_logged_first(vault: Vault) -> None:
    g = vault.granted()  # terms: address.home and age_over_65; the citizen also has a name
    r = vault.read(vault.token(g))
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    doc = r.json()
    # The entry is there the moment the answer is: it committed first.
    entry = vault.entries()[doc["ledger_index"]]
    assert set(doc) == {"grant_id", "sub", "data", "derived", "ledger_index", "provenance"}
    # The citizen typed the address: no issuer, no JWS (ARCHITECTURE §8 "Provenance").
    assert doc["provenance"] == {"address.home": {"source": "citizen", "issuer": None,
                                                  "version": 1, "record": None}}
    assert "issuers" not in vault.entries()[doc["ledger_index"]]["body"]
    assert doc["grant_id"] == g.id
    assert doc["sub"] == pairwise_sub(vault.state.app_secret, g.world.service_id,
                                      g.world.citizen_id)
    assert doc["sub"] != g.world.subject  # never the ledger pseudonym
    assert doc["data"] == {"address.home": ADDRESS}  # not identity.name: not in the terms
    assert doc["derived"] == {"age_over_65": True}  # born 1950
    assert entry["kind"] == "data.accessed"
    assert entry["body"]["grant_id"] == g.id and entry["body"]["service_id"] == g.world.service_id
    assert entry["body"]["categories"] == ["address.home"]
    assert entry["body"]["derived"] == ["age_over_65"]

    again = vault.read(vault.token(g)).json()  # a second read: its own entry
    assert again["ledger_index"] > doc["ledger_index"]
    assert [e["seq"] for e in vault.accesses(g.id)] == [doc["ledger_index"],
                                                        again["ledger_index"]]


def test_revocation_refuses_the_very_next_read_with_the_same_token(vault: Vault) -> None:
    g = vault.granted()
    token = vault.token(g)
    assert vault.read(token).status_code == 200
    vault.act(g, GrantAction.REVOKE)
    refused(vault.read(token), "revoked")
    assert len(vault.accesses(g.id)) == 1  # the refused read logged nothing
    # The service may still see what became of its grant.
    status = vault.get(f"/v1/grants/{g.id}", token)
    assert status.status_code == 200 and status.json()["state"] == "revoked"


def test_pause_refuses_the_next_read_and_resume_allows_it_again(vault: Vault) -> None:
    g = vault.granted()
    token = vault.token(g)
    assert vault.read(token).status_code == 200
    vault.act(g, GrantAction.PAUSE)
    refused(vault.read(token), "paused")
    vault.act(g, GrantAction.RESUME)
    assert vault.read(token).status_code == 200
    assert len(vault.accesses(g.id)) == 2


def test_expiry_refuses_the_next_read_with_an_unexpired_token(vault: Vault) -> None:
    g = vault.granted(duration=timedelta(seconds=3))
    token = vault.token(g)  # lives 5 minutes: well past the grant's end
    assert vault.read(token).status_code == 200
    time.sleep(max(0.0, (g.grant.terms.ends - datetime.now(UTC)).total_seconds()) + 0.1)
    refused(vault.read(token), "expired")
    assert len(vault.accesses(g.id)) == 1


def test_a_one_time_grant_refuses_the_second_read(vault: Vault) -> None:
    g = vault.granted(access=Access("one_time"))
    token = vault.token(g)
    assert vault.read(token).status_code == 200
    refused(vault.read(token), "exhausted")
    assert len(vault.accesses(g.id)) == 1
    assert vault.get(f"/v1/grants/{g.id}", token).json()["state"] == "exhausted"


def test_a_suspended_service_is_refused_on_the_next_request(vault: Vault) -> None:
    g = vault.granted()
    token = vault.token(g)
    assert vault.read(token).status_code == 200
    registry.suspend_service(vault.ctx, g.world.service_id)
    refused(vault.read(token), "service_suspended")
    refused(vault.get(f"/v1/grants/{g.id}", token), "service_suspended")
    assert len(vault.accesses(g.id)) == 1


def test_a_full_read_queue_is_503_with_retry_after(lite: Vault) -> None:
    g = lite.granted()

    class Full:
        async def aread(self, **_: str) -> None:
            raise Overloaded("512 reads are already waiting; try again shortly")

    reader, lite.state.reader = lite.state.reader, Full()  # type: ignore[assignment]
    try:
        r = lite.read(lite.token(g))
    finally:
        lite.state.reader = reader
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert r.json()["type"] == f"{PROBLEM}overloaded"


# -- the grant's status --------------------------------------------------------------------------


def test_grant_status_shows_the_tokens_own_grant(vault: Vault) -> None:
    g = vault.granted()
    r = vault.get(f"/v1/grants/{g.id}", vault.token(g))
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    doc = r.json()
    assert doc["grant_id"] == g.id and doc["service_id"] == g.world.service_id
    assert doc["state"] == "approved" and doc["reads"] == 0
    assert doc["terms"] == g.grant.terms.to_json()
    assert base64.b64decode(doc["terms_hash"]) == g.grant.terms_hash
    canonical = g.grant.terms.terms_hash()  # the terms as served hash to terms_hash
    assert canonical == g.grant.terms_hash
    assert datetime.fromisoformat(doc["requested_at"]) == g.grant.requested_at


def test_grant_status_never_shows_another_grant(vault: Vault) -> None:
    g = vault.granted()
    token = vault.token(g)
    # Another citizen's grant of the same service, and an id that does not exist:
    # the same 404, so the answer reveals nothing.
    other = vault.granted()
    same_service = ask(vault.ctx, g.world)  # a second grant of the same citizen and service
    answers = [vault.get(f"/v1/grants/{gid}", token)
               for gid in (other.id, same_service.id, "gr_doesnotexist")]
    for r in answers:
        assert r.status_code == 404
        assert r.json()["type"] == f"{PROBLEM}not-found"
    assert len({r.text for r in answers}) == 1


# -- tokens that must not work ------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def segment(obj: dict[str, Any]) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    h, p, s = token.split(".")
    return (json.loads(base64.urlsafe_b64decode(h + "==")),
            json.loads(base64.urlsafe_b64decode(p + "==")), s)


def public_key(state: AppState) -> ec.EllipticCurvePublicKey:
    jwk = state.token_keys.current.public_jwk()

    def coordinate(name: str) -> int:
        return int.from_bytes(base64.urlsafe_b64decode(jwk[name] + "="), "big")

    return ec.EllipticCurvePublicNumbers(coordinate("x"), coordinate("y"),
                                         ec.SECP256R1()).public_key()


def hs256_with_public_key(v: Vault, good: str, encoding: serialization.Encoding) -> str:
    """The classic confusion: HMAC keyed with the server's public key."""
    h, p, _ = parts(good)
    secret = public_key(v.state).public_bytes(encoding,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = f"{segment({**h, 'alg': 'HS256'})}.{segment(p)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def signed_by_attacker_with_our_kid(good: str) -> str:
    h, p, _ = parts(good)
    attacker = ec.generate_private_key(ec.SECP256R1())
    signing_input = f"{segment(h)}.{segment(p)}"
    r, s = decode_dss_signature(attacker.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def tampered(good: str, **changes: Any) -> str:
    h, _, s = good.split(".")
    claims = parts(good)[1]
    claims.update(changes)
    return f"{h}.{segment(claims)}.{s}"


def ours_with(v: Vault, g: Granted, **changes: Any) -> str:
    """Claims of our choosing, really signed by our current key."""
    claims = parts(v.token(g))[1]
    claims.update(changes)
    return v.state.token_keys.current.sign(claims, typ="at+jwt")


def attacks(v: Vault, g: Granted) -> dict[str, str]:
    good = v.token(g)
    h, p, _ = parts(good)
    now = int(time.time())
    return {
        "alg none, unsigned": f"{segment({**h, 'alg': 'none'})}.{segment(p)}.",
        "alg none, with a signature": f"{segment({**h, 'alg': 'none'})}.{segment(p)}.AAAA",
        "HS256 keyed with the public key (PEM)":
            hs256_with_public_key(v, good, serialization.Encoding.PEM),
        "HS256 keyed with the public key (DER)":
            hs256_with_public_key(v, good, serialization.Encoding.DER),
        "expired": v.token(g, now=datetime.now(UTC) - timedelta(minutes=10)),
        "not yet valid (iat ahead)": v.token(g, now=datetime.now(UTC) + timedelta(minutes=10)),
        "not yet valid (nbf ahead)": ours_with(v, g, nbf=now + 600),
        "wrong audience": v.token(g, audience=v.base_url + "/other"),
        "the issuer as audience": v.token(g, audience=v.base_url),
        "wrong issuer": v.token(g, issuer="https://evil.example"),
        "tampered payload (grant)": tampered(good, grant_id="gr_someone_else"),
        "tampered payload (sub)": tampered(good, sub="psub_other"),
        "unknown kid": v.token(g, key=TokenKey.generate()),
        "our kid, an attacker's key": signed_by_attacker_with_our_kid(good),
        "not an access token (typ JWT)": v.state.token_keys.current.sign(p, typ="JWT"),
        "garbage": "not-a-token",
        "three dots": "..",
    }


def test_every_forged_or_misdirected_token_is_401_and_reads_nothing(lite: Vault) -> None:
    g = lite.granted()
    assert lite.read(lite.token(g)).status_code == 200  # the real token works
    before = lite.entries()
    for name, token in attacks(lite, g).items():
        for path in ("/v1/data", f"/v1/grants/{g.id}"):
            r = lite.get(path, token)
            assert r.status_code == 401, (name, path, r.text)
            challenge = r.headers["www-authenticate"]
            assert challenge.startswith('Bearer realm="vault", error="invalid_token", '
                                        'error_description="'), (name, challenge)
            assert r.headers["content-type"] == "application/problem+json"
            assert r.headers["cache-control"] == "no-store"
            doc = r.json()
            assert doc["type"] == f"{PROBLEM}invalid-token" and doc["error"] == "invalid_token"
            assert doc["status"] == 401 and doc["detail"]
            assert "data" not in doc
    assert lite.entries() == before  # not one read happened


def test_a_token_of_service_b_cannot_read_service_as_grant(vault: Vault) -> None:
    a = vault.granted()
    service_b = blue_badge(vault.ctx)
    # B's own, genuinely issued token, naming A's grant.
    token = vault.token(a, client_id=service_b,
                        sub=pairwise_sub(vault.state.app_secret, service_b, a.world.citizen_id))
    for path in ("/v1/data", f"/v1/grants/{a.id}"):
        r = vault.get(path, token)
        assert r.status_code == 401, r.text
        assert 'error="invalid_token"' in r.headers["www-authenticate"]
    assert vault.accesses(a.id) == []
    assert vault.read(vault.token(a)).status_code == 200  # A's own token still works


def test_a_token_whose_grant_is_gone_is_invalid(lite: Vault) -> None:
    g = lite.granted()
    token = lite.token(g)
    nowhere = lite.token(g, grant_id="gr_doesnotexist")
    citizens.erase_citizen(lite.ctx, g.world.citizen_id)  # the grant row goes with them
    for tok, gid in ((token, g.id), (nowhere, "gr_doesnotexist")):
        for path in ("/v1/data", f"/v1/grants/{gid}"):
            r = lite.get(path, tok)
            assert r.status_code == 401, r.text
            assert 'error="invalid_token"' in r.headers["www-authenticate"]


@pytest.mark.parametrize(("authorization", "error"), [
    (None, None),
    (b"Basic dXNlcjpwYXNz", None),
    (b"Bearer", "invalid_token"),
    (b"Bearer ", "invalid_token"),
    (b"Bearer a b", "invalid_token"),
    ("Bearer tok\u00e9n".encode("latin-1"), "invalid_token"),
], ids=["missing", "basic", "bearer-alone", "bearer-empty", "two-words", "non-ascii"])
def test_missing_or_malformed_authorization_is_401_with_a_challenge(
    lite: Vault, authorization: bytes | None, error: str | None
) -> None:
    g = lite.granted()
    headers = [] if authorization is None else [(b"Authorization", authorization)]
    for path in ("/v1/data", f"/v1/grants/{g.id}"):
        r = lite.client.get(path, headers=headers)
        assert r.status_code == 401, r.text
        challenge = r.headers["www-authenticate"]
        if error is None:  # RFC 6750 §3.1: no error code when no token was offered
            assert challenge == 'Bearer realm="vault"'
            assert r.json()["type"] == f"{PROBLEM}unauthorized"
        else:
            assert challenge.startswith(f'Bearer realm="vault", error="{error}"')
    assert lite.accesses(g.id) == []


def test_a_token_in_the_query_string_or_twice_is_not_accepted(lite: Vault) -> None:
    g = lite.granted()
    token = lite.token(g)
    # RFC 6750 §2.3 (URI query) is not supported: such a request carries no token.
    r = lite.client.get("/v1/data", params={"access_token": token})
    assert r.status_code == 401 and r.headers["www-authenticate"] == 'Bearer realm="vault"'
    # Two Authorization headers: refused, whichever one a proxy would have used.
    r = lite.client.get("/v1/data", headers=[("Authorization", f"Bearer {token}"),
                                             ("Authorization", f"Bearer {token}")])
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]
    assert lite.accesses(g.id) == []
    assert lite.read(token).status_code == 200  # the same token, sent properly


def test_error_descriptions_in_the_challenge_are_safe_header_text() -> None:
    from vault.api.resource_routes import BearerTokenRejected

    challenge = BearerTokenRejected('bad "quote" \\ and \u00e9\r\nX: y').challenge()
    assert challenge == ('Bearer realm="vault", error="invalid_token", '
                         'error_description="bad quote  and X: y"')


# -- rate limits ---------------------------------------------------------------------------------


@dataclass
class FakeClock:
    t: float = 1000.0

    def __call__(self) -> float:
        return self.t


def test_each_client_has_its_own_rate_limit(lite: Vault) -> None:
    app = lite.app
    default = getattr(app.state, LIMITER_ATTRIBUTE)
    assert (default.rate, default.burst) == (DEFAULT_RATE, DEFAULT_BURST)
    clock = FakeClock()
    setattr(app.state, LIMITER_ATTRIBUTE, ClientRateLimiter(rate=1, burst=2, clock=clock))
    a, b = lite.granted(), lite.granted()  # two services (each world registers one)
    ta, tb = lite.token(a), lite.token(b)
    assert [lite.read(ta).status_code for _ in range(2)] == [200, 200]
    r = lite.get(f"/v1/grants/{a.id}", ta)  # /v1/* shares the one bucket
    assert r.status_code == 429 and r.headers["retry-after"] == "1"
    assert r.json()["type"] == f"{PROBLEM}rate-limited"
    assert lite.read(ta).status_code == 429
    assert len(lite.accesses(a.id)) == 2  # nothing was read over the limit
    assert lite.read(tb).status_code == 200  # another client is not held up
    clock.t += 1.0
    assert lite.read(ta).status_code == 200


def test_bad_tokens_do_not_spend_a_clients_allowance(lite: Vault) -> None:
    app = lite.app
    setattr(app.state, LIMITER_ATTRIBUTE, ClientRateLimiter(rate=1, burst=1, clock=FakeClock()))
    g = lite.granted()
    forged = tampered(lite.token(g), sub="psub_x")  # names the client, but is forged
    for _ in range(3):
        assert lite.read(forged).status_code == 401
    assert lite.read(lite.token(g)).status_code == 200


def test_token_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    clock = FakeClock()
    limiter = ClientRateLimiter(rate=2, burst=3, clock=clock)
    assert [limiter.wait("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.wait("a") == pytest.approx(0.5)
    clock.t += 0.25
    assert limiter.wait("a") == pytest.approx(0.25)  # half a token so far; nothing taken
    clock.t += 0.25
    assert limiter.wait("a") == 0.0
    clock.t += 3600  # a long pause refills to the burst, no further
    assert [limiter.wait("a") for _ in range(4)][-1] > 0
    clock.t -= 10  # a clock that ran back gives nothing and breaks nothing
    assert limiter.wait("a") > 0


def test_token_bucket_keeps_at_most_max_clients() -> None:
    clock = FakeClock()
    limiter = ClientRateLimiter(rate=1, burst=1, max_clients=2, clock=clock)
    assert limiter.wait("a") == 0.0 and limiter.wait("b") == 0.0
    assert limiter.wait("a") > 0  # a is now the most recently used
    assert limiter.wait("c") == 0.0  # b, idle longest, is dropped
    assert len(limiter) == 2
    assert limiter.wait("a") > 0  # a kept its (empty) bucket
    with pytest.raises(ValueError):
        ClientRateLimiter(rate=0)
    with pytest.raises(ValueError):
        ClientRateLimiter(burst=0)
    with pytest.raises(ValueError):
        ClientRateLimiter(rate=float("nan"))


# -- OpenAPI --------------------------------------------------------------------------------------


def test_openapi_documents_the_resource_api(lite: Vault) -> None:
    doc = lite.client.get("/openapi.json").json()
    data = doc["paths"]["/v1/data"]["get"]
    assert data["responses"]["200"]["content"]["application/json"]["schema"]["$ref"] \
        .endswith("/DataRelease")
    assert "application/problem+json" in data["responses"]["401"]["content"]
    assert {"401", "403", "429", "503"} <= set(data["responses"])
    assert "WWW-Authenticate" in data["responses"]["401"]["headers"]
    assert data["security"] == [{"HTTPBearer": []}]
    status = doc["paths"]["/v1/grants/{grant_id}"]["get"]
    assert status["responses"]["200"]["content"]["application/json"]["schema"]["$ref"] \
        .endswith("/GrantStatus")
    schemas = doc["components"]["schemas"]
    assert set(schemas["DataRelease"]["required"]) == {"grant_id", "sub", "data", "derived",
                                                       "ledger_index"}
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


# -- a revocation racing readers --------------------------------------------------------------


def test_no_read_that_starts_after_a_revocation_returns_data(database_url: str,
                                                               tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "v", ledger_public=True, database_url=database_url)
    with serve(settings) as live:
        assert live.app is not None
        state: AppState = live.app.state.vault
        setattr(live.app.state, LIMITER_ATTRIBUTE, ClientRateLimiter(rate=1e9, burst=10**9))
        base = live.settings.base_url
        v = Vault(httpx.Client(base_url=base), state, live.app, base_url=base,
                  origin=live.url)
        g = v.granted(access=Access("periodic", max_reads=1_000_000))
        token = v.token(g)
        results: list[tuple[float, int, dict[str, Any]]] = []
        lock = threading.Lock()
        stop = threading.Event()
        revoked_at: list[float] = []

        def reader() -> None:
            with httpx.Client(base_url=base, timeout=30) as http:
                after = 0
                while not stop.is_set() and after < 5:
                    started = time.monotonic()
                    r = http.get("/v1/data", headers={"Authorization": f"Bearer {token}"})
                    with lock:
                        results.append((started, r.status_code, r.json()))
                    if revoked_at and started > revoked_at[0]:
                        after += 1

        threads = [threading.Thread(target=reader) for _ in range(8)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while sum(1 for _, s, _ in results if s == 200) < 40 and time.monotonic() < deadline:
            time.sleep(0.005)
        v.act(g, GrantAction.REVOKE)
        revoked_at.append(time.monotonic())  # the revocation has committed
        for t in threads:
            t.join(timeout=60)
        stop.set()
        v.client.close()

        revocation = next(e for e in v.entries()
                          if e["kind"] == "grant.revoked" and e["body"]["grant_id"] == g.id)
        logged = {e["seq"] for e in v.accesses(g.id)}

    assert {s for _, s, _ in results} <= {200, 403}, "only data or a refusal, never an error"
    released = [doc for _, s, doc in results if s == 200]
    after = [(s, doc) for t, s, doc in results if t > revoked_at[0]]
    assert len(released) >= 40 and len(after) >= 8 * 5
    for status, doc in after:
        assert status == 403 and doc["reason"] == "revoked"
    # Every released read is logged, before the revocation, and nothing else is logged.
    assert {doc["ledger_index"] for doc in released} == logged
    assert max(logged) < revocation["seq"]


def test_the_rate_limit_settings_are_the_ones_in_force(tmp_path: Path) -> None:
    """A configured limiter is used even while it has no client yet (it once tested
    falsy, empty, and was replaced by the default)."""
    settings = Settings(data_dir=tmp_path / "v", client_rate_limit=7, client_rate_burst=9)
    app = create_app(settings)
    limiter = getattr(app.state, LIMITER_ATTRIBUTE)
    assert (limiter.rate, limiter.burst) == (7, 9)
