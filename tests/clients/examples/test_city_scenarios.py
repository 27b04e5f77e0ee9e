"""The city's seed scenarios end to end over real sockets (issue 12 §6): a vault served
by uvicorn, the example services of clients.examples.city each on its own port,
registered as `make run` registers them; the citizen approves each link in the wallet
over HTTP with a software passkey (tests/browser/test_city_journey.py does it in
Chromium); the vault's webhooks reach the services for real.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from livevault import LiveVault, serve
from sqlmodel import Session, col, select
from support.cityworld import Town, main_of, newcomer, open_city
from support.livewallet import approve
from typer.testing import CliRunner

from clients.auditor import cli as audit_cli
from vault.config import Settings
from vault.services import records
from vault.storage.tables import RecordRow


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[LiveVault]:
    with serve(Settings(data_dir=tmp_path / "vault", ledger_public=True,
                        checkpoint_interval=0.05)) as live:
        yield live


@pytest.fixture
def town(vault: LiveVault) -> Iterator[Town]:
    with open_city(vault) as t:
        yield t


def _entries(vault: LiveVault, kind: str) -> list[dict[str, Any]]:
    """The ledger's entries of `kind` (the public ledger: NDJSON, as an auditor reads it)."""
    r = httpx.get(f"{vault.url}/ledger/entries?start=0&limit=1000")
    assert r.status_code == 200, r.text
    found = [json.loads(line) for line in r.text.splitlines() if line]
    for e in found:  # what anyone may read: a sealed entry's public part
        e.setdefault("body", e.get("public"))
    return [e for e in found if kind in ("", e["kind"])]


def _audited(vault: LiveVault) -> dict[str, Any]:
    """`vault-audit verify` over the whole ledger, once a checkpoint covers it: every
    story it tells (writes under write grants, withdrawals, reads naming issuers and
    sources) holds."""
    size = len(_entries(vault, ""))  # every entry, with its kind
    deadline = time.monotonic() + 10
    while int(httpx.get(f"{vault.url}/ledger/checkpoint").text.split("\n")[1]) < size:
        assert time.monotonic() < deadline, "no checkpoint covered the ledger"
        time.sleep(0.05)
    r = CliRunner().invoke(audit_cli.app, ["verify", vault.url, "--json"])
    assert r.exit_code == 0, r.output
    report: dict[str, Any] = json.loads(r.output)
    assert report["ok"] and report["size"] >= size, report
    return report


def test_council_tax_is_reduced_when_the_agency_awards_and_told_again_when_it_ends(
        vault: LiveVault, town: Town) -> None:
    ada = newcomer(vault)
    agency, council = town.visitor("agency"), town.visitor("counciltax")
    assert "Your vault is linked" in agency.back(approve(ada, agency.link()))
    # Linked before any award: the team reads at once and finds none.
    assert "No reduction" in council.back(approve(ada, council.link()))

    agency.press("/award")
    page = council.wait_for("Reduction applied")
    assert "signed by the Benefits Agency: we checked its signature" in page
    assert "Your vault told us your award changed" in page
    # Ada says the award is wrong, in her wallet: the agency is told (record.disputed).
    told = ada.form("/wallet/data/benefits.attendance_allowance/wrong",
                    {"version": "1", "reason": "not_me"})
    assert told.status_code == 303, told.text
    agency.wait_for("You told us the award in your vault is wrong")

    agency.press("/withdraw")
    page = council.wait_for("Reduction removed")
    assert "no longer holds an Attendance Allowance award" in page

    agency_id = town.configs["agency"].client_id
    [written] = [e for e in _entries(vault, "record.written")
                 if e["body"].get("issuer") == agency_id]
    [withdrawn] = _entries(vault, "record.withdrawn")
    assert written["body"]["category"] == withdrawn["body"]["category"] == \
        "benefits.attendance_allowance"
    council_id = town.configs["counciltax"].client_id
    reads = [e["body"] for e in _entries(vault, "data.accessed")
             if e["body"]["service_id"] == council_id]
    assert any(r.get("issuers") == {"benefits.attendance_allowance": agency_id}
               for r in reads), reads
    _audited(vault)


def test_an_award_the_citizen_typed_in_gives_no_reduction(vault: LiveVault,
                                                         town: Town) -> None:
    ada = newcomer(vault)
    assert vault.app is not None
    records.write_record(vault.app.state.vault.ctx, ada.citizen_id or "",
                         "benefits.attendance_allowance",
                         {"award": "higher", "since": "2024-01-01", "awarded_by": "me"})
    council = town.visitor("counciltax")
    page = council.back(approve(ada, council.link()))
    assert "No reduction" in page and "not signed by the Benefits Agency" in page


def test_the_gp_is_told_of_concern_from_the_wearable_and_never_sees_a_reading(
        vault: LiveVault, town: Town) -> None:
    ada = newcomer(vault)
    monitor, gp = town.visitor("wearable"), town.visitor("gp")
    assert "Your vault is linked" in monitor.back(approve(ada, monitor.link()))
    assert "Nothing to go on" in gp.back(approve(ada, gp.link()))

    monitor.press("/readings")
    assert "No concern" in gp.wait_for("Your vault told us of new readings")
    page = monitor.press("/readings/unusual")
    assert "a heart rate of 150 bpm" in page
    told = main_of(gp.wait_for("Concern: heart rate"))
    for value in ("150", "bpm", "heart_rate"):  # told of concern, never a value
        assert value not in told, value
    gp_id = town.configs["gp"].client_id
    batches = [e["body"] for e in _entries(vault, "record.written")
               if e["body"].get("issuer") == town.configs["wearable"].client_id]
    assert [b["items"] for b in batches] == [4, 1]
    released = [e["body"] for e in _entries(vault, "data.accessed")
                if e["body"]["service_id"] == gp_id]
    assert released and all(r["categories"] == [] for r in released), released
    _audited(vault)


def test_the_register_answers_at_source_and_the_vault_keeps_no_copy(
        vault: LiveVault, town: Town) -> None:
    ada = newcomer(vault)
    register, council = town.visitor("register"), town.visitor("counciltax")
    page = register.back(approve(ada, register.link()))
    assert "You are on the register" in page and "Not yet." in page
    # The team asks whether Ada lives in Riverside: the vault asks the register.
    page = council.back(approve(ada, council.link()))
    assert "You live in Riverside." in page
    assert "1 time, for a service you chose" in register.page()

    register_id = town.configs["register"].client_id
    council_id = town.configs["counciltax"].client_id
    [read] = [e["body"] for e in _entries(vault, "data.accessed")
              if e["body"]["service_id"] == council_id]
    assert read["derived"] == ["resident_in:Riverside"]
    assert read["sources"] == {"address.home": register_id}, read
    assert vault.app is not None
    with Session(vault.app.state.vault.ctx.engine) as session:
        kept = session.exec(select(RecordRow.category).where(
            col(RecordRow.citizen_id) == ada.citizen_id)).all()
    assert "address.home" not in kept  # never copied into the vault
    _audited(vault)  # a source named for a derived answer alone passes the auditor
