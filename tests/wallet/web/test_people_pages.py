"""The People page over HTTP (issue 14 §1, §6): invite, accept with a passkey, confirm,
end; refusals with a reason and nothing written."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from sqlmodel import Session, select
from support.webwallet import Browser, WebWallet

from vault.domain.relationships import DelegatedAction, RelationshipRefused
from vault.services import delegations, records
from vault.services.context import unit_of_work
from vault.storage.tables import RelationshipInviteRow, RelationshipRow

_CODE = re.compile(r"<code>([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})</code>")
_SIGN = re.compile(r'action="/wallet/people/(dlg_[A-Za-z0-9_-]+)/sign"')


def _next_year() -> str:
    return (datetime.now(UTC).date() + timedelta(days=365)).isoformat()


def _bob(web: WebWallet) -> Browser:
    bob = web.sign_up()
    assert bob.citizen_id is not None
    records.write_record(web.ctx, bob.citizen_id, "identity.name",
                         {"given": "Bob", "family": "Carter"})
    return bob


def _invite(alice: Browser, **fields: str | list[str]) -> str:
    data = {"kind": "attorney", "actions": ["view", "approve"], "until": _next_year(),
            **fields}
    r = alice.form("/wallet/people/invite", data)  # type: ignore[arg-type]
    assert r.status_code == 200, r.text
    found = _CODE.search(r.text)
    assert found is not None, r.text
    assert f"/wallet/people/join?code={found.group(1)}" in r.text
    assert "<svg" in r.text and "QR code of the invitation link" in r.text
    if "until" in fields or "hours" not in fields:  # the chosen day, to its end in London
        day = datetime.fromisoformat(str(data["until"]))
        assert re.search(rf"{day.day} {day:%B} {day.year}, 23:59 (GMT|BST)", r.text)
    return found.group(1)


def _ledger_kinds(web: WebWallet) -> list[dict]:
    with unit_of_work(web.ctx) as work:
        size = work.ledger.size()
        return [orjson.loads(b) for b in work.ledger.entries(0, size)]


def _live_pair(web: WebWallet) -> tuple[Browser, Browser, str]:
    alice, bob = web.sign_up(), _bob(web)
    code = _invite(alice)
    page = bob.get(f"/wallet/people/join?code={code}")
    assert page.status_code == 200
    assert "Ada Lovelace asks you to act for them" in page.text
    assert "say yes or no to services&#39; requests" in page.text
    r = bob.passkey_post("/wallet/people/join", {"code": code})
    assert r.status_code == 200, r.text
    assert r.json() == {"redirect": "/wallet/people?done=accepted"}
    mine = alice.get("/wallet/people").text
    assert "Bob Carter accepted: confirm" in mine
    found = _SIGN.search(mine)
    assert found is not None
    rid = found.group(1)
    r = alice.passkey_post(f"/wallet/people/{rid}/sign")
    assert r.status_code == 200, r.text
    assert r.json() == {"redirect": "/wallet/people?done=live"}
    return alice, bob, rid


def test_invite_accept_confirm_makes_it_live(web: WebWallet) -> None:
    alice, bob, rid = _live_pair(web)
    assert [e["kind"] for e in _ledger_kinds(web)].count("delegation.granted") == 1
    with Session(web.ctx.engine) as s:
        row = s.get(RelationshipRow, rid)
        assert row is not None and (row.state, row.origin) == ("live", "invited")
        assert delegations.authorize(s, actor_id=bob.citizen_id, subject_id=alice.citizen_id,
                                     action=DelegatedAction.APPROVE,
                                     now=web.ctx.clock()) is not None
    theirs = bob.get("/wallet/people").text
    _, _, rest = theirs.partition("Whom you can act for")
    assert "Ada Lovelace" in rest and "Active" in rest
    mine = alice.get("/wallet/people").text
    assert "Bob Carter" in mine.partition("Who can act for you")[2]
    assert 'aria-current="page">People' in mine


def test_either_person_ends_it_at_once(web: WebWallet) -> None:
    alice, bob, rid = _live_pair(web)
    page = bob.get(f"/wallet/people/{rid}/end")
    assert page.status_code == 200 and "Stop acting for Ada Lovelace?" in page.text
    r = bob.form(f"/wallet/people/{rid}/end")
    assert r.status_code == 303 and r.headers["location"] == "/wallet/people?done=ended"
    with Session(web.ctx.engine) as s, pytest.raises(RelationshipRefused):
        delegations.authorize(s, actor_id=bob.citizen_id, subject_id=alice.citizen_id,
                              action=DelegatedAction.VIEW, now=web.ctx.clock())
    [revoked] = [e for e in _ledger_kinds(web) if e["kind"] == "delegation.revoked"]
    assert revoked["public"] == {"by": "delegate"}
    assert "Ended" in alice.get("/wallet/people").text
    ended = bob.form(f"/wallet/people/{rid}/end")  # ended already
    assert ended.status_code == 403 and "This relationship has ended" in ended.text


def test_the_principal_ends_it_too(web: WebWallet) -> None:
    alice, _, rid = _live_pair(web)
    assert "Stop Bob Carter acting for you?" in alice.get(f"/wallet/people/{rid}/end").text
    assert alice.form(f"/wallet/people/{rid}/end").status_code == 303
    with Session(web.ctx.engine) as s:
        row = s.get(RelationshipRow, rid)
        assert row is not None and (row.state, row.ended_by) == ("ended", "principal")


def test_refusals_say_why_and_write_nothing(web: WebWallet) -> None:
    alice, bob, carol = web.sign_up(), _bob(web), web.sign_up()
    code = _invite(alice)
    own = alice.get(f"/wallet/people/join?code={code}")
    assert own.status_code == 409 and "your own invitation" in own.text
    options = alice.json("/wallet/people/join/options", {"code": code})
    assert options.status_code == 403 and options.json()["reason"] == "self"
    assert bob.passkey_post("/wallet/people/join", {"code": code}).status_code == 200
    used = carol.get(f"/wallet/people/join?code={code}")
    assert used.status_code == 409 and "already been used" in used.text
    refused = carol.json("/wallet/people/join/options", {"code": code})
    assert refused.json()["reason"] == "invitation_used"
    unknown = carol.get("/wallet/people/join?code=ABCD-EFGH-JKMN")
    assert unknown.status_code == 404 and "no invitation has that code" in unknown.text.lower()
    with Session(web.ctx.engine) as s:
        assert len(s.exec(select(RelationshipRow)).all()) == 1


def test_a_helper_over_a_day_is_refused_on_the_form(web: WebWallet) -> None:
    alice = web.sign_up()
    r = alice.form("/wallet/people/invite", {"kind": "helper", "hours": "30"})
    assert r.status_code == 400 and "1 to 24 hours" in r.text
    r = alice.form("/wallet/people/invite", {"kind": "cousin", "until": _next_year()})
    assert r.status_code == 400 and "choose what they will be for you" in r.text
    r = alice.form("/wallet/people/invite", {"kind": "parent", "until": "yesterday"})
    assert r.status_code == 400 and "as a date" in r.text
    with Session(web.ctx.engine) as s:
        assert s.exec(select(RelationshipInviteRow)).first() is None
    helper = alice.form("/wallet/people/invite", {"kind": "helper", "hours": "3"})
    assert helper.status_code == 200 and _CODE.search(helper.text)


def test_an_unused_invitation_is_listed_and_can_be_cancelled(web: WebWallet) -> None:
    alice, bob = web.sign_up(), _bob(web)
    code = _invite(alice)
    page = alice.get("/wallet/people").text
    assert "Invitations not used yet" in page
    found = re.search(r'/wallet/people/invitations/([0-9a-f]{64})/cancel', page)
    assert found is not None
    assert bob.form(f"/wallet/people/invitations/{found.group(1)}/cancel").status_code \
        == 404  # only its maker cancels it
    r = alice.form(f"/wallet/people/invitations/{found.group(1)}/cancel")
    assert r.status_code == 303
    assert "Invitations not used yet" not in alice.get("/wallet/people").text
    assert bob.get(f"/wallet/people/join?code={code}").status_code == 404


def test_nobody_else_signs_or_ends_a_relationship(web: WebWallet) -> None:
    alice, bob = web.sign_up(), _bob(web)
    code = _invite(alice)
    bob.passkey_post("/wallet/people/join", {"code": code})
    with Session(web.ctx.engine) as s:
        rid = s.exec(select(RelationshipRow)).one().id
    carol = web.sign_up()
    assert carol.json(f"/wallet/people/{rid}/sign/options", {}).status_code == 404
    assert carol.form(f"/wallet/people/{rid}/end").status_code == 404
    # Bob signed already: signing again is refused, not a second signature.
    again = bob.json(f"/wallet/people/{rid}/sign/options", {})
    assert again.status_code == 403 and again.json()["reason"] == "already"


def test_joining_needs_sign_in_and_comes_back(web: WebWallet) -> None:
    stranger = web.browser()
    r = stranger.get("/wallet/people/join?code=ABCD-EFGH-JKMN", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/wallet/signin?next=/wallet/people/join")


def test_nobody_invites_or_accepts_while_acting_for_someone(web: WebWallet) -> None:
    """A delegate may not pass on what they were trusted with (issue 14 §6)."""
    alice, bob, _ = _live_pair(web)
    carol = web.sign_up()
    code = _invite(carol)
    switched = bob.form("/wallet/acting", {"for": alice.citizen_id or "", "next": "/wallet"})
    assert switched.status_code == 303
    refused = bob.form("/wallet/people/invite", {"kind": "helper", "hours": "2"})
    assert refused.status_code == 400
    assert "cannot pass that on to anyone else" in refused.text
    accepting = bob.json("/wallet/people/join/options", {"code": code})
    assert accepting.status_code == 403 and accepting.json()["reason"] == "further"
    with Session(web.ctx.engine) as s:
        assert len(s.exec(select(RelationshipInviteRow)).all()) == 2  # alice's and carol's
        assert len(s.exec(select(RelationshipRow)).all()) == 1
