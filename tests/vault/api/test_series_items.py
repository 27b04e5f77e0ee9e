"""A device appends batches to a series over HTTP (ARCHITECTURE §8 "Series"):
POST /v1/records/{category}/items, one JWS for the batch; a reader's periodic grant gets
the batches added since its last read through /v1/data, each whole."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session
from support.ledgerview import full_entries
from support.vaultworld import add_passkey

from clients.service.keys import ServiceKey
from ledger.sqlstore import SqlLedger
from vault.api.deps import AppState
from vault.api.resource_routes import resource_audience
from vault.app import create_app
from vault.config import Settings
from vault.domain.grants import Access
from vault.oauth import issue_access_token, pairwise_sub
from vault.services import citizens, grants, records, registry, series
from vault.storage.database import read_only
from vault.storage.tables import GrantRow, RecordRow
from wallet.passkeys.software import SoftAuthenticator

ORIGIN = "http://localhost:8000"
PROBLEM = "urn:citizen-vault:problem:"
OBS = "health.observations"


def reading(value: int = 70, at: str | None = None) -> dict[str, Any]:
    when = at or (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"kind": "heart_rate", "value": value, "unit": "bpm", "at": when}


@dataclass
class Env:
    client: TestClient
    state: AppState

    def service(self, key: ServiceKey, **kw: Any) -> str:
        return registry.register_service(self.state.ctx, registry.Registration(
            name=kw.pop("name"), description="A service", purposes=["health_monitoring"],
            jwks=key.public_jwks(), redirect_uris=["https://svc.example/cb"],
            privacy_notice_url="https://svc.example/privacy", **kw))

    def grant(self, client_id: str, citizen_id: str, **terms: Any) -> str:
        """A token for a grant the citizen approved."""
        ctx = self.state.ctx
        device = add_passkey(ctx, citizen_id, SoftAuthenticator(origin=ORIGIN))
        args: dict[str, Any] = {
            "purpose": "health_monitoring", "categories": [OBS], "data_life": "P30D",
            "access": Access("periodic", max_reads=1000), "duration": timedelta(days=30),
            "justification": "Your heart."}
        args.update(terms)
        g = grants.request_grant(ctx, service_id=client_id, citizen_id=citizen_id, **args)
        grants.approve_grant(ctx, g.id, citizen_id=citizen_id,
                             proof=device.proof(challenge=g.terms_hash))
        now = datetime.now(UTC)
        return issue_access_token(
            self.state.token_keys.current, issuer=ORIGIN, audience=resource_audience(ORIGIN),
            client_id=client_id, grant_id=g.id,
            sub=pairwise_sub(self.state.app_secret, client_id, citizen_id),
            authorization_details=[{"type": "personal_data", **g.terms.to_json()}],
            now=now, grant_expires_at=now + timedelta(days=1))[0]

    def post(self, token: str, jws: Any, category: str = OBS) -> Any:
        return self.client.post(f"/v1/records/{category}/items", json={"record": jws},
                                headers={"Authorization": f"Bearer {token}"})

    def read(self, token: str) -> dict[str, Any]:
        r = self.client.get("/v1/data", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
        doc: dict[str, Any] = r.json()
        return doc

    def counts(self) -> tuple[int, int]:
        with Session(self.state.engine) as s:
            rows = s.execute(select(func.count()).select_from(RecordRow)).scalar_one()
        with read_only(self.state.engine).begin() as conn:
            return rows, len(list(SqlLedger(conn).iter_entries()))

    def entries(self) -> list[dict[str, Any]]:
        with read_only(self.state.engine).begin() as conn:
            return full_entries(conn)


@dataclass
class World:
    env: Env
    device: ServiceKey
    device_id: str
    writer: str  # the device's write grant's token
    reader: str  # the GP practice's periodic read grant's token

    def sign(self, items: Any, **kw: Any) -> str:
        return self.device.sign_record(OBS, {"items": items}, issuer=self.device_id, **kw)


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[World]:
    """On SQLite, then on PostgreSQL."""
    app = create_app(Settings(data_dir=tmp_path / "v", ledger_public=True,
                              database_url=database_url))
    with TestClient(app, base_url=ORIGIN) as client:
        env = Env(client, app.state.vault)
        device, gp = ServiceKey.generate(), ServiceKey.generate()
        device_id = env.service(device, name="Heart monitor", categories=[], issues=[OBS])
        gp_id = env.service(gp, name="GP practice", categories=[OBS])
        citizen = citizens.enrol_citizen(env.state.ctx).id
        yield World(env, device, device_id,
                    env.grant(device_id, citizen, actions=("write",), data_life="P0D"),
                    env.grant(gp_id, citizen))


def problem(r: Any, status: int, reason: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == f"{PROBLEM}record-refused:{reason}"
    assert r.json()["reason"] == reason


def test_a_batch_is_one_version_read_whole_by_the_reader(world: World) -> None:
    env = world.env
    first = [reading(60 + i) for i in range(1000)]
    jws1 = world.sign(first)
    r = env.post(world.writer, jws1)
    assert r.status_code == 201, r.text
    assert r.json()["category"] == OBS and r.json()["version"] == 1
    written = env.entries()[r.json()["ledger_index"]]
    assert written["kind"] == "record.written"
    assert written["body"]["items"] == 1000 and written["body"]["issuer"] == world.device_id
    second = [reading(99)]
    jws2 = world.sign(second)
    assert env.post(world.writer, jws2).json()["version"] == 2
    got = env.read(world.reader)
    assert got["data"][OBS] == {"next": False, "batches": [
        {"version": 1, "items": first}, {"version": 2, "items": second}]}
    # Each batch with its issuer's JWS, exactly as signed: the reader checks each alone.
    prov = got["provenance"][OBS]
    assert prov["source"] == "series" and prov["issuer"] == world.device_id
    assert prov["version"] == 2 and prov["record"] is None
    assert [(b["version"], b["source"], b["issuer"], b["items"]) for b in prov["batches"]] == [
        (1, "issuer", world.device_id, 1000), (2, "issuer", world.device_id, 1)]
    assert [b["record"] for b in prov["batches"]] == [jws1, jws2]
    accessed = env.entries()[got["ledger_index"]]["body"]
    assert accessed["categories"] == [OBS] and accessed["issuers"] == {OBS: world.device_id}
    # The next read has nothing new of it.
    assert OBS not in env.read(world.reader)["data"]


def test_the_citizens_own_batches_are_theirs_in_the_provenance(world: World) -> None:
    env = world.env
    with Session(env.state.engine) as s:
        citizen_id = s.execute(select(GrantRow.citizen_id)).scalars().first()
    assert env.post(world.writer, world.sign([reading()])).status_code == 201
    series.append_own(env.state.ctx, citizen_id, OBS, [reading(80)])  # beside the device's
    prov = env.read(world.reader)["provenance"][OBS]
    assert prov["issuer"] is None  # two sources: no one issuer stands behind the category
    assert [(b["source"], b["issuer"], b["record"] is None) for b in prov["batches"]] == [
        ("issuer", world.device_id, False), ("citizen", None, True)]


def test_the_same_batch_again_is_the_same_answer(world: World) -> None:
    env = world.env
    jws = world.sign([reading()])
    first = env.post(world.writer, jws)
    before = env.counts()
    again = env.post(world.writer, jws)
    assert again.status_code == 201 and again.json() == first.json()
    assert env.counts() == before


@pytest.mark.parametrize(("items", "reason"), [
    ([], "invalid_value"),
    ([reading()] * 1001, "invalid_value"),
    ([reading(), {**reading(), "value": "x" * 101}], "invalid_value"),
    ([reading(), {**reading(), "kind": "Heart rate"}], "invalid_value"),
    ([reading(at="2099-01-01T00:00:00Z")], "invalid_value"),
    ({"0": reading()}, "invalid_value"),
])
def test_a_bad_batch_writes_nothing(world: World, items: Any, reason: str) -> None:
    env = world.env
    before = env.counts()
    problem(env.post(world.writer, world.sign(items)), 400, reason)
    assert env.counts() == before


def test_only_a_series_takes_items_and_a_series_takes_no_single_value(world: World) -> None:
    env = world.env
    before = env.counts()
    jws = world.device.sign_record("address.home", {"items": [reading()]},
                                   issuer=world.device_id)
    problem(env.post(world.writer, jws, "address.home"), 400, "not_series")
    r = env.client.put(f"/v1/records/{OBS}", json={"record": world.sign([reading()])},
                       headers={"Authorization": f"Bearer {world.writer}"})
    problem(r, 400, "series")
    assert env.counts() == before


def test_a_batch_over_512_kib_is_refused_before_it_is_read(world: World) -> None:
    env = world.env
    before = env.counts()
    big = [{**reading(), "unit": "u" * 20, "value": "v" * 100}] * 1000
    problem(env.post(world.writer, "x" * (512 * 1024 + 1)), 413, "too_large")
    assert env.counts() == before
    jws = world.sign(big)  # 1,000 long items: far over a single record's 64 KiB, and fine
    assert 64 * 1024 < len(jws) < 512 * 1024
    assert env.post(world.writer, jws).status_code == 201


def test_a_reader_cannot_append_and_a_writer_cannot_read(world: World) -> None:
    env = world.env
    r = env.post(world.reader, world.sign([reading()]))
    assert r.status_code == 403
    assert env.counts()[0] == 0


def test_a_batch_after_the_citizen_deleted_theirs_still_reaches_the_reader(
        world: World) -> None:
    """The citizen's own batch is read, then deleted: the device's next batch takes a
    version above the reader's cursor, not the freed one, so the reader gets it."""
    env = world.env
    with Session(env.state.engine) as s:
        citizen_id = s.execute(select(GrantRow.citizen_id)).scalars().first()
    assert citizen_id is not None
    own = series.append_own(env.state.ctx, citizen_id, OBS, [reading(80)])
    assert [b["version"] for b in env.read(world.reader)["data"][OBS]["batches"]] == [own]
    records.delete_records(env.state.ctx, citizen_id, OBS)
    batch = [reading(81)]
    r = env.post(world.writer, world.sign(batch))
    assert r.status_code == 201, r.text
    assert r.json()["version"] == own + 1
    assert env.read(world.reader)["data"][OBS]["batches"] == [
        {"version": own + 1, "items": batch}]
