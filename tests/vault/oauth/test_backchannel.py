"""OpenID CIBA in poll mode over HTTP: a service asks a citizen it knows by its pairwise
sub; the request waits in the wallet; the token endpoint answers authorization_pending,
slow_down, access_denied or expired_token as the spec says, and tokens once, when the
citizen approves with a passkey."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import Session
from support.oauthclient import DETAILS, Service, approve
from support.webwallet import ORIGIN, Browser, WebWallet

from vault.oauth.metadata import CIBA_GRANT_TYPE
from vault.services import citizens
from vault.storage.tables import OAuthBackchannelRow


@pytest.fixture
def known(web: WebWallet) -> tuple[Service, Browser, str]:
    """A service that already knows a citizen: its sub, from an earlier token response."""
    svc = Service.register(web.ctx, web.browser().client, ORIGIN)
    b = web.sign_up()
    back = approve(b, svc)
    sub = svc.redeem(back["code"]).json()["sub"]
    return svc, b, sub


def ask(svc: Service, sub: str, **params: Any) -> httpx.Response:
    params.setdefault("authorization_details", json.dumps([DETAILS]))
    return svc.post("/oauth/bc-authorize", login_hint=sub, **params)


def poll(svc: Service, auth_req_id: str) -> httpx.Response:
    return svc.post("/oauth/token", grant_type=CIBA_GRANT_TYPE, auth_req_id=auth_req_id)


def error_of(r: httpx.Response) -> str:
    assert r.status_code == 400, r.text
    return r.json()["error"]  # type: ignore[no-any-return]


def forget_last_poll(web: WebWallet) -> None:
    """As if the interval had passed since the last poll."""
    with Session(web.ctx.engine) as s, s.begin():
        s.execute(update(OAuthBackchannelRow).values(
            polled_at=web.ctx.clock() - timedelta(minutes=1)))


def pending_grant(b: Browser) -> str:
    page = b.get("/wallet/requests").text
    start = page.index("/wallet/grants/gr_") + len("/wallet/grants/")
    return page[start:page.index('"', start)]


def test_the_request_waits_in_the_wallet_and_tokens_come_once_approved(
        web: WebWallet, known: tuple[Service, Browser, str]) -> None:
    svc, b, sub = known
    r = ask(svc, sub, binding_message="BB-4417")
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"auth_req_id", "expires_in", "interval"}
    assert body["interval"] == 5 and body["expires_in"] == 600
    assert error_of(poll(svc, body["auth_req_id"])) == "authorization_pending"
    # Polled again at once: slow down, and the interval grows.
    slow = poll(svc, body["auth_req_id"])
    assert error_of(slow) == "slow_down" and "10 seconds" in slow.json()["error_description"]
    grant_id = pending_grant(b)
    consent = b.get(f"/wallet/grants/{grant_id}").text
    assert "BB-4417" in consent
    assert b.passkey_post(f"/wallet/grants/{grant_id}/approve").status_code == 200
    forget_last_poll(web)
    done = poll(svc, body["auth_req_id"])
    assert done.status_code == 200, done.text
    tokens = done.json()
    assert tokens["grant_id"] == grant_id and tokens["sub"] == sub
    assert svc.read(tokens["access_token"]).status_code == 200
    forget_last_poll(web)
    assert error_of(poll(svc, body["auth_req_id"])) == "invalid_grant"  # used once


def test_a_declined_request_answers_access_denied(
        web: WebWallet, known: tuple[Service, Browser, str]) -> None:
    svc, b, sub = known
    auth_req_id = ask(svc, sub).json()["auth_req_id"]
    b.form(f"/wallet/grants/{pending_grant(b)}/decline")
    assert error_of(poll(svc, auth_req_id)) == "access_denied"


def test_an_unanswered_request_expires(
        web: WebWallet, known: tuple[Service, Browser, str]) -> None:
    svc, _, sub = known
    r = ask(svc, sub, requested_expiry="120")
    assert r.json()["expires_in"] == 120
    with Session(web.ctx.engine) as s, s.begin():
        s.execute(update(OAuthBackchannelRow).values(expires_at=web.ctx.clock()))
    assert error_of(poll(svc, r.json()["auth_req_id"])) == "expired_token"


def test_only_its_own_auth_req_id(web: WebWallet, known: tuple[Service, Browser, str]) -> None:
    svc, _, sub = known
    auth_req_id = ask(svc, sub).json()["auth_req_id"]
    other = Service.register(web.ctx, svc.http, ORIGIN, name="Other team")
    assert error_of(poll(other, auth_req_id)) == "invalid_grant"
    assert error_of(poll(svc, "made-up")) == "invalid_grant"


@pytest.mark.parametrize("params, error", [
    ({"login_hint": "psub_nobody"}, "unknown_user_id"),
    ({"login_hint": None}, "invalid_request"),
    ({"login_hint_token": "x"}, "invalid_request"),
    ({"binding_message": "x" * 41}, "invalid_binding_message"),
    ({"requested_expiry": "10"}, "invalid_request"),
    ({"requested_expiry": "soon"}, "invalid_request"),
    ({"scope": "openid"}, "invalid_scope"),
    ({"authorization_details": None}, "invalid_request"),
    ({"authorization_details": json.dumps([{**DETAILS, "categories": ["health.records"]}])},
     "invalid_authorization_details"),
])
def test_bad_requests_are_refused_with_the_error_that_names_the_rule(
        web: WebWallet, known: tuple[Service, Browser, str], params: dict[str, Any],
        error: str) -> None:
    svc, _, sub = known
    params = {"login_hint": sub, **params}
    r = svc.post("/oauth/bc-authorize", authorization_details=json.dumps([DETAILS]),
                 **params) if "authorization_details" not in params else \
        svc.post("/oauth/bc-authorize", **params)
    assert error_of(r) == error


def test_a_sub_is_known_only_to_its_own_service(
        web: WebWallet, known: tuple[Service, Browser, str]) -> None:
    svc, _, sub = known
    other = Service.register(web.ctx, svc.http, ORIGIN, name="Other team")
    assert error_of(ask(other, sub)) == "unknown_user_id"


def test_after_erasure_nobody_can_be_asked_by_their_old_sub(
        web: WebWallet, known: tuple[Service, Browser, str]) -> None:
    svc, b, sub = known
    assert b.citizen_id is not None
    citizens.erase_citizen(web.ctx, b.citizen_id)
    assert error_of(ask(svc, sub)) == "unknown_user_id"
