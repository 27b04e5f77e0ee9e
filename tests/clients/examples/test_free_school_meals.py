"""Free school meals end to end over real sockets (issue 14 §5): a vault served by
uvicorn, the city's example services (clients.examples.city) each on its own port as
`make run` registers them, and a parent in the wallet over HTTP with a software passkey.

The parent makes their child's vault (the vault's dependants service, as the wallet's
page does), switches to acting for the child, links the Benefits Agency to the CHILD's
vault (the agency writes the household's Universal Credit award there) and approves the
school's grant on the child's `eligible_free_school_meals`. The school shows the child as
eligible at once, and "Not eligible" when the vault tells it the award ended. The ledger
names the parent as the actor of every grant step in the child's vault, and
`vault-audit verify` passes. tests/browser/test_free_school_meals_journey.py runs it in
Chromium.
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
from sqlmodel import Session
from support.cityworld import Town, Visitor, main_of, newcomer, open_city
from support.ledgerview import full_entries
from support.livewallet import approve
from support.webwallet import Browser
from typer.testing import CliRunner

from clients.auditor import cli as audit_cli
from clients.examples.city import school
from vault.config import Settings
from vault.services import dependants, records
from vault.storage.tables import CitizenRow

CHILD_BORN = "2017-09-03"  # of school age for years to come


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[LiveVault]:
    with serve(Settings(data_dir=tmp_path / "vault", ledger_public=True,
                        checkpoint_interval=0.05)) as live:
        yield live


@pytest.fixture
def town(vault: LiveVault) -> Iterator[Town]:
    with open_city(vault) as t:
        yield t


def _child_of(vault: LiveVault, parent: Browser) -> str:
    """The child's vault the parent makes, signing its terms with their passkey."""
    assert vault.app is not None and parent.citizen_id is not None
    ctx = vault.app.state.vault.ctx
    plan = dependants.plan_child(parent_id=parent.citizen_id, given="Sam", family="Okafor",
                                 date_of_birth=CHILD_BORN, until=None, now=ctx.clock())
    with Session(ctx.engine) as s:
        challenge = dependants.child_terms(s, plan).terms_hash()
    made = dependants.create_child(ctx, plan, proof=parent.device.proof(challenge=challenge),
                                   verifier=ctx.approvals)
    return made.child_id


def _act_for(parent: Browser, child_id: str) -> None:
    """The wallet's "Acting for" switch."""
    r = parent.form("/wallet/acting", {"for": child_id, "next": "/wallet"})
    assert r.status_code == 303, r.text[:500]


def _link_household(agency: Visitor) -> str:
    """The agency's second offer: write the household's award into the linked vault."""
    r = agency.client.post("/link", data={"offer": "household"}, follow_redirects=False)
    assert r.status_code == 303, main_of(r.text)
    return str(r.headers["location"])


def _audited(vault: LiveVault) -> None:
    """`vault-audit verify` over the whole ledger once a checkpoint covers it."""
    size = len(httpx.get(f"{vault.url}/ledger/entries?start=0&limit=1000").text.splitlines())
    deadline = time.monotonic() + 10
    while int(httpx.get(f"{vault.url}/ledger/checkpoint").text.split("\n")[1]) < size:
        assert time.monotonic() < deadline, "no checkpoint covered the ledger"
        time.sleep(0.05)
    r = CliRunner().invoke(audit_cli.app, ["verify", vault.url, "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["ok"] and report["size"] >= size, report


def _grant_steps(vault: LiveVault, citizen_id: str) -> list[dict[str, Any]]:
    """The full bodies (openings read) of the grant steps in `citizen_id`'s vault."""
    assert vault.app is not None
    ctx = vault.app.state.vault.ctx
    with Session(ctx.engine) as s:
        subject = s.get(CitizenRow, citizen_id).subject  # type: ignore[union-attr]
        entries = full_entries(s.connection())
    return [e for e in entries if e["kind"] == "grant.approved"
            and e["body"].get("subject") == subject]


def test_the_school_is_told_at_once_and_again_when_the_award_ends(
        vault: LiveVault, town: Town) -> None:
    parent = newcomer(vault)
    child_id = _child_of(vault, parent)
    agency, desk = town.visitor("agency"), town.visitor("school")
    # The parent linked the agency for their own Attendance Allowance before: the
    # agency keeps that link beside the child's (one per offer, in one browser).
    assert "Your vault is linked" in agency.back(approve(parent, agency.link()))
    _act_for(parent, child_id)

    page = agency.back(approve(parent, _link_household(agency)))
    assert page.count("vault is linked</p>") == 2, main_of(page)  # the parent's, the child's
    page = agency.press("/household/award")
    assert "Universal Credit awarded" in page, main_of(page)
    assert "Your vault is linked" in page  # the parent's own link is still there
    # The school asks once linked: the answer is there at once.
    page = desk.back(approve(parent, desk.link()))
    assert school.ELIGIBLE in page, main_of(page)

    agency.press("/household/end")
    page = desk.wait_for(school.NOT_ELIGIBLE)
    assert "told us something changed" in page

    # Both grants are the child's, approved by the parent acting for them; the parent's
    # own vault holds only their own link, approved as themself.
    assert vault.app is not None and parent.citizen_id is not None
    ctx = vault.app.state.vault.ctx
    with Session(ctx.engine) as s:
        parent_subject = s.get(CitizenRow, parent.citizen_id).subject  # type: ignore[union-attr]
    approved = _grant_steps(vault, child_id)
    services = {e["body"]["service_id"] for e in approved}
    assert services == {town.configs["agency"].client_id, town.configs["school"].client_id}
    assert all(e["body"]["actor"] == parent_subject and e["body"]["delegation_id"]
               for e in approved), approved
    [own] = _grant_steps(vault, parent.citizen_id)  # the Attendance Allowance link
    assert "actor" not in own["body"]
    _audited(vault)


def test_an_award_the_family_typed_in_is_no_evidence(vault: LiveVault, town: Town) -> None:
    """The parent's own value of the household's award in the child's vault does not
    count: the school is told "cannot tell", not "eligible"."""
    parent = newcomer(vault)
    child_id = _child_of(vault, parent)
    assert vault.app is not None
    records.write_record(vault.app.state.vault.ctx, child_id, "household.universal_credit",
                         {"receiving": True, "since": "2024-01-01"})
    _act_for(parent, child_id)
    desk = town.visitor("school")
    page = desk.back(approve(parent, desk.link()))
    assert school.UNKNOWN in page and school.ELIGIBLE not in page, main_of(page)
