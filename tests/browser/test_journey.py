"""A citizen's whole journey in real Chromium, with a virtual passkey device.

Sign up with a passkey, sign out and back in with it, answer a service's request, watch
the service's read appear, revoke, see the next read refused, keep the consent receipt,
delete the account. The service's side is played from the test through the vault's own
services (as the OAuth endpoints would). Every page is screenshotted (desktop and 375 px)
on the way, so test-artifacts/wallet/ reads as the journey; axe checks the states
only this journey reaches (test_pages_a11y.py checks every other page).

A second journey: the device is lost, a recovery code gets the citizen back in, and a new
device gets a new passkey. A third: a service that keeps asking is stopped from the
consent screen, then allowed to ask again.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import pytest
from browser.harness import (
    Authenticator,
    at,
    button,
    grant_state,
    newest_citizen,
    page_check,
    snap,
)
from livevault import LiveVault
from sqlmodel import Session
from support.vaultworld import World, ask, blue_badge, give_ada_data

from vault.domain.errors import AccessDenied
from vault.services.access import read_under_grant
from vault.storage.tables import CitizenRow

if TYPE_CHECKING:
    from playwright.sync_api import Page

    from vault.api.deps import AppState
    from vault.services.context import VaultContext

pytestmark = pytest.mark.browser

#: Where a signed-in page sends a visitor: sign in, then come back.
SIGN_IN_FIRST = re.compile(r"/wallet/signin\?next=/wallet/")
#: Where signing out lands: the sign-in page, saying "You are signed out".
SIGNED_OUT = at("/wallet/signin?done=signed-out")






def citizen_exists(ctx: VaultContext, citizen_id: str) -> bool:
    with Session(ctx.engine) as session:
        return session.get(CitizenRow, citizen_id) is not None






def sign_up(page: Page) -> None:
    """Create an account with a passkey on the page's device; lands on the welcome page."""
    page.goto("/wallet/signup")
    page.get_by_label("Name for this device").fill("My phone")
    button(page, "Create a passkey").click()
    page.wait_for_url(at("/wallet/welcome"))


def receipt_download_problem(page: Page, grant_id: str) -> str | None:
    """Download the consent receipt from the grant page as a citizen would; None when it
    is a JSON file named for the grant that names it, else what went wrong."""
    url = f"/wallet/grants/{grant_id}/receipt.json"
    answer = page.request.get(url)  # shares the page's cookies: the same citizen
    if not answer.ok:
        return f"GET {url} answered HTTP {answer.status}: {answer.text()[:300]}"
    page.goto(f"/wallet/grants/{grant_id}")
    with page.expect_download() as started:
        page.get_by_role("link", name="Download the consent receipt").click()
    download = started.value
    path = download.path()  # waits for the download to finish
    if path is None:
        return f"the download failed: {download.failure()}"
    if download.suggested_filename != f"consent-receipt-{grant_id}.json":
        return f"the file is called {download.suggested_filename!r}"
    try:
        receipt = json.loads(path.read_text())
    except ValueError:
        return f"the file is not JSON: {path.read_text()[:300]!r}"
    if not isinstance(receipt, dict) or grant_id not in json.dumps(receipt):
        return f"the receipt does not name the grant {grant_id}: {json.dumps(receipt)[:300]}"
    return None


def test_the_citizen_journey(live_wallet: LiveVault, vault_state: AppState, page: Page,
                             authenticator: Authenticator) -> None:
    ctx = vault_state.ctx

    # -- the landing page, then sign up with "Create a passkey" -------------------------
    page.goto("/wallet")
    snap(page, "journey landing")
    page.get_by_role("link", name="Create an account").first.click()
    page.wait_for_url(at("/wallet/signup"))
    snap(page, "journey sign up")
    sign_up(page)
    [passkey] = authenticator.credentials()
    assert passkey["isResidentCredential"] and passkey["rpId"] == "localhost"
    citizen_id = newest_citizen(ctx)
    assert page.get_by_role("heading", level=1).inner_text() == "Your account is ready"
    snap(page, "journey welcome")
    give_ada_data(ctx, citizen_id)

    # -- sign out, then "Sign in with a passkey" (username-less: the resident key) -------
    button(page, "Sign out").click()
    page.wait_for_url(SIGNED_OUT)
    assert button(page, "Sign out").count() == 0
    page.goto("/wallet/requests")  # a signed-in page sends us to sign in first
    page.wait_for_url(SIGN_IN_FIRST)
    snap(page, "journey sign in")
    before = authenticator.credentials()[0]["signCount"]
    button(page, "Sign in with a passkey").click()
    page.wait_for_url(at("/wallet/requests"))  # back where we were going
    assert authenticator.credentials()[0]["signCount"] > before
    assert page.get_by_text("Nothing is waiting for you").is_visible()

    # -- a service asks; the request waits on the dashboard and the requests page -------
    service_id = blue_badge(ctx)
    grant_id = ask(ctx, World(service_id, citizen_id, "")).id
    page.goto("/wallet")
    assert page.get_by_role("heading", level=1).inner_text() == "Your wallet"
    assert page.get_by_role("link", name="1 request waiting for your answer").is_visible()
    snap(page, "journey dashboard with a request")
    page.get_by_role("link", name="Requests", exact=True).click()
    page.wait_for_url(at("/wallet/requests"))
    card = page.get_by_role("article").filter(has_text="Blue Badge team")
    assert "Waiting for your answer" in card.inner_text()
    snap(page, "journey requests")

    # -- the consent screen: "Approve" signs the terms with the passkey ------------------
    card.get_by_role("link", name="Look at this request from Blue Badge team").click()
    page.wait_for_url(at(f"/wallet/grants/{grant_id}"))
    assert "Blue Badge team is asking" in page.get_by_role("heading", level=1).inner_text()
    snap(page, "journey consent screen")
    button(page, "Approve").click()
    page.wait_for_url(at(f"/wallet/grants/{grant_id}?done=approved"))
    assert grant_state(ctx, grant_id) == "approved"
    assert page.get_by_role("status").filter(has_text="You said yes").is_visible()
    assert page.locator(".tag").first.inner_text() == "Active"
    page_check(page, "journey grant approved")
    page.goto("/wallet/grants")
    assert page.get_by_role("article").filter(has_text="Blue Badge team").count() == 1
    snap(page, "journey grants now")

    # -- the service reads; the access shows on the activity page ------------------------
    release = read_under_grant(ctx, service_id=service_id, grant_id=grant_id)
    assert release.data["address.home"]["postcode"] == "SW1Y 4JH"
    page.goto("/wallet")  # the dashboard shows the latest uses too
    latest = page.get_by_role("region", name="Latest uses of your information")
    assert "Blue Badge team" in latest.get_by_role("row").nth(1).inner_text()
    page.get_by_role("link", name="Activity", exact=True).click()
    page.wait_for_url(at("/wallet/activity"))
    table = page.get_by_role("region", name="Every use of your information")
    rows = table.get_by_role("row")
    assert rows.count() == 2  # the header and the one read
    row = rows.nth(1).inner_text()
    assert "Blue Badge team" in row and "Answer only" in row, row
    snap(page, "journey activity after a read")

    # -- "Revoke access": the next read is refused ---------------------------------------
    table.get_by_role("link", name="Blue Badge team").click()
    page.wait_for_url(at(f"/wallet/grants/{grant_id}"))
    assert page.get_by_role("region", name="Every time Blue Badge team looked") \
        .get_by_role("row").count() == 2
    button(page, "Revoke access").click()
    page.wait_for_url(at(f"/wallet/grants/{grant_id}?done=revoked"))
    assert grant_state(ctx, grant_id) == "revoked"
    assert page.locator(".tag").first.inner_text() == "You stopped it"
    assert button(page, "Revoke access").count() == 0
    page_check(page, "journey grant revoked")
    with pytest.raises(AccessDenied) as refused:
        read_under_grant(ctx, service_id=service_id, grant_id=grant_id)
    assert refused.value.reason == "revoked"
    page.goto("/wallet/grants?show=ended")
    assert page.get_by_role("article").filter(has_text="You stopped it").count() == 1

    # -- the consent receipt downloads as JSON naming the grant --------------------------
    # Checked now, judged at the end: a broken receipt must not hide the erasure steps.
    receipt_problem = receipt_download_problem(page, grant_id)

    # -- "Delete my account": erased, signed out, on the goodbye page --------------------
    page.goto("/wallet/account")
    snap(page, "journey delete account")
    button(page, "Delete my account").click()
    page.wait_for_url(at("/wallet/goodbye"))
    assert not citizen_exists(ctx, citizen_id)
    assert button(page, "Sign out").count() == 0
    snap(page, "journey goodbye")
    page.goto("/wallet/requests")  # the session ended with the account
    page.wait_for_url(SIGN_IN_FIRST)

    assert receipt_problem is None, f"STEP 'download the receipt' FAILED: {receipt_problem}"


def test_a_lost_device_and_a_recovery_code(live_wallet: LiveVault, vault_state: AppState,
                                           page: Page, authenticator: Authenticator) -> None:
    from playwright.sync_api import expect  # here: a missing Playwright skips, as conftest says

    ctx = vault_state.ctx
    sign_up(page)
    citizen_id = newest_citizen(ctx)
    page.get_by_role("button", name="Show my recovery codes", exact=True).click()
    codes = page.get_by_role("list", name="Recovery codes").get_by_role("listitem")
    assert codes.count() >= 5
    code = codes.first.inner_text().strip()
    snap(page, "recovery codes")
    button(page, "Sign out").click()
    page.wait_for_url(SIGNED_OUT)

    # The phone is lost: signing in finds no passkey and says so in words.
    authenticator.remove()
    page.evaluate("""() => {  // do not wait the whole ceremony timeout for nobody
      const get = navigator.credentials.get.bind(navigator.credentials);
      navigator.credentials.get = (o) => get({...o, publicKey: {...o.publicKey, timeout: 500}});
    }""")
    button(page, "Sign in with a passkey").click()
    alert = page.locator("[data-passkey-status]")
    alert.filter(has_text="cancelled or timed out").wait_for()
    assert SIGNED_OUT.match(page.url)  # still on the sign-in page

    # A recovery code gets the citizen in, and asks for a passkey on the new device.
    page.get_by_role("link", name="Use a recovery code").click()
    page.wait_for_url(at("/wallet/recover"))
    page.get_by_label("Recovery code").fill("WRONG-CODE-HERE")
    page.get_by_role("button", name="Continue", exact=True).click()
    expect(page.get_by_role("alert").filter(has_text="That did not work")).to_be_visible()
    field = page.get_by_label("Recovery code")
    assert field.get_attribute("aria-invalid") == "true"
    snap(page, "recover with a wrong code")
    field.fill(code)
    page.get_by_role("button", name="Continue", exact=True).click()
    page.wait_for_url(at("/wallet/passkeys?done=recovered"))
    page_check(page, "passkeys after recovery")

    new_phone = Authenticator.attach(page)
    page.get_by_label("Name for this device").fill("My new phone")
    button(page, "Add a passkey").click()
    page.wait_for_url(at("/wallet/passkeys?done=added"))
    [held] = new_phone.credentials()
    assert held["isResidentCredential"]
    assert page.get_by_role("heading", name="My new phone").is_visible()
    snap(page, "passkeys with a new passkey")

    # The new device signs in; the used code does not work a second time.
    button(page, "Sign out").click()
    page.wait_for_url(SIGNED_OUT)
    before = held["signCount"]
    button(page, "Sign in with a passkey").click()
    page.wait_for_url(at("/wallet"))
    assert new_phone.credentials()[0]["signCount"] > before
    assert citizen_exists(ctx, citizen_id)
    button(page, "Sign out").click()
    page.wait_for_url(SIGNED_OUT)
    page.goto("/wallet/recover")
    page.get_by_label("Recovery code").fill(code)
    page.get_by_role("button", name="Continue", exact=True).click()
    expect(page.get_by_role("alert").filter(has_text="That did not work")).to_be_visible()


def test_stopping_a_service_asking(live_wallet: LiveVault, vault_state: AppState, page: Page,
                                   authenticator: Authenticator) -> None:
    ctx = vault_state.ctx
    sign_up(page)
    citizen_id = newest_citizen(ctx)
    give_ada_data(ctx, citizen_id)
    world = World(blue_badge(ctx), citizen_id, "")
    first, second = ask(ctx, world).id, ask(ctx, world).id

    page.goto(f"/wallet/grants/{second}")
    page.get_by_role("link", name="Stop this service asking").click()
    page.wait_for_url(at(f"/wallet/services/{world.service_id}/stop?grant={second}"))
    assert page.get_by_role("heading", level=1).inner_text() == \
        "Stop Blue Badge team asking you?"
    assert page.get_by_text("Its 2 requests waiting for you are declined").is_visible()
    page_check(page, "stop a service asking")
    button(page, "Stop this service asking").click()
    page.wait_for_url(at("/wallet/requests?done=stopped"))
    assert page.get_by_text("Nothing is waiting for you").is_visible()
    assert [grant_state(ctx, g) for g in (first, second)] == ["denied", "denied"]
    page_check(page, "requests with a stopped service")

    allow = button(page, "Let this service ask again (Blue Badge team)")
    allow.click()
    page.wait_for_url(at("/wallet/requests?done=allowed"))
    assert allow.count() == 0
    ask(ctx, world)  # it may ask again
