"""Nothing the vault serves loads anything from another origin (issue 11, bugs 5 and 7).

The site's root sends people to the wallet and the icon is served; /docs is Swagger UI
from the vault's own files under a strict CSP; and every HTML page reachable without an
account, found by following links from `/`, has a CSP and loads nothing (scripts,
styles, images, icons, CSS urls) from another origin.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlsplit

import pytest
from fastapi.testclient import TestClient

from vault.app import create_app
from vault.config import Settings

BASE = "http://testserver"


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[TestClient]:
    """The demo vault (services registered, so their pages are reachable too)."""
    s = Settings(data_dir=tmp_path / "data", demo=True, ledger_public=True)
    with TestClient(create_app(s), base_url=BASE, follow_redirects=False) as c:
        yield c


class _Refs(HTMLParser):
    """What a page loads (`loads`), where it links (`links`), and its inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[str] = []
        self.links: list[str] = []
        self.inline_scripts = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "a" and "href" in a:
            self.links.append(a["href"])
        elif tag == "link" and "href" in a:
            self.loads.append(a["href"])  # stylesheets, icons, preloads
        for name in ("src", "poster", "data"):
            if name in a and tag != "a":
                self.loads.append(a[name])
        if "srcset" in a:
            self.loads += [part.split()[0] for part in a["srcset"].split(",") if part.strip()]
        if "style" in a:
            self.loads += _css_urls(a["style"])
        self._in_script = tag == "script" and "src" not in a
        self.inline_scripts += self._in_script

    def handle_data(self, data: str) -> None:
        if self._in_script and not data.strip():
            self.inline_scripts -= 1  # an empty element is not a script
        self._in_script = False


def _css_urls(css: str) -> list[str]:
    found = re.findall(r"""url\(\s*['"]?([^'")]+)""", css)
    found += re.findall(r"""@import\s+['"]([^'"]+)""", css)
    return found


def _other_origin(ref: str, page: str) -> bool:
    """True when `ref`, as loaded from `page`, is fetched from another origin."""
    target = urlsplit(urljoin(page, ref.strip()))
    if target.scheme in ("data", "blob", "about") or ref.strip().startswith("#"):
        return False
    return (target.scheme, target.netloc) != ("http", "testserver")


def test_the_root_sends_people_to_the_wallet(client: TestClient) -> None:
    r = client.get("/", follow_redirects=False)
    assert r.status_code in (303, 307) and r.headers["location"] == "/wallet"
    assert client.get("/").url.path == "/wallet"  # and the wallet answers there


def test_the_icon_is_served_and_linked_from_this_origin(client: TestClient) -> None:
    ico = client.get("/favicon.ico")
    assert ico.status_code == 200 and ico.headers["content-type"] == "image/x-icon"
    assert ico.content[:4] == b"\x00\x00\x01\x00"  # an ICO directory
    svg = client.get("/wallet/static/favicon.svg")
    assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
    assert svg.text.startswith("<svg")
    refs = _Refs()
    refs.feed(client.get("/wallet").text)
    assert "/wallet/static/favicon.svg" in refs.loads


def test_docs_are_swagger_ui_from_this_origin_under_a_csp(client: TestClient) -> None:
    r = client.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "default-src 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    refs = _Refs()
    refs.feed(r.text)
    assert refs.inline_scripts == 0
    assert set(refs.loads) == {"/docs/swagger-ui.css", "/docs/swagger-ui-bundle.js",
                               "/docs/docs.js"}
    for ref in refs.loads:
        asset = client.get(ref)
        assert asset.status_code == 200, ref
        assert asset.headers["x-content-type-options"] == "nosniff"
    assert "SwaggerUIBundle" in client.get("/docs/swagger-ui-bundle.js").text
    assert 'validatorUrl: null' in client.get("/docs/docs.js").text
    # FastAPI's CDN pages are gone.
    assert client.get("/redoc").status_code == 404
    assert client.get("/docs/oauth2-redirect").status_code == 404
    assert client.get("/openapi.json").status_code == 200


def test_nothing_served_loads_from_another_origin(demo: TestClient) -> None:
    seen: set[str] = set()
    queue = ["/", "/wallet", "/wallet/signin", "/wallet/signup", "/transparency", "/docs"]
    html_pages: list[str] = []
    stylesheets: set[str] = set()
    while queue and len(seen) < 60:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        r = demo.get(path)
        if r.is_redirect:
            target = urljoin(BASE + path, r.headers["location"])
            if urlsplit(target).netloc == "testserver":
                queue.append(urlsplit(target).path)
            continue
        if not r.headers.get("content-type", "").startswith("text/html"):
            continue
        html_pages.append(path)
        assert "content-security-policy" in r.headers, f"{path} has no CSP"
        refs = _Refs()
        refs.feed(r.text)
        outside = [ref for ref in refs.loads if _other_origin(ref, BASE + path)]
        assert not outside, f"{path} loads from another origin: {outside}"
        assert refs.inline_scripts == 0, f"{path} has an inline script"
        stylesheets |= {urlsplit(urljoin(BASE + path, ref)).path for ref in refs.loads
                        if ref.split("?")[0].endswith(".css")}
        for link in refs.links:
            target = urldefrag(urljoin(BASE + path, link)).url
            parts = urlsplit(target)
            if parts.netloc == "testserver" and parts.path not in seen \
                    and not parts.path.startswith(("/ledger/", "/oauth/", "/v1/")):
                queue.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    assert {"/wallet", "/wallet/signin", "/transparency", "/docs"} <= set(html_pages)
    assert stylesheets, "no stylesheet found"
    for sheet in stylesheets:
        outside = [u for u in _css_urls(demo.get(sheet).text) if _other_origin(u, BASE + sheet)]
        assert not outside, f"{sheet} loads from another origin: {outside}"
