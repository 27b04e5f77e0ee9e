"""Acting for someone in real Chromium (issue 14 §3, part B): switch to them with the header's
"Acting for" control, see in words whose vault it is, approve their request with one's own
passkey (the browser's virtual device), and switch back. Screenshots at 1280 and 375 px,
axe at both widths, no sideways scrolling at 375 px."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from browser.harness import (
    Authenticator,
    at,
    button,
    check_at_375,
    grant_state,
    newest_citizen,
)
from livevault import LiveVault
from support.acting import live_relationship
from support.ledgerview import full_entries
from support.vaultworld import World, add_passkey, ask, blue_badge, give_ada_data

from vault.services import citizens, records
from vault.storage.database import read_only
from wallet.passkeys.software import SoftAuthenticator

if TYPE_CHECKING:
    from playwright.sync_api import Page

    from vault.api.deps import AppState

pytestmark = pytest.mark.browser


def test_acting_for_someone(live_wallet: LiveVault, vault_state: AppState, page: Page,
                            authenticator: Authenticator) -> None:
    from playwright.sync_api import expect  # here: a missing Playwright skips, as conftest says

    ctx = vault_state.ctx
    page.goto("/wallet/signup")
    page.get_by_label("Name for this device").fill("My phone")
    button(page, "Create a passkey").click()
    page.wait_for_url(at("/wallet/welcome"))
    ada = newest_citizen(ctx)
    give_ada_data(ctx, ada)
    [browser_key] = authenticator.credentials()
    # Grace, whose vault Ada will act in; both signed the terms (Ada with a security key
    # of hers; the relationship's own pages are part A's, tested there).
    grace = citizens.enrol_citizen(ctx)
    records.write_record(ctx, grace.id, "identity.name", {"given": "Grace", "family": "Hopper"})
    grace_key = add_passkey(ctx, grace.id, SoftAuthenticator(origin=live_wallet.url))
    ada_key = add_passkey(ctx, ada, SoftAuthenticator(origin=live_wallet.url))
    rid = live_relationship(ctx, principal=grace.id, delegate=ada, principal_device=grace_key,
                            delegate_device=ada_key, actions=("view", "approve"))
    grant = ask(ctx, World(blue_badge(ctx), grace.id, grace.subject))

    # Her own wallet: the switch, no banner.
    page.goto("/wallet")
    expect(page.get_by_label("Acting for")).to_have_value("")
    expect(page.get_by_text("You are acting for")).to_have_count(0)
    # Grace's request waits on Ada's own requests page too, marked with Grace's name.
    page.goto("/wallet/requests")
    expect(page.get_by_role("heading", name="Waiting for Grace Hopper\u2019s answer")
           ).to_be_visible()

    # Switch to Grace: every page says whose vault it is, in words.
    page.get_by_label("Acting for").select_option(label="Grace Hopper")
    button(page, "Switch").click()
    page.wait_for_url(at("/wallet"))
    banner = page.locator(".acting-banner")
    expect(banner).to_contain_text("You are acting for Grace Hopper.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Grace Hopper\u2019s wallet")
    check_at_375(page, "acting for someone dashboard")

    # Approve her request: Ada's passkey (the browser's device) signs the same terms.
    page.goto(f"/wallet/grants/{grant.id}")
    expect(banner).to_contain_text("You are acting for Grace Hopper.")
    count = browser_key["signCount"]
    button(page, "Approve").click()
    page.wait_for_url(at(f"/wallet/grants/{grant.id}?done=approved"))
    assert grant_state(ctx, grant.id) == "approved"
    [used] = authenticator.credentials()
    assert used["signCount"] > count  # the browser's passkey signed, not the test's keys
    with read_only(ctx.engine).begin() as conn:
        [entry] = [e for e in full_entries(conn) if e["kind"] == "grant.approved"]
    assert entry["body"]["subject"] == grace.subject
    assert entry["body"]["delegation_id"] == rid and entry["body"]["actor"] != grace.subject
    expect(page.get_by_text("Approved on your behalf by Ada Lovelace")).to_be_visible()
    check_at_375(page, "acting for someone grant approved")

    # Back to herself: no banner, her own (empty) grants.
    page.get_by_label("Acting for").select_option(label="Myself")
    button(page, "Switch").click()
    page.wait_for_url(at("/wallet"))
    expect(page.get_by_text("You are acting for")).to_have_count(0)
    expect(page.get_by_role("heading", level=1)).to_have_text("Your wallet")
    page.goto(f"/wallet/grants/{grant.id}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
