"""Write grants over HTTP (issue 12, ARCHITECTURE §8): an issuer pushes terms with
`actions: ["write"]`, the consent screen says plainly it wants to add to the vault, the
citizen approves with a passkey, and the code buys tokens carrying the grant; CIBA too.
PAR and CIBA refuse a write beyond the registration; a grant only to write reads nothing."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import Session
from support.oauthclient import DETAILS, Service, approve, to_consent
from support.webwallet import ORIGIN, Browser, WebWallet

from ledger.canonical import canonical_json
from vault.oauth.metadata import CIBA_GRANT_TYPE
from vault.storage.tables import OAuthBackchannelRow, OAuthRequestRow

WRITE: dict[str, Any] = {
    "type": "personal_data", "actions": ["write"], "purpose": "eligibility_assessment",
    "categories": ["benefits.attendance_allowance"], "derived": [], "duration": "P30D",
    "access": {"mode": "one_time"}, "data_life": "P0D",
    "justification": "To record your Attendance Allowance award.",
}


@pytest.fixture
def issuer(web: WebWallet) -> Service:
    # Named as the support's consent helper expects; it issues Attendance Allowance.
    return Service.register(web.ctx, web.browser().client, ORIGIN,
                            issues=("benefits.attendance_allowance",))


def push(svc: Service, details: dict[str, Any]) -> httpx.Response:
    return svc.post("/oauth/par", response_type="code", redirect_uri=svc.redirect_uri,
                    code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                    code_challenge_method="S256",
                    authorization_details=json.dumps([details]))


def refused(r: httpx.Response) -> str:
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_authorization_details", r.json()
    return r.json()["error_description"]  # type: ignore[no-any-return]


def test_par_takes_a_write_request_within_the_registration(
        web: WebWallet, issuer: Service) -> None:
    r = push(issuer, WRITE)
    assert r.status_code == 201, r.text
    stored_id = r.json()["request_uri"].rsplit(":", 1)[1]
    with Session(web.ctx.engine) as s:
        row = s.get(OAuthRequestRow, stored_id)
        assert row is not None and row.authorization_details[0]["actions"] == ["write"]
    # Written out, ["read"] is the default, and ["write", "read"] is both.
    both = push(issuer, {**WRITE, "actions": ["read"], "categories": ["address.home"]})
    assert both.status_code == 201, both.text


@pytest.mark.parametrize(("changes", "words"), [
    ({"categories": ["benefits.universal_credit"]},
     "not registered to issue the category 'benefits.universal_credit'"),
    ({"categories": ["address.home"]}, "the catalog lets no service issue it"),
    ({"derived": ["age_over_65"]}, "cannot name derived answers"),
    ({"categories": []}, "must name the categories it writes"),
    ({"actions": ["write", "read"]},
     "not registered to read the category 'benefits.attendance_allowance'"),
    ({"actions": ["delete"]}, "'delete' is not an action"),
    ({"actions": "write"}, "actions must be a list"),
    ({"actions": []}, "actions must not be empty"),
])
def test_par_refuses_a_write_beyond_the_registration(
        issuer: Service, changes: dict[str, Any], words: str) -> None:
    assert words in refused(push(issuer, {**WRITE, **changes}))


def test_a_service_that_issues_nothing_may_not_ask_to_write(web: WebWallet) -> None:
    reader = Service.register(web.ctx, web.browser().client, ORIGIN)
    assert "not registered to issue the category 'identity.name'" in refused(
        push(reader, {**WRITE, "categories": ["identity.name"]}))


def test_the_consent_screen_says_they_want_to_add_to_the_vault(
        web: WebWallet, issuer: Service) -> None:
    b = web.sign_up()
    _, grant_id = to_consent(b, issuer, details=WRITE)
    page = b.get(f"/wallet/grants/{grant_id}").text
    assert "Blue Badge team is asking to add information to your vault</h1>" in page
    assert "What they want to add to your vault" in page
    [adds] = re.findall(r"What they want to add to your vault</dt>\s*<dd>(.*?)</dd>", page,
                        re.S)
    adds = " ".join(re.sub(r"<[^>]+>", " ", adds).split())
    # Each category said once: its words name it, so no label before them.
    assert adds == ("Your Attendance Allowance award: the rate, since when, and who "
                    "awarded it They may change or withdraw what they added while this "
                    "lasts.")
    assert "This does not let them see anything in your vault" in page
    assert "(30 days)" in page  # for how long
    assert "What they want to see" not in page and "Keeping your information" not in page
    # The request card on the Requests page says it too.
    requests = b.get("/wallet/requests").text
    assert "They want to add to your vault: your Attendance Allowance award" in requests
    assert "They want to see" not in requests


def status_terms(svc: Service, grant_id: str, token: str) -> dict[str, Any]:
    """GET /v1/grants/{id}'s terms, checked to hash to its terms_hash."""
    r = svc.http.get(f"/v1/grants/{grant_id}", headers={"authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    terms: dict[str, Any] = r.json()["terms"]
    assert base64.b64encode(hashlib.sha256(canonical_json(terms)).digest()).decode() \
        == r.json()["terms_hash"]
    return terms


def tokens_for_a_write_grant(web: WebWallet, issuer: Service, b: Browser) -> dict[str, Any]:
    back = approve(b, issuer, details=WRITE)
    r = issuer.redeem(back["code"])
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_a_write_grant_is_approved_end_to_end_and_reads_nothing(
        web: WebWallet, issuer: Service) -> None:
    b = web.sign_up()
    body = tokens_for_a_write_grant(web, issuer, b)
    details = body["authorization_details"][0]
    assert details["actions"] == ["write"]
    assert details["categories"] == ["benefits.attendance_allowance"]
    # The grant's page, once approved, says what they can do.
    page = b.get(f"/wallet/grants/{body['grant_id']}").text
    assert "What they can add to your vault" in page
    assert "This does not let them look at your information." in page
    # A write grant does not let the service read.
    read = issuer.read(body["access_token"])
    assert read.status_code == 403, read.text
    assert "not read" in read.json()["detail"]
    # The service sees its grant's terms exactly as hashed, actions and all.
    assert status_terms(issuer, body["grant_id"], body["access_token"])["actions"] == ["write"]


def test_ciba_gives_a_write_grant_too(web: WebWallet, issuer: Service) -> None:
    b = web.sign_up()
    sub = tokens_for_a_write_grant(web, issuer, b)["sub"]
    r = issuer.post("/oauth/bc-authorize", login_hint=sub,
                    authorization_details=json.dumps([{**WRITE, "duration": "P60D"}]))
    assert r.status_code == 200, r.text
    page = b.get("/wallet/requests").text
    start = page.index("/wallet/grants/gr_") + len("/wallet/grants/")
    grant_id = page[start:page.index('"', start)]
    assert "is asking to add information to your vault" in b.get(
        f"/wallet/grants/{grant_id}").text
    assert b.passkey_post(f"/wallet/grants/{grant_id}/approve").status_code == 200
    with Session(web.ctx.engine) as s, s.begin():  # as if the poll interval had passed
        s.execute(update(OAuthBackchannelRow).values(polled_at=web.ctx.clock()
                                                     - timedelta(minutes=1)))
    done = issuer.post("/oauth/token", grant_type=CIBA_GRANT_TYPE,
                       auth_req_id=r.json()["auth_req_id"])
    assert done.status_code == 200, done.text
    assert done.json()["grant_id"] == grant_id
    assert done.json()["authorization_details"][0]["actions"] == ["write"]
    # ... and refuses one beyond the registration, as PAR does.
    beyond = issuer.post("/oauth/bc-authorize", login_hint=sub, authorization_details=json.dumps(
        [{**WRITE, "categories": ["benefits.universal_credit"]}]))
    assert "not registered to issue" in refused(beyond)


def test_an_ordinary_read_request_is_unchanged(web: WebWallet) -> None:
    svc = Service.register(web.ctx, web.browser().client, ORIGIN)
    b = web.sign_up()
    back = approve(b, svc, details=DETAILS)
    body = svc.redeem(back["code"]).json()
    assert "actions" not in body["authorization_details"][0]
    assert "actions" not in status_terms(svc, body["grant_id"], body["access_token"])
