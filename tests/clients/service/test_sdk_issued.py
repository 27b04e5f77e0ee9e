"""The SDK writes, withdraws and checks issued records (ARCHITECTURE §8).

Against a live vault (uvicorn on loopback): an issuer's `write_record` signs with its
key and stores the award (a repeat with the same jti is answered as before; a bad value
is RecordRefused with the reason); a reader's `read` carries `provenance` whose
`verified_issuer` is set because the SDK checked the JWS with the issuer's published
keys; `withdraw_record` takes the award away; the async client does the same. Against a
scripted vault (httpx.MockTransport): a JWS over another value, a forged signature or
none at all is never `verified_issuer`; a key the issuer rotated in is fetched again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from livevault import LiveVault, serve
from support.vaultworld import add_passkey, give_ada_data

from clients.service import (
    AsyncVaultClient,
    Grant,
    ProtocolError,
    RecordRefused,
    ServiceKey,
    VaultClient,
)
from vault.api.deps import AppState
from vault.api.resource_routes import resource_audience
from vault.config import Settings
from vault.domain.grants import Access
from vault.oauth import issue_access_token, pairwise_sub
from vault.services import citizens, grants, registry
from wallet.passkeys.software import SoftAuthenticator

AA = "benefits.attendance_allowance"
AWARD = {"award": "higher", "since": "2026-01-05", "awarded_by": "DWP"}


@dataclass
class Party:
    client_id: str
    key: ServiceKey
    grant: Grant


@dataclass
class World:
    live: LiveVault
    agency: Party
    council: Party

    @property
    def state(self) -> AppState:
        assert self.live.app is not None
        state: AppState = self.live.app.state.vault
        return state

    def client(self, party: Party) -> VaultClient:
        return VaultClient(self.live.url, client_id=party.client_id, key=party.key)


def _party(state: AppState, citizen_id: str, device: SoftAuthenticator, *, name: str,
           issues: tuple[str, ...], actions: tuple[str, ...], derived: tuple[str, ...] = (),
           ) -> Party:
    ctx = state.ctx
    key = ServiceKey.generate(kid=f"{name}-1")
    client_id = registry.register_service(ctx, registry.Registration(
        name=name, description=name, purposes=["eligibility_assessment"],
        categories=[] if "write" in actions else [AA], derived=list(derived),
        jwks=key.public_jwks(), redirect_uris=["https://example.gov/cb"],
        privacy_notice_url="https://example.gov/privacy", issues=issues))
    g = grants.request_grant(
        ctx, service_id=client_id, citizen_id=citizen_id, purpose="eligibility_assessment",
        categories=[AA], derived=list(derived), access=Access("periodic", max_reads=20),
        data_life="P0D", duration=timedelta(days=30), justification="Council tax.",
        actions=actions)
    grants.approve_grant(ctx, g.id, citizen_id=citizen_id,
                         proof=device.proof(challenge=g.terms_hash))
    base = state.settings.base_url
    now = datetime.now(UTC)
    sub = pairwise_sub(state.app_secret, client_id, citizen_id)
    token = issue_access_token(
        state.token_keys.current, issuer=base, audience=resource_audience(base),
        client_id=client_id, grant_id=g.id, sub=sub,
        authorization_details=[{"type": "personal_data", **g.terms.to_json()}],
        now=now, grant_expires_at=now + timedelta(days=1))[0]
    return Party(client_id, key, Grant(grant_id=g.id, sub=sub, access_token=token,
                                       refresh_token=None,
                                       expires_at=now + timedelta(minutes=5)))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = tmp_path_factory.mktemp("issued") / "v"
    with serve(Settings(data_dir=data, ledger_public=True)) as live:
        assert live.app is not None
        state: AppState = live.app.state.vault
        citizen = citizens.enrol_citizen(state.ctx).id
        give_ada_data(state.ctx, citizen)
        device = add_passkey(state.ctx, citizen,
                             SoftAuthenticator(origin=state.settings.base_url))
        agency = _party(state, citizen, device, name="agency", issues=(AA,),
                        actions=("write",))
        council = _party(state, citizen, device, name="council", issues=(),
                         actions=("read",), derived=("receives:attendance_allowance",))
        yield World(live, agency, council)


def test_an_issuer_writes_and_a_reader_verifies_it_over_real_sockets(world: World) -> None:
    with world.client(world.agency) as agency, world.client(world.council) as council:
        written = agency.write_record(world.agency.grant, AA, AWARD, jti="award-2026-1")
        assert written.category == AA and written.version >= 1
        with pytest.raises(RecordRefused) as refused:
            agency.write_record(world.agency.grant, AA, {**AWARD, "award": "highest"})
        assert refused.value.code == "invalid_value" and refused.value.status == 400
        with pytest.raises(RecordRefused) as reused:
            agency.write_record(world.agency.grant, AA, {**AWARD, "award": "lower"},
                                jti="award-2026-1")
        assert reused.value.code == "jti_reused" and reused.value.status == 409

        release = council.read(world.council.grant)
        assert release.data[AA] == AWARD
        p = release.provenance[AA]
        assert p.source == "issuer" and p.issuer == world.agency.client_id
        assert p.version == written.version and p.record is not None
        assert p.verified_issuer == world.agency.client_id
        assert release.derived == {"receives:attendance_allowance": True}

        gone = agency.withdraw_record(world.agency.grant, AA)
        assert gone.version == written.version and gone.ledger_index > written.ledger_index
        after = council.read(world.council.grant)
        assert AA not in after.data and AA not in after.provenance
        with pytest.raises(ProtocolError) as nothing:
            agency.withdraw_record(world.agency.grant, AA)
        assert nothing.value.status == 404


def test_the_same_record_again_is_answered_as_before(world: World) -> None:
    # The SDK signs afresh each call (ES256 signatures differ), the claims are the same:
    # the vault answers the repeat as it answered the first, and writes nothing more.
    clock = [float(int(datetime.now(UTC).timestamp()))]
    with VaultClient(world.live.url, client_id=world.agency.client_id, key=world.agency.key,
                     clock=lambda: clock[0]) as agency:
        first = agency.write_record(world.agency.grant, AA, AWARD, jti="award-repeat")
        again = agency.write_record(world.agency.grant, AA, AWARD, jti="award-repeat")
    assert again == first


def test_the_async_client_writes_and_verifies_too(world: World) -> None:
    async def run() -> tuple[Any, Any]:
        async with AsyncVaultClient(world.live.url, client_id=world.agency.client_id,
                                    key=world.agency.key) as agency, \
                AsyncVaultClient(world.live.url, client_id=world.council.client_id,
                                 key=world.council.key) as council:
            written = await agency.write_record(world.agency.grant, AA,
                                                {**AWARD, "award": "lower"})
            return written, await council.read(world.council.grant)

    written, release = asyncio.run(run())
    assert release.data[AA]["award"] == "lower"
    assert release.provenance[AA].version == written.version
    assert release.provenance[AA].verified_issuer == world.agency.client_id


# -- a scripted vault: what is not verified ------------------------------------------------------


ISSUER_URL = "https://vault.example.gov"


def _scripted(provenance: dict[str, Any], data: dict[str, Any],
              jwks_answers: list[dict[str, Any]]) -> tuple[VaultClient, list[str]]:
    """A VaultClient over a vault that answers /v1/data with `data` and `provenance`,
    and /services/*/jwks with each of `jwks_answers` in turn; the paths it was asked."""
    asked: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        if request.url.path == "/v1/data":
            return httpx.Response(200, json={"grant_id": "gr_1", "sub": "s", "data": data,
                                             "derived": {}, "ledger_index": 7,
                                             "provenance": provenance})
        if request.url.path.endswith("/jwks"):
            fetches = sum(p.endswith("/jwks") for p in asked)
            return httpx.Response(200, json=jwks_answers[min(fetches, len(jwks_answers)) - 1])
        return httpx.Response(404)

    client = VaultClient(ISSUER_URL, client_id="svc_reader", key=ServiceKey.generate(),
                         transport=httpx.MockTransport(handle))
    return client, asked


def _grant() -> Grant:
    return Grant(grant_id="gr_1", sub="s", access_token="at", refresh_token=None,
                 expires_at=datetime.now(UTC) + timedelta(minutes=5))


def _issued(jws: str | None, issuer: str = "svc_agency") -> dict[str, Any]:
    return {AA: {"source": "issuer", "issuer": issuer, "version": 3, "record": jws}}


def test_only_a_signature_over_the_released_value_by_its_issuer_is_verified() -> None:
    key = ServiceKey.generate(kid="k1")
    jws = key.sign_record(AA, AWARD, issuer="svc_agency")
    cases = {
        "as released": (jws, AWARD, "svc_agency"),
        "another value released": (jws, {**AWARD, "award": "lower"}, None),
        "no JWS": (None, AWARD, None),
        "another issuer named": (key.sign_record(AA, AWARD, issuer="svc_other"), AWARD, None),
        "forged": (ServiceKey.generate(kid="k1").sign_record(AA, AWARD, issuer="svc_agency"),
                   AWARD, None),
        "another category": (key.sign_record("benefits.universal_credit", AWARD,
                                             issuer="svc_agency"), AWARD, None),
    }
    for name, (record, value, expected) in cases.items():
        client, _ = _scripted(_issued(record), {AA: value}, [key.public_jwks()])
        with client:
            got = client.read(_grant()).provenance[AA]
        assert got.verified_issuer == expected, name
        assert got.record == record


def test_a_key_rotated_in_since_the_keys_were_kept_is_fetched_again() -> None:
    old, new = ServiceKey.generate(kid="old"), ServiceKey.generate(kid="new")
    client, asked = _scripted(_issued(new.sign_record(AA, AWARD, issuer="svc_agency")),
                              {AA: AWARD}, [old.public_jwks(), new.public_jwks()])
    with client:
        assert client.read(_grant()).provenance[AA].verified_issuer == "svc_agency"
        # Kept now: the next read does not fetch the keys again.
        assert client.read(_grant()).provenance[AA].verified_issuer == "svc_agency"
    assert [p for p in asked if p.endswith("/jwks")] == ["/services/svc_agency/jwks"] * 2


def test_a_citizens_own_value_is_theirs_and_not_checked() -> None:
    own = {AA: {"source": "citizen", "issuer": None, "version": 1, "record": None}}
    client, asked = _scripted(own, {AA: AWARD}, [{"keys": []}])
    with client:
        p = client.read(_grant()).provenance[AA]
    assert (p.source, p.issuer, p.verified_issuer) == ("citizen", None, None)
    assert not any(path.endswith("/jwks") for path in asked)
