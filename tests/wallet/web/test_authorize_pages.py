"""The wallet's pages on the way through a service's authorization, over HTTP: sign-in
and sign-up say which service is asking, and after Decline a page of the wallet's own
takes the browser back to the service (a form's redirect to another origin would break
the CSP's form-action 'self', which stays as it is)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import update
from sqlmodel import Session
from support.oauthclient import Service, decline, location, to_consent
from support.vaultworld import ask
from support.webwallet import ORIGIN, Browser, WebWallet

from vault.storage.tables import OAuthRequestRow
from wallet.security import CONTENT_SECURITY_POLICY

ASKING_SIGN_IN = ("Blue Badge team is asking for your data. Sign in, or create an\n  "
                  "account, to see what they ask and answer.")
ASKING_SIGN_UP = ("Blue Badge team is asking for your data. Create a passkey to see "
                  "what\n  they ask and answer.")


@pytest.fixture
def svc(web: WebWallet) -> Service:
    return Service.register(web.ctx, web.browser().client, ORIGIN)


def sign_in_link(b: Browser, svc: Service) -> str:
    """From the service's link to the sign-in page's address."""
    wallet_path = location(b.get(svc.push(), follow_redirects=False))
    signin = location(b.get(wallet_path, follow_redirects=False))
    assert signin.startswith("/wallet/signin?next=/wallet/authorize/")
    return signin


def form_action(r: object) -> list[str]:
    csp = r.headers["content-security-policy"]  # type: ignore[attr-defined]
    return [d.strip() for d in csp.split(";") if d.strip().startswith("form-action")]


# -- who is asking ---------------------------------------------------------------------


def test_sign_in_and_sign_up_on_the_way_to_a_request_say_which_service_asks(
        web: WebWallet, svc: Service) -> None:
    b = web.browser()
    signin = b.get(sign_in_link(b, svc))
    assert signin.status_code == 200 and ASKING_SIGN_IN in signin.text
    signup_link = re.search(r'href="(/wallet/signup\?next=[^"]+)"', signin.text)
    assert signup_link is not None
    signup = b.get(signup_link.group(1))
    assert signup.status_code == 200 and ASKING_SIGN_UP in signup.text


@pytest.mark.parametrize("next_path", [
    "", "/wallet/activity", "/wallet/authorize/problem",
    "/wallet/authorize/" + "A" * 43,  # a request id nobody pushed
])
def test_sign_in_for_anything_else_names_no_service(web: WebWallet, next_path: str) -> None:
    b = web.browser()
    for page in ("/wallet/signin", "/wallet/signup"):
        r = b.get(page, params={"next": next_path})
        assert r.status_code == 200 and "is asking for your data" not in r.text, page


def test_an_expired_request_names_no_service(web: WebWallet, svc: Service) -> None:
    b = web.browser()
    link = sign_in_link(b, svc)
    with Session(web.ctx.engine) as s, s.begin():
        s.execute(update(OAuthRequestRow).values(expires_at=web.ctx.clock()))
    assert "is asking for your data" not in b.get(link).text


# -- decline, and the way back ---------------------------------------------------------


def test_decline_lands_on_a_page_of_ours_that_links_back_to_the_service(
        web: WebWallet, svc: Service) -> None:
    b = web.sign_up()
    request_id, grant_id = to_consent(b, svc)
    r = b.form(f"/wallet/grants/{grant_id}/decline")
    assert location(r) == f"/wallet/authorize/{request_id}/back?done=declined"
    page = b.get(location(r))
    assert page.status_code == 200
    assert "<h1>Taking you back to Blue Badge team&hellip;</h1>" in page.text
    assert "You said no. Nothing of yours has been shared with them." in page.text
    assert (f'<a class="button" href="/wallet/authorize/{request_id}/return" data-go-back>'
            "Go back to Blue Badge team</a>") in page.text
    # The CSP is the wallet's, with form-action 'self': nothing was loosened for this.
    for answer in (r, page):
        assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert form_action(answer) == ["form-action 'self'"]
    back = svc.callback(location(b.get(f"/wallet/authorize/{request_id}/return",
                                       follow_redirects=False)))
    assert back == {"error": "access_denied", "error_description": "the citizen declined",
                    "state": svc.state, "iss": ORIGIN}
    # Once the service has its answer, the page sends nobody anywhere.
    again = b.get(f"/wallet/authorize/{request_id}/back", follow_redirects=False)
    assert location(again) == "/wallet/authorize/problem?why=answered"


def test_the_way_back_is_only_for_the_citizen_who_answered(
        web: WebWallet, svc: Service) -> None:
    ada, bob = web.sign_up(), web.sign_up()
    request_id, grant_id = to_consent(ada, svc)
    back = decline(ada, grant_id)
    assert back == f"/wallet/authorize/{request_id}/return"
    r = bob.get(f"/wallet/authorize/{request_id}/back", follow_redirects=False)
    assert location(r) == "/wallet/authorize/problem?why=answered"
    assert "Blue Badge" not in bob.get(location(r)).text


@pytest.mark.parametrize("request_id", ["nope", "A" * 43, "A" * 300])
def test_the_way_back_for_an_unknown_request_explains(web: WebWallet, request_id: str) -> None:
    b = web.sign_up()
    r = b.get(f"/wallet/authorize/{request_id}/back?done=declined", follow_redirects=False)
    assert location(r) == "/wallet/authorize/problem?why=answered"


def test_the_way_back_refuses_an_unknown_done_with_a_problem(
        web: WebWallet, svc: Service) -> None:
    b = web.sign_up()
    request_id, _ = to_consent(b, svc)
    r = b.client.get(f"/wallet/authorize/{request_id}/back?done=<b>hi</b>",
                     headers={"accept": "application/json"})
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/problem+json")


def test_declining_a_request_in_the_list_still_goes_back_to_the_list(web: WebWallet) -> None:
    b = web.sign_up()
    grant = ask(web.ctx, web.world_for(b))  # asked directly, not through /oauth/authorize
    r = b.form(f"/wallet/grants/{grant.id}/decline")
    assert location(r) == "/wallet/requests?done=declined"
