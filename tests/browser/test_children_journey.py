"""A child's vault in real Chromium (issue 14 §2): a parent makes it with their passkey,
hands it over with a one-time code, and the child, in a browser of their own, creates a
passkey and ends the parent's relationship; the parent can no longer act for them. Then
the helper at a counter signing last. The new pages pass axe at 375 px without sideways
scrolling."""

from __future__ import annotations

import re
from datetime import timedelta
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
from support.vaultworld import add_passkey

from vault.domain.relationships import DelegatedAction, RelationshipRefused
from vault.services import citizens, delegations, records
from vault.services.context import unit_of_work
from wallet.passkeys.software import SoftAuthenticator

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

    from vault.api.deps import AppState

pytestmark = pytest.mark.browser

DESKTOP_VIEWPORT = {"width": 1280, "height": 800}  # as the conftest's contexts




def can_act(state: AppState, parent: str, child: str) -> bool:
    with Session(state.ctx.engine) as s:
        try:
            delegations.authorize(s, actor_id=parent, subject_id=child,
                                  action=DelegatedAction.VIEW, now=state.ctx.clock())
        except RelationshipRefused:
            return False
    return True


def test_make_hand_over_and_end(live_wallet: LiveVault, vault_state: AppState, page: Page,
                                browser: Browser) -> None:
    from playwright.sync_api import expect

    page.goto("/wallet/signup")
    button(page, "Create a passkey").click()
    page.wait_for_url(at("/wallet/welcome"))
    parent = newest_citizen(vault_state.ctx)
    page.goto("/wallet/counter")  # the helper's page, new too
    check_at_375(page, "help someone at a counter")

    page.goto("/wallet/children")
    page.get_by_label("Given name").fill("Ada")
    page.get_by_label("Family name").fill("Byron")
    page.get_by_label("Date of birth").fill("2018-12-10")
    button(page, "Continue").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check and sign")
    check_at_375(page, "child vault check and sign")
    button(page, "Sign with your passkey and make the vault").click()
    page.wait_for_url(at("/wallet/children?done=made"))
    child = newest_citizen(vault_state.ctx)
    assert child != parent and can_act(vault_state, parent, child)
    expect(page.get_by_role("heading", name="Ada Byron")).to_be_visible()
    check_at_375(page, "children's vaults")

    button(page, "Make a handover code for Ada Byron").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Handover code for Ada Byron")
    code = page.locator("ul.codes code").inner_text()
    assert re.fullmatch(r"[0-9A-Z]{4}(-[0-9A-Z]{4}){3}", code)
    check_at_375(page, "handover code")

    # The child, on their own device, signed out.
    theirs = browser.new_context(base_url=live_wallet.url, viewport=DESKTOP_VIEWPORT,
                                 locale="en-GB")
    try:
        child_page = theirs.new_page()
        device = Authenticator.attach(child_page)
        child_page.goto(f"/wallet/handover?code={code}")
        expect(child_page.get_by_role("main")).to_contain_text("Ada Byron")
        check_at_375(child_page, "take over your vault")
        expect(child_page.get_by_label("End it: only I can use my vault")).to_be_checked()
        button(child_page, "Create a passkey").click()
        child_page.wait_for_url(at("/wallet/welcome?next=/wallet/people"))
        assert len(device.credentials()) == 1
    finally:
        theirs.close()

    assert not can_act(vault_state, parent, child)
    page.goto("/wallet/children")
    expect(page.get_by_role("heading", name="Ada Byron")).to_have_count(0)


def test_the_helper_signs_last_and_the_visit_starts(live_wallet: LiveVault,
                                                     vault_state: AppState, page: Page) -> None:
    """Step 3 at the counter in Chromium (steps 1 and 2, the citizen's own key, are the
    HTTP tests'): the page before and after the helper's passkey, at 375 px."""
    from playwright.sync_api import expect

    ctx = vault_state.ctx
    page.goto("/wallet/signup")
    button(page, "Create a passkey").click()
    page.wait_for_url(at("/wallet/welcome"))
    helper = newest_citizen(ctx)
    citizen = citizens.enrol_citizen(ctx).id
    records.write_record(ctx, citizen, "identity.name", {"given": "Grace", "family": "Hopper"})
    key = add_passkey(ctx, citizen, SoftAuthenticator(origin=live_wallet.url))
    with unit_of_work(ctx) as work:
        row = delegations.propose(work, principal_id=citizen, delegate_id=helper,
                                  kind="helper", actions=["view", "edit"],
                                  until=work.now + timedelta(hours=2), origin="counter")
        delegations.sign(work, row, side="principal", verifier=ctx.approvals,
                         proof=key.proof(challenge=row.terms_hash))
        visit = row.id
    page.goto(f"/wallet/counter/{visit}")
    expect(page.get_by_role("heading", level=2)).to_have_text("Step 3 of 3: you sign")
    check_at_375(page, "counter visit, the helper signs")
    button(page, "Sign with your passkey").click()
    expect(page.get_by_role("status").filter(has_text="You can act for")).to_contain_text(
        "Grace Hopper")
    assert can_act(vault_state, helper, citizen)
    check_at_375(page, "counter visit live")
