"""Delete my account: only after a passkey confirmation by the citizen themselves, and
then everything goes (records, passkeys, sessions, grants); the ledger says so."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import Session, col, select
from support.ledgerview import opened_entries
from support.vaultworld import ask
from support.webwallet import Browser, WebWallet, open_wallet

from ledger.entry import Entry
from vault.errors import NotFound
from vault.services import access
from vault.services.citizens import get_citizen
from vault.storage.tables import CitizenRow, PasskeyRow, RecordRow, WalletSessionRow
from wallet.passkeys.software import unb64url

DELETE = "/wallet/account/delete"


def entries(web: WebWallet, kind: str) -> list[Entry]:
    with web.ctx.engine.connect() as conn:
        found = opened_entries(conn)
    return [e for e in found if e.kind == kind]


def count(web: WebWallet, table: type, citizen_id: str) -> int:
    with Session(web.ctx.engine) as session:
        return int(session.exec(select(func.count()).select_from(table).where(
            col(table.citizen_id) == citizen_id)).one())  # type: ignore[attr-defined]


def still_there(web: WebWallet, b: Browser) -> None:
    """Nothing of `b`'s citizen was erased, and their session still works."""
    assert b.citizen_id is not None
    with Session(web.ctx.engine) as session:
        row = session.get(CitizenRow, b.citizen_id)
        assert row is not None
        pseudonym = row.subject
    assert count(web, RecordRow, b.citizen_id) == 3
    assert count(web, PasskeyRow, b.citizen_id) == 1
    assert pseudonym not in [e.body["subject"] for e in entries(web, "citizen.erased")]
    assert b.get("/wallet/account").status_code == 200


def test_the_page_says_what_happens_and_asks_for_a_passkey(tmp_path: Path) -> None:
    with open_wallet(tmp_path) as web:
        anon = web.browser().get("/wallet/account", follow_redirects=False)
        assert anon.status_code == 303
        assert anon.headers["location"] == "/wallet/signin?next=/wallet/account"

        html = web.sign_up().get("/wallet/account").text
        assert "<h1>Delete your account</h1>" in html
        assert "Nobody can bring it back" in html
        assert "loses access straight away" in html
        # ... but what a service already read, it keeps for as long as it was allowed.
        words = " ".join(html.split())
        assert ("Services keep what they already read for as long as you allowed when you "
                "said yes") in words
        assert "Deleting your account cannot take it back from them." in words
        assert "Nothing in them leads to you any more" in html
        form = re.search(r'<form method="post" action="/wallet/account/delete"[^>]*>', html)
        assert form is not None
        assert 'data-passkey="get"' in form.group(0)
        assert 'data-options="/wallet/account/delete/options"' in form.group(0)
        assert '<button type="submit" class="button warning">Delete my account</button>' \
            in html


def test_the_confirmation_asks_for_one_of_the_citizens_own_passkeys(tmp_path: Path) -> None:
    with open_wallet(tmp_path) as web:
        b = web.sign_up()
        assert b.citizen_id is not None
        r = b.json(f"{DELETE}/options", {})
        assert r.status_code == 200
        options = r.json()["publicKey"]
        assert [c["id"] for c in options["allowCredentials"]] == list(b.device.credentials)
        assert options["userVerification"] == "required"
        assert "user" not in options  # an assertion, not a new passkey


def test_wrong_or_missing_confirmation_erases_nothing(tmp_path: Path) -> None:
    with open_wallet(tmp_path) as web:
        ada, bob = web.sign_up(), web.sign_up()

        # Bob's passkey cannot confirm for Ada, even from Ada's session.
        [bob_cred] = bob.device.credentials
        with_bobs = Browser(ada.client, device=bob.device, citizen_id=ada.citizen_id)
        r = with_bobs.passkey_post(DELETE, credential_id=bob_cred)
        assert r.status_code == 400
        assert r.json()["detail"] == "this passkey belongs to someone else, not to you"

        # Her own passkey, but nobody unlocked it (no fingerprint, face or PIN).
        r = ada.passkey_post(DELETE, uv=False)
        assert r.status_code == 400

        # A signature over another challenge (say, from a sign-in page).
        got = ada.json(f"{DELETE}/options", {}).json()
        other = ada.device.get(got["publicKey"], challenge=b"x" * 32)
        r = ada.json(DELETE, {"credential": other, "ceremony": got["ceremony"], "fields": {}})
        assert r.status_code == 400

        # No assertion at all, or no ceremony.
        got = ada.json(f"{DELETE}/options", {}).json()
        r = ada.json(DELETE, {"credential": {}, "ceremony": got["ceremony"], "fields": {}})
        assert r.status_code == 400
        answer = ada.device.get(ada.json(f"{DELETE}/options", {}).json()["publicKey"])
        r = ada.json(DELETE, {"credential": answer, "ceremony": None, "fields": {}})
        assert r.status_code == 400

        # Bob's ceremony answered with Ada's passkey, posted from Ada's session.
        bobs = bob.json(f"{DELETE}/options", {}).json()
        answer = ada.device.get(challenge=unb64url(bobs["publicKey"]["challenge"]))
        r = ada.json(DELETE, {"credential": answer, "ceremony": bobs["ceremony"], "fields": {}})
        assert r.status_code == 400
        assert r.json()["detail"] == "this passkey request was not started here; start again"

        # The right passkey, but without the page's CSRF token.
        got = ada.json(f"{DELETE}/options", {}).json()
        r = ada.json(DELETE, {"credential": ada.device.get(got["publicKey"]),
                              "ceremony": got["ceremony"], "fields": {}}, csrf="")
        assert r.status_code == 403

        # Signed out: nothing to confirm.
        assert web.browser().json(f"{DELETE}/options", {}).status_code == 401

        still_there(web, ada)
        still_there(web, bob)


def test_the_right_passkey_erases_everything(tmp_path: Path, database_url: str) -> None:
    with open_wallet(tmp_path, database_url) as web:
        ada, bob = web.sign_up(), web.sign_up()
        assert ada.citizen_id is not None
        with Session(web.ctx.engine) as session:
            pseudonym = get_citizen(session, ada.citizen_id).subject
        world = web.world_for(ada)
        # A service Ada said yes to, through the wallet's own approve form.
        grant = ask(web.ctx, world)
        r = ada.passkey_post(f"/wallet/grants/{grant.id}/approve")
        assert r.status_code == 200, r.text
        assert access.read_under_grant(web.ctx, service_id=world.service_id,
                                       grant_id=grant.id).data
        old_cookie = ada.client.cookies.get(web.state.cookies.session)
        assert old_cookie

        r = ada.passkey_post(DELETE)
        assert r.status_code == 200, r.text
        assert r.json() == {"redirect": "/wallet/goodbye"}
        assert ada.client.cookies.get(web.state.cookies.session) is None

        with Session(web.ctx.engine) as session:
            assert session.get(CitizenRow, ada.citizen_id) is None
        for table in (RecordRow, PasskeyRow, WalletSessionRow):
            assert count(web, table, ada.citizen_id) == 0
        erased = entries(web, "citizen.erased")
        assert [e.body["subject"] for e in erased] == [pseudonym]
        ended = entries(web, "grant.revoked")
        assert [(e.body["grant_id"], e.body["reason"]) for e in ended] == \
            [(grant.id, "citizen_erased")]

        # The old session is dead: the cookie, put back, signs nobody in.
        assert web.state.sessions.resolve(old_cookie, now=web.ctx.clock()) is None
        ada.client.cookies.set(web.state.cookies.session, old_cookie)
        again = ada.get("/wallet/passkeys", follow_redirects=False)
        assert again.status_code == 303
        assert again.headers["location"].startswith("/wallet/signin")
        # And the passkey no longer signs in.
        fresh = web.browser()
        fresh.device = ada.device
        r = fresh.passkey_post("/wallet/signin")
        assert r.status_code == 400

        # The service's next read is refused: the grant went with the citizen.
        with pytest.raises(NotFound):
            access.read_under_grant(web.ctx, service_id=world.service_id, grant_id=grant.id)

        still_there(web, bob)


def test_goodbye_is_a_kind_page_for_anyone(tmp_path: Path) -> None:
    with open_wallet(tmp_path) as web:
        r = web.browser().get("/wallet/goodbye")
        assert r.status_code == 200
        assert "<h1>Your account is deleted</h1>" in r.text
        words = " ".join(r.text.split())
        assert "Services cannot read it any more." in words
        assert ("Services keep what they already read for as long as you allowed when you "
                "said yes, then they must delete it.") in words
        assert "Thank you" in r.text
        assert 'aria-label="Main"' not in r.text  # signed out: no wallet menu


def test_the_passkeys_page_links_here(tmp_path: Path) -> None:
    with open_wallet(tmp_path) as web:
        html = web.sign_up().get("/wallet/passkeys").text
        assert '<a href="/wallet/account">' in html


def test_a_device_from_another_site_cannot_confirm(tmp_path: Path) -> None:
    with open_wallet(tmp_path) as web:
        ada = web.sign_up()
        r = ada.passkey_post(DELETE, origin="https://evil.example")
        assert r.status_code == 400
        assert "evil.example" in r.json()["detail"]
        still_there(web, ada)


def test_a_confirmation_works_once(tmp_path: Path) -> None:
    with open_wallet(tmp_path) as web:
        ada = web.sign_up()
        got = ada.json(f"{DELETE}/options", {}).json()
        answer = ada.device.get(got["publicKey"])
        body = {"credential": answer, "ceremony": got["ceremony"], "fields": {}}
        # A wrong answer uses the ceremony up: the right answer after it is too late.
        wrong = ada.device.get(got["publicKey"], uv=False)
        assert ada.json(DELETE, {**body, "credential": wrong}).status_code == 400
        assert ada.json(DELETE, body).status_code == 400
        still_there(web, ada)
