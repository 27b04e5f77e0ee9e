"""Using a grant, against a scripted server: reads with the bearer token, refreshing (and
rotating) before expiry or after a 401 invalid_token (exactly once), the 403 reasons and
rate limits as typed errors, one refresh when reads race, grant status, introspection
and revocation. Each test runs with the sync and the async client."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from clients.service import (
    AsyncVaultClient,
    Grant,
    GrantDenied,
    GrantExhausted,
    GrantExpired,
    GrantNotYetValid,
    GrantPaused,
    GrantRevoked,
    ProtocolError,
    RateLimited,
    ServiceSuspended,
    TooSoon,
    VaultClient,
    VaultClientError,
    VaultUnavailable,
)

TOKEN = "/oauth/token"
DATA = "/v1/data"
BAD_TOKEN = {"www-authenticate": 'Bearer realm="vault", error="invalid_token", '
                                 'error_description="the access token has expired"'}


def bearer(request: httpx.Request) -> str:
    scheme, _, token = request.headers["authorization"].partition(" ")
    assert scheme == "Bearer"
    return token


# -- reading --------------------------------------------------------------------------------


def test_a_read_sends_the_access_token_and_returns_the_release(
        sdk: Any, fake: Any, kit: Any) -> None:
    fake.answer(DATA, kit.release_answer())
    release = sdk.read(kit.grant(expires_in=31))  # 31 s left: no refresh yet
    [request] = fake.sent(DATA)
    assert request.method == "GET" and bearer(request) == "at-1"
    assert str(request.url) == f"{fake.issuer}/v1/data"
    assert (release.grant_id, release.sub, release.ledger_index) == ("gr_1", "psub_1", 7)
    assert release.data == {"address.home": {"town": "London"}}
    assert release.derived == {"age_over_65": True}
    assert fake.sent(TOKEN) == []


def test_a_token_within_30_seconds_of_expiry_is_refreshed_first_and_rotated(
        sdk: Any, fake: Any, fake_time: Any, kit: Any) -> None:
    grant = kit.grant(expires_in=30)
    fake.answer(TOKEN, kit.token_answer("at-2", "rt-2", expires_in=120))
    fake.answer(DATA, kit.release_answer())
    sdk.read(grant)
    [form] = fake.forms(TOKEN)
    fake.assertion_claims(form, now=fake_time.t)
    assert {k: v for k, v in form.items() if not k.startswith("client_")} == {
        "grant_type": "refresh_token", "refresh_token": "rt-1"}
    assert bearer(fake.sent(DATA)[0]) == "at-2"
    # The app's own Grant object now holds the rotated tokens: persist grant.to_json().
    assert (grant.access_token, grant.refresh_token) == ("at-2", "rt-2")
    assert grant.expires_at == datetime.fromtimestamp(fake_time.t + 120, UTC)
    assert Grant.from_json(grant.to_json()) == grant
    assert sdk.refreshed == [grant]  # on_refresh was told


def test_a_refresh_that_does_not_rotate_keeps_the_refresh_token(
        sdk: Any, fake: Any, kit: Any) -> None:
    grant = kit.grant(expires_in=0)
    fake.answer(TOKEN, kit.token_answer("at-2", None))
    fake.answer(DATA, kit.release_answer())
    sdk.read(grant)
    assert (grant.access_token, grant.refresh_token) == ("at-2", "rt-1")


def test_a_refresh_for_another_grant_is_refused_and_changes_nothing(
        sdk: Any, fake: Any, kit: Any) -> None:
    grant = kit.grant(expires_in=0)
    fake.answer(TOKEN, kit.token_answer("at-2", "rt-2", grant_id="gr_other"))
    with pytest.raises(ProtocolError, match="another grant"):
        sdk.read(grant)
    assert (grant.access_token, grant.refresh_token) == ("at-1", "rt-1")
    assert sdk.refreshed == []


def test_a_401_invalid_token_refreshes_and_retries_exactly_once(
        sdk: Any, fake: Any, kit: Any) -> None:
    grant = kit.grant()
    fake.answer(DATA, kit.problem(401, "invalid-token", headers=BAD_TOKEN),
                kit.release_answer())
    fake.answer(TOKEN, kit.token_answer("at-2", "rt-2"))
    assert sdk.read(grant).ledger_index == 7
    assert [bearer(r) for r in fake.sent(DATA)] == ["at-1", "at-2"]
    assert len(fake.sent(TOKEN)) == 1 and grant.refresh_token == "rt-2"


def test_a_401_after_another_caller_refreshed_retries_with_their_token(
        sdk: Any, fake: Any, kit: Any) -> None:
    grant = kit.grant()

    def refreshed_meanwhile(request: httpx.Request) -> httpx.Response:
        # Another reader rotated the grant's tokens while this request was in flight.
        grant.access_token, grant.refresh_token = "at-2", "rt-2"
        return kit.problem(401, "invalid-token", headers=BAD_TOKEN)

    fake.answer(DATA, refreshed_meanwhile, kit.release_answer())
    sdk.read(grant)
    assert [bearer(r) for r in fake.sent(DATA)] == ["at-1", "at-2"]
    assert fake.sent(TOKEN) == []  # rt-2 is not spent a second time


def test_a_second_401_is_not_retried_again(sdk: Any, fake: Any, kit: Any) -> None:
    fake.answer(DATA, kit.problem(401, "invalid-token", headers=BAD_TOKEN),
                kit.problem(401, "invalid-token", headers=BAD_TOKEN))
    fake.answer(TOKEN, kit.token_answer("at-2", "rt-2"))
    with pytest.raises(ProtocolError) as caught:
        sdk.read(kit.grant())
    assert (caught.value.code, caught.value.status) == ("invalid_token", 401)
    assert len(fake.sent(DATA)) == 2 and len(fake.sent(TOKEN)) == 1


def test_a_401_without_a_refresh_token_or_without_invalid_token_is_not_retried(
        sdk: Any, fake: Any, kit: Any) -> None:
    fake.answer(DATA, kit.problem(401, "invalid-token", headers=BAD_TOKEN),
                kit.problem(401, "unauthorized", headers={"www-authenticate": 'Bearer '
                                                                          'realm="vault"'}))
    with pytest.raises(ProtocolError) as no_refresh:
        sdk.read(kit.grant(refresh=None))
    assert no_refresh.value.code == "invalid_token"
    with pytest.raises(ProtocolError) as no_error:
        sdk.read(kit.grant())
    assert no_error.value.code == "unauthorized"
    assert len(fake.sent(DATA)) == 2 and fake.sent(TOKEN) == []


@pytest.mark.parametrize(("grant_state", "error_class"), [
    ("revoked", GrantRevoked), ("expired", GrantExpired), ("denied", GrantDenied)])
def test_a_refresh_refused_for_the_grants_state_is_its_typed_error(
        sdk: Any, fake: Any, kit: Any, grant_state: str,
        error_class: type[VaultClientError]) -> None:
    grant = kit.grant(expires_in=0)
    fake.answer(TOKEN, kit.oauth_error("invalid_grant", grant_state=grant_state))
    with pytest.raises(error_class):
        sdk.read(grant)
    assert fake.sent(DATA) == [] and grant.refresh_token == "rt-1"


def test_a_refresh_refused_without_a_grant_state_is_a_protocol_error(
        sdk: Any, fake: Any, kit: Any) -> None:
    fake.answer(TOKEN, kit.oauth_error("invalid_grant"))
    with pytest.raises(ProtocolError) as caught:
        sdk.read(kit.grant(expires_in=0))
    assert caught.value.code == "invalid_grant"


@pytest.mark.parametrize(("reason", "error_class"), [
    ("revoked", GrantRevoked), ("paused", GrantPaused), ("expired", GrantExpired),
    ("exhausted", GrantExhausted), ("not_yet_valid", GrantNotYetValid), ("too_soon", TooSoon),
    ("service_suspended", ServiceSuspended), ("denied", GrantDenied),
    ("cancelled", GrantDenied), ("lapsed", GrantDenied), ("not_approved", GrantDenied)])
def test_each_403_reason_is_its_typed_error(sdk: Any, fake: Any, kit: Any, reason: str,
                                            error_class: type[VaultClientError]) -> None:
    fake.answer(DATA, kit.problem(403, f"access-denied:{reason}", reason=reason))
    with pytest.raises(error_class) as caught:
        sdk.read(kit.grant())
    assert type(caught.value) is error_class
    assert (caught.value.code, caught.value.status) == (reason, 403)
    assert f"refused: access-denied:{reason}" in str(caught.value)
    assert fake.sent(TOKEN) == []  # a refusal is not a token problem


def test_an_unknown_403_reason_is_a_protocol_error_naming_it(
        sdk: Any, fake: Any, kit: Any) -> None:
    fake.answer(DATA, kit.problem(403, "access-denied:out_of_scope", reason="out_of_scope"))
    with pytest.raises(ProtocolError) as caught:
        sdk.read(kit.grant())
    assert caught.value.code == "out_of_scope"


def test_too_soon_carries_retry_after_when_given(sdk: Any, fake: Any, kit: Any) -> None:
    fake.answer(DATA, kit.problem(403, "access-denied:too_soon", {"retry-after": "90"},
                                  reason="too_soon"))
    with pytest.raises(TooSoon) as caught:
        sdk.read(kit.grant())
    assert caught.value.retry_after == 90


def test_429_and_503_carry_retry_after(sdk: Any, fake: Any, fake_time: Any, kit: Any
                                       ) -> None:
    later = datetime.fromtimestamp(fake_time.t + 42, UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
    fake.answer(DATA, kit.problem(429, "rate-limited", {"retry-after": "7"}),
                kit.problem(429, "rate-limited", {"retry-after": later}),
                kit.problem(429, "rate-limited"),
                kit.problem(503, "overloaded", {"retry-after": "1"}))
    retries = []
    for _ in range(3):
        with pytest.raises(RateLimited) as limited:
            sdk.read(kit.grant())
        retries.append(limited.value.retry_after)
    assert retries == [7, pytest.approx(42), None]
    with pytest.raises(VaultUnavailable) as busy:
        sdk.read(kit.grant())
    assert busy.value.retry_after == 1 and busy.value.status == 503


@pytest.mark.parametrize(("status", "body"), [
    (200, {"grant_id": "gr_1", "sub": "psub_1", "data": {}, "derived": {}}),
    (200, {"grant_id": "gr_1", "sub": "psub_1", "data": [], "derived": {},
           "ledger_index": 1}),
    (200, {"grant_id": "gr_other", "sub": "psub_1", "data": {}, "derived": {},
           "ledger_index": 1}),
    (200, "ok"),
    (500, {"type": "about:blank"}),
], ids=["no-index", "data-not-object", "another-grant", "not-object", "server-error"])
def test_a_read_answer_off_the_contract_is_a_protocol_error(
        sdk: Any, fake: Any, kit: Any, status: int, body: Any) -> None:
    fake.answer(DATA, httpx.Response(status, json=body))
    with pytest.raises(ProtocolError):
        sdk.read(kit.grant())


def test_an_unreachable_vault_is_vault_unavailable(sdk: Any, fake: Any, kit: Any) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    fake.answer(DATA, down)
    with pytest.raises(VaultUnavailable) as caught:
        sdk.read(kit.grant())
    assert caught.value.code == "unreachable"
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert "https://vault.example.gov" in str(caught.value)


# -- racing refreshes -------------------------------------------------------------------------


def test_threads_reading_one_grant_refresh_it_once(fake: Any, fake_time: Any, kit: Any
                                                   ) -> None:
    grant = kit.grant(expires_in=10)
    entered = threading.Event()

    def slow_refresh(request: httpx.Request) -> httpx.Response:
        entered.set()
        time.sleep(0.2)  # the other reader arrives while this refresh is in flight
        return kit.token_answer("at-2", "rt-2")

    fake.answer(TOKEN, slow_refresh)
    fake.answer(DATA, kit.release_answer(), kit.release_answer())
    with VaultClient(fake.issuer, client_id=fake.client_id, key=fake.key,
                     transport=fake.transport, clock=fake_time.clock) as client:
        errors: list[BaseException] = []

        def read() -> None:
            try:
                client.read(grant)
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        first = threading.Thread(target=read)
        first.start()
        assert entered.wait(5)
        second = threading.Thread(target=read)
        second.start()
        first.join(10)
        second.join(10)
    assert errors == []
    assert [f["refresh_token"] for f in fake.forms(TOKEN)] == ["rt-1"]  # never reused
    assert [bearer(r) for r in fake.sent(DATA)] == ["at-2", "at-2"]


def test_tasks_reading_one_grant_refresh_it_once(fake: Any, fake_time: Any, kit: Any) -> None:
    grant = kit.grant(expires_in=10)

    async def slow_refresh(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.05)  # the other task runs meanwhile
        return kit.token_answer("at-2", "rt-2")

    async def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == TOKEN:
            fake.requests.append(request)
            return await slow_refresh(request)
        return fake.handle(request)  # type: ignore[no-any-return]

    fake.answer(DATA, kit.release_answer(), kit.release_answer())

    async def main() -> None:
        async with AsyncVaultClient(fake.issuer, client_id=fake.client_id, key=fake.key,
                                    transport=httpx.MockTransport(handle),
                                    clock=fake_time.clock) as client:
            await asyncio.gather(client.read(grant), client.read(grant))

    asyncio.run(main())
    assert [f["refresh_token"] for f in fake.forms(TOKEN)] == ["rt-1"]
    assert [bearer(r) for r in fake.sent(DATA)] == ["at-2", "at-2"]


# -- grant status, introspection, revocation -----------------------------------------------------


def test_grant_status_reads_the_grants_own_url(sdk: Any, fake: Any, kit: Any) -> None:
    status = {"grant_id": "gr_1", "service_id": "svc_1", "state": "paused",
              "terms": {"purpose": "eligibility_assessment"}, "terms_hash": "aGFzaA==",
              "reads": 2, "requested_at": "2026-11-22T09:00:00Z",
              "updated_at": "2026-11-22T10:00:00+00:00"}
    fake.answer("/v1/grants/gr_1", httpx.Response(200, json=status))
    got = sdk.grant_status(kit.grant())
    assert bearer(fake.sent("/v1/grants/gr_1")[0]) == "at-1"
    assert (got.grant_id, got.service_id, got.state, got.reads) == ("gr_1", "svc_1",
                                                                     "paused", 2)
    assert got.terms == {"purpose": "eligibility_assessment"}
    assert got.requested_at == datetime(2026, 11, 22, 9, tzinfo=UTC)
    assert got.updated_at == datetime(2026, 11, 22, 10, tzinfo=UTC)
    fake.answer("/v1/grants/gr_1", httpx.Response(200, json={**status, "reads": -1}))
    with pytest.raises(ProtocolError):
        sdk.grant_status(kit.grant())


def test_grant_status_of_an_unknown_grant_is_a_protocol_error(
        sdk: Any, fake: Any, kit: Any) -> None:
    fake.answer("/v1/grants/gr_1", kit.problem(404, "not-found"))
    with pytest.raises(ProtocolError) as caught:
        sdk.grant_status(kit.grant())
    assert (caught.value.code, caught.value.status) == ("not-found", 404)


def test_introspection_posts_the_token_and_reads_the_answer(
        sdk: Any, fake: Any, fake_time: Any, kit: Any) -> None:
    fake.answer("/oauth/introspect", httpx.Response(200, json={
        "active": True, "client_id": fake.client_id, "sub": "psub_1", "grant_id": "gr_1",
        "grant_state": "approved", "token_type": "Bearer", "exp": 1_800_000_300,
        "iat": 1_800_000_000, "jti": "j1"}), httpx.Response(200, json={"active": False}),
        httpx.Response(200, json={"active": "yes"}))
    info = sdk.introspect("at-1", token_type_hint="access_token")
    [form] = fake.forms("/oauth/introspect")
    fake.assertion_claims(form, now=fake_time.t)
    assert (form["token"], form["token_type_hint"]) == ("at-1", "access_token")
    assert info.active and info.grant_id == "gr_1" and info.grant_state == "approved"
    assert info.expires_at == datetime.fromtimestamp(1_800_000_300, UTC)
    assert info.claims["jti"] == "j1"
    dead = sdk.introspect("at-0")
    assert not dead.active and dead.grant_id is None
    assert "token_type_hint" not in fake.forms("/oauth/introspect")[1]
    with pytest.raises(ProtocolError):
        sdk.introspect("at-1")


def test_revocation_sends_the_refresh_token_else_the_access_token(
        sdk: Any, fake: Any, fake_time: Any, kit: Any) -> None:
    fake.answer("/oauth/revoke", httpx.Response(200), httpx.Response(200),
                kit.oauth_error("invalid_client", 401))
    assert sdk.revoke_tokens(kit.grant()) is None
    sdk.revoke_tokens(kit.grant(refresh=None))
    forms = fake.forms("/oauth/revoke")
    fake.assertion_claims(forms[0], now=fake_time.t)
    assert [(f["token"], f["token_type_hint"]) for f in forms] == [
        ("rt-1", "refresh_token"), ("at-1", "access_token")]
    with pytest.raises(ProtocolError) as caught:
        sdk.revoke_tokens(kit.grant())
    assert caught.value.code == "invalid_client"


def test_an_endpoint_the_vault_does_not_advertise_is_a_protocol_error(
        sdk: Any, fake: Any, kit: Any) -> None:
    del fake.metadata["revocation_endpoint"], fake.metadata["introspection_endpoint"]
    with pytest.raises(ProtocolError, match="revocation endpoint"):
        sdk.revoke_tokens(kit.grant())
    with pytest.raises(ProtocolError, match="introspection endpoint"):
        sdk.introspect("at-1")


def test_grants_round_trip_through_json_and_refuse_nonsense() -> None:
    grant = Grant(grant_id="gr_1", sub="psub_1", access_token="a", refresh_token=None,
                  expires_at=datetime(2026, 1, 1, tzinfo=UTC))
    assert Grant.from_json(grant.to_json()) == grant
    for broken in ({**grant.to_json(), "access_token": None},
                   {**grant.to_json(), "expires_at": "2026-01-01T00:00:00"},
                   {**grant.to_json(), "authorization_details": {}}):
        with pytest.raises(ValueError):
            Grant.from_json(broken)
