"""The browser harness works on its own: passkeys on a virtual device, screenshots, axe."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest
from browser.harness import (
    ARTIFACTS,
    Authenticator,
    check_accessibility,
    page_check,
    snap,
)
from livevault import LiveVault

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

# What a wallet page does: a discoverable passkey with user verification for the RP
# "localhost", then a sign-in with it. Both return what the test needs to check.
CREATE = """async (userId) => {
  const cred = await navigator.credentials.create({publicKey: {
    rp: {id: "localhost", name: "Citizen Data Vault"},
    user: {id: new TextEncoder().encode(userId), name: "ada", displayName: "Ada"},
    challenge: crypto.getRandomValues(new Uint8Array(32)),
    pubKeyCredParams: [{type: "public-key", alg: -7}, {type: "public-key", alg: -257}],
    authenticatorSelection: {residentKey: "required", requireResidentKey: true,
                             userVerification: "required"},
    timeout: 5000,
  }});
  const flags = new Uint8Array(cred.response.getAuthenticatorData())[32];
  return {id: cred.id, type: cred.type, flags,
          attachment: cred.authenticatorAttachment};
}"""

GET = """async (timeout) => {
  try {
    const cred = await navigator.credentials.get({publicKey: {
      rpId: "localhost",
      challenge: crypto.getRandomValues(new Uint8Array(32)),
      userVerification: "required",
      timeout,
    }});
    return {ok: true, id: cred.id,
            flags: new Uint8Array(cred.response.authenticatorData)[32],
            user: new TextDecoder().decode(cred.response.userHandle)};
  } catch (e) {
    return {ok: false, error: e.name};
  }
}"""

UP, UV = 0x01, 0x04


def test_a_page_of_the_live_vault_is_a_secure_context(live_wallet: LiveVault,
                                                      page: Page) -> None:
    page.goto("/healthz")  # base_url is the live vault
    assert page.url == f"{live_wallet.url}/healthz"
    assert page.evaluate("window.isSecureContext") is True
    assert page.evaluate("location.origin") == live_wallet.settings.base_url


def test_passkey_sign_up_and_sign_in_on_the_virtual_device(
        live_wallet: LiveVault, page: Page, authenticator: Authenticator) -> None:
    page.goto(f"{live_wallet.url}/healthz")
    assert authenticator.credentials() == []

    made: dict[str, Any] = page.evaluate(CREATE, "citizen-1")
    assert made["type"] == "public-key" and made["attachment"] == "platform"
    assert made["flags"] & UP and made["flags"] & UV

    [held] = authenticator.credentials()
    assert held["rpId"] == "localhost" and held["isResidentCredential"] is True

    signed_in = page.evaluate(GET, 3000)
    assert signed_in["ok"], signed_in
    assert signed_in["id"] == made["id"] and signed_in["user"] == "citizen-1"
    assert signed_in["flags"] & UV
    assert authenticator.credentials()[0]["signCount"] > held["signCount"]

    authenticator.set_user_verified(False)  # the fingerprint is not recognised
    assert page.evaluate(GET, 3000) == {"ok": False, "error": "NotAllowedError"}
    authenticator.set_user_verified(True)
    assert page.evaluate(GET, 3000)["ok"]


def test_a_lost_device_and_a_new_one(live_wallet: LiveVault, page: Page,
                                     authenticator: Authenticator) -> None:
    page.goto(f"{live_wallet.url}/healthz")
    page.evaluate(CREATE, "citizen-1")
    authenticator.remove()  # lost: nothing answers, the ceremony times out
    assert page.evaluate(GET, 500) == {"ok": False, "error": "NotAllowedError"}

    new_phone = Authenticator.attach(page)  # a new device knows no passkey yet
    assert new_phone.credentials() == []
    assert page.evaluate(GET, 3000) == {"ok": False, "error": "NotAllowedError"}


def test_snap_writes_a_desktop_and_a_mobile_screenshot(live_wallet: LiveVault,
                                                       page: Page) -> None:
    page.goto(f"{live_wallet.url}/healthz")
    size = page.viewport_size
    png = snap(page, "Harness: healthz")
    mobile = png.with_name(png.stem + "-375.png")
    assert png.parent == ARTIFACTS and png.name.endswith("-harness-healthz.png")
    number = re.sub(r"^gw\d+-", "", png.name)  # pytest-xdist workers prefix their files
    assert number[:2].isdigit()
    for shot in (png, mobile):
        data = shot.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 100
    # PNG header: width is the big-endian int at byte 16
    assert int.from_bytes(mobile.read_bytes()[16:20], "big") == 375
    assert page.viewport_size == size  # restored

    later = snap(page, "harness-later")
    later_number = re.sub(r"^gw\d+-", "", later.name)
    assert int(later_number[:2]) > int(number[:2])  # files sort in journey order


ACCESSIBLE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in - Citizen Data Vault</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><header><p>Citizen Data Vault</p></header>
<main><h1>Sign in</h1><p>Use the passkey on this device.</p>
<button type="button">Sign in with a passkey</button></main></body></html>"""

BROKEN = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Broken</title></head>
<body><main><h1>Broken</h1>
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" id="logo">
<button id="mystery" type="button"></button></main></body></html>"""


def test_check_accessibility_passes_an_accessible_page(page: Page) -> None:
    page.set_content(ACCESSIBLE)
    result = check_accessibility(page, "harness-accessible")
    assert result["violations"] == [] and result["passes"]
    reports = sorted(ARTIFACTS.glob("*-harness-accessible.axe.json"))
    assert reports and reports[-1].stat().st_size > 0


def test_check_accessibility_fails_on_serious_violations(page: Page) -> None:
    page.set_content(BROKEN)
    with pytest.raises(pytest.fail.Exception) as failed:
        check_accessibility(page, "harness-broken")
    message = str(failed.value)
    assert "image-alt" in message and "#logo" in message  # critical
    assert "button-name" in message and "#mystery" in message  # critical
    assert "Images must have alternative text" in message


def test_page_check_snaps_and_checks(page: Page) -> None:
    page.set_content(ACCESSIBLE)
    png = page_check(page, "harness-page-check")
    stem = png.name.removesuffix(".png")
    assert png.is_file() and (ARTIFACTS / f"{stem}-375.png").is_file()
    assert (ARTIFACTS / f"{stem}.axe.json").is_file()

    page.set_content(BROKEN)
    with pytest.raises(pytest.fail.Exception, match="image-alt"):
        page_check(page, "harness-page-check-broken")


def test_axe_runs_under_a_strict_content_security_policy(page: Page) -> None:
    """The wallet's pages will likely forbid inline scripts; axe must still run."""
    page.route("http://localhost/csp", lambda route: route.fulfill(
        status=200, content_type="text/html; charset=utf-8", body=ACCESSIBLE,
        headers={"content-security-policy": "default-src 'self'; script-src 'self'"}))
    page.goto("http://localhost/csp")
    assert check_accessibility(page, "harness-csp")["violations"] == []
