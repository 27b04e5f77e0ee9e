"""Real-browser helpers for the wallet tests: a virtual passkey device, screenshots, axe.

    Authenticator.attach(page)      a Chrome DevTools WebAuthn virtual authenticator
    snap(page, name)                full-page PNG + a 375 px wide one, in journey order
    check_accessibility(page, name) axe-core (WCAG 2.0/2.1/2.2 A+AA, best practice);
                                    fails on every "serious" or "critical" violation
    page_check(page, name)          snap + check_accessibility under one number

Files go to test-artifacts/wallet/<NN>-<name>.png, <NN>-<name>-375.png and
<NN>-<name>.axe.json; NN counts up through the test session, so the folder reads as
the journey. The folder's old PNG/JSON files are removed at the session's first file.
Under pytest-xdist the names start with the worker (gw0-01-...), and each worker
removes only its own old files.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlmodel import Session, col, select

from vault.storage.tables import CitizenRow, GrantRow

if TYPE_CHECKING:
    from playwright.sync_api import CDPSession, Locator, Page, ViewportSize

    from vault.services.context import VaultContext

__all__ = [
    "ARTIFACTS",
    "AUTHENTICATOR_OPTIONS",
    "AXE_OPTIONS",
    "BLOCKING_IMPACTS",
    "MOBILE_VIEWPORT",
    "Authenticator",
    "check_accessibility",
    "check_at_375",
    "page_check",
    "snap",
]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "wallet"

#: A platform authenticator (think: the phone's fingerprint sensor) that holds
#: discoverable credentials, verifies the user and answers without a touch.
AUTHENTICATOR_OPTIONS: dict[str, Any] = {
    "protocol": "ctap2",
    "transport": "internal",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
    "automaticPresenceSimulation": True,
}

MOBILE_VIEWPORT: ViewportSize = {"width": 375, "height": 812}

AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa",
            "best-practice"]
#: Everything axe finds (violations, passes, incomplete, inapplicable) goes to the JSON.
AXE_OPTIONS: dict[str, Any] = {"runOnly": {"type": "tag", "values": AXE_TAGS}}
BLOCKING_IMPACTS = ("serious", "critical")


# -- the virtual passkey device ---------------------------------------------------------


@dataclass
class Authenticator:
    """A virtual authenticator on one page (Chrome DevTools `WebAuthn` domain)."""

    cdp: CDPSession
    id: str

    @classmethod
    def attach(cls, page: Page, **options: Any) -> Authenticator:
        """Add a virtual authenticator to `page` (AUTHENTICATOR_OPTIONS, overridden by
        `options`, e.g. isUserVerified=False). Another call adds another device."""
        cdp = page.context.new_cdp_session(page)
        cdp.send("WebAuthn.enable", {"enableUI": False})
        result = cdp.send("WebAuthn.addVirtualAuthenticator",
                          {"options": {**AUTHENTICATOR_OPTIONS, **options}})
        return cls(cdp, result["authenticatorId"])

    def credentials(self) -> list[dict[str, Any]]:
        """The credentials it holds: credentialId, isResidentCredential, rpId,
        privateKey, userHandle (base64), signCount."""
        result = self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": self.id})
        return list(result["credentials"])

    def set_user_verified(self, verified: bool) -> None:
        """Whether user verification (the fingerprint, the PIN) succeeds from now on."""
        self.cdp.send("WebAuthn.setUserVerified",
                      {"authenticatorId": self.id, "isUserVerified": verified})

    def clear_credentials(self) -> None:
        """Forget every credential (the device was reset)."""
        self.cdp.send("WebAuthn.clearCredentials", {"authenticatorId": self.id})

    def remove(self) -> None:
        """Take the device away (it was lost). Later ceremonies find no authenticator
        and fail when their `timeout` runs out."""
        self.cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": self.id})


# -- artifacts --------------------------------------------------------------------------

_lock = threading.Lock()
_counter = itertools.count(1)
_cleaned = False


def _slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug or "page"


def _stem(name: str) -> Path:
    """The next `<NN>-<name>` path (no suffix) under ARTIFACTS; cleans the folder once."""
    global _cleaned
    # Under pytest-xdist each worker numbers (and cleans) only its own files: gw0-01-...
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    prefix = f"{worker}-" if worker else ""
    with _lock:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        if not _cleaned:
            for old in (*ARTIFACTS.glob(f"{prefix}*.png"),
                        *ARTIFACTS.glob(f"{prefix}*.axe.json")):
                old.unlink(missing_ok=True)
            _cleaned = True
        return ARTIFACTS / f"{prefix}{next(_counter):02d}-{_slug(name)}"


def _shoot(page: Page, stem: Path) -> Path:
    png = stem.with_name(stem.name + ".png")
    page.screenshot(path=str(png), full_page=True, animations="disabled")
    before = page.viewport_size
    page.set_viewport_size(MOBILE_VIEWPORT)
    try:
        page.screenshot(path=str(stem.with_name(stem.name + "-375.png")), full_page=True,
                        animations="disabled")
    finally:
        if before is not None:
            page.set_viewport_size(before)
    return png


def _format(violations: list[dict[str, Any]], page_url: str, report: Path) -> str:
    lines = [f"{len(violations)} serious/critical accessibility violation(s) on {page_url} "
             f"(full axe result: {report}):"]
    for v in violations:
        lines.append(f"- [{v['impact']}] {v['id']}: {v['help']} ({v.get('helpUrl', '')})")
        for node in v["nodes"]:
            target = " ".join(t if isinstance(t, str) else json.dumps(t)
                              for t in node["target"])
            summary = " ".join(node.get("failureSummary", "").split())
            lines.append(f"    {target}: {summary}")
    return "\n".join(lines)


def _axe(page: Page, stem: Path) -> dict[str, Any]:
    """Run axe, save the full result next to the screenshot, fail on blocking ones."""
    from axe_playwright_python.sync_playwright import Axe

    result: dict[str, Any] = Axe().run(page, options=AXE_OPTIONS).response
    report = stem.with_name(stem.name + ".axe.json")
    report.write_text(json.dumps(result, indent=2))
    blocking = [v for v in result["violations"] if v.get("impact") in BLOCKING_IMPACTS]
    if blocking:
        pytest.fail(_format(blocking, page.url, report), pytrace=False)
    return result


# -- the three helpers the tests call ---------------------------------------------------


def snap(page: Page, name: str) -> Path:
    """Save a full-page screenshot and a 375x812 one; returns the first PNG's path."""
    return _shoot(page, _stem(name))


def check_accessibility(page: Page, name: str) -> dict[str, Any]:
    """Run axe on the page as it is; save the full result as <NN>-<name>.axe.json.

    Fails the test (pytest.fail) listing every serious or critical violation: rule id,
    impact, help text and target nodes. Returns the axe result (a dict) otherwise."""
    return _axe(page, _stem(name))


def page_check(page: Page, name: str) -> Path:
    """snap + check_accessibility, files under one number. Returns the PNG's path."""
    stem = _stem(name)
    png = _shoot(page, stem)
    _axe(page, stem)
    return png


def check_at_375(page: Page, name: str) -> None:
    """`page_check` at the page's own width (screenshots at both widths, axe), then axe
    again at 375 px and no sideways scrolling there (WCAG 1.4.10 Reflow), and back."""
    page_check(page, name)
    wide = page.viewport_size
    page.set_viewport_size(MOBILE_VIEWPORT)
    try:
        width, inner = page.evaluate(
            "[document.documentElement.scrollWidth, window.innerWidth]")
        assert width <= inner, f"{page.url} is {width} px wide in a {inner} px window"
        check_accessibility(page, f"{name} 375")
    finally:
        if wide is not None:
            page.set_viewport_size(wide)


# -- what the wallet tests share -------------------------------------------------------


def at(path: str) -> re.Pattern[str]:
    """A URL matcher for exactly this path and query on the vault (a glob's `**` would
    also match the sign-in page's `?next=` pointing there)."""
    return re.compile(r"^http://[^/]+" + re.escape(path) + "$")


def button(page: Page, name: str) -> Locator:
    """A button by its exact accessible name (ARCHITECTURE §6)."""
    return page.get_by_role("button", name=name, exact=True)


def newest_citizen(ctx: VaultContext) -> str:
    """The citizen the browser just made (the newest row: each vault is the test's own)."""
    with Session(ctx.engine) as session:
        row = session.exec(
            select(CitizenRow).order_by(col(CitizenRow.created_at).desc())).first()
    assert row is not None, "no citizen in the vault"
    return row.id


def grant_state(ctx: VaultContext, grant_id: str) -> str:
    with Session(ctx.engine) as session:
        row = session.get(GrantRow, grant_id)
    assert row is not None
    return row.state
