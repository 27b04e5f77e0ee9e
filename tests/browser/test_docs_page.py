"""/docs in real Chromium, offline: Swagger UI renders the vault's operations from the
vault's own files, under its CSP, asking nothing of any other origin (issue 11, bug 7)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:
    from livevault import LiveVault
    from playwright.sync_api import BrowserContext, ConsoleMessage, Page, Route

pytestmark = pytest.mark.browser


def test_docs_render_offline_with_no_csp_error(live_wallet: LiveVault, context: BrowserContext,
                                               page: Page) -> None:
    origin = urlsplit(live_wallet.url)
    elsewhere: list[str] = []

    def only_the_vault(route: Route) -> None:
        url = urlsplit(route.request.url)
        if (url.scheme, url.netloc) == (origin.scheme, origin.netloc) or url.scheme == "data":
            route.continue_()
        else:  # as if offline: nothing else answers
            elsewhere.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_vault)
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            problems.append(f"{message.type}: {message.text}")

    page.on("console", on_console)
    context.add_init_script("document.addEventListener('securitypolicyviolation', e => "
                            "console.error('CSP violation: ' + e.violatedDirective))")

    page.goto("/docs")
    operations = page.locator(".opblock")
    operations.first.wait_for()
    assert operations.count() >= 10
    assert page.locator(".opblock-summary-path", has_text="/oauth/par").count() == 1
    assert page.get_by_role("heading", name="Citizen Data Vault").count() >= 1
    page.locator(".opblock-summary-path", has_text="/healthz").click()  # it opens
    page.locator(".opblock.is-open").first.wait_for()

    assert elsewhere == [], f"the page asked other origins: {elsewhere}"
    assert problems == [], "\n".join(problems)
