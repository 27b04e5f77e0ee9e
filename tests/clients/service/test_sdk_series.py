"""The SDK appends batches to a series and reads them (ARCHITECTURE §8 "Series").

Against a live vault (uvicorn on loopback): a device's `append_items` signs each batch
once and appends it (a repeat with the same jti is answered as before, a bad item is
RecordRefused with the reason, a batch over 1,000 items is refused before it is sent);
a GP practice's `read` gives the batches added since its last read in
`Release.series(category)`, each batch's JWS checked with the device's published keys
(`provenance[cat].batches[i].verified_issuer`); the async client appends too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from livevault import LiveVault, serve
from support.vaultworld import add_passkey

from clients.service import (
    AsyncVaultClient,
    Grant,
    RecordRefused,
    Release,
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

OBS = "health.observations"


def reading(value: int) -> dict[str, Any]:
    at = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"kind": "heart_rate", "value": value, "unit": "bpm", "at": at}


@dataclass
class Party:
    client_id: str
    key: ServiceKey
    grant: Grant


@dataclass
class World:
    live: LiveVault
    device: Party
    gp: Party

    def client(self, party: Party) -> VaultClient:
        return VaultClient(self.live.url, client_id=party.client_id, key=party.key)


def _party(state: AppState, citizen_id: str, device: SoftAuthenticator, *, name: str,
           write: bool) -> Party:
    ctx = state.ctx
    key = ServiceKey.generate(kid=f"{name}-1")
    client_id = registry.register_service(ctx, registry.Registration(
        name=name, description=name, purposes=["health_monitoring"],
        categories=[] if write else [OBS], jwks=key.public_jwks(),
        redirect_uris=["https://example.nhs.uk/cb"],
        privacy_notice_url="https://example.nhs.uk/privacy", issues=(OBS,) if write else ()))
    g = grants.request_grant(
        ctx, service_id=client_id, citizen_id=citizen_id, purpose="health_monitoring",
        categories=[OBS], access=Access("periodic", max_reads=100), data_life="P30D",
        duration=timedelta(days=30), justification="Your heart.",
        actions=("write",) if write else ("read",))
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
    data = tmp_path_factory.mktemp("series") / "v"
    with serve(Settings(data_dir=data, ledger_public=True)) as live:
        assert live.app is not None
        state: AppState = live.app.state.vault
        citizen = citizens.enrol_citizen(state.ctx).id
        passkey = add_passkey(state.ctx, citizen,
                              SoftAuthenticator(origin=state.settings.base_url))
        yield World(live, _party(state, citizen, passkey, name="watch", write=True),
                    _party(state, citizen, passkey, name="gp", write=False))


def test_a_device_appends_and_the_gp_reads_each_batch_verified(world: World) -> None:
    # A clock that stays put: the SDK signs afresh each call, with the same claims.
    clock = float(int(datetime.now(UTC).timestamp()))
    with VaultClient(world.live.url, client_id=world.device.client_id, key=world.device.key,
                     clock=lambda: clock) as device, world.client(world.gp) as gp:
        gp.read(world.gp.grant)  # from here on: only what is appended below
        items = [reading(70), reading(71)]
        first = device.append_items(world.device.grant, OBS, items, jti="watch-1")
        again = device.append_items(world.device.grant, OBS, items, jti="watch-1")
        assert again == first  # a repeat: answered as before, nothing appended
        second = device.append_items(world.device.grant, OBS, [reading(150)])
        assert second.version == first.version + 1
        with pytest.raises(RecordRefused) as refused:
            device.append_items(world.device.grant, OBS, [{**reading(72), "value": "x" * 101}])
        assert refused.value.code == "invalid_value" and refused.value.status == 400
        with pytest.raises(ValueError, match="1 to 1000 items"):
            device.append_items(world.device.grant, OBS, [reading(1)] * 1001)
        with pytest.raises(ValueError, match="1 to 1000 items"):
            device.append_items(world.device.grant, OBS, [])

        release = gp.read(world.gp.grant)
        page = release.series(OBS)
        assert [b.version for b in page.batches] == [first.version, second.version]
        assert [i["value"] for i in page.items] == [70, 71, 150] and page.more is False
        p = release.provenance[OBS]
        assert p.source == "series" and p.issuer == world.device.client_id
        assert [b.verified_issuer for b in p.batches] == [world.device.client_id] * 2
        assert [b.items for b in p.batches] == [2, 1]
        assert gp.read(world.gp.grant).series(OBS).batches == ()


def test_the_async_client_appends_too(world: World) -> None:
    async def run() -> Release:
        async with AsyncVaultClient(world.live.url, client_id=world.device.client_id,
                                    key=world.device.key) as device, \
                AsyncVaultClient(world.live.url, client_id=world.gp.client_id,
                                 key=world.gp.key) as gp:
            await gp.read(world.gp.grant)
            await device.append_items(world.device.grant, OBS, (reading(60),))
            return await gp.read(world.gp.grant)

    release = asyncio.run(run())
    assert [i["value"] for i in release.series(OBS).items] == [60]
    assert release.provenance[OBS].batches[0].verified_issuer == world.device.client_id


def test_a_batch_released_other_than_signed_is_not_verified() -> None:
    """`series` reads the page and its "next"; a JWS is verified only over its own items."""
    doc = {"grant_id": "g", "sub": "s", "derived": {}, "ledger_index": 3,
           "data": {OBS: {"batches": [{"version": 4, "items": [reading(1)]}], "next": True}},
           "provenance": {OBS: {"source": "series", "issuer": None, "version": 4,
                                "record": None, "batches": [
                                    {"version": 4, "source": "citizen", "issuer": None,
                                     "record": None, "items": 1}]}}}
    release = Release.from_json(doc)
    page = release.series(OBS)
    assert page.more is True and [b.version for b in page.batches] == [4]
    assert release.provenance[OBS].batches[0].source == "citizen"
    assert release.series("address.home").batches == ()
    with pytest.raises(ValueError, match="not a series"):
        Release.from_json({**doc, "data": {OBS: {"items": []}}}).series(OBS)
