"""The SDK end to end against the real vault and wallet (no sockets): a citizen signed in
to the wallet answers the SDK's authorization request in the browser (the authorize
endpoint, the consent screen, a passkey) and the service reads; its tokens refresh and
rotate, introspect, and revoke; then the service asks the same citizen again by their
`sub` over CIBA and polls until they answer in the wallet.

Time: the SDK runs on a fake clock whose sleeps also move the server's record of the
last poll back by as long, so the vault sees the SDK keeping to the interval without
the test waiting for it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import Session, col, select
from support.oauthclient import decline
from support.webwallet import ORIGIN, Browser, WebWallet, open_wallet

from clients.service import (
    AsyncVaultClient,
    Grant,
    GrantDenied,
    GrantExpired,
    GrantRevoked,
    PendingAuthorization,
    PersonalData,
    ProtocolError,
    ServiceKey,
    VaultClient,
)
from vault.domain.grants import GrantState
from vault.oauth.backchannel import binding_message
from vault.services import grants, registry
from vault.storage.tables import GrantRow, OAuthBackchannelRow

REDIRECT = "https://badges.example.gov/cb"
ADDRESS_TOWN = "London"


class Transport(httpx.BaseTransport):
    """The SDK's requests into the app through a started TestClient (public API only)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        r = self.client.request(request.method, str(request.url), headers=request.headers,
                                content=request.read(), follow_redirects=False)
        return httpx.Response(r.status_code, headers=r.headers, content=r.content)


@dataclass
class ServerTime:
    """The SDK's clock; each sleep also ages the vault's CIBA poll records by as long."""

    web: WebWallet
    service_id: str
    t: float
    sleeps: list[float]
    before_poll: Callable[[int], None] | None = None
    age_polls: bool = True

    def clock(self) -> float:
        return self.t

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.t, UTC)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds
        if self.age_polls:
            with Session(self.web.ctx.engine) as s, s.begin():
                for row in s.exec(select(OAuthBackchannelRow).where(
                        OAuthBackchannelRow.client_id == self.service_id,
                        col(OAuthBackchannelRow.polled_at).is_not(None))):
                    assert row.polled_at is not None
                    row.polled_at -= timedelta(seconds=seconds)
                    s.add(row)
        if self.before_poll is not None:
            self.before_poll(len(self.sleeps))

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


@dataclass
class Live:
    web: WebWallet
    citizen: Browser
    key: ServiceKey
    service_id: str
    time: ServerTime
    client: VaultClient
    refreshed: list[str | None]

    def answer(self, pending: PendingAuthorization, *, approve: bool = True) -> str:
        """The citizen's browser, from the service's link to the callback URL."""
        consent = self.citizen.get(pending.url)  # follows: authorize -> wallet -> consent
        assert consent.status_code == 200, consent.text[:300]
        grant_path = consent.url.path
        assert grant_path.startswith("/wallet/grants/gr_"), consent.url
        if approve:
            r = self.citizen.passkey_post(f"{grant_path}/approve")
            assert r.status_code == 200, r.text
            back = r.json()["redirect"]
        else:
            back = decline(self.citizen, grant_path.rsplit("/", 1)[1])
        answer = self.citizen.get(back, follow_redirects=False)
        assert answer.status_code == 303, answer.text[:300]
        location: str = answer.headers["location"]
        assert location.startswith(REDIRECT + "?")
        return location

    def authorized(self, terms: PersonalData) -> Grant:
        pending = self.client.start_authorization(terms, redirect_uri=REDIRECT)
        return self.client.finish_authorization(self.answer(pending), pending)

    def requested(self) -> GrantRow:
        """The grant the citizen has not answered yet (a CIBA request's)."""
        with Session(self.web.ctx.engine) as s:
            [row] = s.exec(select(GrantRow).where(
                GrantRow.citizen_id == self.citizen.citizen_id,
                GrantRow.state == GrantState.REQUESTED.value)).all()
            return row

    def approve_in_wallet(self) -> None:
        row = self.requested()
        assert self.citizen.citizen_id is not None
        grants.approve_grant(self.web.ctx, row.id, citizen_id=self.citizen.citizen_id,
                             proof=self.citizen.device.proof(challenge=row.terms_hash))

    def deny_in_wallet(self) -> None:
        assert self.citizen.citizen_id is not None
        grants.deny_grant(self.web.ctx, self.requested().id,
                          citizen_id=self.citizen.citizen_id)


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebWallet]:
    """One app for the module (starting one takes seconds); each test has its own
    service and citizen, so they cannot see each other's grants or requests."""
    with open_wallet(tmp_path_factory.mktemp("live")) as w:
        yield w


@pytest.fixture
def live(web: WebWallet) -> Iterator[Live]:
    key = ServiceKey.generate()
    service_id = registry.register_service(web.ctx, registry.Registration(
        name="Blue Badge team", description="Decides Blue Badge applications",
        purposes=["eligibility_assessment"], categories=["identity.name", "address.home"],
        derived=["age_over_65"], jwk=key.public_jwk(), redirect_uris=[REDIRECT],
        privacy_notice_url="https://badges.example.gov/privacy", max_days=90))
    # 20 s behind: assertions stay within the vault's clock leeway however far the
    # fake sleeps of one test move the SDK's clock.
    clock = ServerTime(web, service_id, time.time() - 20, [])
    refreshed: list[str | None] = []
    client = VaultClient(ORIGIN, client_id=service_id, key=key,
                         transport=Transport(web.browser().client),
                         clock=clock.clock, sleep=clock.sleep,
                         on_refresh=lambda g: refreshed.append(g.refresh_token))
    with client:
        yield Live(web, web.sign_up(), key, service_id, clock, client, refreshed)


# -- authorization code ------------------------------------------------------------------------


def test_authorize_read_refresh_introspect_and_revoke(live: Live, terms: PersonalData) -> None:
    grant = live.authorized(terms)
    assert grant.grant_id.startswith("gr_") and grant.sub.startswith("psub_")
    assert grant.authorization_details[0]["type"] == "personal_data"
    release = live.client.read(grant)
    assert release.sub == grant.sub and release.data["address.home"]["town"] == ADDRESS_TOWN
    assert release.derived == {"age_over_65": True}

    # Near expiry: the next read refreshes first, and the refresh token rotates.
    first_refresh, first_access = grant.refresh_token, grant.access_token
    grant.expires_at = live.time.now() + timedelta(seconds=10)
    assert live.client.read(grant).ledger_index > release.ledger_index
    assert grant.refresh_token not in (None, first_refresh)
    assert grant.access_token != first_access and live.refreshed == [grant.refresh_token]
    assert Grant.from_json(grant.to_json()) == grant

    info = live.client.introspect(grant.access_token)
    assert info.active and info.grant_id == grant.grant_id and info.sub == grant.sub
    assert info.grant_state == "approved" and info.client_id == live.service_id
    assert live.client.grant_status(grant).reads == 2

    live.client.revoke_tokens(grant)
    assert not live.client.introspect(grant.access_token).active
    with pytest.raises(ProtocolError) as caught:
        live.client.read(grant)  # 401, then the refresh is refused: the family is revoked
    assert caught.value.code == "invalid_grant"


def test_declining_in_the_wallet_is_grant_denied(live: Live, terms: PersonalData) -> None:
    pending = live.client.start_authorization(terms, redirect_uri=REDIRECT)
    callback = live.answer(pending, approve=False)
    with pytest.raises(GrantDenied) as caught:
        live.client.finish_authorization(callback, pending)
    assert caught.value.code == "access_denied"


def test_a_callback_replayed_after_use_is_refused(live: Live, terms: PersonalData) -> None:
    pending = live.client.start_authorization(terms, redirect_uri=REDIRECT)
    callback = live.answer(pending)
    grant = live.client.finish_authorization(callback, pending)
    with pytest.raises(ProtocolError) as caught:
        live.client.finish_authorization(callback, pending)  # the code is single-use
    assert caught.value.code == "invalid_grant"
    with pytest.raises(ProtocolError):
        live.client.read(grant)  # and its replay revoked what it bought


def test_a_citizen_revoking_stops_reads_and_refreshes(live: Live, terms: PersonalData
                                                      ) -> None:
    grant = live.authorized(terms)
    r = live.citizen.passkey_post(f"/wallet/grants/{grant.grant_id}/revoke")
    assert r.status_code == 200, r.text
    with pytest.raises(GrantRevoked):
        live.client.read(grant)
    grant.expires_at = live.time.now()  # now the refresh is refused for the state too
    with pytest.raises(GrantRevoked):
        live.client.read(grant)


# -- CIBA -----------------------------------------------------------------------------------------


def test_ciba_the_citizen_approves_while_the_service_waits(live: Live, terms: PersonalData
                                                           ) -> None:
    first = live.authorized(terms)
    bc = live.client.request_by_subject(first.sub, terms, binding_message="Blue Badge renewal")
    row = live.requested()
    with Session(live.web.ctx.engine) as s:
        assert binding_message(s, row.id) == "Blue Badge renewal"
    live.time.before_poll = lambda n: live.approve_in_wallet() if n == 2 else None
    grant = live.client.wait(bc, timeout=60)
    assert live.time.sleeps == pytest.approx([5, 5])  # pending at 5 s, approved at 10 s
    assert grant.grant_id == row.id != first.grant_id and grant.sub == first.sub
    assert live.client.read(grant).grant_id == row.id


def test_ciba_polling_too_fast_slows_down_and_a_denial_ends_the_wait(
        live: Live, terms: PersonalData) -> None:
    first = live.authorized(terms)
    bc = live.client.request_by_subject(first.sub, terms)
    # The vault's clock really passes only milliseconds between the first two polls.
    live.time.age_polls = False

    def citizen(n: int) -> None:
        if n == 2:
            live.time.age_polls = True  # from now on the SDK keeps the slower pace
        if n == 3:
            live.deny_in_wallet()

    live.time.before_poll = citizen
    with pytest.raises(GrantDenied):
        live.client.wait(bc, timeout=60)
    assert live.time.sleeps == pytest.approx([5, 5, 10])  # slow_down after the 2nd poll


def test_ciba_for_nobody_the_service_knows_is_refused(live: Live, terms: PersonalData
                                                      ) -> None:
    with pytest.raises(ProtocolError) as caught:
        live.client.request_by_subject("psub_nobody", terms)
    assert caught.value.code == "unknown_user_id"


def test_ciba_unanswered_until_it_expires(live: Live, terms: PersonalData) -> None:
    first = live.authorized(terms)
    bc = live.client.request_by_subject(first.sub, terms, requested_expiry=60)
    assert (bc.expires_at - bc.issued_at).total_seconds() == 60

    def expire(n: int) -> None:
        with Session(live.web.ctx.engine) as s, s.begin():
            s.execute(update(OAuthBackchannelRow)
                      .where(col(OAuthBackchannelRow.client_id) == live.service_id)
                      .values(expires_at=live.web.ctx.clock() - timedelta(seconds=1)))

    live.time.before_poll = expire
    with pytest.raises(GrantExpired) as caught:
        live.client.wait(bc, timeout=30)
    assert caught.value.code == "expired_token"


# -- the async client -----------------------------------------------------------------------------


def test_the_async_client_end_to_end(live: Live, terms: PersonalData) -> None:
    async def main() -> tuple[Grant, str]:
        async with AsyncVaultClient(ORIGIN, client_id=live.service_id, key=live.key,
                                    transport=httpx.ASGITransport(app=live.web.app),
                                    clock=live.time.clock, sleep=live.time.asleep) as client:
            pending = await client.start_authorization(terms, redirect_uri=REDIRECT)
            callback = await asyncio.to_thread(live.answer, pending)
            grant = await client.finish_authorization(callback, pending)
            before = grant.refresh_token
            grant.expires_at = live.time.now()
            await client.read(grant)
            assert grant.refresh_token != before
            bc = await client.request_by_subject(grant.sub, terms)
            live.time.before_poll = lambda n: live.approve_in_wallet() if n == 1 else None
            again = await client.wait(bc, timeout=30)
            release = await client.read(again)
            return again, release.data["address.home"]["town"]

    grant, town = asyncio.run(main())
    assert town == ADDRESS_TOWN and grant.grant_id.startswith("gr_")
