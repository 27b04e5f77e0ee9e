"""The city's example services (clients.examples.city) in front of a live vault, over
real sockets: registered as `make run` registers them (`demo.register_city`, the `vault`
command line run in this process), each app served by uvicorn on a port of its own.

    with serve(settings) as vault, open_city(vault) as town:
        desk = town.visitor("agency")            # a citizen's browser on the agency's site
        callback = approve(ada, desk.link())     # the vault's consent, approved
        desk.get(callback)                       # back at the agency: linked
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import httpx
from livevault import LiveVault, free_port, serve_app
from support.webwallet import Browser
from typer.testing import CliRunner

from clients.examples import demo
from clients.examples.city import APPS, SPECS
from clients.examples.city.config import CityConfig, load_configs
from vault import cli as vault_cli
from wallet.passkeys.software import SoftAuthenticator
from wallet.web import WalletState

__all__ = ["Town", "Visitor", "in_process", "main_of", "newcomer", "open_city"]

_MAIN = re.compile(r"<main.*?</main>", re.S)


def main_of(page: str) -> str:
    """The page's main content, for an assertion's message."""
    found = _MAIN.search(page)
    return found.group(0) if found else page[:500]


def in_process(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """The same `vault` command line, run in this process (no new interpreter: fast)."""
    result = CliRunner().invoke(vault_cli.app, argv[1:])
    return subprocess.CompletedProcess(argv, result.exit_code, result.stdout, result.stderr)


def newcomer(vault: LiveVault) -> Browser:
    """A citizen who just signed up in the wallet, with nothing in their vault yet (the
    address is the electoral register's to hold: the vault keeps none)."""
    assert vault.app is not None
    b = Browser(httpx.Client(base_url=vault.url, follow_redirects=True, timeout=30),  # type: ignore[arg-type]
                device=SoftAuthenticator(origin=vault.url), origin=vault.url)
    r = b.passkey_post("/wallet/signup", {"label": "My phone"})
    assert r.status_code == 200, r.text
    state: WalletState = vault.app.state.wallet
    b.citizen_id = state.sessions.resolve(b.client.cookies.get(state.cookies.session),
                                          now=vault.app.state.vault.ctx.clock())
    assert b.citizen_id is not None
    return b


@dataclass
class Visitor:
    """One browser on one service's site (its own cookies)."""

    client: httpx.Client

    def link(self) -> str:
        """Press the page's link button: the vault's authorization URL it sends us to."""
        r = self.client.post("/link", follow_redirects=False)
        assert r.status_code == 303, main_of(r.text)
        return str(r.headers["location"])

    def back(self, callback: str) -> str:
        """Come back from the vault to `callback`; the page it then shows."""
        r = self.client.get(callback, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/", main_of(r.text)
        return self.page()

    def page(self) -> str:
        r = self.client.get("/")
        assert r.status_code == 200, main_of(r.text)
        return r.text

    def press(self, path: str) -> str:
        r = self.client.post(path, follow_redirects=False)
        assert r.status_code == 303, main_of(r.text)
        return self.page()

    def wait_for(self, text: str, *, timeout: float = 20.0) -> str:
        """The page once it shows `text` (the vault's webhook arrives on its own time)."""
        deadline = time.monotonic() + timeout
        while True:
            page = self.page()
            if text in page or time.monotonic() > deadline:
                assert text in page, main_of(page)
                return page
            time.sleep(0.1)


@dataclass
class Town:
    urls: dict[str, str]
    configs: dict[str, CityConfig]
    _open: Callable[[str], httpx.Client]

    def visitor(self, slug: str) -> Visitor:
        return Visitor(self._open(self.urls[slug]))


@contextmanager
def open_city(vault: LiveVault) -> Iterator[Town]:
    data_dir = vault.settings.data_dir
    ports = {s.slug: free_port() for s in SPECS}
    urls = {slug: f"http://localhost:{port}" for slug, port in ports.items()}
    demo.register_city(demo.vault_command(), data_dir, urls=urls, run=in_process)
    configs = load_configs(data_dir, vault_url=vault.url, urls=urls)
    with ExitStack() as stack:
        for slug, config in configs.items():
            stack.enter_context(serve_app(APPS[slug](config), ports[slug], what=slug))

        def client(url: str) -> httpx.Client:
            return stack.enter_context(httpx.Client(base_url=url, timeout=30))

        yield Town(urls, configs, client)
