"""The authorization code flow end to end over HTTP (ARCHITECTURE §4): PAR, the authorize
endpoint sending the citizen through sign-in and the consent screen, the redirect back
with code, state and iss, the token endpoint (PKCE, single-use codes, rotated refresh
tokens with reuse detection), introspection and revocation, and the resource server
refusing tokens whose family was revoked."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlmodel import Session
from support.oauthclient import Service, approve, location, to_consent
from support.webwallet import ORIGIN, Browser, WebWallet

from vault.oauth.authorize import AUTHORIZE_WINDOW
from vault.oauth.issuance import REUSE_MEMORY
from vault.storage.tables import OAuthRefreshTokenRow, OAuthRequestRow, OAuthTokenFamilyRow


@pytest.fixture
def svc(web: WebWallet) -> Service:
    return Service.register(web.ctx, web.browser().client, ORIGIN)


def tokens(svc: Service, b: Browser) -> dict[str, Any]:
    back = approve(b, svc)
    r = svc.redeem(back["code"])
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    return r.json()  # type: ignore[no-any-return]


def oauth_error(r: httpx.Response, error: str, status: int = 400) -> str:
    assert r.status_code == status, r.text
    assert r.json()["error"] == error, r.json()
    return r.json()["error_description"]  # type: ignore[no-any-return]


# -- the front channel ---------------------------------------------------------------------


def test_code_state_and_iss_come_back_and_the_code_buys_tokens_for_the_grant(
        web: WebWallet, svc: Service) -> None:
    b = web.sign_up()
    back = approve(b, svc)
    assert set(back) == {"code", "state", "iss"}
    assert back["state"] == svc.state and back["iss"] == ORIGIN
    r = svc.redeem(back["code"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer" and 0 < body["expires_in"] <= 300
    assert body["sub"].startswith("psub_") and body["grant_id"].startswith("gr_")
    assert body["authorization_details"][0]["type"] == "personal_data"
    assert body["authorization_details"][0]["grant_id"] == body["grant_id"]
    read = svc.read(body["access_token"])
    assert read.status_code == 200, read.text
    assert read.json()["sub"] == body["sub"]
    assert set(read.json()["data"]) == {"identity.name", "address.home"}


def test_a_visitor_signs_in_first_and_comes_back_to_the_request(
        web: WebWallet, svc: Service) -> None:
    owner = web.sign_up()
    visitor = web.browser()
    wallet_path = location(visitor.get(svc.push(), follow_redirects=False))
    signin = location(visitor.get(wallet_path, follow_redirects=False))
    assert signin.startswith("/wallet/signin?next=")
    page = visitor.get(signin)
    assert f'value="{wallet_path}"' in page.text  # the sign-in form comes back here
    assert f"/wallet/signup?next={wallet_path}" in page.text  # and creating an account
    # The owner of a passkey signs in on that browser and lands on the consent screen.
    visitor.device = owner.device
    r = visitor.passkey_post("/wallet/signin", {"next": wallet_path})
    assert r.json() == {"redirect": wallet_path}
    assert location(visitor.get(wallet_path, follow_redirects=False)).startswith(
        "/wallet/grants/gr_")


def test_a_newcomer_signs_up_and_is_taken_back_to_the_request(
        web: WebWallet, svc: Service) -> None:
    b = web.browser()
    wallet_path = location(b.get(svc.push(), follow_redirects=False))
    r = b.passkey_post("/wallet/signup", {"label": "", "next": wallet_path})
    assert r.status_code == 200, r.text
    welcome = r.json()["redirect"]
    assert welcome == "/wallet/welcome?next=" + wallet_path
    assert f'href="{wallet_path}"' in b.get(welcome).text
    codes = b.form("/wallet/recovery-codes", {"next": wallet_path})
    assert f'href="{wallet_path}"' in codes.text


def test_declining_sends_access_denied_back_with_state(web: WebWallet, svc: Service) -> None:
    b = web.sign_up()
    request_id, grant_id = to_consent(b, svc)
    r = b.form(f"/wallet/grants/{grant_id}/decline")
    # A page of ours first: form-action 'self' would block a form's redirect to the service.
    assert location(r) == f"/wallet/authorize/{request_id}/back?done=declined"
    page = b.get(location(r))
    assert page.status_code == 200 and "Taking you back to Blue Badge team" in page.text
    assert f'href="/wallet/authorize/{request_id}/return" data-go-back' in page.text
    back = svc.callback(location(b.get(f"/wallet/authorize/{request_id}/return",
                                       follow_redirects=False)))
    assert back["error"] == "access_denied"
    assert back["state"] == svc.state and back["iss"] == ORIGIN
    assert "code" not in back


def test_the_answer_goes_back_once(web: WebWallet, svc: Service) -> None:
    b = web.sign_up()
    request_id, grant_id = to_consent(b, svc)
    # Before an answer, "return" shows the consent screen again.
    assert location(b.get(f"/wallet/authorize/{request_id}/return",
                          follow_redirects=False)) == f"/wallet/authorize/{request_id}"
    b.passkey_post(f"/wallet/grants/{grant_id}/approve")
    assert "code=" in location(b.get(f"/wallet/authorize/{request_id}/return",
                                     follow_redirects=False))
    again = b.get(f"/wallet/authorize/{request_id}/return", follow_redirects=False)
    assert location(again) == "/wallet/authorize/problem?why=answered"


def test_another_citizen_cannot_take_over_an_authorization(
        web: WebWallet, svc: Service) -> None:
    a, other = web.sign_up(), web.sign_up()
    request_id, _ = to_consent(a, svc)
    r = other.get(f"/wallet/authorize/{request_id}", follow_redirects=False)
    assert r.status_code == 404
    assert other.get(f"/wallet/authorize/{request_id}/return").status_code == 404


@pytest.mark.parametrize("query, why", [
    ("", "invalid"),
    ("?client_id=svc_nobody&request_uri=urn:ietf:params:oauth:request_uri:x", "invalid"),
    ("?client_id={cid}&request_uri=urn:ietf:params:oauth:request_uri:" + "A" * 43, "expired"),
])
def test_a_bad_link_is_explained_to_the_person_and_never_redirected(
        web: WebWallet, svc: Service, query: str, why: str) -> None:
    b = web.sign_up()
    r = b.get("/oauth/authorize" + query.format(cid=svc.client_id), follow_redirects=False)
    assert location(r) == f"/wallet/authorize/problem?why={why}"
    page = b.get(location(r))
    assert page.status_code == 400 and "Go back to the service" in page.text


def test_a_request_uri_works_once(web: WebWallet, svc: Service) -> None:
    b = web.sign_up()
    link = svc.push()
    assert location(b.get(link, follow_redirects=False)).startswith("/wallet/authorize/")
    assert location(b.get(link, follow_redirects=False)).endswith("why=expired")


def test_an_authorization_left_too_long_expires(web: WebWallet, svc: Service) -> None:
    b = web.sign_up()
    wallet_path = location(b.get(svc.push(), follow_redirects=False))
    with Session(web.ctx.engine) as s, s.begin():
        s.execute(update(OAuthRequestRow).where(
            OAuthRequestRow.id == wallet_path.rsplit("/", 1)[1]).values(  # type: ignore[arg-type]
            expires_at=web.ctx.clock() - timedelta(seconds=1)))
    assert timedelta(minutes=15) <= AUTHORIZE_WINDOW
    assert location(b.get(wallet_path, follow_redirects=False)).endswith("why=answered")


# -- the token endpoint -----------------------------------------------------------------------


def test_a_code_is_single_use_and_a_replay_revokes_what_it_bought(
        web: WebWallet, svc: Service) -> None:
    b = web.sign_up()
    back = approve(b, svc)
    first = svc.redeem(back["code"]).json()
    assert svc.read(first["access_token"]).status_code == 200
    assert "already used" in oauth_error(svc.redeem(back["code"]), "invalid_grant")
    read = svc.read(first["access_token"])
    assert read.status_code == 401 and "revoked" in read.json()["detail"]
    oauth_error(svc.refresh(first["refresh_token"]), "invalid_grant")


@pytest.mark.parametrize("change, fragment", [
    ({"code_verifier": "x" * 43}, "PKCE"),
    ({"code_verifier": "short"}, "PKCE"),
    ({"code_verifier": None}, "code_verifier is required"),
    ({"redirect_uri": "https://badges.example.gov/other"}, "redirect_uri"),
    ({"code": "not-a-code"}, "not valid"),
])
def test_the_code_needs_its_verifier_and_redirect_uri(
        web: WebWallet, svc: Service, change: dict[str, Any], fragment: str) -> None:
    b = web.sign_up()
    back = approve(b, svc)
    error = "invalid_request" if "required" in fragment else "invalid_grant"
    assert fragment in oauth_error(svc.redeem(back["code"], **change), error)
    assert svc.redeem(back["code"]).status_code == 200  # a refusal does not spend the code


def test_a_code_expires_after_a_minute(web: WebWallet, svc: Service) -> None:
    b = web.sign_up()
    back = approve(b, svc)
    with Session(web.ctx.engine) as s, s.begin():
        s.execute(update(OAuthRequestRow).where(
            OAuthRequestRow.client_id == svc.client_id).values(
            code_expires_at=web.ctx.clock()))
    assert "expired" in oauth_error(svc.redeem(back["code"]), "invalid_grant")


def test_a_code_is_only_for_the_client_it_was_issued_to(web: WebWallet, svc: Service) -> None:
    b = web.sign_up()
    other = Service.register(web.ctx, svc.http, ORIGIN, name="Other team",
                             redirect_uri=svc.redirect_uri)
    back = approve(b, svc)
    other.verifier = svc.verifier
    oauth_error(other.redeem(back["code"]), "invalid_grant")


def test_refresh_tokens_rotate_and_a_reused_one_revokes_the_family(
        web: WebWallet, svc: Service) -> None:
    b = web.sign_up()
    first = tokens(svc, b)
    second = svc.refresh(first["refresh_token"])
    assert second.status_code == 200, second.text
    fresh = second.json()
    assert fresh["refresh_token"] != first["refresh_token"]
    assert fresh["grant_id"] == first["grant_id"] and fresh["sub"] == first["sub"]
    assert svc.read(fresh["access_token"]).status_code == 200
    # The first refresh token again: somebody else has it. Everything is revoked.
    assert "already used" in oauth_error(svc.refresh(first["refresh_token"]), "invalid_grant")
    assert svc.read(fresh["access_token"]).status_code == 401
    oauth_error(svc.refresh(fresh["refresh_token"]), "invalid_grant")


def test_refresh_stops_when_the_citizen_revokes(web: WebWallet, svc: Service) -> None:
    b = web.sign_up()
    first = tokens(svc, b)
    r = b.passkey_post(f"/wallet/grants/{first['grant_id']}/revoke")
    assert r.status_code == 200, r.text
    refused = svc.refresh(first["refresh_token"])
    oauth_error(refused, "invalid_grant")
    assert refused.json()["grant_state"] == "revoked"


def test_unknown_grant_types_and_missing_parameters(web: WebWallet, svc: Service) -> None:
    oauth_error(svc.post("/oauth/token", grant_type="password"), "unsupported_grant_type")
    oauth_error(svc.post("/oauth/token"), "invalid_request")
    oauth_error(svc.post("/oauth/token", grant_type="refresh_token"), "invalid_request")
    r = svc.http.post("/oauth/token", data={"grant_type": "authorization_code"})
    oauth_error(r, "invalid_client", 401)


# -- introspection and revocation ---------------------------------------------------------


def test_introspection_tells_a_live_token_from_a_dead_one(web: WebWallet, svc: Service) -> None:
    b = web.sign_up()
    t = tokens(svc, b)
    live = svc.post("/oauth/introspect", token=t["access_token"]).json()
    assert live["active"] is True and live["grant_id"] == t["grant_id"]
    assert live["client_id"] == svc.client_id and live["sub"] == t["sub"]
    assert live["grant_state"] == "approved" and live["token_type"] == "Bearer"
    refresh = svc.post("/oauth/introspect", token=t["refresh_token"],
                       token_type_hint="refresh_token").json()
    assert refresh["active"] is True and refresh["token_type"] == "refresh_token"
    for junk in ("nonsense", t["access_token"][:-4] + "AAAA"):
        assert svc.post("/oauth/introspect", token=junk).json() == {"active": False}
    other = Service.register(web.ctx, svc.http, ORIGIN, name="Other team")
    assert other.post("/oauth/introspect", token=t["access_token"]).json() == \
        {"active": False}  # another client's token is none of its business


@pytest.mark.parametrize("which", ["access_token", "refresh_token"])
def test_revoking_a_token_revokes_its_family(
        web: WebWallet, svc: Service, which: str) -> None:
    b = web.sign_up()
    t = tokens(svc, b)
    r = svc.post("/oauth/revoke", token=t[which])
    assert r.status_code == 200 and r.content == b""
    assert svc.read(t["access_token"]).status_code == 401
    oauth_error(svc.refresh(t["refresh_token"]), "invalid_grant")
    for token in (t["access_token"], t["refresh_token"]):
        assert svc.post("/oauth/introspect", token=token).json() == {"active": False}
    # Unknown or repeated revocations are not errors (RFC 7009 §2.2).
    assert svc.post("/oauth/revoke", token=t[which]).status_code == 200
    assert svc.post("/oauth/revoke", token="nothing-like-a-token").status_code == 200


def test_a_client_cannot_revoke_another_clients_tokens(web: WebWallet, svc: Service) -> None:
    b = web.sign_up()
    t = tokens(svc, b)
    other = Service.register(web.ctx, svc.http, ORIGIN, name="Other team")
    assert other.post("/oauth/revoke", token=t["refresh_token"]).status_code == 200
    assert svc.read(t["access_token"]).status_code == 200
    assert svc.refresh(t["refresh_token"]).status_code == 200


def test_metadata_lists_every_endpoint_the_app_serves(web: WebWallet) -> None:
    b = web.browser()
    meta = b.client.get("/.well-known/oauth-authorization-server").json()
    for key in ("authorization_endpoint", "token_endpoint", "introspection_endpoint",
                "revocation_endpoint", "backchannel_authentication_endpoint",
                "pushed_authorization_request_endpoint", "jwks_uri"):
        path = meta[key].removeprefix(ORIGIN)
        r = b.client.request("GET" if key in ("authorization_endpoint", "jwks_uri")
                             else "POST", path, follow_redirects=False)
        assert r.status_code not in (404, 405), (key, r.status_code)


def test_used_refresh_tokens_are_forgotten_after_a_day(web: WebWallet, svc: Service) -> None:
    b = web.sign_up()
    t = tokens(svc, b)
    for _ in range(3):
        t = svc.refresh(t["refresh_token"]).json()
    with Session(web.ctx.engine) as s, s.begin():
        s.execute(update(OAuthRefreshTokenRow).where(
            OAuthRefreshTokenRow.used_at.is_not(None)).values(  # type: ignore[union-attr]
            used_at=web.ctx.clock() - REUSE_MEMORY - timedelta(seconds=1)))
    t = svc.refresh(t["refresh_token"]).json()
    with Session(web.ctx.engine) as s:
        family = s.execute(select(OAuthTokenFamilyRow.id).where(
            OAuthTokenFamilyRow.grant_id == t["grant_id"])).scalar_one()  # type: ignore[arg-type]
        kept = s.execute(select(OAuthRefreshTokenRow).where(
            OAuthRefreshTokenRow.family_id == family)).scalars().all()  # type: ignore[arg-type]
    assert len(kept) == 2  # the one just used, and the new one
