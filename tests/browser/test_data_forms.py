"""My data in Chromium: health readings added with the form of rows (no JSON to write)
and shown as a table and a chart per measure; a phone number typed in UK national format
and a postcode typed in lower case, each stored in its one form; the data pages and the
Blue Badge example's /status page fit a 375 px phone (no sideways scrolling), with
screenshots at 375 px and desktop size."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from browser.harness import MOBILE_VIEWPORT, at, button, newest_citizen, page_check, snap
from livevault import free_port, serve_app

from clients.examples.bluebadge import AppConfig, create_app
from clients.service import ServiceKey
from clients.service.webhooks import WebhookEvent
from vault.services import records

if TYPE_CHECKING:
    from fastapi import FastAPI
    from playwright.sync_api import Page

    from vault.api.deps import AppState

pytestmark = pytest.mark.browser


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


def save(page: Page) -> None:
    button(page, "Save").click()
    page.wait_for_url(at("/wallet/data?done=saved"))


def test_readings_phone_and_postcode_through_the_forms(page: Page, vault_state: AppState
                                                       ) -> None:
    ctx = vault_state.ctx
    citizen = sign_up(page, vault_state)

    # Two readings, the second row added with "Add another" (a server round trip, no
    # script), what was measured chosen in words, times on London's clock.
    page.goto("/wallet/data/health.observations")
    page.get_by_label("What was measured").select_option(label="Heart rate")
    page.get_by_label("Reading").fill("72")
    page.get_by_label("Unit").fill("bpm")
    page.get_by_label("When it was measured").fill("2024-07-17T10:30")
    button(page, "Add another measurement").click()
    page.locator("#f-1-kind").select_option(label="Blood pressure")
    page.locator("#f-1-value").fill("120/80")
    page.locator("#f-1-unit").fill("mmHg")
    page.locator("#f-1-at").fill("2024-01-17T10:30")
    page_check(page, "data readings form")
    fits_375(page)
    save(page)
    assert records.read_records(ctx, citizen)["health.observations"].value == [
        {"kind": "heart_rate", "value": 72, "unit": "bpm", "at": "2024-07-17T09:30:00Z"},
        {"kind": "blood_pressure", "value": "120/80", "unit": "mmHg",
         "at": "2024-01-17T10:30:00Z"}]
    health = page.get_by_role("region", name="Health observations")
    assert health.get_by_role("listitem").all_inner_texts() == [
        "Heart rate: 72 bpm, 17 July 2024, 10:30 BST",
        "Blood pressure: 120/80 mmHg, 17 January 2024, 10:30 GMT"]

    # A phone number as people write it in the UK.
    page.goto("/wallet/data/contact.phone")
    page.get_by_label("Phone number").fill("07700 900456")
    save(page)
    assert records.read_records(ctx, citizen)["contact.phone"].value == "+447700900456"

    # A postcode typed in lower case, without its space.
    page.goto("/wallet/data/address.home")
    page.get_by_label("Street address").fill("10 Downing Street")
    page.get_by_label("Town or city").fill("London")
    page.get_by_label("Postcode").fill("sw1a2aa")
    page.get_by_label("Council").fill("Westminster")
    save(page)
    assert records.read_records(ctx, citizen)["address.home"].value["postcode"] == "SW1A 2AA"
    assert "SW1A 2AA" in page.get_by_role("region", name="Home address").inner_text()
    assert "+447700900456" in page.get_by_role("region", name="Phone number").inner_text()
    page_check(page, "data overview")
    fits_375(page)

    # The readings: a table in words and a chart per measure (server-drawn SVG), on a phone.
    page.goto("/wallet/data/health.observations")
    page.get_by_role("heading", name="Latest readings").wait_for()
    table = page.get_by_role("table", name="Latest readings")
    assert table.get_by_role("row").all_inner_texts()[1:] == [
        "Heart rate\t72\tbpm\t17 July 2024, 10:30 BST",
        "Blood pressure\t120/80\tmmHg\t17 January 2024, 10:30 GMT"]
    assert page.get_by_text("Readings were added once, most recently on").is_visible()
    chart = page.get_by_role("img", name="Heart rate (bpm)")
    box = chart.bounding_box()
    assert chart.is_visible() and box is not None
    # Drawn at most 1.4 times its viewBox, so its labels stay the page's text size.
    assert box["width"] <= 28 * 16, box
    page_check(page, "data readings")
    snap(page, "data readings saved")
    fits_375(page)


# -- the Blue Badge example's status page ----------------------------------------------


@pytest.fixture
def bluebadge() -> Iterator[tuple[str, FastAPI]]:
    """The example app on a socket of its own; /status needs no vault to answer."""
    port = free_port()
    url = f"http://localhost:{port}"
    config = AppConfig(vault_url="http://localhost:9", client_id="svc_" + "b" * 22,
                       key=ServiceKey.generate(), webhook_secret="whsec_" + "A" * 32,
                       public_url=url)
    app = create_app(config)
    with serve_app(app, port, what="the Blue Badge example"):
        yield url, app


def test_the_blue_badge_status_page_fits_a_phone(page: Page,
                                                 bluebadge: tuple[str, FastAPI]) -> None:
    url, app = bluebadge
    for n, (kind, state) in enumerate([("grant.approved", "approved"),
                                       ("grant.paused", "paused"),
                                       ("grant.revoked", "revoked")]):
        app.state.events.record(WebhookEvent(
            id=f"msg_{n}", type=kind, timestamp=datetime(2026, 7, 1, tzinfo=UTC),
            data={"grant_id": "gr_" + "x" * 22, "state": state, "ledger_index": 1000 + n}),
            now=datetime(2026, 7, 1, 12, n, tzinfo=UTC))
    page.goto(f"{url}/status")
    page.get_by_role("heading", name="Events from the vault").wait_for()
    snap(page, "bluebadge status")
    fits_375(page)
