"""GET /ledger/openings (ARCHITECTURE §10): NDJSON {"seq","salt","private"} of the sealed
entries, always behind an auditor key, with problem details for bad queries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from ledger.entry import parse_entry
from ledger.sealing import check_opening, parse_opening
from ledger.sqlstore import SqlLedger
from vault.app import create_app
from vault.config import Settings
from vault.services import citizens
from vault.storage.database import make_engine

KEY = {"Authorization": "Bearer k-one"}


def append(settings: Settings, n: int, *, version: int) -> None:
    """Entries written straight into the database, as an older or newer vault would."""
    engine = make_engine(settings.database)
    with engine.begin() as conn:
        SqlLedger(conn, version=version).append_many(
            [("grant.approved", {"grant_id": f"gr_{i}", "service_id": "svc_1",
                                 "subject": f"sub_{i % 2}"}) for i in range(n)])
    engine.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # Public ledger: openings still need the key.
    return Settings(data_dir=tmp_path / "data", ledger_public=True, auditor_api_keys="k-one",
                    checkpoint_interval=0.05)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def test_openings_open_the_sealed_entries_and_skip_v1_ones(
        client: TestClient, settings: Settings) -> None:
    start = len(client.get("/ledger/entries", params={"limit": 1000}).content.splitlines())
    append(settings, 3, version=1)
    append(settings, 4, version=2)
    entries = client.get("/ledger/entries", params={"start": start, "limit": 7}).content
    r = client.get("/ledger/openings", params={"start": start, "limit": 7}, headers=KEY)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/x-ndjson"
    lines = r.content.splitlines()
    assert r.content.endswith(b"\n") and len(lines) == 4  # v1 entries have none
    sealed = [parse_entry(d) for d in entries.splitlines()][3:]
    for entry, line in zip(sealed, lines, strict=True):
        opening = parse_opening(line)
        full = check_opening(entry, opening)
        assert full["subject"] == f"sub_{(entry.seq - start - 3) % 2}"
        assert "subject" not in entry.body
    page = client.get("/ledger/openings", params={"start": start + 5, "limit": 1}, headers=KEY)
    assert [orjson.loads(x)["seq"] for x in page.content.splitlines()] == [start + 5]
    assert client.get("/ledger/openings", params={"start": start + 7},
                      headers=KEY).content == b""


def test_openings_need_an_auditor_key_even_on_a_public_ledger(
        client: TestClient, settings: Settings) -> None:
    append(settings, 1, version=2)
    assert client.get("/ledger/entries").status_code == 200  # the ledger is public
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic k-one"}):
        r = client.get("/ledger/openings", headers=headers)
        assert r.status_code == 401
        assert r.headers["content-type"] == "application/problem+json"
        assert r.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("params", [
    {"start": -1}, {"limit": 0}, {"limit": 1001}, {"start": "x"}, {"limit": ""},
    {"start": 2**63}, {"start": 10_000},
], ids=repr)
def test_bad_queries_get_400_problem_details(client: TestClient, params: dict[str, Any]) -> None:
    r = client.get("/ledger/openings", params=params, headers=KEY)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == 400 and r.json()["detail"]


def test_the_vault_writes_sealed_entries(client: TestClient) -> None:
    """What the vault appends is v2: the subject only in the opening, behind the key."""
    ctx = client.app.state.vault.ctx  # type: ignore[attr-defined]
    citizen = citizens.enrol_citizen(ctx)
    lines = client.get("/ledger/entries", params={"limit": 1000}).content.splitlines()
    enrolled = parse_entry(lines[-1])
    assert (enrolled.kind, enrolled.v, enrolled.body) == ("citizen.enrolled", 2, {})
    assert citizen.subject.encode() not in b"".join(lines)
    [line] = client.get("/ledger/openings", params={"start": enrolled.seq},
                        headers=KEY).content.splitlines()
    assert check_opening(enrolled, parse_opening(line)) == {"subject": citizen.subject}
