"""A service and a newcomer end to end, over a real socket, with the answer in Chromium.

The service uses the SDK (clients.service.VaultClient) against a vault served by uvicorn;
the citizen follows the service's link (on a small web server of the test's own, another
origin, standing for the service's web app) in Chromium with a virtual passkey device:
sign in is needed, so they create an account, come back to the request, approve it with
the passkey, and the browser lands on the service's redirect URI. The SDK finishes the
authorization, reads the data, and after the citizen revokes in the wallet, its next read
raises GrantRevoked.

Declining goes back to the service too (with error=access_denied, state and iss), though
the wallet's CSP says form-action 'self': no CSP violation on the way, for either answer.
On the way, a failed passkey check on the consent screen shows its error above the
Approve and Decline buttons, which stay on one row.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import pytest
from browser.harness import (
    MOBILE_VIEWPORT,
    Authenticator,
    at,
    button,
    grant_state,
    newest_citizen,
    snap,
)
from livevault import LiveVault
from support.vaultworld import give_ada_data

from clients.service import Access, GrantRevoked, PersonalData, ServiceKey, VaultClient
from vault.services import registry

if TYPE_CHECKING:
    from playwright.sync_api import ConsoleMessage, Page

    from vault.api.deps import AppState
    from vault.services.context import VaultContext

pytestmark = pytest.mark.browser

TERMS = PersonalData(purpose="eligibility_assessment",
                     categories=["identity.name", "address.home"], derived=["age_over_65"],
                     duration="P30D", access=Access.periodic(max_reads=5), data_life="P30D",
                     justification="To check whether you can have a Blue Badge.")


class ServiceSite:
    """The service's own web server on loopback, another origin than the vault's: its
    /start page links to the vault (`link`), and it records each callback it receives."""

    def __init__(self) -> None:
        self.arrived: list[str] = []
        self.link = ""
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/callback"):  # not /favicon.ico
                    site.arrived.append(f"{site.url}{self.path}")
                body = b"<!doctype html><title>Blue Badge</title><h1>Thank you</h1>"
                if self.path == "/start":
                    body = (f'<!doctype html><title>Blue Badge</title><a href="'
                            f'{html.escape(site.link)}">Share from my vault</a>').encode()
                self.send_response(200)
                self.send_header("content-type", "text/html")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://localhost:{self.server.server_address[1]}"
        self.redirect_uri = self.url + "/callback"


@pytest.fixture
def service_site() -> Iterator[ServiceSite]:
    site = ServiceSite()
    thread = threading.Thread(target=site.server.serve_forever, daemon=True)
    thread.start()
    yield site
    site.server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def service(vault_state: AppState, service_site: ServiceSite) -> tuple[str, ServiceKey]:
    """The Blue Badge team, registered with the site's callback: (client id, key)."""
    key = ServiceKey.generate()
    client_id = registry.register_service(vault_state.ctx, registry.Registration(
        name="Blue Badge team", description="Decides who can have a Blue Badge.",
        purposes=["eligibility_assessment"], categories=["identity.name", "address.home"],
        derived=["age_over_65"], jwk=key.public_jwk(),
        redirect_uris=[service_site.redirect_uri],
        privacy_notice_url="https://badges.example.test/privacy", max_days=90))
    return client_id, key


@pytest.fixture
def csp_problems(page: Page) -> list[str]:
    """Every CSP violation on the page (the event, and Chromium's console words for it),
    and any other console error."""
    found: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" or "Content Security Policy" in message.text:
            found.append(f"{message.type}: {message.text}")

    page.on("console", on_console)
    page.context.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => console.error("
        "'CSP violation: ' + e.violatedDirective + ' blocked ' + e.blockedURI))")
    return found


def sign_up_from_the_service(page: Page, ctx: VaultContext, site: ServiceSite,
                             authorization_url: str) -> None:
    """From the service's page, a newcomer signs in first, so they create an account,
    and comes straight back to the consent screen."""
    site.link = authorization_url
    page.goto(f"{site.url}/start")
    page.get_by_role("link", name="Share from my vault").click()
    page.wait_for_url(lambda url: "/wallet/signin?next=/wallet/authorize/" in url)
    asking = "Blue Badge team is asking for your data."
    assert page.get_by_text(asking).is_visible()
    page.get_by_role("link", name="Create an account").click()
    assert page.get_by_text(asking).is_visible()
    page.get_by_label("Name for this device").fill("My phone")
    button(page, "Create a passkey").click()
    page.wait_for_url(lambda url: "/wallet/welcome?next=/wallet/authorize/" in url)
    give_ada_data(ctx, newest_citizen(ctx))
    page.get_by_role("link", name="Skip for now").click()
    page.wait_for_url(lambda url: "/wallet/grants/gr_" in url)
    assert page.get_by_role("heading", level=1).inner_text() == \
        "Blue Badge team is asking to use some of your information"
    assert page.get_by_text("we take you back to Blue Badge team").is_visible()


def arrived(site: ServiceSite, issuer: str) -> dict[str, str]:
    """The one callback the service received: its query, with state and iss checked."""
    [callback] = site.arrived
    assert callback.startswith(site.redirect_uri + "?"), callback
    query = {k: v for k, [v] in parse_qs(urlsplit(callback).query).items()}
    assert query.pop("iss") == issuer, query
    return query


def test_a_newcomer_approves_a_service_in_chromium_and_the_sdk_reads(
        live_wallet: LiveVault, vault_state: AppState, page: Page,
        authenticator: Authenticator, service_site: ServiceSite,
        service: tuple[str, ServiceKey], csp_problems: list[str]) -> None:
    ctx = vault_state.ctx
    redirect = service_site.redirect_uri
    client_id, key = service

    with VaultClient(live_wallet.url, client_id=client_id, key=key) as vault:
        pending = vault.start_authorization(TERMS, redirect_uri=redirect)
        sign_up_from_the_service(page, ctx, service_site, pending.url)
        snap(page, "service journey consent")
        button(page, "Approve").click()
        page.wait_for_url(lambda url: url.startswith(redirect))
        assert page.get_by_role("heading", name="Thank you").is_visible()
        query = arrived(service_site, live_wallet.url)
        assert set(query) == {"code", "state"} and query["state"] == pending.state
        assert csp_problems == []
        assert len(authenticator.credentials()) == 1

        grant = vault.finish_authorization(service_site.arrived[0], pending)
        release = vault.read(grant)
        assert release.grant_id == grant.grant_id and release.sub == grant.sub
        assert set(release.data) == {"identity.name", "address.home"}
        assert "age_over_65" in release.derived

        # The citizen stops it in the wallet; the service's very next read is refused.
        page.goto(f"/wallet/grants/{grant.grant_id}")
        button(page, "Revoke access").click()
        page.wait_for_url(at(f"/wallet/grants/{grant.grant_id}?done=revoked"))
        assert grant_state(ctx, grant.grant_id) == "revoked"
        with pytest.raises(GrantRevoked):
            vault.read(grant)


def test_declining_a_service_in_chromium_goes_back_to_it_with_access_denied(
        live_wallet: LiveVault, vault_state: AppState, page: Page,
        authenticator: Authenticator, service_site: ServiceSite,
        service: tuple[str, ServiceKey], csp_problems: list[str]) -> None:
    client_id, key = service
    with VaultClient(live_wallet.url, client_id=client_id, key=key) as vault:
        pending = vault.start_authorization(TERMS, redirect_uri=service_site.redirect_uri)
    sign_up_from_the_service(page, vault_state.ctx, service_site, pending.url)
    grant_id = page.url.rsplit("/", 1)[1]

    # The fingerprint is not recognised: the error shows above the buttons, which stay
    # side by side on a desktop and stacked, below it, at 375 px.
    authenticator.set_user_verified(False)
    button(page, "Approve").click()
    error = page.get_by_role("alert").filter(has_text="cancelled or timed out")
    error.wait_for()
    approve, decline = button(page, "Approve"), button(page, "Decline")
    a, d, e = (x.bounding_box() for x in (approve, decline, error))
    assert a and d and e
    assert abs(a["y"] - d["y"]) < 1 and a["x"] + a["width"] < d["x"], (a, d)
    assert e["y"] + e["height"] <= a["y"], (e, a)  # above the row, not inside it
    snap(page, "consent after a failed passkey check")
    page.set_viewport_size(MOBILE_VIEWPORT)
    a, d, e = (x.bounding_box() for x in (approve, decline, error))
    assert a and d and e
    assert e["y"] + e["height"] <= a["y"] <= d["y"], (e, a, d)
    assert e["x"] + e["width"] <= MOBILE_VIEWPORT["width"]

    decline.click()
    page.wait_for_url(lambda url: url.startswith(service_site.redirect_uri))
    assert page.get_by_role("heading", name="Thank you").is_visible()
    query = arrived(service_site, live_wallet.url)
    assert query == {"error": "access_denied", "error_description": "the citizen declined",
                     "state": pending.state}
    assert csp_problems == []
    assert grant_state(vault_state.ctx, grant_id) == "denied"
    # Back in the browser history: the wallet page, not the way back again.
    page.go_back()
    page.wait_for_url(at(f"/wallet/grants/{grant_id}"))
