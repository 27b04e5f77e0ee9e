"""The Blue Badge example service: its pages, with the SDK talking to the real vault app
through httpx.ASGITransport (no sockets); the whole journey through the wallet (sign up,
consent, approve or decline, back to a filled-in form); its webhook receiver; and the
launcher registering it with the real `vault` command line."""

from __future__ import annotations

import html
import json
import re
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
import standardwebhooks
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import select
from support.oauthclient import decline
from support.webwallet import ORIGIN, Browser, WebWallet, open_wallet
from typer.testing import CliRunner

from clients.examples import demo
from clients.examples.bluebadge import AppConfig, create_app, load_config
from clients.examples.bluebadge.app import COOKIE
from clients.examples.bluebadge.config import CLIENT_FILE, JWKS_FILE, KEY_FILE
from clients.examples.bluebadge.sessions import Visits
from clients.service import ServiceKey
from ledger.entry import parse_entry
from ledger.sealing import public_body
from vault import cli as vault_cli
from vault.crypto.webhook_signing import printable, signature_headers, webhook_secret
from vault.services import registry
from vault.services.context import unit_of_work
from vault.storage.tables import OAuthRequestRow

APP = "http://localhost:8001"
REQUEST_URI = re.compile(r"urn:ietf:params:oauth:request_uri:[A-Za-z0-9_-]+")


@dataclass
class Example:
    """The Blue Badge app in front of the vault app, and one visitor's browser on it."""

    http: TestClient
    app: FastAPI
    config: AppConfig
    secret: bytes

    @property
    def visits(self) -> Visits:
        return self.app.state.visits  # type: ignore[no-any-return]

    def visit_state(self) -> str:
        visit = self.visits.get(self.http.cookies.get(COOKIE))
        assert visit is not None and visit.pending is not None
        return str(visit.pending["state"])

    def start(self, device: str = "this") -> httpx.Response:
        r: httpx.Response = self.http.post("/apply/start", data={"device": device},
                                            follow_redirects=False)
        return r


@pytest.fixture
def web(tmp_path: Path) -> Iterator[WebWallet]:
    with open_wallet(tmp_path) as w:
        yield w


@pytest.fixture
def badge(web: WebWallet) -> Iterator[Example]:
    """Registered as `clients.examples.demo` registers it (no webhook URL here, so the
    vault's dispatcher does not try to reach port 8001)."""
    key = ServiceKey.generate()
    client_id = registry.register_service(web.ctx, registry.Registration(
        name="Blue Badge team (example app)", description="The SDK's example service",
        purposes=["eligibility_assessment"], categories=["identity.name", "address.home"],
        derived=["age_over_65", "receives:attendance_allowance"], jwk=key.public_jwk(),
        redirect_uris=[f"{APP}/callback"], privacy_notice_url=f"{APP}/privacy", max_days=90))
    secret = webhook_secret(web.app.state.vault.app_secret, client_id)
    config = AppConfig(vault_url=ORIGIN, client_id=client_id, key=key,
                       webhook_secret=printable(secret), public_url=APP)
    app = create_app(config, transport=httpx.ASGITransport(app=web.app))
    with TestClient(app, base_url=APP) as http:
        yield Example(http, app, config, secret)


# -- pages -------------------------------------------------------------------------------


def test_the_start_page_says_what_is_asked_and_why(badge: Example) -> None:
    r = badge.http.get("/")
    assert r.status_code == 200
    page = r.text
    assert '<html lang="en-GB">' in page and "<h1>Apply for a Blue Badge</h1>" in page
    for asked in ("Your name", "Your home address", "Whether you are 65 or over",
                  "Whether you get Attendance Allowance", "we do not see your date of birth"):
        assert asked in page
    assert ">Fill in from my Citizen Data Vault</button>" in page
    # Nothing from elsewhere: one local stylesheet, no script at all.
    assert "<script" not in page and 'href="/static/bluebadge.css"' in page
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert badge.http.get("/static/bluebadge.css").status_code == 200
    # The privacy notice the vault's consent screen links to.
    assert "<h1>Privacy notice</h1>" in badge.http.get("/privacy").text


def test_fill_in_pushes_the_request_and_sends_the_browser_to_the_vault(
        badge: Example, web: WebWallet) -> None:
    r = badge.start()
    assert r.status_code == 303
    where = urlsplit(r.headers["location"])
    assert f"{where.scheme}://{where.netloc}{where.path}" == f"{ORIGIN}/oauth/authorize"
    query = {k: v[0] for k, v in parse_qs(where.query).items()}
    assert set(query) == {"client_id", "request_uri"}
    assert query["client_id"] == badge.config.client_id
    assert REQUEST_URI.fullmatch(query["request_uri"])
    # The vault holds the pushed request, with the terms the app asked for.
    with unit_of_work(web.ctx) as work:
        rows = work.session.execute(select(OAuthRequestRow)).scalars().all()
    assert [row.client_id for row in rows] == [badge.config.client_id]
    # The browser holds a visit id only: HttpOnly, SameSite=Lax (it must come back with
    # the vault's redirect); the state and PKCE verifier stay on the server.
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower()
    state = badge.visit_state()
    assert state not in cookie and state not in r.headers["location"]


def test_on_a_phone_the_page_shows_the_request_as_a_qr_code(badge: Example) -> None:
    r = badge.start("phone")
    assert r.status_code == 200
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in r.text
    assert 'role="img" aria-label="QR code' in r.text
    assert f'href="{ORIGIN}/oauth/authorize?client_id=' in r.text


def test_a_callback_with_a_wrong_state_is_refused_and_the_real_one_still_works(
        badge: Example) -> None:
    badge.start()
    state = badge.visit_state()
    r = badge.http.get("/callback?" + urlencode({"code": "x", "state": "forged",
                                                 "iss": ORIGIN}))
    assert r.status_code == 400 and "We cannot use this answer" in r.text
    assert badge.visit_state() == state  # a forged callback does not spoil the real one
    stranger = TestClient(badge.app, base_url=APP)  # no visit at all
    r = stranger.get("/callback?" + urlencode({"code": "x", "state": state, "iss": ORIGIN}))
    assert r.status_code == 400


def test_access_denied_shows_the_you_said_no_page(badge: Example) -> None:
    badge.start()
    r = badge.http.get("/callback?" + urlencode({
        "error": "access_denied", "error_description": "The citizen declined",
        "state": badge.visit_state(), "iss": ORIGIN}))
    assert r.status_code == 200
    assert "<h1>You said no</h1>" in r.text and "fill in the form yourself" in r.text


def test_the_form_can_be_filled_in_by_hand(badge: Example) -> None:
    r = badge.http.post("/apply/submit", data={"given": "Ada"})
    assert r.status_code == 400  # no visit yet
    form = badge.http.get("/apply/form")
    assert 'name="age_over_65"' in form.text and "From your Citizen Data Vault" not in form.text
    r = badge.http.post("/apply/submit", data={"given": "Ada", "family": "Lovelace"})
    assert r.status_code == 400 and "There is a problem" in r.text
    assert '<a href="#postcode">Enter your postcode</a>' in r.text
    r = badge.http.post("/apply/submit", data={
        "given": "Ada", "family": "Lovelace", "line1": "12 St James's Square",
        "town": "London", "postcode": "SW1Y 4JH", "age_over_65": "yes",
        "receives:attendance_allowance": "no"})
    assert r.status_code == 200 and "Application sent" in r.text
    assert "You are 65 or over." in r.text and "You do not get Attendance Allowance." in r.text


# -- webhooks ----------------------------------------------------------------------------


def _delivery(secret: bytes, body: bytes, *, at: int | None = None) -> dict[str, str]:
    return signature_headers(secret, message_id="msg_test1", body=body,
                             timestamp=int(time.time()) if at is None else at)


EVENT = json.dumps({"type": "grant.revoked", "timestamp": "2026-11-22T09:00:00Z",
                    "data": {"grant_id": "gr_abc", "state": "revoked",
                             "ledger_index": 41}}).encode()


def test_the_webhook_receiver_records_a_signed_event(badge: Example) -> None:
    r = badge.http.post("/webhooks/vault", content=EVENT, headers=_delivery(badge.secret, EVENT))
    assert r.status_code == 204
    again = badge.http.post("/webhooks/vault", content=EVENT,
                            headers=_delivery(badge.secret, EVENT))
    assert again.status_code == 204  # a retried delivery is answered, and kept once
    status = badge.http.get("/status").text
    assert status.count('data-label="Event">grant.revoked</td>') == 1 and "gr_abc" in status
    # The Standard Webhooks reference library signs the same way.
    hook = standardwebhooks.Webhook(printable(badge.secret))
    stamp = int(time.time())
    signature = hook.sign("msg_test2", datetime.fromtimestamp(stamp, UTC), EVENT.decode())
    r = badge.http.post("/webhooks/vault", content=EVENT, headers={
        "webhook-id": "msg_test2", "webhook-timestamp": str(stamp),
        "webhook-signature": signature})
    assert r.status_code == 204


def test_the_webhook_receiver_refuses_what_does_not_check_out(badge: Example) -> None:
    headers = _delivery(badge.secret, EVENT)
    tampered = EVENT.replace(b"revoked", b"resumed")
    assert badge.http.post("/webhooks/vault", content=tampered,
                           headers=headers).status_code == 400
    other = _delivery(b"\x01" * 32, EVENT)
    assert badge.http.post("/webhooks/vault", content=EVENT, headers=other).status_code == 400
    stale = _delivery(badge.secret, EVENT, at=int(time.time()) - 600)
    assert badge.http.post("/webhooks/vault", content=EVENT, headers=stale).status_code == 400
    assert "None yet" in badge.http.get("/status").text


# -- the whole journey through the wallet --------------------------------------------------


def _to_consent(b: Browser, badge: Example) -> tuple[str, str]:
    """From the app's button through the vault's authorize endpoint to the consent
    screen: (the wallet's authorize path, the grant id)."""
    to_vault = badge.start().headers["location"]
    assert to_vault.startswith(ORIGIN)
    wallet_path = b.get(to_vault[len(ORIGIN):], follow_redirects=False).headers["location"]
    grant_path = b.get(wallet_path, follow_redirects=False).headers["location"]
    assert grant_path.startswith("/wallet/grants/gr_"), grant_path
    assert "Blue Badge team (example app)" in b.get(grant_path).text
    return wallet_path, grant_path.rsplit("/", 1)[1]


def _back_to_the_app(b: Browser, wallet_return: str) -> str:
    back = str(b.get(wallet_return, follow_redirects=False).headers["location"])
    assert back.startswith(f"{APP}/callback?"), back
    return back[len(APP):]


def test_a_newcomer_approves_in_the_wallet_and_comes_back_to_a_filled_in_form(
        badge: Example, web: WebWallet) -> None:
    b = web.sign_up()  # a citizen with a name, a date of birth and an address (no award)
    _, grant_id = _to_consent(b, badge)
    r = b.passkey_post(f"/wallet/grants/{grant_id}/approve")
    assert r.status_code == 200, r.text
    back = _back_to_the_app(b, r.json()["redirect"])
    callback = badge.http.get(back, follow_redirects=False)
    assert callback.status_code == 303 and callback.headers["location"] == "/apply/form"
    page = badge.http.get("/apply/form").text
    for value in ('value="Ada"', 'value="Lovelace"', 'value="12 St James&#39;s Square"',
                  'value="London"', 'value="SW1Y 4JH"', "You are 65 or over.",
                  "Your vault holds no Attendance Allowance award for you.",
                  "From your Citizen Data Vault", f"<code>{grant_id}</code>"):
        assert value in page, value
    visit = badge.visits.get(badge.http.cookies.get(COOKIE))
    assert visit is not None and visit.grant is not None and visit.grant.grant_id == grant_id
    assert visit.pending is None  # each answer is used once
    index = visit.form.ledger_index
    assert isinstance(index, int) and f"entry\n    <strong>{index}</strong>" in page
    # The read is the ledger's entry at that index, for this grant.
    entry = parse_entry(b.get(f"/ledger/entries?start={index}&limit=1").content.rstrip())
    assert (entry.seq, entry.kind, public_body(entry)["grant_id"]) == (
        index, "data.accessed", grant_id), entry
    sent = badge.http.post("/apply/submit", data={
        "given": "Ada", "family": "Lovelace", "line1": "12 St James's Square", "line2": "",
        "town": "London", "postcode": "SW1Y 4JH"})
    assert sent.status_code == 200 and "Application sent" in sent.text
    assert f"<code>{grant_id}</code>" in sent.text
    # The same answer cannot be used twice.
    again = badge.http.get(back)
    assert again.status_code == 400 and "used already" in again.text


def test_declining_in_the_wallet_brings_the_citizen_back_to_you_said_no(
        badge: Example, web: WebWallet) -> None:
    b = web.sign_up()
    wallet_path, grant_id = _to_consent(b, badge)
    page = badge.http.get(_back_to_the_app(b, decline(b, grant_id)))
    assert page.status_code == 200 and "<h1>You said no</h1>" in page.text
    assert wallet_path.startswith("/wallet/authorize/")


def test_a_qr_code_scanned_by_a_phone_fills_in_the_form_on_that_phone_only(
        badge: Example, web: WebWallet) -> None:
    """The phone comes back without the cookie of the screen that showed the code: the
    answer is taken once, by its state, and the data goes to the phone, never to whoever
    showed the code."""
    b = web.sign_up()
    shown = badge.start("phone")
    m = re.search(r'href="(http://localhost:8000/oauth/authorize\?[^"]+)"', shown.text)
    assert m is not None
    desktop = badge.http.cookies.get(COOKIE)
    badge.http.cookies.clear()  # from here on, this client is the phone
    grant_path = b.get(html.unescape(m.group(1))[len(ORIGIN):]).url.path
    grant_id = grant_path.rsplit("/", 1)[1]
    r = b.passkey_post(f"/wallet/grants/{grant_id}/approve")
    back = _back_to_the_app(b, r.json()["redirect"])
    landed = badge.http.get(back, follow_redirects=False)
    assert landed.status_code == 303 and landed.headers["location"] == "/apply/form"
    phone = badge.http.cookies.get(COOKIE)
    assert phone not in (None, desktop)
    assert 'value="Lovelace"' in badge.http.get("/apply/form").text
    badge.http.cookies.clear()
    badge.http.cookies.set(COOKIE, str(desktop))
    assert 'value="Lovelace"' not in badge.http.get("/apply/form").text
    assert badge.http.get(back).status_code == 400  # and only once


# -- the launcher's registration, with the real `vault` command line -------------------------


def _in_process(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """The same `vault` command line, run in this process (no new interpreter: fast)."""
    result = CliRunner().invoke(vault_cli.app, argv[1:])
    return subprocess.CompletedProcess(argv, result.exit_code, result.stdout, result.stderr)


def test_the_launcher_registers_the_app_once_and_again_when_the_vault_forgets_it(
        tmp_path: Path) -> None:
    data = tmp_path / "data"
    vault = demo.vault_command()
    assert Path(vault[0]).name == "vault"  # the script of this very environment
    # The launcher registers once the vault is up; here, a vault made without serving it
    # (`vault service add` refuses a folder with no vault).
    assert _in_process([*vault, "db", "upgrade", "--data-dir", str(data)]).returncode == 0
    first = demo.register(vault, data, app_url=APP)  # the real script, in a subprocess
    assert first.new and first.client_id.startswith("svc_")
    assert first.webhook_secret is not None and first.webhook_secret.startswith("whsec_")
    folder = data / "bluebadge"
    for name in (KEY_FILE, CLIENT_FILE, JWKS_FILE):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600, name
    jwks = json.loads((folder / JWKS_FILE).read_text())
    key = ServiceKey.from_file(folder / KEY_FILE)
    assert jwks == {"keys": [key.public_jwk()]}
    config = load_config(data, vault_url=ORIGIN)
    assert (config.client_id, config.webhook_secret) == (first.client_id, first.webhook_secret)
    assert config.key.public_jwk() == key.public_jwk()
    listed = _in_process([*vault, "service", "list", "--json", "--data-dir", str(data)])
    [service] = [s for s in json.loads(listed.stdout) if s["client_id"] == first.client_id]
    assert service["name"] == "Blue Badge team (example app)" and service["max_days"] == 90
    assert service["derived"] == ["age_over_65", "receives:attendance_allowance"]

    second = demo.register(vault, data, app_url=APP, run=_in_process)
    assert (second.new, second.client_id, second.webhook_secret) == (
        False, first.client_id, first.webhook_secret)
    # Another port for the app means another redirect URI: registered again.
    moved = demo.register(vault, data, app_url="http://localhost:8002", run=_in_process)
    assert moved.new and moved.client_id != first.client_id

    for db in data.glob("vault.db*"):  # a fresh database: the vault has never heard of it
        db.unlink()
    assert _in_process([*vault, "db", "upgrade", "--data-dir", str(data)]).returncode == 0
    third = demo.register(vault, data, app_url=APP, run=_in_process)
    assert third.new and third.client_id not in (first.client_id, moved.client_id)
    assert load_config(data, vault_url=ORIGIN).client_id == third.client_id
