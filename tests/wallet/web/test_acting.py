"""Acting for someone in the wallet (issue 14 §3, part B): the switch, whose vault each page
shows, the actor's passkey on the ledger, and what the principal sees of it."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select
from support.acting import end_relationship, live_relationship
from support.ledgerview import full_entries
from support.vaultworld import ask
from support.webwallet import ORIGIN, Browser, WebWallet

from vault.domain.grants import GrantState
from vault.services import records
from vault.services.grants import get_grant
from vault.storage.database import read_only
from vault.storage.tables import RecordRow, WalletSessionRow


def _grace(web: WebWallet) -> Browser:
    """The principal: signed up, then renamed Grace Hopper (everyone starts as Ada)."""
    grace = web.sign_up("Grace's security key")
    assert grace.citizen_id is not None
    records.write_record(web.ctx, grace.citizen_id, "identity.name",
                         {"given": "Grace", "family": "Hopper"})
    records.write_record(web.ctx, grace.citizen_id, "contact.email", "grace@example.org")
    return grace


def _relate(web: WebWallet, principal: Browser, delegate: Browser,
            actions: tuple[str, ...]) -> str:
    assert principal.citizen_id and delegate.citizen_id
    return live_relationship(web.ctx, principal=principal.citizen_id,
                             delegate=delegate.citizen_id, principal_device=principal.device,
                             delegate_device=delegate.device, actions=actions)


def _switch(b: Browser, principal_id: str, next_path: str = "/wallet"):  # type: ignore[no-untyped-def]
    return b.form("/wallet/acting", {"for": principal_id, "next": next_path})


def test_the_switch_shows_whose_vault_and_a_delegate_approves_with_their_passkey(
        web: WebWallet) -> None:
    grace, ada = _grace(web), web.sign_up()
    assert grace.citizen_id and ada.citizen_id
    rid = _relate(web, grace, ada, ("view", "approve"))
    grant = ask(web.ctx, web.world_for(grace))
    home = ada.get("/wallet").text
    assert 'action="/wallet/acting"' in home and "Grace Hopper" in home
    assert "You are acting for" not in home
    # Grace's request is on Ada's own requests page, marked with Grace's name.
    mine = ada.get("/wallet/requests").text
    assert "Waiting for Grace Hopper\u2019s answer" in mine and "For Grace Hopper" in mine
    r = _switch(ada, grace.citizen_id, f"/wallet/grants/{grant.id}")
    assert (r.status_code, r.headers["location"]) == (303, f"/wallet/grants/{grant.id}")
    for path in ("/wallet", "/wallet/requests", f"/wallet/grants/{grant.id}", "/wallet/data"):
        page = ada.get(path)
        assert page.status_code == 200, path
        assert "You are acting for Grace Hopper." in page.text, path
    assert "grace@example.org" in ada.get("/wallet/data").text
    # Her own passkeys page is hers, and says so.
    keys = ada.get("/wallet/passkeys").text
    assert "This page is about your own account" in keys
    assert "Grace&#39;s security key" not in keys and "Grace's security key" not in keys
    # So is the People page (the relationships she sets up are for her own vault).
    people = ada.get("/wallet/people").text
    assert "This page is about your own account" in people
    assert "in Grace Hopper\u2019s vault" not in people
    # Approving: the options list Ada's passkeys, her device signs, the entry names her.
    r = ada.passkey_post(f"/wallet/grants/{grant.id}/approve")
    assert r.status_code == 200, r.text
    assert get_grant(web.ctx, grant.id).state is GrantState.APPROVED
    with read_only(web.ctx.engine).begin() as conn:
        [entry] = [e for e in full_entries(conn) if e["kind"] == "grant.approved"]
    assert entry["body"]["delegation_id"] == rid and "actor" in entry["body"]
    # Back to herself: no banner, her own vault.
    assert _switch(ada, "").status_code == 303
    assert "You are acting for" not in ada.get("/wallet").text
    assert "grace@example.org" not in ada.get("/wallet/data").text
    # Grace sees who did it, and the grant marked as approved on her behalf.
    activity = grace.get("/wallet/activity").text
    assert "Done on your behalf" in activity
    assert "Ada Lovelace" in activity and "Said yes to" in activity
    assert "Approved on your behalf by Ada Lovelace" in grace.get("/wallet/grants").text
    assert "Approved on your behalf by Ada Lovelace" in \
        grace.get(f"/wallet/grants/{grant.id}").text


def test_switching_to_someone_without_a_live_relationship_is_refused(web: WebWallet) -> None:
    grace, bob = _grace(web), web.sign_up()
    assert grace.citizen_id
    r = _switch(bob, grace.citizen_id)
    assert r.status_code == 403
    assert "You cannot do that for this person." in r.text
    r = bob.client.post("/wallet/acting", data={"for": grace.citizen_id},
                        headers={"x-csrf-token": bob.csrf(), "accept": "application/json",
                                 "origin": "http://localhost:8000"})
    assert r.status_code == 403 and r.json()["reason"] == "not_allowed"
    assert "You are acting for" not in bob.get("/wallet").text


def test_a_view_only_delegate_sees_but_cannot_act(web: WebWallet) -> None:
    grace, ada = _grace(web), web.sign_up()
    assert grace.citizen_id
    _relate(web, grace, ada, ("view",))
    grant = ask(web.ctx, web.world_for(grace))
    _switch(ada, grace.citizen_id)
    assert "grace@example.org" in ada.get("/wallet/data").text
    r = ada.form(f"/wallet/grants/{grant.id}/decline")
    assert r.status_code == 403 and "You cannot do that for this person." in r.text
    r = ada.json(f"/wallet/grants/{grant.id}/approve/options", {})
    assert r.status_code == 403
    r = ada.form("/wallet/data/contact.email", {"value": "evil@example.org"})
    assert r.status_code == 403
    assert get_grant(web.ctx, grant.id).state is GrantState.REQUESTED
    with Session(web.ctx.engine) as s:
        assert len(s.exec(select(RecordRow).where(
            RecordRow.citizen_id == grace.citizen_id,
            RecordRow.category == "contact.email")).all()) == 1


def test_when_the_relationship_ends_pages_fall_back_and_actions_are_refused(
        web: WebWallet) -> None:
    grace, ada = _grace(web), web.sign_up()
    assert grace.citizen_id and ada.citizen_id
    rid = _relate(web, grace, ada, ("view", "edit", "approve"))
    grant = ask(web.ctx, web.world_for(grace))
    _switch(ada, grace.citizen_id)
    token = ada.csrf("/wallet/data")  # a form drawn in Grace's vault
    end_relationship(web.ctx, rid)
    # A form drawn in her vault does nothing anywhere once it has ended.
    r = ada.form("/wallet/data/contact.email", {"value": "late@example.org"}, csrf=token)
    assert r.status_code == 403
    with Session(web.ctx.engine) as s:
        assert s.exec(select(RecordRow).where(
            RecordRow.category == "contact.email",
            RecordRow.citizen_id == ada.citizen_id)).all() == []
        assert s.exec(select(WalletSessionRow.acting_for).where(
            WalletSessionRow.citizen_id == ada.citizen_id)).all() == [None]
    page = ada.get("/wallet").text
    assert "You are acting for" not in page and "Your wallet" in page
    assert "grace@example.org" not in ada.get("/wallet/data").text
    assert ada.get(f"/wallet/grants/{grant.id}").status_code == 404


def test_a_form_drawn_in_one_vault_is_refused_after_switching_to_another(
        web: WebWallet) -> None:
    grace, ada = _grace(web), web.sign_up()
    assert grace.citizen_id and ada.citizen_id
    _relate(web, grace, ada, ("view", "edit"))
    own_token = ada.csrf("/wallet/data")  # drawn in her own vault
    _switch(ada, grace.citizen_id)
    r = ada.form("/wallet/data/contact.email", {"value": "mine@example.org"}, csrf=own_token)
    assert r.status_code == 403  # the token was for her own vault
    # With a token of Grace's vault, the write is Grace's, made by Ada, and Grace sees it.
    r = ada.form("/wallet/data/contact.email", {"value": "new@example.org"})
    assert r.status_code == 303, r.text
    assert records.read_records(web.ctx, grace.citizen_id)["contact.email"].value == \
        "new@example.org"
    assert "Changed your email address" in grace.get("/wallet/activity").text


def test_the_header_names_people_as_their_own_vault_names_them_now(web: WebWallet) -> None:
    grace, ada = _grace(web), web.sign_up()
    assert grace.citizen_id
    _relate(web, grace, ada, ("view",))
    assert ">Grace Hopper</option>" in ada.get("/wallet").text
    records.write_record(web.ctx, grace.citizen_id, "identity.name",
                         {"given": "Grace", "family": "Brewster"})
    page = ada.get("/wallet").text
    assert ">Grace Brewster</option>" in page and "Hopper" not in page
    records.delete_records(web.ctx, grace.citizen_id, "identity.name")
    assert "Someone without a name in their vault" in ada.get("/wallet").text


def test_a_service_linked_while_acting_needs_approve(web: WebWallet) -> None:
    from support.oauthclient import Service, location, to_consent

    from vault.storage.tables import GrantRow

    grace, ada, bob = _grace(web), web.sign_up(), web.sign_up()
    assert grace.citizen_id
    svc = Service.register(web.ctx, web.browser().client, "http://localhost:8000")
    _relate(web, grace, ada, ("view",))
    _relate(web, grace, bob, ("view", "approve"))
    _switch(ada, grace.citizen_id)
    wallet_path = location(ada.get(svc.push(), follow_redirects=False))
    r = ada.get(wallet_path, follow_redirects=False)
    assert r.status_code == 403 and "You cannot do that for this person." in r.text
    with Session(web.ctx.engine) as s:
        assert s.exec(select(GrantRow).where(GrantRow.citizen_id == grace.citizen_id)
                      ).all() == []
    # With approve, the request is put in Grace's vault, to answer for her.
    _switch(bob, grace.citizen_id)
    _, grant_id = to_consent(bob, svc)
    with Session(web.ctx.engine) as s:
        row = s.get(GrantRow, grant_id)
        assert row is not None and row.citizen_id == grace.citizen_id


def test_a_page_saying_the_vault_failed_does_not_ask_the_database_for_the_switch(
        web: WebWallet, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient
    from sqlalchemy.exc import OperationalError

    import wallet.acting
    import wallet.routes.home

    ada = web.sign_up()
    ada.get("/wallet")

    def down(*_: object, **__: object) -> None:
        raise OperationalError("SELECT", {}, Exception("the database is gone"))

    monkeypatch.setattr(wallet.routes.home, "count_grants", down)
    monkeypatch.setattr(wallet.acting.delegations, "acting_for", down)
    # A client that shows the error page instead of raising (as a browser would see it).
    client = TestClient(web.app, base_url=ORIGIN, raise_server_exceptions=False,
                        cookies=dict(ada.client.cookies))
    r = client.get("/wallet", headers={"accept": "text/html"})
    assert r.status_code == 500
    assert "Something went wrong on our side" in r.text


def test_erasing_someone_one_acts_for_takes_one_back_to_one_s_own_vault(
        web: WebWallet) -> None:
    from vault.services.citizens import erase_citizen
    from vault.storage.tables import DelegatedActionRow

    grace, ada = _grace(web), web.sign_up()
    assert grace.citizen_id and ada.citizen_id
    _relate(web, grace, ada, ("view", "edit"))
    _switch(ada, grace.citizen_id)
    assert ada.form("/wallet/data/contact.email", {"value": "n@example.org"}).status_code == 303
    erase_citizen(web.ctx, grace.citizen_id)  # her choice in Ada's session, her lines: gone
    with Session(web.ctx.engine) as s:
        assert s.exec(select(WalletSessionRow.acting_for).where(
            WalletSessionRow.citizen_id == ada.citizen_id)).all() == [None]
        assert s.exec(select(DelegatedActionRow)).all() == []
    page = ada.get("/wallet").text
    assert "Your wallet" in page and 'action="/wallet/acting"' not in page


def test_what_someone_did_before_leaving_the_vault_stays_on_the_principal_s_page(
        web: WebWallet) -> None:
    from vault.services.citizens import erase_citizen

    grace, ada = _grace(web), web.sign_up()
    assert grace.citizen_id and ada.citizen_id
    _relate(web, grace, ada, ("view", "edit"))
    _switch(ada, grace.citizen_id)
    assert ada.form("/wallet/data/contact.email", {"value": "n@example.org"}).status_code == 303
    erase_citizen(web.ctx, ada.citizen_id)
    activity = grace.get("/wallet/activity").text
    assert "Someone who has since left the vault" in activity
    assert "Changed your email address" in activity
