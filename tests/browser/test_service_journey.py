"""A service and a newcomer end to end, over a real socket, with the approval in Chromium.

The service uses the SDK (clients.service.VaultClient) against a vault served by uvicorn;
the citizen follows the authorization URL in Chromium with a virtual passkey device:
sign in is needed, so they create an account, come back to the request, approve it with
the passkey, and the browser lands on the service's redirect URI (a small web server
of the test's own, standing for the service's web app). The SDK finishes the authorization, reads
the data, and after the citizen revokes in the wallet, its next read raises GrantRevoked.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

import pytest
from browser.harness import Authenticator, at, button, grant_state, newest_citizen, snap
from livevault import LiveVault
from support.vaultworld import give_ada_data

from clients.service import Access, GrantRevoked, PersonalData, ServiceKey, VaultClient
from vault.services import registry

if TYPE_CHECKING:
    from playwright.sync_api import Page

    from vault.api.deps import AppState

pytestmark = pytest.mark.browser

TERMS = PersonalData(purpose="eligibility_assessment",
                     categories=["identity.name", "address.home"], derived=["age_over_65"],
                     duration="P30D", access=Access.periodic(max_reads=5), data_life="P30D",
                     justification="To check whether you can have a Blue Badge.")


class ServiceSite:
    """The service's own web server on loopback: it records each callback it receives."""

    def __init__(self) -> None:
        self.arrived: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/callback"):  # not /favicon.ico
                    site.arrived.append(f"{site.url}{self.path}")
                body = b"<!doctype html><title>Blue Badge</title><h1>Thank you</h1>"
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


def test_a_newcomer_approves_a_service_in_chromium_and_the_sdk_reads(
        live_wallet: LiveVault, vault_state: AppState, page: Page,
        authenticator: Authenticator, service_site: ServiceSite) -> None:
    ctx = vault_state.ctx
    redirect = service_site.redirect_uri
    key = ServiceKey.generate()
    client_id = registry.register_service(ctx, registry.Registration(
        name="Blue Badge team", description="Decides who can have a Blue Badge.",
        purposes=["eligibility_assessment"], categories=["identity.name", "address.home"],
        derived=["age_over_65"], jwk=key.public_jwk(), redirect_uris=[redirect],
        privacy_notice_url="https://badges.example.test/privacy", max_days=90))

    with VaultClient(live_wallet.url, client_id=client_id, key=key) as vault:
        pending = vault.start_authorization(TERMS, redirect_uri=redirect)

        # The newcomer follows the link: sign in first, so they create an account...
        page.goto(pending.url)
        page.wait_for_url(lambda url: "/wallet/signin?next=/wallet/authorize/" in url)
        page.get_by_role("link", name="Create an account").click()
        page.get_by_label("Name for this device").fill("My phone")
        button(page, "Create a passkey").click()
        page.wait_for_url(lambda url: "/wallet/welcome?next=/wallet/authorize/" in url)
        give_ada_data(ctx, newest_citizen(ctx))
        # ...and come straight back to the request.
        page.get_by_role("link", name="Skip for now").click()
        page.wait_for_url(lambda url: "/wallet/grants/gr_" in url)
        assert page.get_by_role("heading", level=1).inner_text() == \
            "Blue Badge team is asking to use some of your information"
        assert page.get_by_text("we take you back to Blue Badge team").is_visible()
        snap(page, "service journey consent")
        button(page, "Approve").click()
        page.wait_for_url(lambda url: url.startswith(redirect))
        [callback] = service_site.arrived
        assert len(authenticator.credentials()) == 1

        grant = vault.finish_authorization(callback, pending)
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
