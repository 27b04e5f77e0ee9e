"""The wallet's protections over HTTP: cookies, sessions and their timeouts, CSRF on every
state-changing route, security headers and clean HTML on every page, and one citizen
never seeing or touching another's grants."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect, text, update
from sqlmodel import Session, col
from support.vaultworld import JWK, World, ask
from support.webwallet import ORIGIN, Browser, WebWallet, open_wallet

from ledger.entry import utc_now
from vault.domain.grants import Access, GrantState
from vault.services import registry
from vault.services.access import read_under_grant
from vault.services.approvals import action_challenge
from vault.services.citizens import enrol_citizen
from vault.services.grants import get_grant
from vault.storage.tables import GrantRow, PasskeyRow, WalletSessionRow
from wallet.passkeys import approval_options, proof_from_browser, verify_approval_offline
from wallet.passkeys.software import SoftAuthenticator
from wallet.security import csrf_token
from wallet.sessions import SessionPolicy, SessionStore, token_hash

PROBLEM = "application/problem+json"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
       "frame-ancestors 'none'; form-action 'self'")
PRIVACY = "https://roads.example.gov/privacy"
DPIA = "https://roads.example.gov/dpia"
HTTPS = "https://vault.example.org"


# -- helpers ---------------------------------------------------------------------------


def set_cookies(r: httpx.Response) -> dict[str, list[str]]:
    """Set-Cookie headers by cookie name: [value, attribute, ...] (attributes as sent)."""
    found = {}
    for header in r.headers.get_list("set-cookie"):
        first, *attrs = (p.strip() for p in header.split(";"))
        name, _, value = first.partition("=")
        found[name] = [value, *attrs]
    return found


def attrs(cookie: list[str]) -> set[str]:
    """A cookie's attributes, lower-cased, for comparison (SameSite=strict/Strict)."""
    return {a.lower() for a in cookie[1:]}


def session_token(web: WebWallet, b: Browser) -> str:
    token: str | None = b.client.cookies.get(web.state.cookies.session)
    assert token
    return token


def signed_in(web: WebWallet, b: Browser) -> bool:
    """Whether the browser's session still opens a personal page."""
    r = b.get("/wallet/requests", follow_redirects=False)
    if r.status_code == 200:
        return True
    assert r.status_code == 303 and r.headers["location"].startswith("/wallet/signin"), r
    return False


def snapshot(web: WebWallet) -> dict[str, list[str]]:
    """Every row of every table but those background threads write or drain:
    the checkpoints the publisher signs, the changes the teller hands on and the
    transparency counts the counter keeps."""
    engine = web.ctx.engine
    tables = sorted(set(inspect(engine).get_table_names())
                    - {"ledger_checkpoints", "record_changes", "transparency_atoms",
                       "transparency_grants", "transparency_cursor"})
    with engine.connect() as conn:
        return {t: sorted(repr(tuple(row)) for row in conn.execute(text(f'SELECT * FROM "{t}"')))
                for t in tables}


def service(web: WebWallet, name: str = "Roads team") -> str:
    """A service with a privacy notice and a DPIA (the only outside links allowed)."""
    return registry.register_service(web.ctx, registry.Registration(
        name=name, description="Looks after the roads",
        purposes=["eligibility_assessment"], categories=["identity.name", "address.home"],
        derived=["age_over_65"], jwk=JWK, redirect_uris=["https://roads.example.gov/cb"],
        privacy_notice_url=PRIVACY, dpia_url=DPIA, max_days=90))


def world(b: Browser, service_id: str) -> World:
    assert b.citizen_id is not None
    return World(service_id, b.citizen_id, "")


def approve(b: Browser, grant_id: str) -> None:
    r = b.passkey_post(f"/wallet/grants/{grant_id}/approve")
    assert r.status_code == 200, r.text


# -- cookies ---------------------------------------------------------------------------


def test_the_first_visit_gets_a_visitor_cookie_whose_token_works(web: WebWallet) -> None:
    b = web.browser()
    r = b.get("/wallet")
    cookies = set_cookies(r)
    visitor = cookies["wallet-visitor"]
    assert len(visitor[0]) >= 40  # 256 random bits
    assert attrs(visitor) == {"path=/", "httponly", "samesite=strict"}
    # The page's token is bound to that cookie, and it works at once.
    token = re.search(r'<meta name="csrf-token" content="([0-9a-f]{64})">', r.text)
    assert token is not None and token.group(1) == csrf_token(web.state.secret, visitor[0])
    assert b.json("/wallet/signin/options", {}, csrf=token.group(1)).status_code == 200
    # Only once: the next page keeps it.
    assert "wallet-visitor" not in set_cookies(b.get("/wallet/signin"))
    assert "strict-transport-security" not in r.headers  # plain HTTP: no HSTS


def test_the_session_cookie_is_http_only_strict_and_site_wide(web: WebWallet) -> None:
    b = web.browser()
    token = b.csrf()
    got = b.json("/wallet/signup/options", {}, csrf=token).json()
    answer = b.device.create(got["publicKey"])
    r = b.json("/wallet/signup", {"credential": answer, "ceremony": got["ceremony"]},
               csrf=token)
    assert r.status_code == 200, r.text
    session = set_cookies(r)["wallet-session"]
    assert attrs(session) == {"path=/", "httponly", "samesite=strict"}
    assert all(not a.startswith("domain") for a in attrs(session))


def test_over_https_cookies_are_host_only_and_secure_with_hsts(tmp_path: Path) -> None:
    with open_wallet(tmp_path, public_url=HTTPS) as web:
        client = TestClient(web.app, base_url=HTTPS)
        page = client.get("/wallet/signup", headers={"accept": "text/html"})
        assert page.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
        visitor = set_cookies(page)["__Host-wallet-visitor"]
        assert attrs(visitor) == {"path=/", "httponly", "samesite=strict", "secure"}
        found = re.search(r'<meta name="csrf-token" content="([0-9a-f]{64})">', page.text)
        assert found is not None
        headers = {"x-csrf-token": found.group(1), "origin": HTTPS,
                   "accept": "application/json"}
        got = client.post("/wallet/signup/options", json={}, headers=headers).json()
        assert got["publicKey"]["rp"]["id"] == "vault.example.org"
        device = SoftAuthenticator(origin=HTTPS)
        r = client.post("/wallet/signup", headers=headers, json={
            "credential": device.create(got["publicKey"]), "ceremony": got["ceremony"]})
        assert r.status_code == 200, r.text
        assert r.headers["strict-transport-security"].startswith("max-age=31536000")
        cookies = set_cookies(r)
        assert "wallet-session" not in cookies  # only the __Host- name is used
        session = cookies["__Host-wallet-session"]
        assert attrs(session) == {"path=/", "httponly", "samesite=strict", "secure"}
        # The browser sends it back over HTTPS, and it signs the citizen in.
        home = client.get("/wallet/requests", headers={"accept": "text/html"},
                          follow_redirects=False)
        assert home.status_code == 200
        assert home.headers["strict-transport-security"]


# -- sessions --------------------------------------------------------------------------

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
POLICY = SessionPolicy(idle=timedelta(minutes=30), absolute=timedelta(hours=12))


def _start(web: WebWallet, store: SessionStore, now: datetime = T0) -> tuple[str, str]:
    citizen_id = enrol_citizen(web.ctx).id
    with Session(web.ctx.engine) as session, session.begin():
        token = store.start(session, citizen_id, now=now)
    return citizen_id, token


def _row(web: WebWallet, token: str) -> WalletSessionRow | None:
    with Session(web.ctx.engine, expire_on_commit=False) as session:
        return session.get(WalletSessionRow, token_hash(token))


def test_a_session_ends_after_30_minutes_without_a_request(web: WebWallet) -> None:
    store = SessionStore(web.ctx.engine, POLICY)
    citizen_id, token = _start(web, store)
    almost = timedelta(minutes=29, seconds=59)
    assert store.resolve(token, now=T0 + almost) == citizen_id
    assert store.resolve(token, now=T0 + 2 * almost) == citizen_id  # each request counts
    assert store.resolve(token, now=T0 + 2 * almost + timedelta(minutes=30)) is None
    assert _row(web, token) is None  # ended for good, not just refused
    assert store.resolve(token, now=T0 + almost) is None


def test_seen_at_is_written_at_most_once_a_minute(web: WebWallet) -> None:
    store = SessionStore(web.ctx.engine, POLICY)
    citizen_id, token = _start(web, store)
    assert store.resolve(token, now=T0 + timedelta(seconds=59)) == citizen_id
    row = _row(web, token)
    assert row is not None and row.seen_at.replace(tzinfo=UTC) == T0  # no write per page
    assert store.resolve(token, now=T0 + timedelta(minutes=1)) == citizen_id
    row = _row(web, token)
    assert row is not None and row.seen_at.replace(tzinfo=UTC) == T0 + timedelta(minutes=1)


def test_a_session_ends_after_12_hours_however_busy(web: WebWallet) -> None:
    store = SessionStore(web.ctx.engine, POLICY)
    citizen_id, token = _start(web, store)
    at = T0
    while at < T0 + timedelta(hours=12) - timedelta(minutes=20):
        at += timedelta(minutes=20)
        assert store.resolve(token, now=at) == citizen_id
    assert store.resolve(token, now=T0 + timedelta(hours=12)) is None
    assert _row(web, token) is None


def test_an_unknown_token_is_nobody(web: WebWallet) -> None:
    store = SessionStore(web.ctx.engine, POLICY)
    _start(web, store)
    for token in (None, "", "made-up", "x" * 101):
        assert store.resolve(token, now=T0) is None


def test_the_idle_timeout_cannot_outlast_the_absolute_one() -> None:
    with pytest.raises(ValueError, match="idle"):
        SessionPolicy(idle=timedelta(hours=13), absolute=timedelta(hours=12))
    with pytest.raises(ValueError, match="idle"):
        SessionPolicy(idle=timedelta(0))


def _age_session(web: WebWallet, b: Browser, *, created: timedelta, seen: timedelta) -> None:
    now = utc_now()
    with web.ctx.engine.begin() as conn:
        done = conn.execute(update(WalletSessionRow)
                            .where(col(WalletSessionRow.token_hash)
                                   == token_hash(session_token(web, b)))
                            .values(created_at=now - created, seen_at=now - seen))
        assert done.rowcount == 1


#: How long ago a session was made and last used, and whether it still works.
AGES = [
    (timedelta(minutes=29), timedelta(minutes=29), True),
    (timedelta(minutes=31), timedelta(minutes=31), False),  # idle
    (timedelta(hours=11, minutes=59), timedelta(minutes=1), True),
    (timedelta(hours=12, minutes=1), timedelta(minutes=1), False),  # absolute
]


def test_an_old_session_is_refused_over_http(web: WebWallet) -> None:
    ada = web.sign_up()
    for created, seen, still_in in AGES:
        b = Browser(web.client_factory(), device=ada.device)
        assert b.passkey_post("/wallet/signin").status_code == 200
        _age_session(web, b, created=created, seen=seen)
        assert signed_in(web, b) is still_in, (created, seen)
        if not still_in:
            assert web.state.sessions.resolve(session_token(web, b), now=utc_now()) is None
            r = b.client.get("/wallet/requests", headers={"accept": "application/json"})
            assert r.status_code == 401 and r.headers["content-type"].startswith(PROBLEM)


def test_the_session_token_is_kept_only_as_its_sha256(web: WebWallet, tmp_path: Path) -> None:
    b = web.sign_up()
    token = session_token(web, b)
    with web.ctx.engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM wallet_sessions")).all()
    [row] = rows
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert all(token not in str(value) for value in row)
    # Nowhere in the database files either.
    files = list((tmp_path / "vault").glob("vault.db*"))
    assert files
    for f in files:
        assert token.encode() not in f.read_bytes(), f


def test_sign_out_ends_the_session_on_the_server(web: WebWallet) -> None:
    b = web.sign_up()
    other = Browser(web.client_factory(), device=b.device)  # the same citizen elsewhere
    assert other.passkey_post("/wallet/signin").status_code == 200
    old = session_token(web, b)
    r = b.form("/wallet/signout")
    assert r.status_code == 303 and r.headers["location"] == "/wallet/signin?done=signed-out"
    gone = set_cookies(r)["wallet-session"]
    assert gone[0] in ("", '""') and "max-age=0" in attrs(gone)
    assert _row(web, old) is None
    # The old cookie, replayed by whoever kept it, opens nothing.
    replay = Browser(TestClient(web.app, base_url=ORIGIN, cookies={"wallet-session": old}))
    assert not signed_in(web, replay)
    assert web.state.sessions.resolve(old, now=utc_now()) is None
    assert signed_in(web, other)  # only this session ended


# -- CSRF ------------------------------------------------------------------------------

_SAFE = {"GET", "HEAD", "OPTIONS"}
#: The state-changing routes the wallet has now: the enumeration must find at least these.
KNOWN_POSTS = {
    "/wallet/signup/options", "/wallet/signup", "/wallet/signin/options", "/wallet/signin",
    "/wallet/signout", "/wallet/recover", "/wallet/recovery-codes",
    "/wallet/grants/{grant_id}/decline", "/wallet/grants/{grant_id}/{action}/options",
    "/wallet/grants/{grant_id}/{action}",
}


def _routes(routes: Iterable[Any], prefix: str = "") -> Iterator[tuple[str, set[str]]]:
    for route in routes:
        inner = getattr(route, "original_router", None)  # FastAPI's included routers
        if inner is not None:
            context = getattr(route, "include_context", None)
            yield from _routes(inner.routes, prefix + getattr(context, "prefix", ""))
            continue
        path, methods = getattr(route, "path", None), getattr(route, "methods", None)
        if isinstance(path, str) and methods:
            yield prefix + path, set(methods)


def state_changing_routes(app: Any) -> list[tuple[str, str]]:
    """(method, path) of every wallet route that is not a safe method."""
    return sorted({(m, path) for path, methods in _routes(app.routes)
                   if path == "/wallet" or path.startswith("/wallet/")
                   for m in methods - _SAFE})


def _fill(path: str, grant_id: str) -> str:
    values = {"grant_id": grant_id, "action": "revoke"}
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: values.get(m.group(1), "x"), path)


def test_every_state_changing_route_needs_the_token(web: WebWallet) -> None:
    routes = state_changing_routes(web.app)
    assert {path for _, path in routes} >= KNOWN_POSTS, routes
    ada = web.sign_up()
    grant = ask(web.ctx, web.world_for(ada))
    approved = ask(web.ctx, web.world_for(ada))
    approve(ada, approved.id)
    visitor = web.browser()
    visitor.get("/wallet")
    before = snapshot(web)
    for method, path in routes:
        url = _fill(path, grant.id)
        for who in (ada, visitor):
            tries = [
                who.client.request(method, url, data={"label": "x", "code": "x"},
                                   headers={"accept": "text/html"}, follow_redirects=False),
                who.client.request(method, url, json={}, follow_redirects=False,
                                   headers={"accept": "application/json", "origin": ORIGIN}),
                who.client.request(method, url, json={}, follow_redirects=False,
                                   headers={"accept": "application/json", "origin": ORIGIN,
                                            "x-csrf-token": "0" * 64}),
                who.client.request(method, url, data={"csrf": "0" * 64},
                                   headers={"accept": "text/html"}, follow_redirects=False),
            ]
            for r in tries:
                assert r.status_code == 403, (method, url, r.status_code, r.text[:300])
            assert tries[0].headers["content-type"].startswith("text/html")
            assert "Not allowed" in tries[0].text
            assert tries[1].json()["type"] == "urn:citizen-vault:problem:csrf"
    assert snapshot(web) == before  # nothing changed anywhere
    assert signed_in(web, ada)
    # The same kind of post with the token goes through (so the 403s were the token's).
    r = ada.form("/wallet/recovery-codes")
    assert r.status_code == 200


def test_a_token_of_one_citizen_is_refused_for_another(web: WebWallet) -> None:
    ada, bob = web.sign_up(), web.sign_up()
    grant = ask(web.ctx, web.world_for(bob))
    adas = ada.csrf()
    assert adas != bob.csrf()
    assert bob.form(f"/wallet/grants/{grant.id}/decline", csrf=adas).status_code == 403
    assert bob.json(f"/wallet/grants/{grant.id}/approve/options", {},
                    csrf=adas).status_code == 403
    assert get_grant(web.ctx, grant.id).state is GrantState.REQUESTED
    r = bob.form(f"/wallet/grants/{grant.id}/decline")  # bob's own token works
    assert r.status_code == 303
    assert get_grant(web.ctx, grant.id).state is GrantState.DENIED


def test_a_token_from_before_sign_in_stops_working_after_it(web: WebWallet) -> None:
    b = web.browser()
    before = b.csrf()
    r = b.passkey_post("/wallet/signup")
    assert r.status_code == 200
    assert b.form("/wallet/recovery-codes", csrf=before).status_code == 403
    assert b.form("/wallet/recovery-codes").status_code == 200


def test_another_sites_origin_is_refused_even_with_a_good_token(web: WebWallet) -> None:
    ada = web.sign_up()
    grant = ask(web.ctx, web.world_for(ada))
    token = ada.csrf()
    for origin in ("https://evil.example", "http://localhost:8001", "https://localhost:8000",
                   "http://localhost", "null"):
        r = ada.client.post(f"/wallet/grants/{grant.id}/decline", data={"csrf": token},
                            headers={"origin": origin, "accept": "application/json"},
                            follow_redirects=False)
        assert r.status_code == 403, origin
        assert "came from another site" in r.json()["detail"]
        r = ada.client.post(f"/wallet/grants/{grant.id}/approve/options", json={},
                            headers={"origin": origin, "x-csrf-token": token,
                                     "accept": "application/json"})
        assert r.status_code == 403, origin
    assert get_grant(web.ctx, grant.id).state is GrantState.REQUESTED
    r = ada.client.post(f"/wallet/grants/{grant.id}/decline", data={"csrf": token},
                        headers={"origin": ORIGIN}, follow_redirects=False)
    assert r.status_code == 303  # our own origin, same token: fine


# -- headers and HTML of every page ----------------------------------------------------


class _Page(HTMLParser):
    """What the checks need from a page: its links, and anything CSP would block."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.urls: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.problems: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "style":
            self.problems.append("a <style> block")
        if tag == "script":
            self._in_script = True
            if not a.get("src"):
                self.problems.append("an inline <script>")
        for name, value in a.items():
            if name == "style":
                self.problems.append(f"a style= attribute on <{tag}>")
            if name.startswith("on"):
                self.problems.append(f"an {name}= handler on <{tag}>")
            if name in ("href", "src", "action", "formaction", "data-options", "srcset",
                        "poster", "data"):
                self.urls.append((tag, name, value))
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.problems.append("script text inside a <script> element")


def _url_problem(tag: str, attr: str, value: str) -> str | None:
    """Only our own pages and files, and the service's own privacy notice and DPIA."""
    parts = urlsplit(value)
    if value in (PRIVACY, DPIA):
        return None
    if tag == "link" and value == "data:,":
        return None  # no favicon request at all
    if parts.scheme or parts.netloc or value.startswith("//"):
        return f"<{tag} {attr}={value!r}> leaves the service"
    return None


def check_page(url: str, r: httpx.Response) -> list[str]:
    """Everything wrong with one wallet response."""
    found = []
    h = r.headers
    if h.get("content-security-policy") != CSP:
        found.append(f"CSP is {h.get('content-security-policy')!r}")
    script_src = next((d for d in h.get("content-security-policy", "").split(";")
                       if d.strip().startswith("script-src")), "")
    if "unsafe-inline" in script_src or "unsafe-eval" in script_src:
        found.append("scripts may run inline")
    if "frame-ancestors 'none'" not in h.get("content-security-policy", ""):
        found.append("the page may be framed")
    for name, value in (("x-content-type-options", "nosniff"), ("x-frame-options", "DENY")):
        if h.get(name) != value:
            found.append(f"{name} is {h.get(name)!r}")
    # No address of a wallet page (they hold grant ids) ever goes to another site.
    if h.get("referrer-policy") not in ("no-referrer", "same-origin"):
        found.append(f"referrer-policy is {h.get('referrer-policy')!r}")
    if not url.startswith("/wallet/static/") and h.get("cache-control") != "no-store":
        found.append(f"cache-control is {h.get('cache-control')!r}")
    if h.get("content-type", "").startswith("text/html"):
        page = _Page()
        page.feed(r.text)
        found += page.problems
        found += [p for t, a, v in page.urls if (p := _url_problem(t, a, v))]
    return [f"{url}: {p}" for p in found]


def crawl(b: Browser, seeds: list[str], limit: int = 200) -> dict[str, httpx.Response]:
    """GET every wallet page reachable from `seeds` by links (redirects included)."""
    seen: dict[str, httpx.Response] = {}
    queue = list(seeds)
    while queue and len(seen) < limit:
        url = queue.pop(0)
        if url in seen:
            continue
        r = seen[url] = b.get(url, follow_redirects=False)
        if r.is_redirect:
            queue.append(r.headers["location"])
            continue
        if not r.headers.get("content-type", "").startswith("text/html"):
            continue
        page = _Page()
        page.feed(r.text)
        for href in page.links:
            parts = urlsplit(urljoin(ORIGIN + url, href))
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            if parts.netloc == "localhost:8000" and target.startswith("/wallet") \
                    and not target.startswith("/wallet/static/"):
                queue.append(target)
    return seen


def test_every_page_has_the_security_headers_and_no_inline_code(web: WebWallet) -> None:
    ada = web.sign_up()
    roads = service(web)
    waiting = ask(web.ctx, world(ada, roads))
    used = ask(web.ctx, world(ada, roads))
    approve(ada, used.id)
    read_under_grant(web.ctx, service_id=roads, grant_id=used.id)
    ended = ask(web.ctx, world(ada, roads))
    assert ada.form(f"/wallet/grants/{ended.id}/decline").status_code == 303

    pages = crawl(ada, ["/wallet", "/wallet/welcome", "/wallet/requests", "/wallet/grants",
                        "/wallet/grants?show=ended", "/wallet/activity", "/wallet/passkeys",
                        "/wallet/data", "/wallet/account", "/wallet/no-such-page",
                        f"/wallet/grants/{waiting.id}?done=approved"])
    visitor = web.browser()
    pages.update({f"signed out {u}": r for u, r in crawl(visitor, [
        "/wallet", "/wallet/signup", "/wallet/signin", "/wallet/recover",
        "/wallet/no-such-page"]).items()})
    # Pages that come back from a form post.
    pages["recovery codes"] = ada.form("/wallet/recovery-codes")
    pages["a wrong recovery code"] = visitor.form("/wallet/recover", {"code": "nope"})
    pages["/wallet/static/wallet.js"] = ada.get("/wallet/static/wallet.js")
    pages["/wallet/static/wallet.css"] = ada.get("/wallet/static/wallet.css")

    for must in (f"/wallet/grants/{waiting.id}", f"/wallet/grants/{used.id}",
                 f"/wallet/grants/{ended.id}", f"/wallet/grants/{used.id}/receipt.json",
                 "/wallet/activity", "signed out /wallet/signup"):
        assert must in pages, sorted(pages)  # the crawl reached the pages that matter
    assert pages[f"/wallet/grants/{waiting.id}"].status_code == 200
    assert pages["recovery codes"].status_code == 200
    assert pages["a wrong recovery code"].status_code == 400
    assert pages["/wallet/no-such-page"].status_code == 404

    problems = [p for url, r in pages.items()
                for p in check_page(url.removeprefix("signed out "), r)]
    problems += [f"{url}: status {r.status_code}" for url, r in pages.items()
                 if r.status_code >= 500]
    assert not problems, "\n".join(problems)
    # No CDN: the wallet's own script and style sheet fetch nothing from elsewhere.
    for name in ("wallet.js", "wallet.css"):
        body = pages[f"/wallet/static/{name}"].text
        assert "http://" not in body and "https://" not in body and "@import" not in body


def test_problem_answers_carry_the_headers_too(web: WebWallet) -> None:
    b = web.browser()
    r = b.client.post("/wallet/signin", json={}, headers={"accept": "application/json"})
    assert r.status_code == 403 and r.headers["content-type"].startswith(PROBLEM)
    assert not check_page("/wallet/signin", r)


# -- one citizen, another's grants -----------------------------------------------------


def test_a_citizen_never_sees_or_touches_another_citizens_grants(web: WebWallet) -> None:
    ada, bob = web.sign_up(), web.sign_up()
    [bobs_key] = bob.device.credentials
    waiting = ask(web.ctx, web.world_for(ada))  # a service asks Ada
    active = ask(web.ctx, web.world_for(ada))
    approve(ada, active.id)
    read_under_grant(web.ctx, service_id=active.service_id, grant_id=active.id)
    with Session(web.ctx.engine) as session:
        row = session.get(GrantRow, active.id)
        assert row is not None
        last_seq = row.last_seq
    before = snapshot(web)
    nobody = "there is no such request or grant in your wallet"

    # Pages and the receipt: as if the grant did not exist.
    for path in (f"/wallet/grants/{waiting.id}", f"/wallet/grants/{active.id}"):
        r = bob.get(path)
        assert r.status_code == 404 and nobody in r.text.lower()
        assert "Blue Badge" not in r.text
    assert bob.get("/wallet/grants/gr_no_such_grant").status_code == 404
    r = bob.client.get(f"/wallet/grants/{active.id}/receipt.json")
    assert r.status_code == 404 and r.headers["content-type"].startswith(PROBLEM)

    # Asking to sign, and signing with Bob's own good passkey: refused as not found.
    for grant_id, action in ((waiting.id, "approve"), (active.id, "pause"),
                             (active.id, "revoke")):
        r = bob.json(f"/wallet/grants/{grant_id}/{action}/options", {})
        assert r.status_code == 404 and r.json()["type"] == "urn:citizen-vault:problem:not-found"
    signed = {
        (waiting.id, "approve"): waiting.terms_hash,
        (active.id, "pause"): action_challenge(grant_id=active.id, action="pause",
                                               terms_hash=active.terms_hash, after=last_seq),
        (active.id, "revoke"): action_challenge(grant_id=active.id, action="revoke",
                                                terms_hash=active.terms_hash, after=last_seq),
    }
    for (grant_id, action), challenge in signed.items():
        options = approval_options(web.state.rp, challenge=challenge, allow=[bobs_key])
        answer = bob.device.get(options)
        # A real, valid assertion by Bob over exactly Ada's challenge...
        verify_approval_offline(
            public_key_cose=bob.device.credentials[bobs_key].public_key,
            challenge=challenge, proof=proof_from_browser(answer), rp_id="localhost",
            origins=[ORIGIN])
        # ...still cannot act on Ada's grant.
        r = bob.json(f"/wallet/grants/{grant_id}/{action}", {"credential": answer})
        assert r.status_code == 404, r.text
        assert r.json()["detail"] == "no such grant"
    r = bob.form(f"/wallet/grants/{waiting.id}/decline")
    assert r.status_code == 404 and "no such grant" in r.text.lower()

    assert snapshot(web) == before  # no state, no ledger entry, no counter moved
    assert get_grant(web.ctx, waiting.id).state is GrantState.REQUESTED
    assert get_grant(web.ctx, active.id).state is GrantState.APPROVED
    with Session(web.ctx.engine) as session:
        key = session.get(PasskeyRow, bobs_key)
        assert key is not None and key.sign_count == 0

    # Bob's own pages show nothing of Ada's; Ada's show it all (so the check can fail).
    for path in ("/wallet", "/wallet/requests", "/wallet/grants", "/wallet/grants?show=ended",
                 "/wallet/activity"):
        mine, hers = bob.get(path), ada.get(path)
        assert mine.status_code == hers.status_code == 200
        for grant_id in (waiting.id, active.id):
            assert grant_id not in mine.text, (path, grant_id)
        assert "Blue Badge" not in mine.text
    assert "Nobody has looked at your information yet." in bob.get("/wallet/activity").text
    assert "Nothing is waiting for you." in bob.get("/wallet/requests").text
    assert waiting.id in ada.get("/wallet/requests").text
    assert active.id in ada.get("/wallet/activity").text
    assert "Blue Badge team" in ada.get("/wallet/activity").text


def test_decline_of_another_citizens_request_is_not_found(web: WebWallet) -> None:
    ada, bob = web.sign_up(), web.sign_up()
    waiting = ask(web.ctx, web.world_for(ada), access=Access("one_time"))
    before = snapshot(web)
    r = bob.form(f"/wallet/grants/{waiting.id}/decline",
                 headers={"accept": "application/json"})
    assert r.status_code == 404
    assert r.json()["type"] == "urn:citizen-vault:problem:not-found"
    assert snapshot(web) == before
    assert get_grant(web.ctx, waiting.id).state is GrantState.REQUESTED
