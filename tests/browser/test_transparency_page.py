"""The public transparency page in real Chromium: axe finds nothing serious or critical,
it fits a 375 px screen without scrolling sideways, and its charts render as images.

Screenshots (desktop and 375 px) and the axe report land in test-artifacts/wallet/ as
"<NN>-transparency".
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest
from browser.harness import MOBILE_VIEWPORT, page_check
from support.vaultworld import JWK, add_passkey, ask, world

from ledger.sqlstore import SqlLedger
from vault.domain.grants import Access
from vault.services import access, grants, registry
from vault.services.transparency_counts import count_ledger
from vault.storage.database import read_only
from wallet.passkeys.software import SoftAuthenticator

if TYPE_CHECKING:
    from livevault import LiveVault
    from playwright.sync_api import Page

    from vault.api.deps import AppState

pytestmark = pytest.mark.browser


def _some_use(state: AppState, origin: str) -> None:
    """Two services, grants in three states, reads both exact (12) and hidden (3)."""
    ctx = state.ctx
    w = world(ctx)
    registry.register_service(ctx, registry.Registration(
        name="Free school meals check", description="Checks meals for children at school",
        purposes=["service_provision"], categories=["identity.name"], jwk=JWK,
        redirect_uris=["https://meals.example.gov/cb"],
        privacy_notice_url="https://meals.example.gov/privacy",
        dpia_url="https://meals.example.gov/dpia", max_days=30))
    device = add_passkey(ctx, w.citizen_id, SoftAuthenticator(origin=origin))
    reading = ask(ctx, w, access=Access("periodic", max_reads=100))
    answer_only = ask(ctx, w, access=Access("periodic", max_reads=100), categories=[])
    for g in (reading, answer_only):
        grants.approve_grant(ctx, g.id, citizen_id=w.citizen_id,
                             proof=device.proof(challenge=g.terms_hash))
    for g, times in ((reading, 12), (answer_only, 3)):
        for _ in range(times):
            access.read_under_grant(ctx, service_id=w.service_id, grant_id=g.id)
    for _ in range(2):
        grants.deny_grant(ctx, ask(ctx, w).id, citizen_id=w.citizen_id)
    ask(ctx, w)
    # The counts come from the ledger once a checkpoint signs it: wait for them.
    with read_only(ctx.engine).begin() as conn:
        size = SqlLedger(conn).size()
    deadline = time.monotonic() + 5
    while count_ledger(ctx) < size:
        assert time.monotonic() < deadline, "the ledger was never counted"
        time.sleep(0.05)


def test_transparency_page_is_accessible_and_fits_a_phone(
    live_wallet: LiveVault, vault_state: AppState, page: Page,
) -> None:
    assert live_wallet.app is not None
    _some_use(vault_state, live_wallet.url)

    page.goto("/transparency")
    assert page.get_by_role("heading", level=1).inner_text() == "How this vault is used"
    for name in ("Grants by the state they are in now", "Data accesses per month",
                 "Data accesses by service, all time", "Data accesses by purpose, all time"):
        chart = page.get_by_role("img", name=name)
        assert chart.count() == 1 and chart.bounding_box() is not None, name
    assert page.get_by_role("heading", name="Free school meals check").count() == 1
    assert page.locator("td.hidden-number").first.inner_text() == "fewer than 10"
    page_check(page, "transparency")  # axe: no serious or critical violation

    page.set_viewport_size(MOBILE_VIEWPORT)
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px at 375 px"
    # Wide tables scroll inside their own focusable region instead.
    regions = page.locator(".table-wrap[role=region][tabindex='0']")
    assert regions.count() >= 1
