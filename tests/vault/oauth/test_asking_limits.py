"""A service cannot flood a citizen's wallet (issue 11, bug 8), over HTTP:

- POST /oauth/par and /oauth/bc-authorize are held to a per-client rate, counted only
  once the client has authenticated: 429, Retry-After, `temporarily_unavailable`;
- at most five requests wait per service per citizen: the sixth CIBA request is refused
  (403 access_denied, CIBA §13), and the sixth authorization shows the citizen why and
  sends the service access_denied; nothing is written either way;
- a citizen who stopped a service asking: CIBA access_denied, authorization refused on
  the page and access_denied to the service, in words that do not say "blocked"; and
  letting it ask again works.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import Session, select
from support.oauthclient import DETAILS, Service, approve, location, to_consent
from support.webwallet import ORIGIN, Browser, WebWallet

from ledger.sqlstore import SqlLedger
from vault.api.ratelimit import ClientRateLimiter
from vault.config import Settings
from vault.domain.asking import MAX_WAITING
from vault.services import blocks
from vault.storage.database import read_only
from vault.storage.tables import GrantRow


@pytest.fixture
def svc(web: WebWallet) -> Service:
    return Service.register(web.ctx, web.browser().client, ORIGIN)


@pytest.fixture
def known(web: WebWallet, svc: Service) -> tuple[Browser, str]:
    """A citizen the service knows by their sub (from an earlier grant)."""
    b = web.sign_up()
    sub = svc.redeem(approve(b, svc)["code"]).json()["sub"]
    return b, sub


@pytest.fixture
def slow(web: WebWallet, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """A request limit of 1 a second, 2 at once, on a clock the test moves."""
    now = [0.0]
    monkeypatch.setattr(web.app.state.vault, "request_limiter",
                        ClientRateLimiter(1.0, 2, clock=lambda: now[0]))
    return now


def ask(svc: Service, sub: str, **params: Any) -> httpx.Response:
    return svc.post("/oauth/bc-authorize", login_hint=sub,
                    authorization_details=json.dumps([DETAILS]), **params)


def push(svc: Service) -> httpx.Response:
    return svc.post("/oauth/par", response_type="code", redirect_uri=svc.redirect_uri,
                    code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                    code_challenge_method="S256", authorization_details=json.dumps([DETAILS]))


def written(web: WebWallet) -> tuple[int, int]:
    """(ledger entries, grant rows): what a refused request must not change."""
    with read_only(web.ctx.engine).begin() as conn:
        size = SqlLedger(conn).size()
    with Session(web.ctx.engine) as s:
        rows = s.execute(select(func.count()).select_from(GrantRow)).scalar_one()
    return size, int(rows)


def oauth_error(r: httpx.Response, status: int, error: str) -> str:
    assert r.status_code == status, r.text
    assert r.headers["cache-control"] == "no-store"
    assert r.json()["error"] == error, r.json()
    return r.json()["error_description"]  # type: ignore[no-any-return]


# -- the request rate ---------------------------------------------------------------------


def test_the_default_request_rate_is_far_below_the_read_rate(web: WebWallet) -> None:
    settings = Settings()
    assert (settings.client_request_rate_limit, settings.client_request_rate_burst) == (2, 10)
    assert settings.client_request_rate_limit * 10 < settings.client_rate_limit
    limiter = web.app.state.vault.request_limiter
    assert (limiter.rate, limiter.burst) == (2.0, 10)


@pytest.mark.parametrize("send", [push, lambda svc: ask(svc, "psub_anyone")],
                         ids=["par", "bc-authorize"])
def test_pushing_and_asking_are_held_to_the_client_rate(
        web: WebWallet, svc: Service, slow: list[float], send: Any) -> None:
    # Failed client authentication spends nothing of the client's allowance.
    for _ in range(3):
        r = svc.post("/oauth/par", client_assertion="not.a.jwt")
        assert r.status_code == 401
    first, second = send(svc), send(svc)
    assert first.status_code != 429 and second.status_code != 429
    before = written(web)
    limited = send(svc)
    assert "try again in 1 s" in oauth_error(limited, 429, "temporarily_unavailable")
    assert limited.headers["retry-after"] == "1"
    assert written(web) == before
    # Per client: another service still has its own allowance.
    other = Service.register(web.ctx, svc.http, ORIGIN, name="Other team")
    assert send(other).status_code != 429
    slow[0] += 1.0  # a second later, one more
    assert send(svc).status_code != 429
    assert send(svc).status_code == 429


# -- five waiting, at most ----------------------------------------------------------------


def test_the_sixth_waiting_ciba_request_is_refused_and_nothing_is_written(
        web: WebWallet, svc: Service, known: tuple[Browser, str]) -> None:
    b, sub = known
    for _ in range(MAX_WAITING):
        assert ask(svc, sub).status_code == 200
    before = written(web)
    why = oauth_error(ask(svc, sub), 403, "access_denied")
    assert "5 requests waiting" in why
    assert written(web) == before
    # The citizen answers one: the service may ask once more.
    page = b.get("/wallet/requests").text
    start = page.index("/wallet/grants/gr_") + len("/wallet/grants/")
    grant_id = page[start:page.index('"', start)]
    assert location(b.form(f"/wallet/grants/{grant_id}/decline")).startswith("/wallet/")
    assert ask(svc, sub).status_code == 200
    assert ask(svc, sub).status_code == 403


def test_the_sixth_authorization_tells_the_citizen_and_the_service(
        web: WebWallet, svc: Service) -> None:
    b = web.sign_up()
    for _ in range(MAX_WAITING):
        to_consent(b, svc)
    wallet_path = location(b.get(svc.push(), follow_redirects=False))
    before = written(web)
    page = b.get(wallet_path, follow_redirects=False)
    assert page.status_code == 403
    assert "Blue Badge team already has 5 requests waiting for you" in page.text
    assert "answer those first" in page.text
    assert written(web) == before
    back = svc.callback(location(b.get(wallet_path + "/return", follow_redirects=False)))
    assert back["error"] == "access_denied" and "5 requests waiting" in back[
        "error_description"]
    assert back["state"] == svc.state and back["iss"] == ORIGIN
    assert written(web) == before


# -- stopped asking -----------------------------------------------------------------------


def test_a_stopped_service_is_refused_by_ciba_and_may_ask_again_once_allowed(
        web: WebWallet, svc: Service, known: tuple[Browser, str]) -> None:
    b, sub = known
    assert b.citizen_id is not None
    blocks.block_service(web.ctx, citizen_id=b.citizen_id, service_id=svc.client_id)
    before = written(web)
    why = oauth_error(ask(svc, sub), 403, "access_denied")
    assert "block" not in why and "stop" not in why
    assert written(web) == before
    r = b.form(f"/wallet/services/{svc.client_id}/allow")
    assert location(r) == "/wallet/requests?done=allowed"
    assert ask(svc, sub).status_code == 200


def test_a_stopped_service_is_refused_at_authorization(
        web: WebWallet, svc: Service) -> None:
    b = web.sign_up()
    assert b.citizen_id is not None
    blocks.block_service(web.ctx, citizen_id=b.citizen_id, service_id=svc.client_id)
    wallet_path = location(b.get(svc.push(), follow_redirects=False))
    before = written(web)
    page = b.get(wallet_path, follow_redirects=False)
    assert page.status_code == 403
    assert "You stopped Blue Badge team asking" in page.text
    assert "Let this service ask again" in page.text
    assert written(web) == before
    back = svc.callback(location(b.get(wallet_path + "/return", follow_redirects=False)))
    # Told no more than a citizen who declined.
    assert back == {"error": "access_denied", "error_description": "the citizen declined",
                    "state": svc.state, "iss": ORIGIN}
    assert written(web) == before


def test_letting_a_stopped_service_ask_again_goes_back_to_its_request(
        web: WebWallet, svc: Service) -> None:
    b = web.sign_up()
    assert b.citizen_id is not None
    blocks.block_service(web.ctx, citizen_id=b.citizen_id, service_id=svc.client_id)
    wallet_path = location(b.get(svc.push(), follow_redirects=False))
    assert b.get(wallet_path, follow_redirects=False).status_code == 403
    r = b.form(f"/wallet/services/{svc.client_id}/allow",
               {"authorization": wallet_path.rsplit("/", 1)[1]})
    assert location(r) == wallet_path
    assert location(b.get(wallet_path, follow_redirects=False)).startswith(
        "/wallet/grants/gr_")
