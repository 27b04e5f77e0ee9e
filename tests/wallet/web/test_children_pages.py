"""Children's vaults over HTTP (issue 14 §2): a parent makes one with a passkey signature
over the exact terms, hands it over with a one-time code, and the child, signed out,
takes it over with their first passkey and chooses whether the parent stays."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import update
from sqlmodel import Session, col, select
from support.webwallet import Browser, WebWallet

from vault.domain.relationships import DelegatedAction, RelationshipRefused
from vault.services import delegations, records
from vault.storage.tables import (
    CitizenRow,
    PasskeyRow,
    RelationshipInviteRow,
    RelationshipRow,
)

_HIDDEN = re.compile(r'<input type="hidden" name="(plan|given|family|date_of_birth)" '
                     r'value="([^"]*)">')
_CODE = re.compile(r"<code>([0-9A-Z]{4}(?:-[0-9A-Z]{4}){3})</code>")
CHILD = {"given": "Ada", "family": "Byron", "date_of_birth": "2018-12-10", "until": ""}


def _plan(parent: Browser, **fields: str) -> dict[str, str]:
    """The check page's hidden fields: the plan the parent signs."""
    r = parent.form("/wallet/children/new", {**CHILD, **fields})
    assert r.status_code == 200, r.text
    assert "Check and sign" in r.text
    found = {name: html.unescape(value) for name, value in _HIDDEN.findall(r.text)}
    assert set(found) == {"plan", "given", "family", "date_of_birth"}
    return found


def make_child(web: WebWallet, parent: Browser, **fields: str) -> tuple[str, str]:
    """A child's vault made by `parent` through the pages: (child id, relationship id)."""
    r = parent.passkey_post("/wallet/children/create", _plan(parent, **fields))
    assert r.status_code == 200, r.text
    assert r.json() == {"redirect": "/wallet/children?done=made"}
    with Session(web.ctx.engine) as s:
        row = s.exec(select(RelationshipRow).where(
            col(RelationshipRow.delegate_id) == parent.citizen_id,
            col(RelationshipRow.origin) == "dependant")).one()
        return row.principal_id, row.id


def handover_code(parent: Browser, child_id: str) -> str:
    r = parent.form(f"/wallet/children/{child_id}/handover")
    assert r.status_code == 200, r.text
    found = _CODE.search(r.text)
    assert found is not None
    assert f"/wallet/handover?code={found.group(1)}" in r.text
    assert "<svg" in r.text  # the QR code of the link
    return found.group(1)


def _can_act(web: WebWallet, parent: str, child: str) -> bool:
    with Session(web.ctx.engine) as s:
        try:
            delegations.authorize(s, actor_id=parent, subject_id=child,
                                  action=DelegatedAction.VIEW, now=web.ctx.clock())
        except RelationshipRefused:
            return False
        return True


def test_a_parent_makes_a_childs_vault_and_sees_who_can_act_for_it(web: WebWallet) -> None:
    parent = web.sign_up()
    child, _ = make_child(web, parent)
    assert _can_act(web, parent.citizen_id or "", child)
    page = parent.get("/wallet/children?done=made")
    assert "vault is made, and you can act for them now" in page.text
    assert "Ada Byron" in page.text and "Not handed over yet" in page.text
    assert "Who can act for this vault" in page.text and "You, as parent" in page.text
    assert "cannot pass that on" in page.text  # no second parent, and why


def test_long_names_in_any_script_fit_the_signed_form(web: WebWallet) -> None:
    parent = web.sign_up()
    child_id, _ = make_child(web, parent, given="Zoë-" + "ß" * 96, family="Ó" + "ł" * 99)
    assert records.read_records(web.ctx, child_id)["identity.name"].value == {
        "given": "Zoë-" + "ß" * 96, "family": "Ó" + "ł" * 99}


@pytest.mark.parametrize(("fields", "words"), [
    ({"date_of_birth": "2031-01-01"}, "in the future"),
    ({"date_of_birth": "1990-01-01"}, "under 18"),
    ({"date_of_birth": "soon"}, "not a valid date"),
    ({"given": ""}, "identity.name"),
    ({"until": "2045-01-01"}, "18th birthday"),
    ({"until": "2001-01-01"}, "end date"),
])
def test_bad_child_details_are_refused_on_the_form(web: WebWallet, fields: dict[str, str],
                                                   words: str) -> None:
    parent = web.sign_up()
    r = parent.form("/wallet/children/new", {**CHILD, **fields})
    assert r.status_code == 400
    assert "Please check the form" in r.text and words in r.text
    with Session(web.ctx.engine) as s:
        assert s.exec(select(RelationshipRow)).first() is None


def test_a_changed_or_borrowed_plan_is_refused_and_nothing_is_written(web: WebWallet) -> None:
    parent, other = web.sign_up(), web.sign_up()
    plan = _plan(parent)
    ids, mac = plan["plan"].rsplit(".", 1)
    for who, fields in ((parent, {**plan, "given": "Eve"}),
                        (parent, {**plan, "plan": ids.replace("cit_", "cit_x") + "." + mac}),
                        (parent, {**plan, "plan": ids + ".é" + mac[2:]}),
                        (parent, {"plan": plan["plan"]}),
                        (other, plan)):
        r = who.json("/wallet/children/create/options", fields)
        assert r.status_code == 400
        assert "out of date" in r.json()["detail"]
    with Session(web.ctx.engine) as s:
        citizens = s.exec(select(CitizenRow)).all()
        assert len(citizens) == 2


def test_the_child_takes_over_and_ends_the_parents_relationship(web: WebWallet) -> None:
    parent = web.sign_up()
    child_id, rid = make_child(web, parent)
    code = handover_code(parent, child_id)
    child = web.browser()
    page = child.get(f"/wallet/handover?code={code}")
    assert page.status_code == 200
    assert "Ada Byron" in page.text and "Create a passkey" in page.text
    r = child.passkey_post("/wallet/handover", {"code": code, "parent": "end", "label": ""})
    assert r.status_code == 200, r.text
    assert r.json() == {"redirect": "/wallet/welcome?next=/wallet/people"}
    # The child is signed in to their own vault, with their own passkey.
    assert web.state.sessions.resolve(child.client.cookies.get(web.state.cookies.session),
                                      now=web.ctx.clock()) == child_id
    with Session(web.ctx.engine) as s:
        assert s.exec(select(PasskeyRow).where(
            col(PasskeyRow.citizen_id) == child_id)).one()
        row = s.get(RelationshipRow, rid)
        assert row is not None and (row.state, row.ended_by) == ("ended", "handover")
    assert not _can_act(web, parent.citizen_id or "", child_id)
    # The parent's page no longer lists the child: they cannot act in that vault.
    assert "Ada Byron" not in parent.get("/wallet/children").text
    # The code worked once.
    again = web.browser().get(f"/wallet/handover?code={code}")
    assert again.status_code == 409 and "used already" in again.text


def test_the_child_may_keep_the_parent(web: WebWallet) -> None:
    parent = web.sign_up()
    child_id, _ = make_child(web, parent)
    code = handover_code(parent, child_id)
    child = web.browser()
    r = child.passkey_post("/wallet/handover", {"code": code, "parent": "keep"})
    assert r.status_code == 200, r.text
    assert _can_act(web, parent.citizen_id or "", child_id)
    # The child's own People page lists who can act for them, and lets them end it.
    people = child.get("/wallet/people").text
    assert "Ada Lovelace" in people and "vault" in people and "End this" in people
    page = parent.get("/wallet/children")
    assert "Taken over" in page.text
    assert "Make a handover code" not in page.text


def test_expired_unknown_and_taken_over_codes_are_refused_clearly(web: WebWallet) -> None:
    parent = web.sign_up()
    child_id, _ = make_child(web, parent)
    code = handover_code(parent, child_id)
    visitor = web.browser()
    unknown = visitor.get("/wallet/handover?code=ABCD-EFGH-JKMN-PQRS")
    assert unknown.status_code == 404 and "not right" in unknown.text
    r = visitor.json("/wallet/handover/options", {"code": "ABCD-EFGH-JKMN-PQRS"})
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    with Session(web.ctx.engine) as s, s.begin():  # the code's 14 days are over
        s.execute(update(RelationshipInviteRow).values(expires_at=web.ctx.clock()))
    late = visitor.get(f"/wallet/handover?code={code}")
    assert late.status_code == 409 and "expired" in late.text
    r = visitor.json("/wallet/handover/options", {"code": code})
    assert r.status_code == 403 and r.json()["reason"] == "invitation_expired"


def test_a_signed_in_person_is_asked_to_sign_out_first(web: WebWallet) -> None:
    parent = web.sign_up()
    child_id, _ = make_child(web, parent)
    code = handover_code(parent, child_id)
    r = parent.get(f"/wallet/handover?code={code}")
    assert r.status_code == 409 and "Sign out first" in r.text


def test_only_the_parent_makes_a_handover_code(web: WebWallet) -> None:
    parent, stranger = web.sign_up(), web.sign_up()
    child_id, _ = make_child(web, parent)
    r = stranger.form(f"/wallet/children/{child_id}/handover")
    assert r.status_code == 403 and "cannot do that for this person" in r.text


def test_nothing_is_set_up_while_acting_for_someone(web: WebWallet) -> None:
    """A delegate may not delegate further: acting in the child's vault, the parent can
    neither make a vault nor a handover code there (nor sign a plan made before)."""
    parent = web.sign_up()
    child_id, _ = make_child(web, parent)
    plan = _plan(parent)
    assert parent.form("/wallet/acting", {"for": child_id}).status_code == 303
    assert "You are acting for Ada Byron" in parent.get("/wallet/children").text
    r = parent.form("/wallet/children/new", CHILD)
    assert r.status_code == 400 and "cannot pass that on to anyone else" in r.text
    r = parent.json("/wallet/children/create/options", plan)
    assert r.status_code == 403 and r.json()["reason"] == "further"
    r = parent.form(f"/wallet/children/{child_id}/handover")
    assert r.status_code == 403 and "cannot pass that on" in r.text
    with Session(web.ctx.engine) as s:
        assert len(s.exec(select(CitizenRow)).all()) == 2
        assert s.exec(select(RelationshipInviteRow)).first() is None
