"""A service's privacy notice and DPIA pages (/services/{client_id}/privacy and /dpia) in
real Chromium: axe finds nothing serious or critical on a desktop and at 375 px, neither
page scrolls sideways on a phone, and the policy lets nothing fail to load.

Screenshots and axe reports land in test-artifacts/wallet/ as "<NN>-service-...".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from browser.harness import MOBILE_VIEWPORT, check_accessibility, page_check
from support.vaultworld import JWK

from vault.services import registry

if TYPE_CHECKING:
    from livevault import LiveVault
    from playwright.sync_api import ConsoleMessage, Page

    from vault.api.deps import AppState

pytestmark = pytest.mark.browser

DPIA = ("Riverside Council assessed the Blue Badge service in November 2026.\n\n"
        "The main risk is that an address is kept longer than needed; the team deletes it "
        "when the badge is issued or refused.")


def test_service_pages_are_accessible_on_a_desktop_and_a_phone(
    live_wallet: LiveVault, vault_state: AppState, page: Page,
) -> None:
    client_id = registry.register_service(vault_state.ctx, registry.Registration(
        name="Blue Badge team, Riverside Council",
        description="Decides who can have a Blue Badge for disabled parking.",
        purposes=["eligibility_assessment"], categories=["identity.name", "address.home"],
        derived=["age_over_65", "receives:attendance_allowance"], jwk=JWK,
        redirect_uris=["https://badges.example.gov/cb"], max_days=90,
        controller="Riverside Council", contact="dataprotection@riverside.example",
        dpia_text=DPIA), public_url=live_wallet.url)
    refused: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":  # a CSP refusal, or anything that failed to load
            refused.append(message.text)

    page.on("console", on_console)
    for name, heading in (
        ("privacy", "Privacy notice: Blue Badge team, Riverside Council"),
        ("dpia", "Data protection impact assessment: Blue Badge team, Riverside Council"),
    ):
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(f"/services/{client_id}/{name}")
        assert page.get_by_role("heading", level=1).inner_text() == heading
        assert page.evaluate("document.documentElement.lang") == "en-GB"
        assert page.evaluate("getComputedStyle(document.body).fontFamily").startswith(
            "system-ui")  # the stylesheet loaded under the policy
        page_check(page, f"service {name}")  # axe at desktop width
        page.set_viewport_size(MOBILE_VIEWPORT)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"/{name} scrolls sideways by {overflow}px at 375 px"
        check_accessibility(page, f"service {name} 375")
    privacy_link = page.get_by_role("link", name="Privacy notice of Blue Badge team, "
                                                  "Riverside Council")
    assert privacy_link.count() == 1  # from the DPIA back to the notice
    assert refused == []
