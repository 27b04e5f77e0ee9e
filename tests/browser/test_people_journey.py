"""Relationships by mutual consent in real Chromium (issue 14 §1, part A), two people in
two browser contexts, each with their own virtual passkey device: Ada invites with the
People page (code, link and QR code), Bob opens the link and accepts with his passkey,
Ada confirms with hers and it is live; then Ada ends it and Bob's access ends at once.
Every new page passes axe at 375 px without sideways scrolling."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from browser.harness import (
    Authenticator,
    at,
    button,
    check_at_375,
    newest_citizen,
)
from livevault import LiveVault
from sqlmodel import Session
from support.vaultworld import give_ada_data

from vault.domain.relationships import DelegatedAction, RelationshipRefused
from vault.services import delegations, records

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

    from vault.api.deps import AppState

pytestmark = pytest.mark.browser

DESKTOP_VIEWPORT = {"width": 1280, "height": 800}  # as the conftest's contexts




def can_act(state: AppState, delegate: str, principal: str) -> bool:
    with Session(state.ctx.engine) as s:
        try:
            delegations.authorize(s, actor_id=delegate, subject_id=principal,
                                  action=DelegatedAction.APPROVE, now=state.ctx.clock())
        except RelationshipRefused:
            return False
    return True


def sign_up(page: Page) -> None:
    page.goto("/wallet/signup")
    button(page, "Create a passkey").click()
    page.wait_for_url(at("/wallet/welcome"))


def test_invite_accept_confirm_and_end(live_wallet: LiveVault, vault_state: AppState,
                                       page: Page, authenticator: Authenticator,
                                       browser: Browser) -> None:
    from playwright.sync_api import expect

    ctx = vault_state.ctx
    sign_up(page)
    ada = newest_citizen(ctx)
    give_ada_data(ctx, ada)
    page.goto("/wallet/people")
    expect(page.get_by_text("Nobody can act for you.")).to_be_visible()
    check_at_375(page, "people nobody yet")

    page.get_by_role("link", name="Invite someone to act for you").click()
    page.get_by_label("Attorney (lasting power of attorney)").check()
    page.get_by_label("Say yes or no to services' requests").check()
    until = (datetime.now(UTC).date() + timedelta(days=365)).isoformat()
    page.get_by_label("Until the end of (for a parent, attorney or appointee)").fill(until)
    check_at_375(page, "people invite")
    button(page, "Make the invitation").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your invitation")
    code = page.locator("ul.codes code").inner_text()
    assert re.fullmatch(r"[0-9A-Z]{4}(-[0-9A-Z]{4}){2}", code)
    link = page.locator("p.link-text a")
    href = link.get_attribute("href")
    assert href is not None and href.endswith(f"/wallet/people/join?code={code}")
    expect(page.get_by_role("img", name="QR code of the invitation link")).to_be_visible()
    check_at_375(page, "people invitation code and QR")

    # Bob, on his own device, signs up and opens the link.
    theirs = browser.new_context(base_url=live_wallet.url, viewport=DESKTOP_VIEWPORT,
                                 locale="en-GB")
    try:
        bob_page = theirs.new_page()
        bob_device = Authenticator.attach(bob_page)
        sign_up(bob_page)
        bob = newest_citizen(ctx)
        records.write_record(ctx, bob, "identity.name", {"given": "Bob", "family": "Carter"})
        bob_page.goto(href)
        expect(bob_page.get_by_role("heading", level=1)).to_have_text(
            "Ada Lovelace asks you to act for them")
        expect(bob_page.get_by_role("main")).to_contain_text("say yes or no to services")
        check_at_375(bob_page, "people accept an invitation")
        count = bob_device.credentials()[0]["signCount"]
        button(bob_page, "Accept with your passkey").click()
        bob_page.wait_for_url(at("/wallet/people?done=accepted"))
        assert bob_device.credentials()[0]["signCount"] > count  # his passkey signed
        assert not can_act(vault_state, bob, ada)  # not until Ada confirms

        page.goto("/wallet/people")
        expect(page.get_by_text("Bob Carter accepted: confirm")).to_be_visible()
        check_at_375(page, "people confirm")
        page.get_by_role("button", name=re.compile(r"^Confirm with your passkey\W+Bob Carter$")
                         ).click()
        page.wait_for_url(at("/wallet/people?done=live"))
        assert can_act(vault_state, bob, ada)

        bob_page.goto("/wallet/people")
        expect(bob_page.get_by_role("heading", name="Ada Lovelace")).to_be_visible()
        expect(bob_page.get_by_role("main")).to_contain_text("Active")
        check_at_375(bob_page, "people whom you act for")
    finally:
        theirs.close()

    page.get_by_role("link", name="End this (Bob Carter)").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Stop Bob Carter acting for you?")
    check_at_375(page, "people end")
    button(page, "End it now").click()
    page.wait_for_url(at("/wallet/people?done=ended"))
    assert not can_act(vault_state, bob, ada)
    expect(page.get_by_role("heading", name="Ended")).to_be_visible()
