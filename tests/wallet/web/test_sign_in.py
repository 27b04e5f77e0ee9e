"""Sign up and sign in over HTTP: a new citizen and a discoverable, user-verified passkey
in one transaction; username-less sign in; every bad passkey answer refused with a
reason and words; "next" only to wallet pages; and attempts limited per client."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session
from support.ledgerview import opened_entries
from support.webwallet import ORIGIN, Browser, WebWallet
from webauthn import verify_authentication_response, verify_registration_response

from ledger.entry import Entry
from ledger.sqlstore import entries_table
from vault.storage.tables import (
    CitizenRow,
    PasskeyRow,
    RecordRow,
    WalletSessionRow,
)
from wallet.errors import TooManyAttempts
from wallet.passkeys.software import SoftAuthenticator, b64url, unb64url
from wallet.security import AttemptLimiter

PROBLEM = "application/problem+json"


# -- helpers ---------------------------------------------------------------------------


def entries(web: WebWallet, kind: str) -> list[Entry]:
    with web.ctx.engine.connect() as conn:
        found = opened_entries(conn)
    return [e for e in found if e.kind == kind]


def counts(web: WebWallet) -> dict[str, int]:
    """How many citizens, passkeys, records, sessions and ledger entries there are."""
    with web.ctx.engine.connect() as conn:
        return {t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
                for t in (CitizenRow.__table__, PasskeyRow.__table__,  # type: ignore[attr-defined]
                          RecordRow.__table__, WalletSessionRow.__table__,  # type: ignore[attr-defined]
                          entries_table)}


def problem(r: httpx.Response, status: int, reason: str) -> dict[str, Any]:
    """An RFC 9457 problem with this status and passkey refusal reason."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = r.json()
    assert body["status"] == status and body["reason"] == reason, body
    assert body["type"] == f"urn:citizen-vault:problem:passkey-rejected:{reason}"
    return body


def signed_in_as(web: WebWallet, b: Browser) -> str | None:
    token = b.client.cookies.get(web.state.cookies.session)
    citizen_id: str | None = web.state.sessions.resolve(token, now=web.ctx.clock())
    return citizen_id


def ceremony(b: Browser, kind: str, fields: dict[str, str] | None = None, **device_kw: Any
             ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Options from the vault and the device's answer: (options, body to post)."""
    token = b.csrf()
    got = b.json(f"/wallet/{kind}/options", fields or {}, csrf=token)
    assert got.status_code == 200, got.text
    options = got.json()["publicKey"]
    answer = (b.device.create(options, **device_kw) if kind == "signup"
              else b.device.get(options, **device_kw))
    return options, {"credential": answer, "ceremony": got.json()["ceremony"],
                     "fields": fields or {}}


def browser_with(web: WebWallet, device: SoftAuthenticator, host: str = "testclient"
                 ) -> Browser:
    """A fresh browser (no cookies) holding `device`, at client address `host`."""
    return Browser(TestClient(web.app, base_url=ORIGIN, client=(host, 50000)), device=device)


# -- sign up ---------------------------------------------------------------------------


def test_sign_up_options_ask_for_a_discoverable_user_verified_passkey(web: WebWallet) -> None:
    b = web.browser()
    got = b.json("/wallet/signup/options", {"label": "My phone"})
    assert got.status_code == 200, got.text
    body = got.json()
    options = body["publicKey"]
    assert options["authenticatorSelection"] == {
        "residentKey": "required", "requireResidentKey": True, "userVerification": "required"}
    assert options["attestation"] == "none"
    assert options["rp"] == {"id": "localhost", "name": "Citizen Data Vault"}
    assert options["excludeCredentials"] == []
    assert isinstance(body["ceremony"], str) and body["ceremony"]
    # The account the passkey is for: a new citizen id, not made until the passkey is.
    citizen_id = unb64url(options["user"]["id"]).decode()
    assert citizen_id.startswith("cit_")
    with Session(web.ctx.engine) as session:
        assert session.get(CitizenRow, citizen_id) is None
    again = b.json("/wallet/signup/options", {}).json()["publicKey"]
    assert again["user"]["id"] != options["user"]["id"]
    assert again["challenge"] != options["challenge"]


def test_sign_up_makes_a_citizen_a_passkey_its_ledger_entry_and_a_session(
    web: WebWallet,
) -> None:
    b = web.browser()
    before = counts(web)
    options, body = ceremony(b, "signup", {"label": "Ada's phone"})
    r = b.json("/wallet/signup", body)
    assert r.status_code == 200, r.text
    assert r.json() == {"redirect": "/wallet/welcome"}

    citizen_id = unb64url(options["user"]["id"]).decode()
    assert signed_in_as(web, b) == citizen_id
    credential_id = body["credential"]["id"]
    cose = b.device.credentials[credential_id].public_key
    with Session(web.ctx.engine) as session:
        citizen = session.get(CitizenRow, citizen_id)
        passkey = session.get(PasskeyRow, credential_id)
        assert citizen is not None and passkey is not None
        assert passkey.citizen_id == citizen_id and passkey.public_key == cose
        subject = citizen.subject
    [entry] = entries(web, "passkey.registered")
    assert entry.body["credential_id"] == credential_id
    assert entry.body["public_key"] == b64url(cose)  # the COSE key, for offline checks
    assert entry.body["subject"] == subject
    assert "Ada" not in str(entry.body)  # the label is private
    after = counts(web)
    assert after["citizens"] == before["citizens"] + 1
    assert after["passkeys"] == before["passkeys"] + 1
    assert after["wallet_sessions"] == before["wallet_sessions"] + 1
    # The welcome page is for the signed-in citizen.
    assert b.get("/wallet/welcome").status_code == 200


def test_every_passkey_registration_is_on_the_ledger_with_its_key(web: WebWallet) -> None:
    ada = web.sign_up()
    laptop = Browser(ada.client, device=SoftAuthenticator(origin=ORIGIN, alg="EdDSA"))
    r = laptop.passkey_post("/wallet/passkeys/add", {"label": "Laptop"},
                            options_path="/wallet/passkeys/options")
    assert r.status_code == 200, r.text
    found = {e.body["credential_id"]: (e.body["public_key"], e.body["alg"])
             for e in entries(web, "passkey.registered")}
    # COSE algorithms: ES256 is -7, EdDSA -8 (RFC 9053).
    assert found == {cid: (b64url(c.public_key), alg)
                     for device, alg in ((ada.device, -7), (laptop.device, -8))
                     for cid, c in device.credentials.items()}


@pytest.mark.parametrize(("knobs", "reason", "words"), [
    ({"uv": False}, "user_not_verified", "did not check who you are"),
    ({"origin": "http://evil.localhost:8000"}, "wrong_origin",
     "used on 'http://evil.localhost:8000', not on 'http://localhost:8000'"),
    ({"rp_id": "other.example"}, "wrong_rp_id", "answered for another site"),
])
def test_a_refused_sign_up_leaves_nothing_behind(
    web: WebWallet, knobs: dict[str, Any], reason: str, words: str
) -> None:
    web.sign_up()  # someone else, so the counts are not all zero
    before = counts(web)
    b = web.browser()
    r = b.passkey_post("/wallet/signup", {"label": "My phone"}, **knobs)
    body = problem(r, 400, reason)
    assert words in body["detail"]
    assert counts(web) == before  # no citizen, no passkey, no ledger entry, no session
    assert web.state.cookies.session not in b.client.cookies
    assert signed_in_as(web, b) is None
    assert b.get("/wallet/welcome", follow_redirects=False).status_code == 303


def test_a_sign_up_answer_counts_once(web: WebWallet) -> None:
    b = web.browser()
    _, body = ceremony(b, "signup", {"label": ""})
    assert b.json("/wallet/signup", body).status_code == 200
    before = counts(web)
    again = web.browser()
    r = again.json("/wallet/signup", body)
    assert "already used" in problem(r, 400, "challenge_unknown")["detail"]
    assert counts(web) == before
    assert web.state.cookies.session not in again.client.cookies


def test_a_failed_sign_up_spends_its_ceremony(web: WebWallet) -> None:
    b = web.browser()
    options, body = ceremony(b, "signup", uv=False)
    problem(b.json("/wallet/signup", body), 400, "user_not_verified")
    # The same ceremony cannot be tried again with a better answer.
    body["credential"] = b.device.create(options)
    problem(b.json("/wallet/signup", body), 400, "challenge_unknown")
    assert counts(web)["citizens"] == 0


# -- sign in ---------------------------------------------------------------------------


def test_sign_in_options_name_nobody_and_ask_for_user_verification(web: WebWallet) -> None:
    got = web.browser().json("/wallet/signin/options", {})
    assert got.status_code == 200, got.text
    options = got.json()["publicKey"]
    assert options.get("allowCredentials", []) == []  # username-less: the device offers
    assert options["userVerification"] == "required"
    assert options["rpId"] == "localhost"
    assert len(unb64url(options["challenge"])) == 32
    assert got.json()["ceremony"]


def test_sign_in_is_username_less(web: WebWallet) -> None:
    ada = web.sign_up()
    [credential_id] = ada.device.credentials
    b = browser_with(web, ada.device)
    _, body = ceremony(b, "signin", {"next": ""})
    assert set(body["fields"]) == {"next"}  # no user name anywhere in what is posted
    r = b.json("/wallet/signin", body)
    assert r.status_code == 200, r.text
    assert r.json() == {"redirect": "/wallet"}
    assert signed_in_as(web, b) == ada.citizen_id
    with Session(web.ctx.engine) as session:
        row = session.get(PasskeyRow, credential_id)
        assert row is not None and row.sign_count == 1 and row.last_used_at is not None
    assert "Your wallet" in b.get("/wallet").text


def test_user_verification_is_required_by_the_library_checks_too(
    web: WebWallet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Our own flag check comes first; py_webauthn is told to require UV as well."""
    seen: list[tuple[str, object]] = []

    def spy(name: str, real: Any) -> Any:
        def call(**kw: Any) -> Any:
            seen.append((name, kw.get("require_user_verification")))
            return real(**kw)
        return call

    monkeypatch.setattr("wallet.passkeys.registration.verify_registration_response",
                        spy("register", verify_registration_response))
    monkeypatch.setattr("wallet.passkeys.authentication.verify_authentication_response",
                        spy("sign in", verify_authentication_response))
    ada = web.sign_up()
    assert browser_with(web, ada.device).passkey_post("/wallet/signin").status_code == 200
    assert seen == [("register", True), ("sign in", True)]


@pytest.mark.parametrize(("knobs", "reason", "words"), [
    ({"origin": "http://evil.localhost:8000"}, "wrong_origin",
     "used on 'http://evil.localhost:8000', not on 'http://localhost:8000'"),
    ({"rp_id": "other.example"}, "wrong_rp_id", "answered for another site, not for "
                                                "'localhost'"),
    ({"uv": False}, "user_not_verified", "no PIN, fingerprint or face"),
    ({"up": False}, "user_not_present", "did not confirm that someone was there"),
    ({"wrong_key": True}, "bad_signature", "signature does not verify"),
])
def test_a_refused_sign_in_says_why_and_signs_nobody_in(
    web: WebWallet, knobs: dict[str, Any], reason: str, words: str
) -> None:
    ada = web.sign_up()
    before = counts(web)
    b = browser_with(web, ada.device)
    body = problem(b.passkey_post("/wallet/signin", **knobs), 400, reason)
    assert words in body["detail"]
    assert body["title"] and len(body["detail"]) > 20
    assert counts(web) == before  # no new session
    assert signed_in_as(web, b) is None
    [credential_id] = ada.device.credentials
    with Session(web.ctx.engine) as session:
        row = session.get(PasskeyRow, credential_id)
        assert row is not None and row.sign_count == 0  # nothing kept from a refusal


def test_a_replayed_sign_in_is_refused(web: WebWallet) -> None:
    ada = web.sign_up()
    b = browser_with(web, ada.device)
    _, body = ceremony(b, "signin")
    assert b.json("/wallet/signin", body).status_code == 200
    sessions = counts(web)["wallet_sessions"]
    thief = browser_with(web, SoftAuthenticator(origin=ORIGIN))
    detail = problem(thief.json("/wallet/signin", body), 400, "challenge_unknown")["detail"]
    assert "already used" in detail
    # Under a fresh ceremony the old answer signed the wrong challenge.
    fresh = thief.json("/wallet/signin/options", {}).json()["ceremony"]
    detail = problem(thief.json("/wallet/signin", {**body, "ceremony": fresh}), 400,
                     "challenge_mismatch")["detail"]
    assert "another challenge" in detail
    assert counts(web)["wallet_sessions"] == sessions
    assert signed_in_as(web, thief) is None


def test_a_counter_going_backwards_is_refused(web: WebWallet) -> None:
    ada = web.sign_up()
    b = browser_with(web, ada.device)
    assert b.passkey_post("/wallet/signin", counter=5).status_code == 200
    for counter in (3, 5):  # backwards, or not moving: a cloned passkey?
        other = browser_with(web, ada.device)
        body = problem(other.passkey_post("/wallet/signin", counter=counter), 400,
                       "counter_regression")
        assert f"went from 5 to {counter}" in body["detail"]
        assert signed_in_as(web, other) is None
    assert browser_with(web, ada.device).passkey_post("/wallet/signin",
                                                      counter=6).status_code == 200


# -- where sign in leads ---------------------------------------------------------------


#: Where a "next" asks to go, and where sign in goes: never to another site.
NEXT = [
    ("/wallet/activity", "/wallet/activity"),
    ("/wallet/grants?show=ended", "/wallet/grants?show=ended"),
    ("", "/wallet"),
    ("//evil.example", "/wallet"),
    ("//evil.example/wallet", "/wallet"),
    ("https://evil.example", "/wallet"),
    ("https://evil.example/wallet", "/wallet"),
    ("http://localhost:8000.evil.example/wallet", "/wallet"),
    ("/\\evil.example", "/wallet"),
    ("/wallet\\..\\..\\evil.example", "/wallet"),
    ("javascript:alert(1)", "/wallet"),
    ("/ledger/checkpoint", "/wallet"),
    ("/wallet/..//evil.example", "/wallet"),
    ("/wallet/%2e%2e/%2fevil.example", "/wallet"),
    ("/wallet/./grants/../activity", "/wallet/activity"),
    ("/oauth/authorize?client_id=svc_x", "/oauth/authorize?client_id=svc_x"),
]


def test_a_deleted_accounts_passkey_hears_it_may_be_gone_and_how_to_start_again(
    web: WebWallet,
) -> None:
    """The vault keeps nothing about deleted accounts, so it cannot tell a deleted
    account's passkey from one never registered: both hear the same words, which cover
    both and say how to start again; the page links to sign-up next to them."""
    ada = web.sign_up()
    assert ada.passkey_post("/wallet/account/delete").status_code == 200
    stranger = SoftAuthenticator(origin=ORIGIN)
    stranger.create({"rp": {"id": "localhost"}, "user": {"id": b64url(b"cit_x")},
                     "challenge": b64url(b"\x00" * 32)})
    details = []
    for i, device in enumerate((ada.device, stranger)):
        b = browser_with(web, device, host=f"192.0.2.{i}")
        body = problem(b.passkey_post("/wallet/signin"), 400, "unknown_credential")
        assert signed_in_as(web, b) is None
        details.append(body["detail"])
    assert details[0] == details[1]
    assert "not registered with the vault, or is no longer" in details[0]
    assert "may have been deleted" in details[0]
    assert "To start again, create a new account" in details[0]
    page = web.browser().get("/wallet/signin").text
    hint = re.search(r'<p data-passkey-hint="unknown_credential" hidden>(.*?)</p>', page,
                     re.S)
    assert hint is not None and '<a href="/wallet/signup">create a new account</a>' \
        in hint.group(1)


def test_signing_out_says_so_on_the_page_it_lands_on(web: WebWallet) -> None:
    ada = web.sign_up()
    r = ada.form("/wallet/signout")
    assert r.status_code == 303 and r.headers["location"] == "/wallet/signin?done=signed-out"
    page = ada.get(r.headers["location"])
    assert page.status_code == 200
    assert '<div class="notice" role="status">You are signed out.</div>' in page.text
    assert "Sign in with a passkey" in page.text and 'aria-label="Main"' not in page.text
    for query in ("", "?done=signed-in", "?done=%3Cb%3E"):  # nothing else says it
        assert "signed out" not in web.browser().get(f"/wallet/signin{query}").text


def test_sign_in_goes_on_only_to_a_wallet_page(web: WebWallet) -> None:
    ada = web.sign_up()
    for i, (asked, goes) in enumerate(NEXT):
        b = browser_with(web, ada.device, host=f"192.0.2.{i}")  # under the attempt limit
        # The sign-in page carries only a safe "next" in its form.
        page = b.get("/wallet/signin", params={"next": asked}).text
        assert f'<input type="hidden" name="next" value="{goes}">' in page, asked
        r = b.passkey_post("/wallet/signin", {"next": asked})
        assert r.status_code == 200, r.text
        assert r.json() == {"redirect": goes}, asked
        # Signed in already, the sign-in page sends the browser straight on, as safely.
        again = b.get("/wallet/signin", params={"next": asked}, follow_redirects=False)
        assert again.status_code == 303 and again.headers["location"] == goes, asked


def test_a_page_that_needs_sign_in_sends_the_browser_to_sign_in_and_back(
    web: WebWallet,
) -> None:
    b = web.browser()
    r = b.get("/wallet/activity", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/wallet/signin?next=/wallet/activity"
    # The wallet's script (and any API client) gets a 401 problem instead.
    r = b.client.get("/wallet/activity", headers={"accept": "application/json"})
    assert r.status_code == 401 and r.headers["content-type"].startswith(PROBLEM)


# -- attempt limits --------------------------------------------------------------------


def _too_many(r: httpx.Response) -> None:
    assert r.status_code == 429, r.text
    wait = int(r.headers["retry-after"])
    assert 1 <= wait <= 60
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["status"] == 429
    assert body["type"] == "urn:citizen-vault:problem:too-many-attempts"
    assert f"wait {wait} seconds" in body["detail"]


def test_more_than_20_sign_in_starts_a_minute_are_refused(web: WebWallet) -> None:
    b = web.browser()
    token = b.csrf()
    for _ in range(20):
        assert b.json("/wallet/signin/options", {}, csrf=token).status_code == 200
    _too_many(b.json("/wallet/signin/options", {}, csrf=token))
    # Finishing counts against the same limit: no guessing through the other door.
    _too_many(b.json("/wallet/signin", {"credential": {}, "ceremony": "x"}, csrf=token))
    # Another client is not held up by this one.
    other = browser_with(web, SoftAuthenticator(origin=ORIGIN), host="203.0.113.9")
    assert other.json("/wallet/signin/options", {}).status_code == 200


def test_more_than_20_sign_in_answers_a_minute_are_refused(web: WebWallet) -> None:
    ada = web.sign_up()  # two attempts: options and answer
    b = browser_with(web, ada.device, host="198.51.100.7")
    token = b.csrf()
    junk = {"credential": {"type": "public-key"}, "ceremony": "made-up", "fields": {}}
    for _ in range(20):
        assert b.json("/wallet/signin", junk, csrf=token).status_code == 400
    _too_many(b.json("/wallet/signin", junk, csrf=token))
    # Even a good answer waits: the limit comes before any check.
    _too_many(b.json("/wallet/signin/options", {}, csrf=token))


def test_the_limit_is_a_sliding_minute() -> None:
    now = [1000.0]
    limiter = AttemptLimiter(limit=20, window=60, clock=lambda: now[0])
    for i in range(20):
        now[0] = 1000.0 + i  # one a second
        limiter.hit("1.2.3.4", what="sign-in")
    with pytest.raises(TooManyAttempts) as exc:
        limiter.hit("1.2.3.4", what="sign-in")
    assert exc.value.retry_after == 41  # when the first of the 20 leaves the window
    assert "too many sign-in attempts" in str(exc.value)
    limiter.hit("5.6.7.8", what="sign-in")  # per client
    now[0] = 1060.0
    limiter.hit("1.2.3.4", what="sign-in")  # the first attempt has left the window
    with pytest.raises(TooManyAttempts):
        limiter.hit("1.2.3.4", what="sign-in")


def test_recovery_codes_are_limited_to_5_tries_with_a_page_for_people(web: WebWallet) -> None:
    b = web.browser()
    for _ in range(5):
        r = b.form("/wallet/recover", {"code": "ABCD-EFGH-JKMN"})
        assert r.status_code == 400 and "That did not work" in r.text
    r = b.form("/wallet/recover", {"code": "ABCD-EFGH-JKMN"})
    assert r.status_code == 429
    assert r.headers["content-type"].startswith("text/html")
    wait = int(r.headers["retry-after"])
    assert 1 <= wait <= 15 * 60
    assert "Too many tries" in r.text and f"wait {wait} seconds" in r.text
