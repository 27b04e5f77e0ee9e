"""Issued data in Chromium (ARCHITECTURE §8, issue 12 §1-2).

An award a benefits agency issued is shown read-only with its issuer; the citizen tells
them it is wrong (a reason from the list), and the record's page says so. And the consent
screen of a write grant (PAR with actions ["write"], through the SDK over a real socket)
says plainly that the service wants to ADD to the vault, what, and for how long. Each
page is checked with axe, shot at 1280 and 375 px, and must not scroll sideways."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson
import pytest
from browser.harness import MOBILE_VIEWPORT, at, button, newest_citizen, page_check
from livevault import LiveVault
from sqlmodel import Session, col, select

from clients.service import Access, PersonalData, ServiceKey, VaultClient
from vault.services import records, registry
from vault.storage.tables import WebhookMessageRow

if TYPE_CHECKING:
    from playwright.sync_api import Page

    from vault.api.deps import AppState

pytestmark = pytest.mark.browser

AA = "benefits.attendance_allowance"


def fits_375(page: Page) -> None:
    """No sideways scrolling on a small phone (WCAG 1.4.10 Reflow)."""
    before = page.viewport_size
    page.set_viewport_size(MOBILE_VIEWPORT)
    try:
        width, inner = page.evaluate(
            "[document.documentElement.scrollWidth, window.innerWidth]")
    finally:
        if before is not None:
            page.set_viewport_size(before)
    assert width <= inner, f"{page.url} is {width} px wide in a {inner} px window"


def sign_up(page: Page, state: AppState) -> str:
    page.goto("/wallet/signup")
    button(page, "Create a passkey").click()
    page.wait_for_url(at("/wallet/welcome"))
    return newest_citizen(state.ctx)


def agency(state: AppState, key: ServiceKey, redirect_uri: str = "https://agency.test/cb"
           ) -> str:
    return registry.register_service(state.ctx, registry.Registration(
        name="Benefits Agency", description="Awards Attendance Allowance.",
        purposes=["service_provision"], categories=[], issues=[AA], jwk=key.public_jwk(),
        redirect_uris=[redirect_uri], privacy_notice_url="https://agency.test/privacy",
        contact="help@agency.test", webhook_url="http://127.0.0.1:9/hooks"))


def test_an_issued_award_is_read_only_and_the_citizen_says_it_is_wrong(
        page: Page, vault_state: AppState) -> None:
    citizen = sign_up(page, vault_state)
    issuer = agency(vault_state, ServiceKey.generate())
    records.write_record(vault_state.ctx, citizen, AA,
                         {"award": "lower", "since": "2024-02-01", "awarded_by": "DWP"},
                         source=issuer)

    page.goto("/wallet/data")
    card = page.get_by_role("region", name="Attendance Allowance")
    assert "Issued by Benefits Agency on" in card.inner_text()
    assert card.get_by_role("link", name="Change your Attendance Allowance").count() == 0
    card.get_by_role("link", name="See details of your Attendance Allowance").click()
    page.wait_for_url(at(f"/wallet/data/{AA}"))
    issued = page.get_by_role("region", name="Issued by Benefits Agency")
    assert "Lower rate" in issued.inner_text() or "lower" in issued.inner_text().lower()
    assert page.get_by_role("link", name="Delete your attendance allowance").count() == 0
    page_check(page, "issued award read only")
    fits_375(page)

    page.get_by_role("link", name="Tell them this is wrong").click()
    page.wait_for_url(at(f"/wallet/data/{AA}/wrong"))
    assert page.get_by_role("heading", level=1).inner_text() == \
        "Tell Benefits Agency your Attendance Allowance is wrong"
    page.get_by_label("Some of the details are wrong").check()
    page_check(page, "tell them this is wrong")
    fits_375(page)
    button(page, "Tell them this is wrong").click()

    page.wait_for_url(at(f"/wallet/data/{AA}?done=told"))
    assert page.get_by_role("status").filter(
        has_text="We told Benefits Agency that you think this is wrong.").is_visible()
    version = page.get_by_role("region", name="Version 1 (now)")
    assert "You told Benefits Agency this was wrong on" in version.inner_text()
    assert page.get_by_role("link", name="Tell them this is wrong").count() == 0
    page_check(page, "issued award after telling them")
    fits_375(page)
    with Session(vault_state.ctx.engine) as s:
        [message] = s.exec(select(WebhookMessageRow).where(
            col(WebhookMessageRow.event) == "record.disputed")).all()
    assert orjson.loads(message.body)["data"]["reason"] == "details_wrong"


def test_the_consent_screen_of_a_write_grant_says_it_adds_what_for_how_long(
        live_wallet: LiveVault, page: Page, vault_state: AppState) -> None:
    sign_up(page, vault_state)
    key = ServiceKey.generate()
    redirect = "https://agency.test/cb"
    issuer = agency(vault_state, key, redirect)
    terms = PersonalData(purpose="service_provision", categories=[AA], actions=["write"],
                         duration="P365D", access=Access.one_time(), data_life="P30D",
                         justification="To add your Attendance Allowance award to your "
                                       "vault.")
    with VaultClient(live_wallet.url, client_id=issuer, key=key) as vault:
        pending = vault.start_authorization(terms, redirect_uri=redirect)
    page.goto(pending.url)
    page.wait_for_url(lambda url: "/wallet/grants/gr_" in url)

    assert page.get_by_role("heading", level=1).inner_text() == \
        "Benefits Agency is asking to add information to your vault"
    terms_list = page.locator("dl.terms")
    words = " ".join(terms_list.inner_text().split())
    assert "What they want to add to your vault" in words
    assert "Attendance Allowance" in words
    assert "What they want to see" not in words                # a grant only to write
    how_long = terms_list.locator("dt", has_text="For how long").locator(
        "xpath=following-sibling::dd[1]").inner_text()
    assert "365 days" in how_long or "year" in how_long, how_long
    assert button(page, "Approve").is_visible() and button(page, "Decline").is_visible()
    page_check(page, "write grant consent")
    fits_375(page)
