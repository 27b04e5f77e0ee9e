"""The SDK against the real vault app (no sockets): discovery, pushed authorization
requests and their refusals, reads with access tokens minted as the token endpoint mints
them, every 403 reason as its typed error on the next read, 401 handling through a
refresh, rate limits, and grant status; the async client through httpx.ASGITransport."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from clients.service import (
    Access,
    AsyncVaultClient,
    GrantExhausted,
    GrantNotYetValid,
    GrantPaused,
    GrantRevoked,
    PersonalData,
    ProtocolError,
    RateLimited,
    ServiceKey,
    ServiceSuspended,
    TooSoon,
    VaultClient,
)
from vault.api.ratelimit import ClientRateLimiter
from vault.api.resource_routes import LIMITER_ATTRIBUTE
from vault.domain.grants import Access as VaultAccess
from vault.domain.grants import GrantAction
from vault.services import registry
from vault.storage.tables import OAuthRequestRow

ORIGIN = "http://localhost:8000"
REDIRECT = "https://badges.example.gov/cb"
ADDRESS = {"lines": ["12 St James's Square"], "town": "London", "postcode": "SW1Y 4JH",
           "local_authority": "Westminster"}


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()) \
        .rstrip(b"=").decode()


def stored(app: Any) -> list[OAuthRequestRow]:
    """The pushed requests of this test's service."""
    with Session(app.state.engine) as s:
        return list(s.exec(select(OAuthRequestRow)
                           .where(OAuthRequestRow.client_id == app.service_id)).all())


# -- discovery and pushed authorization requests ------------------------------------------------


def test_a_pushed_request_is_stored_as_the_sdk_built_it(app: Any, terms: PersonalData) -> None:
    client = app.client()
    pending = client.start_authorization(terms, redirect_uri=REDIRECT)
    meta = app.http.get("/.well-known/oauth-authorization-server").json()
    assert pending.url.startswith(meta["authorization_endpoint"] + "?")
    assert pending.issuer == meta["issuer"] == ORIGIN
    [row] = stored(app)
    assert pending.request_uri.endswith(row.id)
    assert (row.client_id, row.redirect_uri, row.state) == (app.service_id, REDIRECT,
                                                            pending.state)
    assert row.code_challenge == s256(pending.code_verifier)
    assert row.authorization_details[0]["categories"] == ["address.home"]
    assert row.authorization_details[0]["access"]["max_reads"] == 3
    # The link works: the authorize endpoint takes the request (and sends the visitor on).
    r = app.http.get(pending.url, follow_redirects=False)
    assert r.status_code == 303 and "/wallet/authorize/" in r.headers["location"]


def test_many_requests_each_with_a_fresh_assertion_are_all_accepted(
        app: Any, terms: PersonalData) -> None:
    client = app.client()
    urls = {client.start_authorization(terms, redirect_uri=REDIRECT).url for _ in range(4)}
    assert len(urls) == 4  # a reused jti would have been refused as a replay


@pytest.mark.parametrize(("change", "error", "status"), [
    ({"redirect_uri": "https://evil.example/cb"}, "invalid_request", 400),
    ({"terms": {"categories": ["health.conditions"]}}, "invalid_authorization_details", 400),
    ({"terms": {"purpose": "marketing"}}, "invalid_authorization_details", 400),
    ({"terms": {"duration": "P365D"}}, "invalid_authorization_details", 400),
    ({"client_id": "svc_nobody"}, "invalid_client", 401),
    ({"key": "another"}, "invalid_client", 401),
], ids=["redirect", "category", "purpose", "too-long", "unknown-client", "wrong-key"])
def test_refusals_are_protocol_errors_with_the_rfc6749_code(
        app: Any, kit: Any, change: dict[str, Any], error: str, status: int) -> None:
    client_args: dict[str, Any] = {}
    if "client_id" in change:
        client_args["client_id"] = change["client_id"]
    if "key" in change:
        client_args["key"] = ServiceKey.generate()
    client = app.client(**client_args)
    terms = kit.terms(**change.get("terms", {}))
    with pytest.raises(ProtocolError) as caught:
        client.start_authorization(terms, redirect_uri=change.get("redirect_uri", REDIRECT))
    assert (caught.value.code, caught.value.status) == (error, status)
    assert stored(app) == []


def test_an_issuer_asks_to_write_and_a_reader_is_refused(app: Any, kit: Any) -> None:
    write = kit.terms(categories=["benefits.attendance_allowance"], derived=[],
                      access=Access.one_time(), actions=["write"])
    with pytest.raises(ProtocolError) as caught:  # the app's service issues nothing
        app.client().start_authorization(write, redirect_uri=REDIRECT)
    assert caught.value.code == "invalid_authorization_details"
    assert "not registered to issue" in str(caught.value)
    key = ServiceKey.generate()
    issuer = registry.register_service(app.ctx, registry.Registration(
        name="Benefits agency", description="Awards Attendance Allowance",
        purposes=["eligibility_assessment"], categories=[], jwk=key.public_jwk(),
        redirect_uris=[REDIRECT], privacy_notice_url="https://benefits.example.gov/privacy",
        issues=["benefits.attendance_allowance"]))
    client = app.client(client_id=issuer, key=key)
    pending = client.start_authorization(write, redirect_uri=REDIRECT)
    with Session(app.state.engine) as s:
        [row] = s.exec(select(OAuthRequestRow).where(OAuthRequestRow.client_id == issuer)).all()
    assert pending.request_uri.endswith(row.id)
    assert row.authorization_details[0]["actions"] == ["write"]


# -- reading -----------------------------------------------------------------------------------


def test_a_read_returns_what_the_terms_allow(app: Any) -> None:
    citizen = app.citizen()
    grant = app.grant(citizen)
    release = app.client().read(grant)
    assert release.grant_id == citizen.grant_id and release.sub == app.sub(citizen)
    assert release.data == {"address.home": ADDRESS}
    assert release.derived == {"age_over_65": True}
    again = app.client().read(grant)
    assert again.ledger_index > release.ledger_index


def test_pause_resume_and_revoke_are_typed_errors_on_the_next_read(app: Any) -> None:
    citizen = app.citizen()
    client, grant = app.client(), app.grant(citizen)
    client.read(grant)
    app.act(citizen, GrantAction.PAUSE)
    with pytest.raises(GrantPaused) as paused:
        client.read(grant)
    assert (paused.value.code, paused.value.status) == ("paused", 403)
    app.act(citizen, GrantAction.RESUME)
    client.read(grant)
    app.act(citizen, GrantAction.REVOKE)
    with pytest.raises(GrantRevoked):
        client.read(grant)
    assert client.grant_status(grant).state == "revoked"


def test_a_one_time_grant_is_exhausted_after_one_read(app: Any) -> None:
    citizen = app.citizen(access=VaultAccess("one_time"))
    client, grant = app.client(), app.grant(citizen)
    client.read(grant)
    with pytest.raises(GrantExhausted):
        client.read(grant)
    status = client.grant_status(grant)
    assert (status.state, status.reads) == ("exhausted", 1)


def test_min_interval_and_not_before_are_typed_errors(app: Any) -> None:
    spaced = app.citizen(access=VaultAccess("periodic", max_reads=5,
                                            min_interval="PT1H"))
    client = app.client()
    grant = app.grant(spaced)
    client.read(grant)
    with pytest.raises(TooSoon):
        client.read(grant)
    later = app.citizen(not_before=datetime.now(UTC) + timedelta(days=2),
                        duration=None, expires_at=datetime.now(UTC) + timedelta(days=9))
    with pytest.raises(GrantNotYetValid):
        client.read(app.grant(later))


def test_a_suspended_service_is_told_so(app: Any) -> None:
    citizen = app.citizen()
    client, grant = app.client(), app.grant(citizen)
    registry.suspend_service(app.ctx, app.service_id)
    with pytest.raises(ServiceSuspended):
        client.read(grant)
    with pytest.raises(ServiceSuspended):
        client.grant_status(grant)


def test_a_rejected_token_without_a_refresh_token_is_a_protocol_error(app: Any) -> None:
    citizen = app.citizen()
    stale = app.mint(citizen, now=datetime.now(UTC) - timedelta(minutes=10))
    client = app.client()
    for token in (stale, app.mint(citizen)[:-6] + "AAAAAA"):
        with pytest.raises(ProtocolError) as caught:
            client.read(app.grant(citizen, token=token))
        assert (caught.value.code, caught.value.status) == ("invalid_token", 401)


def test_a_401_from_the_resource_server_refreshes_and_retries_once(app: Any) -> None:
    """The real /v1/data answers 401 invalid_token to an expired token; the SDK refreshes
    (the token endpoint here is a stand-in that mints a real token) and reads."""
    citizen = app.citizen()
    refreshes: list[dict[str, str]] = []
    real = app.transport

    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            refreshes.append(dict(httpx.QueryParams(request.content.decode())))
            return httpx.Response(200, json={
                "access_token": app.mint(citizen), "token_type": "Bearer", "expires_in": 300,
                "refresh_token": "rt-2", "grant_id": citizen.grant_id, "sub": app.sub(citizen)})
        return real.handle_request(request)  # type: ignore[no-any-return]

    stale = app.mint(citizen, now=datetime.now(UTC) - timedelta(minutes=10))
    grant = app.grant(citizen, token=stale, refresh_token="rt-1", expires_in=300)
    client = app.client(transport=httpx.MockTransport(route))
    assert client.read(grant).data == {"address.home": ADDRESS}
    assert [r["refresh_token"] for r in refreshes] == ["rt-1"]
    assert grant.refresh_token == "rt-2" and grant.access_token != stale


def test_the_rate_limit_is_rate_limited_with_retry_after(app: Any) -> None:
    setattr(app.app.state, LIMITER_ATTRIBUTE, ClientRateLimiter(rate=0.5, burst=1))
    citizen = app.citizen()
    client, grant = app.client(), app.grant(citizen)
    client.read(grant)
    with pytest.raises(RateLimited) as caught:
        client.read(grant)
    assert caught.value.retry_after is not None and 1 <= caught.value.retry_after <= 2


def test_grant_status_shows_the_grant(app: Any) -> None:
    citizen = app.citizen()
    client, grant = app.client(), app.grant(citizen)
    client.read(grant)
    status = client.grant_status(grant)
    assert (status.grant_id, status.service_id, status.state, status.reads) == (
        citizen.grant_id, app.service_id, "approved", 1)
    assert status.terms == citizen.grant.terms.to_json()
    assert base64.b64decode(status.terms_hash) == citizen.grant.terms_hash
    assert status.requested_at == citizen.grant.requested_at


# -- the async client ------------------------------------------------------------------------------


def test_the_async_client_over_asgi_transport(app: Any, terms: PersonalData) -> None:
    citizen = app.citizen()
    grant = app.grant(citizen)

    async def main() -> tuple[Any, Any, Any]:
        async with AsyncVaultClient(ORIGIN, client_id=app.service_id, key=app.key,
                                    transport=httpx.ASGITransport(app=app.app)) as client:
            pending = await client.start_authorization(terms, redirect_uri=REDIRECT)
            releases = await asyncio.gather(client.read(grant), client.read(grant))
            app.act(citizen, GrantAction.PAUSE)
            try:
                await client.read(grant)
            except GrantPaused as exc:
                return pending, releases, exc
            raise AssertionError("a paused grant was read")

    pending, releases, refusal = asyncio.run(main())
    assert pending.url.startswith(f"{ORIGIN}/oauth/authorize?")
    assert {r.data["address.home"]["town"] for r in releases} == {"London"}
    assert len({r.ledger_index for r in releases}) == 2
    assert refusal.code == "paused"


def test_the_blocking_client_is_a_context_manager(app: Any) -> None:
    with VaultClient(ORIGIN, client_id=app.service_id, key=app.key,
                     transport=app.transport) as client:
        assert client.grant_status(app.grant(app.citizen())).state == "approved"
    with pytest.raises(RuntimeError):
        client.read(app.grant(app.citizen()))  # closed: httpx refuses to send
