"""Free school meals end to end in Chromium (issue 14 §5), with two browser contexts.

The parent, in their browser with a virtual passkey, makes their child's vault, switches
to acting for the child, links the Benefits Agency to the child's vault (the agency adds
the household's Universal Credit award there) and approves the school's grant on the
child's `eligible_free_school_meals`: the school, another origin, shows "Eligible for free
school meals" at once, and "Not eligible" when the vault tells it the award ended. Later
the child, in a browser of their own, takes the vault over with the handover code and
sees the school's grant marked as approved on their behalf by the parent. The school's
page and the child's grants page pass axe and do not scroll sideways at 375 px.
tests/clients/examples/test_free_school_meals.py runs the same over HTTP.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
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
from support.cityworld import Town, open_city

from clients.examples.city import school
from vault.services import records

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

    from vault.api.deps import AppState

pytestmark = pytest.mark.browser

DESKTOP_VIEWPORT = {"width": 1280, "height": 800}  # as the conftest's contexts


@pytest.fixture
def town(live_wallet: LiveVault) -> Iterator[Town]:
    with open_city(live_wallet) as t:
        yield t


def _consent(page: Page, service: str) -> None:
    """On the consent screen for `service`: approve with the passkey, and back."""
    page.wait_for_url(lambda url: "/wallet/grants/gr_" in url)
    assert service in page.get_by_role("heading", level=1).inner_text()
    button(page, "Approve").click()


def _until(page: Page, text: str, *, timeout: float = 20.0) -> None:
    """Reload until the page shows `text` (the vault's webhook comes on its own time)."""
    deadline = time.monotonic() + timeout
    while not page.get_by_text(text, exact=True).count():
        assert time.monotonic() < deadline, page.inner_text("main")
        time.sleep(0.2)
        page.reload()


def _switch(page: Page, to: str) -> None:
    """The header's "Acting for" switch."""
    page.get_by_label("Acting for").select_option(label=to)
    button(page, "Switch").click()


def test_a_parent_acting_for_their_child_gets_free_school_meals_and_the_child_sees_it(
        live_wallet: LiveVault, vault_state: AppState, page: Page, browser: Browser,
        town: Town) -> None:
    from playwright.sync_api import expect

    agency, desk = town.urls["agency"], town.urls["school"]
    page.goto("/wallet/signup")
    button(page, "Create a passkey").click()
    page.wait_for_url(at("/wallet/welcome"))
    records.write_record(vault_state.ctx, newest_citizen(vault_state.ctx), "identity.name",
                         {"given": "Ngozi", "family": "Okafor"})
    page.goto("/wallet/children")
    page.get_by_label("Given name").fill("Sam")
    page.get_by_label("Family name").fill("Okafor")
    page.get_by_label("Date of birth").fill("2017-09-03")
    button(page, "Continue").click()
    button(page, "Sign with your passkey and make the vault").click()
    page.wait_for_url(at("/wallet/children?done=made"))

    _switch(page, "Sam Okafor")
    expect(page.get_by_text("You are acting for Sam Okafor.")).to_be_visible()
    page.goto(agency)
    button(page, "Link your child's vault").click()
    _consent(page, "Benefits Agency")
    page.wait_for_url(re.compile(re.escape(agency) + "/$"))
    button(page, "Award Universal Credit").click()
    page.wait_for_url(re.compile(re.escape(agency) + "/$"))
    expect(page.get_by_text("Universal Credit awarded")).to_be_visible()
    check_at_375(page, "agency household award")

    page.goto(desk)
    button(page, "Share from your child's vault").click()
    _consent(page, "School")
    page.wait_for_url(re.compile(re.escape(desk) + "/$"))
    expect(page.get_by_text(school.ELIGIBLE, exact=True)).to_be_visible()  # at once
    check_at_375(page, "school eligible")

    page.goto(agency)
    button(page, "The Universal Credit award ends").click()
    page.wait_for_url(re.compile(re.escape(agency) + "/$"))
    page.goto(desk)
    _until(page, school.NOT_ELIGIBLE)
    check_at_375(page, "school not eligible")

    # The parent, as themself again, hands the vault over.
    page.goto("/wallet/children")
    _switch(page, "Myself")
    page.goto("/wallet/children")
    button(page, "Make a handover code for Sam Okafor").click()
    code = page.locator("ul.codes code").inner_text()

    # Sam, on their own device, takes the vault over and sees what was approved for them.
    theirs = browser.new_context(base_url=live_wallet.url, viewport=DESKTOP_VIEWPORT,
                                 locale="en-GB")
    try:
        child = theirs.new_page()
        Authenticator.attach(child)
        child.goto(f"/wallet/handover?code={code}")
        button(child, "Create a passkey").click()
        child.wait_for_url(at("/wallet/welcome?next=/wallet/people"))
        child.goto("/wallet/grants")
        card = child.locator("article, li").filter(has_text="Riverside Primary School")
        expect(card.get_by_text("Approved on your behalf by Ngozi Okafor")).to_be_visible()
        check_at_375(child, "child's grants after handover")
    finally:
        theirs.close()
