"""Issuers' writes for one citizen that race each other (issue 12 §1, §4), on SQLite and
PostgreSQL.

On PostgreSQL two grants' writes for the same citizen and category (two devices, two
issuers) can both read the same newest version; the second insert then fails the unique
(citizen, category, version). A single record and a series batch take the same way out
(`issued.unless_raced`): the write is made again above the other, never a 500.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from livevault import serve
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
from vault.services import citizens, grants, issued, issued_batch, registry
from vault.storage.database import read_only
from vault.storage.tables import RecordJtiRow, RecordRow
from wallet.passkeys.software import SoftAuthenticator

OBS = "health.observations"
AA = "benefits.attendance_allowance"
ORIGIN = "http://localhost:8000"


def _readings(n: int) -> dict[str, Any]:
    at = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"items": [{"kind": "heart_rate", "value": 60 + n, "unit": "bpm", "at": at}]}


class Device:
    """An issuer with a write grant for the citizen, and a token for it."""

    def __init__(self, state: AppState, citizen_id: str, device: SoftAuthenticator,
                 name: str, base_url: str) -> None:
        ctx = state.ctx
        self.key = ServiceKey.generate()
        self.client_id = registry.register_service(ctx, registry.Registration(
            name=name, description=name, purposes=["health_monitoring"], categories=[],
            jwks=self.key.public_jwks(), redirect_uris=[f"https://{name}.example/cb"],
            privacy_notice_url=f"https://{name}.example/privacy", issues=(OBS, AA)))
        g = grants.request_grant(
            ctx, service_id=self.client_id, citizen_id=citizen_id,
            purpose="health_monitoring", categories=[OBS, AA], access=Access("one_time"),
            data_life="P0D", duration=timedelta(days=30), justification="Your heart.",
            actions=("write",))
        grants.approve_grant(ctx, g.id, citizen_id=citizen_id,
                             proof=device.proof(challenge=g.terms_hash))
        now = datetime.now(UTC)
        self.token = issue_access_token(
            state.token_keys.current, issuer=base_url, audience=resource_audience(base_url),
            client_id=self.client_id, grant_id=g.id,
            sub=pairwise_sub(state.app_secret, self.client_id, citizen_id),
            authorization_details=[{"type": "personal_data", **g.terms.to_json()}],
            now=now, grant_expires_at=now + timedelta(days=1))[0]

    def batch(self, n: int) -> dict[str, Any]:
        return {"record": self.key.sign_record(OBS, _readings(n), issuer=self.client_id)}

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def _devices(state: AppState, base_url: str, origin: str) -> tuple[Device, Device]:
    citizen = citizens.enrol_citizen(state.ctx).id
    device = add_passkey(state.ctx, citizen, SoftAuthenticator(origin=origin))
    return (Device(state, citizen, device, "wearable", base_url),
            Device(state, citizen, device, "clinic-monitor", base_url))


def _counts(state: AppState) -> tuple[int, int, int]:
    with Session(state.engine) as s:
        rows = s.execute(select(func.count()).select_from(RecordRow)).scalar_one()
        jtis = s.execute(select(func.count()).select_from(RecordJtiRow)).scalar_one()
    with read_only(state.engine).begin() as conn:
        entries = sum(1 for _ in SqlLedger(conn).iter_entries())
    return rows, entries, jtis


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, AppState]]:
    app = create_app(Settings(data_dir=tmp_path / "v", database_url=database_url))
    with TestClient(app, base_url=ORIGIN) as client:
        yield client, app.state.vault


@pytest.mark.parametrize("path", [f"/v1/records/{OBS}/items", f"/v1/records/{AA}"])
def test_a_write_that_lost_a_race_for_its_version_is_made_again(
        env: tuple[TestClient, AppState], monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    """As on PostgreSQL when the other device's write commits between our reading the
    newest version and our insert: made again above it, once, for a batch as for a
    single record; and again while it keeps losing, up to RACE_ATTEMPTS."""
    client, state = env
    first, second = _devices(state, ORIGIN, ORIGIN)
    category = OBS if path.endswith("/items") else AA

    def body(device: Device, n: int) -> dict[str, Any]:
        if category == OBS:
            return device.batch(n)
        award = {"award": "higher", "since": "2026-01-05", "awarded_by": f"DWP {n}"}
        return {"record": device.key.sign_record(AA, award, issuer=device.client_id)}

    send = client.post if category == OBS else client.put
    assert send(path, json=body(first, 0), headers=first.auth).json()["version"] == 1
    real = issued._next_version
    stale = [True] * (issued.RACE_ATTEMPTS - 1)  # it loses every time but the last

    def next_version(work: Any, citizen_id: str, category: str) -> int:
        if stale:
            stale.pop()
            return 1  # what it was before the other device's write committed
        return real(work, citizen_id, category)

    monkeypatch.setattr(issued, "_next_version", next_version)
    stale_batch = [True]  # a PUT is first made in a batch at once: it loses there too

    def highest(work: Any, places: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
        if stale_batch:
            stale_batch.pop()
            return {}
        return real_highest(work, places)

    real_highest = issued_batch._highest
    monkeypatch.setattr(issued_batch, "_highest", highest)
    before = _counts(state)
    r = send(path, json=body(second, 1), headers=second.auth)
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 2 and not stale
    assert not stale_batch or category == OBS
    assert _counts(state) == (before[0] + 1, before[1] + 1, before[2] + 1)  # written once


def test_batches_of_two_issuers_at_once_all_land_in_order(
        database_url: str, tmp_path: Path) -> None:
    """Over real sockets (uvicorn runs each request in its own thread): two devices
    append batches for one citizen at the same moments; every batch is answered 201
    with its own version, and the ledger has each once."""
    rounds = 12
    settings = Settings(data_dir=tmp_path / "v", database_url=database_url)
    with serve(settings) as live:
        assert live.app is not None
        state: AppState = live.app.state.vault
        base = state.settings.base_url
        devices = _devices(state, base, base)
        bodies = {d.client_id: [d.batch(n) for n in range(rounds)] for d in devices}
        start = threading.Barrier(len(devices), timeout=30)
        answers: dict[str, list[httpx.Response]] = {d.client_id: [] for d in devices}
        failed: list[BaseException] = []

        def append_all(device: Device) -> None:
            try:
                with httpx.Client(base_url=live.url, timeout=30) as http:
                    for body in bodies[device.client_id]:
                        start.wait()  # each round, both at once
                        answers[device.client_id].append(http.post(
                            f"/v1/records/{OBS}/items", json=body, headers=device.auth))
            except BaseException as exc:  # e.g. the connection dropped after a 500
                failed.append(exc)
                start.abort()  # the other device stops waiting for this one

        threads = [threading.Thread(target=append_all, args=(d,), daemon=True)
                   for d in devices]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in threads)
        assert not failed, failed[:2]

        statuses = [r.status_code for rs in answers.values() for r in rs]
        assert statuses == [201] * (rounds * len(devices)), \
            [r.text for rs in answers.values() for r in rs if r.status_code != 201][:3]
        versions = sorted(r.json()["version"] for rs in answers.values() for r in rs)
        assert versions == list(range(1, rounds * len(devices) + 1))
        for rs in answers.values():  # each device's batches in the order it sent them
            mine = [r.json()["version"] for r in rs]
            assert mine == sorted(mine)
        with read_only(state.engine).begin() as conn:
            written = [e["body"] for e in full_entries(conn)]
        batches = [b for b in written if b.get("category") == OBS and "items" in b]
        assert sorted(b["version"] for b in batches) == versions
