"""The council tax scenario in Chromium (issue 12 §6): the citizen's consent given in the
wallet with a virtual passkey, the services on ports of their own (other origins, as
real services), the vault's webhooks reaching them for real.

A newcomer starts at the Benefits Agency's page, makes an account on the way, approves
the agency's grant to ADD the award to their vault, then shares the award with the
council tax team. The agency awards Attendance Allowance; the vault tells the team,
which reads, checks the agency's signature and shows "Reduction applied"; the award
ends, and the team shows "Reduction removed". The second test links the electoral
register, the GP practice and the heart monitor the same way, and sees the practice
told of concern. Each service page is checked with axe and shot at 1280 and 375 px
(test-artifacts/wallet/); none scrolls sideways on a phone.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from browser.harness import MOBILE_VIEWPORT, Authenticator, button, page_check
from livevault import LiveVault
from support.cityworld import Town, open_city

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser


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


def _no_sideways_scroll(page: Page) -> None:
    page.set_viewport_size(MOBILE_VIEWPORT)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= MOBILE_VIEWPORT["width"], width
    page.set_viewport_size({"width": 1280, "height": 800})


def test_the_council_tax_team_applies_and_removes_a_reduction_the_agency_signed(
        page: Page, authenticator: Authenticator, town: Town) -> None:
    agency, council = town.urls["agency"], town.urls["counciltax"]
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(agency)
    page_check(page, "city agency start")
    button(page, "Link your vault").click()
    # A newcomer: signing in is needed, so they make an account on the way.
    page.wait_for_url(lambda url: "/wallet/signin?next=/wallet/authorize/" in url)
    page.get_by_role("link", name="Create an account").click()
    page.get_by_label("Name for this device").fill("My phone")
    button(page, "Create a passkey").click()
    page.wait_for_url(lambda url: "/wallet/welcome?next=/wallet/authorize/" in url)
    page.get_by_role("link", name="Skip for now").click()
    page.wait_for_url(lambda url: "/wallet/grants/gr_" in url)
    assert page.get_by_text("add", exact=False).first.is_visible()
    _consent(page, "Benefits Agency")
    page.wait_for_url(re.compile(re.escape(agency) + "/$"))
    assert page.get_by_text("Your vault is linked").is_visible()

    page.goto(council)
    page_check(page, "city council tax start")
    button(page, "Share your award from your vault").click()
    _consent(page, "Council Tax team")
    page.wait_for_url(re.compile(re.escape(council) + "/$"))
    assert page.get_by_text("No reduction", exact=True).is_visible()

    page.goto(agency)
    button(page, "Award Attendance Allowance").click()
    page.wait_for_url(re.compile(re.escape(agency) + "/$"))
    assert page.get_by_text("Attendance Allowance awarded").is_visible()
    page_check(page, "city agency awarded")
    _no_sideways_scroll(page)

    page.goto(council)
    _until(page, "Reduction applied")
    assert page.get_by_text("we checked its signature").is_visible()
    page_check(page, "city council tax reduction applied")
    _no_sideways_scroll(page)

    page.goto(agency)
    button(page, "End the award").click()
    page.wait_for_url(re.compile(re.escape(agency) + "/$"))
    page.goto(council)
    _until(page, "Reduction removed")
    page_check(page, "city council tax reduction removed")



def test_the_gp_is_told_of_concern_and_the_register_answers_at_source(
        page: Page, authenticator: Authenticator, town: Town) -> None:
    """The other two scenarios' pages, linked in Chromium (the citizen signs up at the
    register, then links the GP practice and the heart monitor)."""
    register, gp, monitor = town.urls["register"], town.urls["gp"], town.urls["wearable"]
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(register)
    page_check(page, "city register start")
    button(page, "Link your vault").click()
    page.wait_for_url(lambda url: "/wallet/signin?next=/wallet/authorize/" in url)
    page.get_by_role("link", name="Create an account").click()
    page.get_by_label("Name for this device").fill("My phone")
    button(page, "Create a passkey").click()
    page.wait_for_url(lambda url: "/wallet/welcome?next=/wallet/authorize/" in url)
    page.get_by_role("link", name="Skip for now").click()
    _consent(page, "Electoral register")
    page.wait_for_url(re.compile(re.escape(register) + "/$"))
    assert page.get_by_text("You are on the register").is_visible()
    page_check(page, "city register linked")
    _no_sideways_scroll(page)

    for url, link, service in ((gp, "Share from your vault", "GP practice"),
                               (monitor, "Link your vault", "Heart monitor")):
        page.goto(url)
        page_check(page, f"city {service} start")
        button(page, link).click()
        _consent(page, service)
        page.wait_for_url(re.compile(re.escape(url) + "/$"))
    button(page, "Send readings").click()
    button(page, "Send an out-of-band reading").click()
    page.wait_for_url(re.compile(re.escape(monitor) + "/$"))
    assert page.get_by_text("a heart rate of 150 bpm", exact=False).is_visible()
    page_check(page, "city heart monitor sent")
    _no_sideways_scroll(page)

    page.goto(gp)
    _until(page, "Concern: heart rate")
    assert "150" not in page.inner_text("main")
    page_check(page, "city gp concern")
    _no_sideways_scroll(page)
