"""Stop this service asking (issue 11, bug 8), over HTTP: the consent screen and a grant's
page lead to a page that says what it means; only its CSRF-protected form stops the
service (its waiting requests declined, approved grants untouched); the Requests page
lists stopped services with a form to let each ask again; and from an authorization the
browser goes back to the service with access_denied."""

from __future__ import annotations

import httpx
from sqlalchemy import func
from sqlmodel import Session, select
from support.oauthclient import Service, location, to_consent
from support.vaultworld import ask
from support.webwallet import ORIGIN, Browser, WebWallet

from vault.domain.grants import GrantState
from vault.services.grants import get_grant
from vault.storage.tables import ServiceBlockRow


def blocks_of(web: WebWallet) -> int:
    with Session(web.ctx.engine) as s:
        return int(s.execute(select(func.count()).select_from(ServiceBlockRow)).scalar_one())


def approved(web: WebWallet, b: Browser, service_id: str) -> str:
    grant = ask(web.ctx, web.world_for(b, service_id))
    assert b.passkey_post(f"/wallet/grants/{grant.id}/approve").status_code == 200
    return grant.id


def stop_link(page: httpx.Response) -> str:
    start = page.text.index('href="/wallet/services/') + len('href="')
    return page.text[start:page.text.index('"', start)].replace("&amp;", "&")


def test_stopping_a_service_says_what_it_means_and_takes_the_form_with_its_token(
        web: WebWallet) -> None:
    b = web.sign_up()
    service_id = web.world_for(b).service_id  # registers the Blue Badge team
    kept = approved(web, b, service_id)
    waiting = [ask(web.ctx, web.world_for(b, service_id)).id for _ in range(2)]

    consent = b.get(f"/wallet/grants/{waiting[0]}")
    assert "Stop this service asking" in consent.text
    assert stop_link(consent) == f"/wallet/services/{service_id}/stop?grant={waiting[0]}"
    assert stop_link(b.get(f"/wallet/grants/{kept}")) == f"/wallet/services/{service_id}/stop"
    page = b.get(f"/wallet/services/{service_id}/stop")
    assert page.status_code == 200
    assert "Stop Blue Badge team asking you?" in page.text
    assert "Its 2 requests waiting for you are declined" in page.text
    assert "cannot ask you again until you let it" in page.text
    assert "Anything you have already said yes to stays as it is" in page.text
    assert f'action="/wallet/services/{service_id}/stop"' in page.text
    assert 'name="csrf"' in page.text

    # Without the page's token (or with another's), nothing happens.
    for token in ("", "0" * 64):
        assert b.form(f"/wallet/services/{service_id}/stop", csrf=token).status_code == 403
    assert blocks_of(web) == 0
    assert get_grant(web.ctx, waiting[0]).state is GrantState.REQUESTED

    r = b.form(f"/wallet/services/{service_id}/stop")
    assert location(r) == "/wallet/requests?done=stopped"
    assert [get_grant(web.ctx, g).state for g in waiting] == [GrantState.DENIED] * 2
    assert get_grant(web.ctx, kept).state is GrantState.APPROVED
    listing = b.get("/wallet/requests?done=stopped").text
    assert "cannot ask you for anything until you let it" in listing
    assert "Services you stopped asking" in listing
    assert f'action="/wallet/services/{service_id}/allow"' in listing
    assert "Let this service ask again" in listing
    assert "You stopped Blue Badge team asking" in b.get(
        f"/wallet/services/{service_id}/stop").text

    assert b.form(f"/wallet/services/{service_id}/allow", csrf="").status_code == 403
    assert blocks_of(web) == 1
    assert location(b.form(f"/wallet/services/{service_id}/allow")) == \
        "/wallet/requests?done=allowed"
    assert blocks_of(web) == 0
    assert "Services you stopped asking" not in b.get("/wallet/requests").text


def test_stopping_from_an_authorization_goes_back_to_the_service_with_access_denied(
        web: WebWallet) -> None:
    svc = Service.register(web.ctx, web.browser().client, ORIGIN)
    b = web.sign_up()
    request_id, grant_id = to_consent(b, svc)
    r = b.form(f"/wallet/services/{svc.client_id}/stop", {"grant": grant_id})
    assert location(r) == f"/wallet/authorize/{request_id}/back?done=declined"
    back = svc.callback(location(b.get(f"/wallet/authorize/{request_id}/return",
                                       follow_redirects=False)))
    assert back["error"] == "access_denied" and back["state"] == svc.state


def test_another_citizens_grant_does_not_steer_where_the_form_goes(web: WebWallet) -> None:
    svc = Service.register(web.ctx, web.browser().client, ORIGIN)
    ada, bob = web.sign_up(), web.sign_up()
    _, adas_grant = to_consent(ada, svc)
    r = bob.form(f"/wallet/services/{svc.client_id}/stop", {"grant": adas_grant})
    assert location(r) == "/wallet/requests?done=stopped"
    assert get_grant(web.ctx, adas_grant).state is GrantState.REQUESTED


def test_a_service_that_does_not_exist_cannot_be_stopped(web: WebWallet) -> None:
    b = web.sign_up()
    assert b.get("/wallet/services/svc_nobody/stop").status_code == 404
    assert b.form("/wallet/services/svc_nobody/stop").status_code == 404
    assert b.get("/wallet/services/" + "x" * 41 + "/stop").status_code == 400
    assert blocks_of(web) == 0


def test_the_page_leads_back_only_to_a_grant(web: WebWallet) -> None:
    b = web.sign_up()
    service_id = web.world_for(b).service_id
    page = b.get(f"/wallet/services/{service_id}/stop", params={"grant": "../../elsewhere"})
    assert page.status_code == 200
    assert "elsewhere" not in page.text and 'name="grant"' not in page.text
    assert 'href="/wallet/requests">Go back' in page.text
