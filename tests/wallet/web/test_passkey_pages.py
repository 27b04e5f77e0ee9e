"""The Passkeys page over HTTP: several passkeys (add, rename, remove: only after saying
what it means and a passkey check, and never the last one without recovery codes),
recovery codes, and getting back in with one."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text, update
from sqlmodel import Session, col, select
from support.ledgerview import opened_entries
from support.webwallet import ORIGIN, Browser, WebWallet, open_wallet

from ledger.entry import Entry
from vault.services.citizens import get_citizen
from vault.storage.tables import PasskeyRow, RecoveryCodeRow
from wallet.passkeys.software import SoftAuthenticator, unb64url

_CODE = re.compile(r"<code>([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})</code>")
_NAME = re.compile(r'<h3 id="passkey-\d+-name">(.*?)</h3>')


# -- helpers ---------------------------------------------------------------------------


def entries(web: WebWallet, kind: str) -> list[Entry]:
    with web.ctx.engine.connect() as conn:
        found = opened_entries(conn)
    return [e for e in found if e.kind == kind]


def subject(web: WebWallet, citizen_id: str) -> str:
    with Session(web.ctx.engine) as session:
        return get_citizen(session, citizen_id).subject


def passkey_ids(web: WebWallet, citizen_id: str) -> list[str]:
    with Session(web.ctx.engine) as session:
        return list(session.exec(
            select(PasskeyRow.credential_id).where(col(PasskeyRow.citizen_id) == citizen_id)
            .order_by(col(PasskeyRow.created_at), col(PasskeyRow.credential_id))).all())


def on_device(b: Browser, device: SoftAuthenticator) -> Browser:
    """The same signed-in browser, with another passkey device at hand."""
    return Browser(b.client, device=device, citizen_id=b.citizen_id)


def add_passkey(b: Browser, label: str) -> SoftAuthenticator:
    """Add a passkey on a new device through the page's passkey form."""
    device = SoftAuthenticator(origin=ORIGIN)
    r = on_device(b, device).passkey_post("/wallet/passkeys/add", {"label": label},
                                          options_path="/wallet/passkeys/options")
    assert r.status_code == 200, r.text
    assert r.json() == {"redirect": "/wallet/passkeys?done=added"}
    return device


def sign_in(web: WebWallet, device: SoftAuthenticator) -> str | None:
    """Sign in in a fresh browser with `device`; the citizen it signs in, or None."""
    b = web.browser()
    b.device = device
    r = b.passkey_post("/wallet/signin")
    if r.status_code != 200:
        return None
    citizen: str | None = web.state.sessions.resolve(
        b.client.cookies.get(web.state.cookies.session), now=web.ctx.clock())
    return citizen


def remove(b: Browser, credential_id: str, **device_kw: Any) -> httpx.Response:
    """The removal page's passkey form: options, one of b's passkeys signs, the answer."""
    return b.passkey_post(f"/wallet/passkeys/{credential_id}/remove", **device_kw)


def page(b: Browser, query: str = "") -> str:
    r = b.get("/wallet/passkeys" + query)
    assert r.status_code == 200, r.text
    html: str = r.text
    return html


def names(html: str) -> list[str]:
    """The passkeys a page lists, by name, in order."""
    return _NAME.findall(html)


def get_codes(b: Browser) -> list[str]:
    r = b.form("/wallet/recovery-codes")
    assert r.status_code == 200, r.text
    codes = _CODE.findall(r.text)
    assert len(codes) == 10
    return codes


# -- the page --------------------------------------------------------------------------


def test_page_lists_passkeys_and_needs_sign_in(tmp_path: Path) -> None:
    with open_wallet(tmp_path) as web:
        anon = web.browser().get("/wallet/passkeys", follow_redirects=False)
        assert anon.status_code == 303
        assert anon.headers["location"] == "/wallet/signin?next=/wallet/passkeys"

        b = web.sign_up("My phone")
        html = page(b)
        assert "<h1>Your passkeys</h1>" in html
        assert 'href="/wallet/passkeys" aria-current="page"' in html
        assert names(html) == ["My phone"] and "Not used yet" in html
        assert 'data-passkey="create"' in html and 'data-options="/wallet/passkeys/options"' \
            in html and 'action="/wallet/passkeys/add"' in html
        assert 'href="/wallet/account"' in html
        assert "You have no recovery codes you can use" in html

        assert sign_in(web, b.device) == b.citizen_id
        assert "Not used yet" not in page(b)  # "Last used" now shows a time


def test_done_codes_show_fixed_notices(tmp_path: Path) -> None:
    with open_wallet(tmp_path) as web:
        b = web.sign_up()
        for done, words in [("added", "Your new passkey is saved"),
                            ("renamed", "The passkey has its new name"),
                            ("removed", "The passkey is removed"),
                            ("recovered", "Add a passkey on this device now")]:
            assert words in page(b, f"?done={done}")
        odd = page(b, "?done=<b>hello</b>")
        assert 'class="notice"' not in odd and "<b>hello</b>" not in odd


# -- adding ----------------------------------------------------------------------------


def test_a_second_passkey_is_listed_and_both_sign_in(tmp_path: Path, database_url: str
                                                     ) -> None:
    with open_wallet(tmp_path, database_url) as web:
        b = web.sign_up("My phone")
        assert b.citizen_id is not None
        first = passkey_ids(web, b.citizen_id)
        # The device is told which passkeys the account has already, so it does not
        # make a second one for the same account.
        options = b.json("/wallet/passkeys/options", {"label": "Laptop"}).json()
        assert [c["id"] for c in options["publicKey"]["excludeCredentials"]] == first
        assert options["publicKey"]["user"]["name"] == "Citizen Data Vault account"

        laptop = add_passkey(b, "Laptop")
        ids = passkey_ids(web, b.citizen_id)
        assert len(ids) == 2
        html = page(b, "?done=added")
        assert names(html) == ["My phone", "Laptop"]
        assert "Your new passkey is saved" in html
        assert "Passkeys you have (2)" in html

        assert sign_in(web, b.device) == b.citizen_id
        assert sign_in(web, laptop) == b.citizen_id

        registered = [e for e in entries(web, "passkey.registered")
                      if e.body["subject"] == subject(web, b.citizen_id)]
        assert [e.body["credential_id"] for e in registered] == ids


def test_adding_needs_the_citizens_own_ceremony(tmp_path: Path) -> None:
    with open_wallet(tmp_path) as web:
        ada, bob = web.sign_up(), web.sign_up()
        assert ada.citizen_id is not None and bob.citizen_id is not None
        # Ada starts adding a passkey; Bob's session posts the answer to her ceremony.
        got = ada.json("/wallet/passkeys/options", {}).json()
        answer = SoftAuthenticator(origin=ORIGIN).create(got["publicKey"])
        r = bob.json("/wallet/passkeys/add", {"credential": answer,
                                              "ceremony": got["ceremony"], "fields": {}})
        assert r.status_code == 400
        assert r.json()["detail"] == "this passkey request was not started here; start again"
        assert len(passkey_ids(web, bob.citizen_id)) == 1
        assert len(passkey_ids(web, ada.citizen_id)) == 1

        # A ceremony is used once: the same answer again is refused.
        replay = ada.json("/wallet/passkeys/add", {"credential": answer,
                                                   "ceremony": got["ceremony"], "fields": {}})
        assert replay.status_code == 400
        assert len(passkey_ids(web, ada.citizen_id)) == 1

        # Signed out: no options, no passkey.
        anon = web.browser().json("/wallet/passkeys/options", {})
        assert anon.status_code == 401


def test_a_name_that_cannot_be_kept_fails_before_the_device_is_asked(tmp_path: Path) -> None:
    with open_wallet(tmp_path) as web:
        b = web.sign_up()
        r = b.json("/wallet/passkeys/options", {"label": "x" * 61})
        assert r.status_code == 400
        assert "at most 60 characters" in r.json()["detail"]


# -- renaming --------------------------------------------------------------------------


def test_rename_shows_the_new_name_and_keeps_it_sealed(tmp_path: Path) -> None:
    with open_wallet(tmp_path) as web:
        b = web.sign_up("My phone")
        assert b.citizen_id is not None
        [cid] = passkey_ids(web, b.citizen_id)
        r = b.form("/wallet/passkeys/rename", {"credential_id": cid, "label": "Work laptop"})
        assert r.status_code == 303
        assert r.headers["location"] == "/wallet/passkeys?done=renamed"
        html = page(b, "?done=renamed")
        assert names(html) == ["Work laptop"]

        with web.ctx.engine.connect() as conn:
            rows = conn.execute(text("SELECT * FROM passkeys")).all()
        assert rows
        for row in rows:
            for value in row:
                raw = value if isinstance(value, bytes) else str(value).encode()
                assert b"Work laptop" not in raw and b"My phone" not in raw

        # An empty name removes it.
        b.form("/wallet/passkeys/rename", {"credential_id": cid, "label": ""})
        assert names(page(b)) == ["Passkey without a name"]


def test_a_bad_name_is_explained_next_to_its_field(tmp_path: Path) -> None:
    with open_wallet(tmp_path) as web:
        b = web.sign_up("My phone")
        assert b.citizen_id is not None
        [cid] = passkey_ids(web, b.citizen_id)
        r = b.form("/wallet/passkeys/rename", {"credential_id": cid, "label": "x" * 61})
        assert r.status_code == 400
        assert 'class="error" role="alert">The passkey was not renamed.' in r.text
        assert 'id="label-1-error">A passkey name can be at most 60 characters.' in r.text
        assert 'aria-describedby="label-1-hint label-1-error"' in r.text
        assert 'aria-invalid="true"' in r.text
        assert names(page(b)) == ["My phone"]


def test_nobody_renames_or_removes_another_citizens_passkey(tmp_path: Path) -> None:
    with open_wallet(tmp_path) as web:
        ada, bob = web.sign_up("Ada's phone"), web.sign_up()
        assert ada.citizen_id is not None
        [cid] = passkey_ids(web, ada.citizen_id)
        get_codes(bob)  # so "last passkey" is not what stops Bob
        assert bob.form("/wallet/passkeys/rename",
                        {"credential_id": cid, "label": "mine"}).status_code == 404
        assert bob.get(f"/wallet/passkeys/{cid}/remove").status_code == 404
        assert bob.json(f"/wallet/passkeys/{cid}/remove/options", {}).status_code == 404
        # Bob's own ceremony, signed by Bob's own passkey, cannot name Ada's passkey.
        got = bob.json(f"/wallet/passkeys/{passkey_ids(web, bob.citizen_id or '')[0]}"
                       "/remove/options", {}).json()
        r = bob.json(f"/wallet/passkeys/{cid}/remove", {
            "credential": bob.device.get(got["publicKey"]), "ceremony": got["ceremony"],
            "fields": {}})
        assert r.status_code == 404
        assert passkey_ids(web, ada.citizen_id) == [cid]
        assert names(page(ada)) == ["Ada&#39;s phone"]


# -- removing --------------------------------------------------------------------------


def test_remove_one_of_two(tmp_path: Path, database_url: str) -> None:
    with open_wallet(tmp_path, database_url) as web:
        b = web.sign_up("My phone")
        assert b.citizen_id is not None
        laptop = add_passkey(b, "Laptop")
        phone_id, laptop_id = passkey_ids(web, b.citizen_id)
        assert f'href="/wallet/passkeys/{phone_id}/remove"' in page(b)

        # The page says what it means, then asks for a passkey: any of the citizen's.
        html = b.get(f"/wallet/passkeys/{phone_id}/remove").text
        assert "<h1>Remove “My phone”?</h1>" in html
        assert "Your other passkey keeps" in html and "only with a recovery code" not in html
        form = re.search(r'<form method="post" action="([^"]+)" data-passkey="get"\s+'
                         r'data-options="([^"]+)">', html)
        assert form is not None
        assert form.groups() == (f"/wallet/passkeys/{phone_id}/remove",
                                 f"/wallet/passkeys/{phone_id}/remove/options")
        assert '<button type="submit" class="button warning">Remove this passkey</button>' \
            in html
        options = b.json(f"/wallet/passkeys/{phone_id}/remove/options", {}).json()
        assert [c["id"] for c in options["publicKey"]["allowCredentials"]] == \
            [phone_id, laptop_id]
        assert options["publicKey"]["userVerification"] == "required"

        # Confirmed with the other passkey, the laptop.
        r = remove(on_device(b, laptop), phone_id)
        assert r.status_code == 200, r.text
        assert r.json() == {"redirect": "/wallet/passkeys?done=removed"}
        assert passkey_ids(web, b.citizen_id) == [laptop_id]
        html = page(b, "?done=removed")
        assert names(html) == ["Laptop"]

        removed = entries(web, "passkey.removed")
        assert [(e.body["credential_id"], e.body["subject"]) for e in removed] == \
            [(phone_id, subject(web, b.citizen_id))]
        assert sign_in(web, b.device) is None  # the removed passkey no longer signs in
        assert sign_in(web, laptop) == b.citizen_id


def test_removal_without_a_valid_passkey_check_changes_nothing(tmp_path: Path) -> None:
    with open_wallet(tmp_path) as web:
        ada, bob = web.sign_up("My phone"), web.sign_up()
        assert ada.citizen_id is not None
        laptop = add_passkey(ada, "Laptop")
        phone_id, laptop_id = passkey_ids(web, ada.citizen_id)
        url = f"/wallet/passkeys/{phone_id}/remove"

        def refused(r: httpx.Response, status: int = 400, reason: str | None = None) -> None:
            assert r.status_code == status, r.text
            assert r.headers["content-type"].startswith("application/problem+json")
            if reason is not None:
                assert r.json()["reason"] == reason, r.json()

        # The old one-click form, and a JSON post with no passkey answer at all.
        old = ada.form("/wallet/passkeys/remove", {"credential_id": phone_id})
        assert 400 <= old.status_code < 500
        assert ada.form(url, {}).status_code == 400
        got = ada.json(f"{url}/options", {}).json()
        refused(ada.json(url, {"credential": {}, "ceremony": got["ceremony"], "fields": {}}),
                reason="malformed")
        # No fingerprint, face or PIN; another origin.
        refused(remove(ada, phone_id, uv=False), reason="user_not_verified")
        refused(remove(ada, phone_id, origin="https://evil.example"), reason="wrong_origin")
        # The ceremony's bare nonce, or a signature for removing the laptop instead.
        got = ada.json(f"{url}/options", {}).json()
        from_ceremony = ada.device.get(got["publicKey"], challenge=b"\x00" * 32)
        refused(ada.json(url, {"credential": from_ceremony, "ceremony": got["ceremony"],
                               "fields": {}}), reason="challenge_mismatch")
        got = ada.json(f"/wallet/passkeys/{laptop_id}/remove/options", {}).json()
        refused(ada.json(url, {"credential": laptop.get(got["publicKey"]),
                               "ceremony": got["ceremony"], "fields": {}}),
                reason="challenge_mismatch")
        # Bob's passkey in Ada's session; Bob's ceremony with Ada's passkey.
        [bob_cred] = bob.device.credentials
        got = ada.json(f"{url}/options", {}).json()
        refused(ada.json(url, {"credential": bob.device.get(got["publicKey"],
                                                            credential_id=bob_cred),
                               "ceremony": got["ceremony"], "fields": {}}),
                reason="other_citizen")
        get_codes(bob)  # so that Bob may remove his only passkey
        bobs = bob.json(f"/wallet/passkeys/{next(iter(bob.device.credentials))}/remove/"
                        "options", {}).json()
        answer = ada.device.get(challenge=unb64url(bobs["publicKey"]["challenge"]))
        refused(ada.json(url, {"credential": answer, "ceremony": bobs["ceremony"],
                               "fields": {}}), reason="challenge_unknown")
        # An account-deletion confirmation cannot stand in for it.
        deleting = ada.json("/wallet/account/delete/options", {}).json()
        refused(ada.json(url, {"credential": ada.device.get(deleting["publicKey"]),
                               "ceremony": deleting["ceremony"], "fields": {}}),
                reason="challenge_unknown")
        # A good answer works once; without the CSRF token, not at all.
        got = ada.json(f"{url}/options", {}).json()
        body = {"credential": ada.device.get(got["publicKey"]), "ceremony": got["ceremony"],
                "fields": {}}
        assert ada.json(url, body, csrf="").status_code == 403
        assert web.browser().json(url, body).status_code in (401, 403)

        assert passkey_ids(web, ada.citizen_id) == [phone_id, laptop_id]
        assert entries(web, "passkey.removed") == []
        assert sign_in(web, ada.device) == ada.citizen_id


def test_the_only_passkey_goes_only_with_recovery_codes_and_says_so(
        tmp_path: Path, database_url: str) -> None:
    with open_wallet(tmp_path, database_url) as web:
        b = web.sign_up("My phone")
        assert b.citizen_id is not None
        [cid] = passkey_ids(web, b.citizen_id)
        url = f"/wallet/passkeys/{cid}/remove"

        # No recovery codes: the page explains, offers a way out, and asks no passkey.
        html = b.get(url).text
        assert "This is your only passkey, and you have no recovery" in html
        assert 'data-passkey="get"' not in html
        assert f'<input type="hidden" name="next" value="{url}">' in html
        r = b.json(f"{url}/options", {})
        assert r.status_code == 409
        assert "only passkey" in r.json()["detail"]
        assert passkey_ids(web, b.citizen_id) == [cid]

        # With recovery codes (made from that page, which it comes back to), it says
        # what removing means: from now on, sign in only with a recovery code.
        codes = b.form("/wallet/recovery-codes", {"next": url})
        assert f'href="{url}"' in codes.text
        html = b.get(url).text
        assert "This is your only passkey." in html
        assert "only with a recovery code" in html and "10 unused recovery codes" in html
        assert 'data-passkey="get"' in html
        r = remove(b, cid)
        assert r.status_code == 200, r.text
        assert passkey_ids(web, b.citizen_id) == []
        assert "You have no passkeys" in page(b, "?done=removed")
        assert len(entries(web, "passkey.removed")) == 1
        assert sign_in(web, b.device) is None


def test_the_last_passkey_stays_if_the_codes_went_meanwhile(tmp_path: Path) -> None:
    """Codes used up between the options and the answer: the removal counts them again,
    in its own transaction, and refuses."""
    with open_wallet(tmp_path) as web:
        b = web.sign_up("My phone")
        assert b.citizen_id is not None
        [cid] = passkey_ids(web, b.citizen_id)
        url = f"/wallet/passkeys/{cid}/remove"
        get_codes(b)
        got = b.json(f"{url}/options", {}).json()
        with web.ctx.engine.begin() as conn:  # every code used, say from another device
            conn.execute(update(RecoveryCodeRow).values(used_at=web.ctx.clock()))
        r = b.json(url, {"credential": b.device.get(got["publicKey"]),
                         "ceremony": got["ceremony"], "fields": {}})
        assert r.status_code == 409, r.text
        assert "only passkey" in r.json()["detail"]
        assert passkey_ids(web, b.citizen_id) == [cid]
        assert entries(web, "passkey.removed") == []


def test_forms_need_the_csrf_token(tmp_path: Path) -> None:
    with open_wallet(tmp_path) as web:
        b = web.sign_up("My phone")
        assert b.citizen_id is not None
        [cid] = passkey_ids(web, b.citizen_id)
        r = b.form("/wallet/passkeys/rename", {"credential_id": cid, "label": "x"}, csrf="")
        assert r.status_code == 403
        assert names(page(b)) == ["My phone"]


# -- recovery codes --------------------------------------------------------------------


def test_recovery_gets_a_citizen_who_lost_every_device_back_in(tmp_path: Path) -> None:
    with open_wallet(tmp_path) as web:
        b = web.sign_up("Lost phone")
        assert b.citizen_id is not None
        codes = get_codes(b)
        assert "You have <strong>10</strong> unused recovery codes." in page(b)

        # A new browser on a new device, no passkey for this account.
        fresh = web.browser()
        r = fresh.form("/wallet/recover", {"code": codes[3].lower()})
        assert r.status_code == 303
        assert r.headers["location"] == "/wallet/passkeys?done=recovered"
        html = page(fresh, "?done=recovered")
        assert "Add a passkey on this device now" in html
        assert names(html) == ["Lost phone"]  # it is the same account
        assert "You have <strong>9</strong> unused recovery codes." in html

        new_phone = add_passkey(fresh, "New phone")
        assert sign_in(web, new_phone) == b.citizen_id

        again = web.browser().form("/wallet/recover", {"code": codes[3]})
        assert again.status_code == 400
        assert "used already" in again.text


def test_only_new_codes_that_replace_old_ones_say_the_old_ones_stopped(tmp_path: Path
                                                                      ) -> None:
    with open_wallet(tmp_path) as web:
        b = web.sign_up()
        first = b.form("/wallet/recovery-codes")  # the first set, right after sign-up
        assert first.status_code == 200
        assert "no longer work" not in first.text and "replace" not in first.text
        codes = _CODE.findall(first.text)
        assert web.browser().form("/wallet/recover", {"code": codes[0]}).status_code == 303
        again = b.form("/wallet/recovery-codes")
        assert "These codes replace the 9 unused codes you had before: they no longer " \
               "work." in " ".join(again.text.split())
        assert web.browser().form("/wallet/recover", {"code": codes[1]}).status_code == 400


def test_recovery_codes_are_rate_limited(tmp_path: Path) -> None:
    with open_wallet(tmp_path) as web:
        b = web.sign_up()
        codes = get_codes(b)
        guesser = web.browser()
        for _ in range(5):
            r = guesser.form("/wallet/recover", {"code": "AAAA-BBBB-CCCC"})
            assert r.status_code == 400
        # The sixth try in the window is refused, even with a right code.
        r = guesser.form("/wallet/recover", {"code": codes[0]})
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) > 0
        assert guesser.client.cookies.get(web.state.cookies.session) is None
