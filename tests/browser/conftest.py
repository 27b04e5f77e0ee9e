"""Fixtures for real-browser tests: Debian's Chromium driven by Playwright (sync API).

    browser         (session) the Chromium browser; missing => skip, or fail if strict
    live_wallet     a fresh vault served on a free port (SQLite in tmp_path, demo off,
                    public ledger): a LiveVault(url, settings, app)
    vault_state     that vault's AppState (`.ctx` is its VaultContext), to act as a
                    service would from the test
    context         a fresh browser context; base_url = live_wallet.url when the test
                    uses live_wallet (so page.goto("/wallet/...") works)
    page            a fresh page in it; a virtual passkey device is always attached
    authenticator   that device (harness.Authenticator: .id, .credentials(),
                    .set_user_verified(bool), .clear_credentials(), .remove());
                    Authenticator.attach(page) adds another (a new phone)
    page_errors     uncaught JavaScript errors on `page`; any left at the end fail the
                    test, so a test that expects one must check and clear() the list

Every test using `browser` (directly or through these fixtures) is marked `browser`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from browser.harness import Authenticator  # tests/ is on pythonpath
from conftest import require  # tests/conftest.py
from livevault import LiveVault, serve

from vault.config import Settings

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

    from vault.api.deps import AppState

CHROMIUM = Path("/usr/bin/chromium")
DESKTOP_VIEWPORT = {"width": 1280, "height": 800}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium for one test module: Playwright's sync API keeps an event loop running
    on the main thread while it is open, which later tests' asyncio.run would trip over,
    so it closes with the module (a launch costs about a second)."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        require(False, "playwright is not installed (pip install -e '.[dev]')")
        raise  # unreachable
    require(CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK),
            f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    pw = sync_playwright().start()
    try:
        try:
            chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                          args=args)
        except Error as exc:
            require(False, f"Chromium at {CHROMIUM} did not start: {exc}")
            raise  # unreachable
        yield chromium
        chromium.close()
    finally:
        pw.stop()


@pytest.fixture
def live_wallet(tmp_path: Path) -> Iterator[LiveVault]:
    settings = Settings(data_dir=tmp_path / "vault", demo=False, ledger_public=True,
                        checkpoint_interval=0.05)
    with serve(settings) as vault:
        # The passkey RP origin comes from settings.base_url; it must be what the browser
        # sees, or every ceremony fails on an origin mismatch.
        assert vault.settings.base_url == vault.url, (vault.settings.base_url, vault.url)
        yield vault


@pytest.fixture
def vault_state(live_wallet: LiveVault) -> AppState:
    assert live_wallet.app is not None
    state: AppState = live_wallet.app.state.vault
    return state


@pytest.fixture
def context(browser: Browser, request: pytest.FixtureRequest) -> Iterator[BrowserContext]:
    options: dict[str, Any] = {"viewport": DESKTOP_VIEWPORT, "locale": "en-GB"}
    if "live_wallet" in request.fixturenames:
        options["base_url"] = request.getfixturevalue("live_wallet").url
    ctx = browser.new_context(**options)
    ctx.set_default_timeout(10_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page_errors() -> list[str]:
    return []


@pytest.fixture
def _device_page(context: BrowserContext,
                 page_errors: list[str]) -> Iterator[tuple[Page, Authenticator]]:
    p = context.new_page()
    p.on("pageerror", lambda exc: page_errors.append(f"{exc.name}: {exc.message}"))
    device = Authenticator.attach(p)
    yield p, device
    if page_errors:
        pytest.fail("uncaught JavaScript error(s) on the page:\n" + "\n".join(page_errors),
                    pytrace=False)


@pytest.fixture
def page(_device_page: tuple[Page, Authenticator]) -> Page:
    return _device_page[0]


@pytest.fixture
def authenticator(_device_page: tuple[Page, Authenticator]) -> Authenticator:
    return _device_page[1]
