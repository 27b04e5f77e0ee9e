"""Removing the only passkey in real Chromium: the wallet says what it means, refuses
while there are no recovery codes, asks for the passkey (a failed check removes
nothing), and then the passkey is gone. Signing out says so, and the removed passkey,
still on the device, is told it is no longer registered and how to start again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from browser.harness import Authenticator, at, button, newest_citizen, page_check
from livevault import LiveVault
from sqlalchemy import func
from sqlmodel import Session, col, select

from vault.storage.tables import PasskeyRow

if TYPE_CHECKING:
    from playwright.sync_api import Page

    from vault.api.deps import AppState
    from vault.services.context import VaultContext

pytestmark = pytest.mark.browser


def passkeys_of(ctx: VaultContext, citizen_id: str) -> int:
    with Session(ctx.engine) as session:
        return int(session.exec(select(func.count()).select_from(PasskeyRow).where(
            col(PasskeyRow.citizen_id) == citizen_id)).one())


def test_removing_the_only_passkey(live_wallet: LiveVault, vault_state: AppState, page: Page,
                                   authenticator: Authenticator) -> None:
    from playwright.sync_api import expect  # here: a missing Playwright skips, as conftest says

    ctx = vault_state.ctx
    page.goto("/wallet/signup")
    page.get_by_label("Name for this device").fill("My phone")
    button(page, "Create a passkey").click()
    page.wait_for_url(at("/wallet/welcome"))
    citizen_id = newest_citizen(ctx)
    [held] = authenticator.credentials()

    # No recovery codes yet: removing the only passkey is refused before any prompt.
    page.goto("/wallet/passkeys")
    page.get_by_role("link", name="Remove “My phone”").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Remove “My phone”?")
    expect(page.get_by_role("alert").filter(has_text="you have no recovery")).to_be_visible()
    assert button(page, "Remove this passkey").count() == 0
    confirm_url = page.url

    # Making codes from there (the first set: nothing "no longer works") comes back.
    button(page, "Make recovery codes").click()
    page.wait_for_url(at("/wallet/recovery-codes"))
    assert "no longer work" not in page.content()
    page.get_by_role("link", name="I have saved them").click()
    page.wait_for_url(confirm_url)
    main = page.get_by_role("main")
    expect(main).to_contain_text("This is your only passkey.")
    expect(main).to_contain_text("only with a recovery code")
    page_check(page, "remove the only passkey")

    # The passkey check fails (nobody unlocked the device): nothing is removed.
    authenticator.set_user_verified(False)
    button(page, "Remove this passkey").click()
    status = page.locator("[data-passkey-status]")
    expect(status).to_have_class("passkey-status error")
    assert page.url == confirm_url and passkeys_of(ctx, citizen_id) == 1

    # It succeeds: the passkey is gone from the vault (the device still holds it).
    authenticator.set_user_verified(True)
    button(page, "Remove this passkey").click()
    page.wait_for_url(at("/wallet/passkeys?done=removed"))
    expect(page.get_by_role("status").filter(has_text="The passkey is removed")).to_be_visible()
    expect(page.get_by_text("You have no passkeys")).to_be_visible()
    assert passkeys_of(ctx, citizen_id) == 0
    assert [c["credentialId"] for c in authenticator.credentials()] == [held["credentialId"]]

    # Signing out says so.
    button(page, "Sign out").click()
    page.wait_for_url(at("/wallet/signin?done=signed-out"))
    expect(page.get_by_role("status").filter(has_text="You are signed out.")).to_be_visible()

    # The device offers the removed passkey: it is not (any more) registered, and the
    # page shows how to start again.
    start_again = page.get_by_role("link", name="create a new account")
    expect(start_again).to_be_hidden()
    button(page, "Sign in with a passkey").click()
    expect(status).to_contain_text("not registered with the vault, or is no longer")
    expect(start_again).to_be_visible()
    start_again.click()
    page.wait_for_url(at("/wallet/signup"))
