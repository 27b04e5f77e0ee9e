"""The helper at a counter over HTTP (issue 14 §3): the citizen's own key identifies them
(a discoverable assertion) and signs the visit's terms; the helper signs the same terms;
then the helper can act for the citizen for that visit only."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest
from sqlmodel import Session, select
from support.acting import live_relationship
from support.webwallet import Browser, WebWallet

from vault.domain.relationships import DelegatedAction, DelegationTerms
from vault.services import delegations
from vault.storage.tables import RelationshipRow


def _identify(helper: Browser, citizen: Browser, fields: dict[str, str]) -> Any:
    """Step 1 at the counter: the helper's page asks, the citizen's device answers."""
    token = helper.csrf()
    got = helper.json("/wallet/counter/identify/options", fields, csrf=token)
    if got.status_code != 200:
        return got
    body = got.json()
    assert "allowCredentials" not in body["publicKey"] or \
        body["publicKey"]["allowCredentials"] == []  # discoverable: nobody named
    answer = citizen.device.get(body["publicKey"])
    return helper.json("/wallet/counter/identify",
                       {"credential": answer, "ceremony": body["ceremony"], "fields": fields},
                       csrf=token)


def _sign(helper: Browser, device_of: Browser, path: str) -> Any:
    token = helper.csrf()
    got = helper.json(f"{path}/options", {}, csrf=token)
    assert got.status_code == 200, got.text
    answer = device_of.device.get(got.json()["publicKey"])
    return helper.json(path, {"credential": answer, "fields": {}}, csrf=token)


def test_a_visit_goes_live_when_both_have_signed_the_same_terms(web: WebWallet) -> None:
    helper, citizen = web.sign_up(), web.sign_up()
    assert helper.get("/wallet/counter").status_code == 200
    r = _identify(helper, citizen, {"hours": "2", "action_approve": "on"})
    assert r.status_code == 200, r.text
    visit = r.json()["redirect"].rsplit("/", 1)[1]
    page = helper.get(f"/wallet/counter/{visit}")
    assert "Step 2 of 3" in page.text and "Ada" not in page.text  # not named before they agree
    with Session(web.ctx.engine) as s:
        row = s.get(RelationshipRow, visit)
        assert row is not None
        assert (row.principal_id, row.delegate_id, row.kind, row.origin, row.state) == (
            citizen.citizen_id, helper.citizen_id, "helper", "counter", "proposed")
        assert row.actions == "approve,view"
        assert row.until - web.ctx.clock() <= timedelta(hours=2)
    # The helper cannot sign before the citizen has.
    early = _sign(helper, helper, f"/wallet/counter/{visit}/helper")
    assert early.status_code == 403
    assert _sign(helper, citizen, f"/wallet/counter/{visit}/citizen").status_code == 200
    assert "Step 3 of 3" in helper.get(f"/wallet/counter/{visit}").text
    assert _sign(helper, helper, f"/wallet/counter/{visit}/helper").status_code == 200
    page = helper.get(f"/wallet/counter/{visit}")
    assert "You can act for" in page.text and "Ada Lovelace" in page.text
    with Session(web.ctx.engine) as s:
        row = s.get(RelationshipRow, visit)
        assert row is not None and row.state == "live"
        assert delegations.authorize(s, actor_id=helper.citizen_id or "",
                                     subject_id=citizen.citizen_id or "",
                                     action=DelegatedAction.APPROVE, now=web.ctx.clock())
        # Both signatures are over the terms the ledger carries.
        terms = delegations.terms_of(s, row)
        for text in (row.principal_assertion, row.delegate_assertion):
            assert text is not None
            client = orjson.loads(_b64(orjson.loads(text)["client_data_json"]))
            assert _b64(client["challenge"]) == terms.terms_hash()
        assert isinstance(terms, DelegationTerms) and terms.kind.value == "helper"


def _b64(text: str) -> bytes:
    import base64
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.mark.parametrize(("fields", "reason"), [
    ({"hours": "25"}, "too_long"),
    ({"hours": "0"}, "bad_until"),
    ({"hours": "soon"}, "bad_until"),
])
def test_a_visit_outside_the_rules_is_refused_before_anyone_signs(
        web: WebWallet, fields: dict[str, str], reason: str) -> None:
    helper, citizen = web.sign_up(), web.sign_up()
    r = _identify(helper, citizen, fields)
    assert r.status_code == 403 and r.json()["reason"] == reason
    with Session(web.ctx.engine) as s:
        assert s.exec(select(RelationshipRow)).first() is None


def test_over_a_day_is_refused_at_the_answer_too_and_nothing_is_written(
        web: WebWallet) -> None:
    helper, citizen = web.sign_up(), web.sign_up()
    token = helper.csrf()
    body = helper.json("/wallet/counter/identify/options", {"hours": "2"}, csrf=token).json()
    answer = citizen.device.get(body["publicKey"])
    r = helper.json("/wallet/counter/identify", {"credential": answer,
                    "ceremony": body["ceremony"], "fields": {"hours": "30"}}, csrf=token)
    assert r.status_code == 403 and r.json()["reason"] == "too_long"
    with Session(web.ctx.engine) as s:
        assert s.exec(select(RelationshipRow)).first() is None


def test_a_helper_cannot_help_themself(web: WebWallet) -> None:
    helper = web.sign_up()
    r = _identify(helper, helper, {"hours": "1"})
    assert r.status_code == 403 and r.json()["reason"] == "self"
    with Session(web.ctx.engine) as s:
        assert s.exec(select(RelationshipRow)).first() is None


def test_another_helpers_ceremony_or_visit_is_not_yours(web: WebWallet) -> None:
    helper, other, citizen = web.sign_up(), web.sign_up(), web.sign_up()
    token = helper.csrf()
    body = helper.json("/wallet/counter/identify/options", {"hours": "1"}, csrf=token).json()
    answer = citizen.device.get(body["publicKey"])
    stolen = other.json("/wallet/counter/identify", {"credential": answer,
                        "ceremony": body["ceremony"], "fields": {"hours": "1"}})
    assert stolen.status_code == 400 and stolen.json()["reason"] == "challenge_unknown"
    r = _identify(helper, citizen, {"hours": "1"})
    visit = r.json()["redirect"].rsplit("/", 1)[1]
    assert other.get(f"/wallet/counter/{visit}").status_code == 404
    assert other.json(f"/wallet/counter/{visit}/citizen/options", {}).status_code == 404


def test_the_citizen_must_sign_with_their_own_passkey(web: WebWallet) -> None:
    helper, citizen, stranger = web.sign_up(), web.sign_up(), web.sign_up()
    visit = _identify(helper, citizen, {"hours": "1"}).json()["redirect"].rsplit("/", 1)[1]
    r = _sign(helper, stranger, f"/wallet/counter/{visit}/citizen")
    assert r.status_code == 400 and r.json()["reason"] == "other_citizen"
    with Session(web.ctx.engine) as s:
        row = s.get(RelationshipRow, visit)
        assert row is not None and row.principal_assertion is None


def test_a_helper_acting_for_someone_cannot_start_a_visit(web: WebWallet) -> None:
    grace, helper, citizen = web.sign_up(), web.sign_up(), web.sign_up()
    live_relationship(web.ctx, principal=grace.citizen_id or "",
                      delegate=helper.citizen_id or "", principal_device=grace.device,
                      delegate_device=helper.device)
    assert helper.form("/wallet/acting", {"for": grace.citizen_id or ""}).status_code == 303
    assert "Switch back to yourself" in helper.get("/wallet/counter").text
    r = _identify(helper, citizen, {"hours": "1"})
    assert r.status_code == 403 and r.json()["reason"] == "further"
    with Session(web.ctx.engine) as s:
        assert len(s.exec(select(RelationshipRow)).all()) == 1  # Grace's, nothing new
