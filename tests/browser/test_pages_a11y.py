"""Every wallet page in real Chromium: axe finds nothing serious, it fits 375 px, and the
consent screen works from the keyboard alone.

One vault and one signed-in citizen serve the whole module (a citizen with data, a
request waiting, an approved grant the service has read under, a declined one), so each
page costs one visit. Screenshots (desktop and 375 px) and axe reports land in
test-artifacts/wallet/ as "a11y-<page>".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest
from browser.harness import (
    MOBILE_VIEWPORT,
    Authenticator,
    at,
    button,
    grant_state,
    newest_citizen,
    page_check,
)
from livevault import LiveVault, serve
from support.vaultworld import World, ask, blue_badge

from vault.config import Settings
from vault.services import records
from vault.services.access import read_under_grant

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize

    from vault.services.context import VaultContext

pytestmark = pytest.mark.browser

DESKTOP_VIEWPORT: ViewportSize = {"width": 1280, "height": 800}  # as the conftest's




@dataclass
class Site:
    """The module's vault, its signed-in citizen and a visitor who is not signed in."""

    vault: LiveVault
    ctx: VaultContext
    citizen: Page
    visitor: Page
    device: Authenticator
    citizen_id: str = ""
    service_id: str = ""
    ids: dict[str, str] = field(default_factory=dict)  # pending, approved, ended
    errors: list[str] = field(default_factory=list)  # uncaught JavaScript errors


def _new_page(context: BrowserContext, errors: list[str]) -> Page:
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc.name}: {exc.message}"))
    return page


def _context(browser: Browser, url: str) -> BrowserContext:
    context = browser.new_context(viewport=DESKTOP_VIEWPORT, locale="en-GB", base_url=url)
    context.set_default_timeout(10_000)
    return context








def _furnish(site: Site) -> None:
    """Sign up in the browser; data; a request waiting, one approved and read, one declined."""
    page, ctx = site.citizen, site.ctx
    page.goto("/wallet/signup")
    button(page, "Create a passkey").click()
    page.wait_for_url(at("/wallet/welcome"))
    site.citizen_id = cid = newest_citizen(ctx)
    records.write_record(ctx, cid, "identity.name", {"given": "Ada", "family": "Lovelace"})
    records.write_record(ctx, cid, "identity.date_of_birth", "1950-12-10")
    records.write_record(ctx, cid, "address.home", {
        "lines": ["12 St James's Square", "Flat 4, the very long building name"],
        "town": "London", "postcode": "SW1Y 4JH", "local_authority": "Westminster"})
    site.service_id = blue_badge(ctx)
    world = World(site.service_id, cid, "")
    for name in ("approved", "ended", "pending"):
        site.ids[name] = ask(ctx, world).id

    page.goto(f"/wallet/grants/{site.ids['approved']}")
    button(page, "Approve").click()
    page.wait_for_url(at(f"/wallet/grants/{site.ids['approved']}?done=approved"))
    read_under_grant(ctx, service_id=site.service_id, grant_id=site.ids["approved"])

    page.goto(f"/wallet/grants/{site.ids['ended']}")
    button(page, "Decline").click()
    page.wait_for_url(at("/wallet/requests?done=declined"))
    assert grant_state(ctx, site.ids["ended"]) == "denied"


@pytest.fixture(scope="module")
def site(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    data = tmp_path_factory.mktemp("a11y-vault")
    settings = Settings(data_dir=data / "vault", demo=False, ledger_public=True,
                        checkpoint_interval=0.05)
    with serve(settings) as vault:
        assert vault.app is not None
        citizen_context = _context(browser, vault.url)
        visitor_context = _context(browser, vault.url)  # no cookies: never signed in
        errors: list[str] = []
        citizen = _new_page(citizen_context, errors)
        built = Site(vault, vault.app.state.vault.ctx, citizen,
                     _new_page(visitor_context, errors), Authenticator.attach(citizen),
                     errors=errors)
        try:
            _furnish(built)
            yield built
        finally:
            citizen_context.close()
            visitor_context.close()


@pytest.fixture(autouse=True)
def _no_script_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "site" in request.fixturenames:
        errors = request.getfixturevalue("site").errors
        found, errors[:] = list(errors), []
        assert not found, "uncaught JavaScript error(s):\n" + "\n".join(found)


def _fits_375(page: Page) -> None:
    """No sideways scrolling on a small phone (WCAG 1.4.10 Reflow)."""
    before = page.viewport_size
    page.set_viewport_size(MOBILE_VIEWPORT)
    try:
        width = page.evaluate("document.documentElement.scrollWidth")
        wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
          .filter((el) => el.getBoundingClientRect().right > 376
                          && !el.closest('.table-wrap'))
          .slice(0, 5).map((el) => el.tagName.toLowerCase()
                           + (el.className ? '.' + el.className : ''))""")
        # A table may scroll inside its .table-wrap, but then words hide off the edge of
        # a phone: the wallet's tables stack their cells instead (table.stack).
        squeezed = page.evaluate("""() => [...document.querySelectorAll('.table-wrap')]
          .filter((el) => el.scrollWidth > el.clientWidth + 1)
          .map((el) => el.getAttribute('aria-label') || el.className)""")
    finally:
        if before is not None:
            page.set_viewport_size(before)
    assert width <= 375, f"{page.url} scrolls sideways at 375 px ({width} px): {wide}"
    assert not squeezed, f"{page.url}: tables scroll sideways at 375 px: {squeezed}"


def _open_data_edit(site: Site) -> None:
    """The My data page's "Change your home address" link (its path belongs to that page)."""
    page = site.citizen
    page.goto("/wallet/data")
    page.get_by_role("link", name=re.compile(r"^Change your home address$", re.I)).click()
    page.wait_for_url(re.compile(r"/wallet/data/[a-z._]+$"))


def _show_codes(site: Site) -> None:
    page = site.citizen
    page.goto("/wallet/welcome")
    button(page, "Show my recovery codes").click()
    page.get_by_role("heading", name="Your recovery codes").wait_for()


def _wrong_code(site: Site) -> None:
    page = site.visitor
    page.goto("/wallet/recover")
    page.get_by_label("Recovery code").fill("NOT-A-REAL-CODE")
    button(page, "Continue").click()
    page.get_by_role("alert").filter(has_text="did not work").wait_for()


def _latest_use_on_the_dashboard(page: Page) -> None:
    latest = page.get_by_role("region", name="Latest uses of your information")
    assert "Blue Badge team" in latest.get_by_role("row").nth(1).inner_text()


def _a_no_is_not_a_yes(page: Page) -> None:
    """A declined request never let the service see anything: no "can see", no "agreed"."""
    main = page.get_by_role("main").inner_text()
    assert "You said no" in main and "What they asked for" in main, main
    assert "What you agreed to" not in main and "can see" not in main, main
    assert "They could not look, because you did not say yes." in main


def _ended_cards_in_the_past(page: Page) -> None:
    card = page.get_by_role("article").filter(has_text="You said no").inner_text()
    # What a category holds, not only its label ("Home address").
    assert "They asked to see: where you live, and the council for that address." in card \
        and "Until" not in card, card


#: What else a page must show, beyond passing axe and fitting a phone.
EXTRA = {
    "dashboard": _latest_use_on_the_dashboard,
    "grant ended": _a_no_is_not_a_yes,
    "grants before": _ended_cards_in_the_past,
}


# (name, who, path or how to get there, the one <h1> it shows)
PAGES: list[tuple[str, str, str | Callable[[Site], None], str]] = [
    ("landing", "visitor", "/wallet", "Your data, your say"),
    ("sign up", "visitor", "/wallet/signup", "Create an account"),
    ("sign in", "visitor", "/wallet/signin", "Sign in"),
    ("recover", "visitor", "/wallet/recover", "Use a recovery code"),
    ("recover wrong code", "visitor", _wrong_code, "Use a recovery code"),
    ("goodbye", "visitor", "/wallet/goodbye", "Your account is deleted"),
    ("not found", "visitor", "/wallet/no-such-page", "Page not found"),
    ("service link broken", "visitor", "/oauth/authorize?client_id=svc_x",
     "That link did not work"),
    ("welcome", "citizen", "/wallet/welcome", "Your account is ready"),
    ("recovery codes", "citizen", _show_codes, "Your recovery codes"),
    ("dashboard", "citizen", "/wallet", "Your wallet"),
    ("requests", "citizen", "/wallet/requests", "Requests waiting for your answer"),
    ("consent", "citizen", "/wallet/grants/{pending}",
     "Blue Badge team is asking to use some of your information"),
    ("grants now", "citizen", "/wallet/grants?show=active", "Who can use your information"),
    ("grants before", "citizen", "/wallet/grants?show=ended", "Who can use your information"),
    ("grant approved", "citizen", "/wallet/grants/{approved}", "Blue Badge team"),
    ("grant ended", "citizen", "/wallet/grants/{ended}", "Blue Badge team"),
    ("grant not found", "citizen", "/wallet/grants/gr_nobody", "Page not found"),
    ("activity", "citizen", "/wallet/activity", "Every use of your information"),
    ("my data", "citizen", "/wallet/data", "My data"),
    ("my data edit", "citizen", _open_data_edit, "Home address"),
    ("passkeys", "citizen", "/wallet/passkeys", "Your passkeys"),
    ("account", "citizen", "/wallet/account", "Delete your account"),
]


@pytest.mark.parametrize(("name", "who", "where", "heading"), PAGES,
                         ids=[p[0].replace(" ", "-") for p in PAGES])
def test_page_is_accessible_and_fits_a_phone(site: Site, name: str, who: str,
                                             where: str | Callable[[Site], None],
                                             heading: str) -> None:
    page = site.visitor if who == "visitor" else site.citizen
    if isinstance(where, str):
        response = page.goto(where.format(**site.ids))
        assert response is not None
        expected = 404 if name.endswith("not found") else 400 if "broken" in name else 200
        assert response.status == expected, f"{where}: HTTP {response.status}"
    else:
        where(site)
    h1 = page.get_by_role("heading", level=1)
    assert h1.count() == 1, f"{page.url}: {h1.count()} <h1> elements"
    assert h1.inner_text() == heading
    assert page.locator("a.skip-link").get_attribute("href") == "#main"
    if name in EXTRA:
        EXTRA[name](page)
    page_check(page, f"a11y {name}")
    _fits_375(page)


def _focused(page: Page) -> str:
    return str(page.evaluate("""() => {
      const el = document.activeElement;
      if (!el || el === document.body) return 'body';
      return `${el.tagName.toLowerCase()}#${el.id}|${(el.innerText || '').trim()}`;
    }"""))


def test_consent_screen_from_the_keyboard_alone(site: Site) -> None:
    page = site.citizen
    grant_id = ask(site.ctx, World(site.service_id, site.citizen_id, "")).id
    page.goto(f"/wallet/grants/{grant_id}")

    page.keyboard.press("Tab")
    assert _focused(page) == "a#|Skip to main content"
    box = page.locator("a.skip-link").bounding_box()
    assert box is not None and box["y"] >= 0, "the focused skip link stays off screen"
    page.keyboard.press("Enter")
    assert _focused(page).startswith("main#main")

    for presses in range(1, 40):
        page.keyboard.press("Tab")
        if _focused(page) == "button#|Approve":
            break
    else:
        pytest.fail(f"Tab never reached the Approve button (last focus: {_focused(page)})")
    assert presses <= 15, f"{presses} Tab presses from the main content to Approve"
    ring = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert ring != "none", "the focused Approve button shows no focus ring"
    page_check(page, "a11y consent keyboard focus on approve")

    page.keyboard.press("Enter")
    page.wait_for_url(at(f"/wallet/grants/{grant_id}?done=approved"))
    assert grant_state(site.ctx, grant_id) == "approved"

