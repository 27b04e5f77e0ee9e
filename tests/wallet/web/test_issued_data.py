"""Issued data in the wallet (ARCHITECTURE §8, issue 12 §2): a value a service issued is
shown read-only with its issuer, never changed or deleted from the wallet; the citizen may
add a value of their own over it; "Tell them this is wrong" writes exactly one ledger
entry and one webhook to the issuer, once, and nothing when it is refused."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlmodel import Session, col, select
from support.ledgerview import full_entries
from support.webwallet import ORIGIN, Browser, WebWallet, open_wallet

from clients.auditor.story import StoryChecker
from clients.service import RecordDisputed, verify_webhook
from vault.crypto.webhook_signing import signature_headers, webhook_secret
from vault.domain.grants import Access
from vault.services import access, citizens, disputes, grants, records, registry
from vault.storage.database import read_only
from vault.storage.tables import (
    OAuthSubjectRow,
    RecordDisputeRow,
    RecordRow,
    WebhookMessageRow,
)

AA = "benefits.attendance_allowance"
AWARD = {"award": "lower", "since": "2024-02-01", "awarded_by": "DWP"}
PAGE = f"/wallet/data/{AA}"
RECEIVES = "receives:attendance_allowance"
JWK = {"kty": "EC", "crv": "P-256",
       "x": "axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY",
       "y": "T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU"}


def agency(web: WebWallet, *, name: str = "Benefits Agency") -> str:
    """An issuer of Attendance Allowance, with a webhook URL and a contact."""
    return registry.register_service(web.ctx, registry.Registration(
        name=name, description="Awards benefits", purposes=["service_provision"],
        categories=[], issues=[AA], jwk=JWK, redirect_uris=["https://agency.example/cb"],
        # Nothing listens there: the app's own dispatcher fails at once, harmlessly.
        webhook_url="http://127.0.0.1:9/hooks", contact="help@agency.example",
        privacy_notice_url="https://agency.example/privacy"))


def issued(web: WebWallet, b: Browser, source: str, value: Any = None) -> records.RecordView:
    assert b.citizen_id is not None
    return records.write_record(web.ctx, b.citizen_id, AA, value or AWARD, source=source)


def text_of(page: httpx.Response) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page.text)))


def entries(web: WebWallet) -> list[dict[str, Any]]:
    with read_only(web.ctx.engine).begin() as conn:
        return full_entries(conn)


def messages(web: WebWallet) -> list[WebhookMessageRow]:
    with Session(web.ctx.engine) as s:
        return list(s.exec(select(WebhookMessageRow).order_by(
            col(WebhookMessageRow.created_at))).all())


def dispute_rows(web: WebWallet) -> list[RecordDisputeRow]:
    with Session(web.ctx.engine) as s:
        return list(s.exec(select(RecordDisputeRow)).all())


def nothing_changed(web: WebWallet, before: tuple[int, int, int]) -> bool:
    return (len(entries(web)), len(messages(web)), len(dispute_rows(web))) == before


def counts(web: WebWallet) -> tuple[int, int, int]:
    return len(entries(web)), len(messages(web)), len(dispute_rows(web))


# --- read-only, with its issuer ------------------------------------------------------------


def test_an_issued_record_is_shown_read_only_with_its_issuer(web: WebWallet) -> None:
    b = web.sign_up()
    issued(web, b, agency(web))
    overview = b.get("/wallet/data")
    words = text_of(overview)
    assert "Issued by Benefits Agency on" in words
    assert "Only Benefits Agency can change this. If it is wrong, you can tell them." in words
    assert f'href="{PAGE}">See details<span class="visually-hidden"> of your Attendance' \
        in overview.text
    assert f'href="{PAGE}">Change' not in overview.text       # no change link for it

    page = b.get(PAGE)
    assert page.status_code == 200
    words = text_of(page)
    assert '<h2 id="issued-head">Issued by Benefits Agency</h2>' in page.text
    assert "you cannot change or delete it here" in words
    assert re.search(rf'<a class="button secondary" href="{PAGE}/wrong">Tell them this is '
                     r"wrong</a>", page.text)
    # The form on the page is for a value of the citizen's own, drawn empty over version 1.
    assert "Add your own value instead" in words
    assert '<input type="hidden" name="own" value="1">' in page.text
    assert "Save my own value" in words
    assert 'value="lower" selected' not in page.text
    # Nothing to delete: only the issuer can withdraw it.
    assert f'href="{PAGE}/delete"' not in page.text
    assert "Only Benefits Agency can withdraw what they issued." in words


# --- edits and deletes of an issued value are refused, and change nothing ----------------


@pytest.mark.parametrize("own", [None, "0", "2", "x"])
def test_a_form_not_drawn_over_the_issued_value_saves_nothing(web: WebWallet,
                                                              own: str | None) -> None:
    b = web.sign_up()
    issued(web, b, agency(web))
    before = counts(web)
    fields = {"f.award": "higher", "f.since": "2024-03-01", "f.awarded_by": "Me"}
    r = b.form(PAGE, fields if own is None else {**fields, "own": own})
    assert r.status_code == 409
    assert ("Benefits Agency issued this after you opened the page, so nothing was saved."
            in text_of(r))
    assert 'role="alert"' in r.text
    assert [(v.version, v.source != "citizen") for v in records.record_history(
        web.ctx, b.citizen_id or "", AA)] == [(1, True)]
    assert nothing_changed(web, before)


def test_a_page_of_an_issued_list_is_never_merged(web: WebWallet) -> None:
    b = web.sign_up()
    assert b.citizen_id is not None
    gp = agency(web, name="Riverside Health Centre")
    records.write_record(web.ctx, b.citizen_id, "health.prescriptions", [
        {"medicine": "Aspirin", "dose": "75 mg", "since": "2024-05-17"}], source=gp)
    before = counts(web)
    r = b.form("/wallet/data/health.prescriptions", {
        "page.start": "0", "page.count": "1", "page.version": "1", "own": "1",
        "f.0.medicine": "Nothing", "f.0.dose": "1 mg", "f.0.since": "2024-05-17"})
    assert r.status_code == 409
    assert nothing_changed(web, before)


def test_deleting_an_issued_value_is_refused_with_the_reason(web: WebWallet) -> None:
    b = web.sign_up()
    issued(web, b, agency(web))
    before = counts(web)
    for r in (b.get(f"{PAGE}/delete"), b.form(f"{PAGE}/delete")):
        assert r.status_code == 409
        assert "Benefits Agency issued your Attendance Allowance" in text_of(r)
        assert "only they can change or withdraw it" in text_of(r)
    # A script or API client gets the same as problem details.
    r = b.client.post(f"{PAGE}/delete", data={"csrf": b.csrf()},
                      headers={"accept": "application/json"})
    assert r.status_code == 409
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"] == "urn:citizen-vault:problem:record-conflict"
    assert nothing_changed(web, before)
    assert len(records.record_history(web.ctx, b.citizen_id or "", AA)) == 1


def test_the_citizens_own_value_over_an_issued_one(web: WebWallet) -> None:
    b = web.sign_up()
    assert b.citizen_id is not None
    issued(web, b, agency(web))
    r = b.form(PAGE, {"f.award": "higher", "f.since": "2024-03-01", "f.awarded_by": "DWP",
                      "own": "1"})
    assert (r.status_code, r.headers["location"]) == (303, "/wallet/data?done=saved")
    # It is the newest version, so it is what services read, marked as the citizen's.
    now = records.read_records(web.ctx, b.citizen_id)[AA]
    assert (now.version, now.source, now.value["award"]) == (2, "citizen", "higher")
    words = text_of(b.get("/wallet/data"))
    assert "You added this on" in words
    assert "This is your own value: Benefits Agency issued an earlier one." in words
    page = b.get(PAGE)
    assert 'name="own"' not in page.text                     # an ordinary form again
    assert 'value="higher" selected' in page.text
    # The issued version can still be disputed, from its place in the history.
    assert f'<a href="{PAGE}/wrong">Tell Benefits Agency this is wrong</a>' in page.text
    assert "Delete the values you added" in text_of(page)
    delete_page = b.get(f"{PAGE}/delete")
    assert "This deletes the 1 version of your Attendance Allowance that you added" \
        in text_of(delete_page)
    # Deleting removes only the citizen's own versions: the issued one is current again.
    r = b.form(f"{PAGE}/delete")
    assert (r.status_code, r.headers["location"]) == (303, "/wallet/data?done=deleted")
    assert [(v.version, v.source != "citizen") for v in records.record_history(
        web.ctx, b.citizen_id, AA)] == [(1, True)]
    assert entries(web)[-1]["body"]["versions"] == 1


def test_what_a_reader_gets_while_the_citizens_own_value_is_newest(web: WebWallet) -> None:
    """The choice the page explains: the citizen's value is what services read, marked
    as theirs, and an answer resting on issued facts says unknown until theirs is gone."""
    b = web.sign_up()
    assert b.citizen_id is not None
    issued(web, b, agency(web))
    reader = registry.register_service(web.ctx, registry.Registration(
        name="Council Tax team", description="Gives discounts", jwk=JWK,
        purposes=["eligibility_assessment"], categories=[AA], derived=[RECEIVES],
        redirect_uris=["https://tax.example/cb"],
        privacy_notice_url="https://tax.example/privacy"))
    grant = grants.request_grant(
        web.ctx, service_id=reader, citizen_id=b.citizen_id, purpose="eligibility_assessment",
        categories=[AA], derived=[RECEIVES], access=Access("periodic", max_reads=10),
        data_life="P30D", justification="To give you the discount.",
        duration=timedelta(days=30))
    assert b.passkey_post(f"/wallet/grants/{grant.id}/approve").status_code == 200

    def read() -> tuple[str, str, Any]:
        got = access.read_under_grant(web.ctx, service_id=reader, grant_id=grant.id)
        return got.data[AA]["award"], got.provenance[AA]["source"], got.derived[RECEIVES]

    assert read() == ("lower", "issuer", True)
    words = text_of(b.get(PAGE))
    assert "while yours is the newest, they will say “unknown”" in words
    b.form(PAGE, {"f.award": "higher", "f.since": "2024-03-01", "f.awarded_by": "DWP",
                  "own": "1"})
    assert read() == ("higher", "citizen", None)
    b.form(f"{PAGE}/delete")                     # the issued record is current again
    assert read() == ("lower", "issuer", True)


# --- Tell them this is wrong ---------------------------------------------------------------


@pytest.fixture
def any_web(tmp_path: Path, database_url: str) -> Iterator[WebWallet]:
    """The wallet on SQLite, then on PostgreSQL (row locks and keys of its own)."""
    with open_wallet(tmp_path, database_url) as web:
        yield web


def test_tell_them_this_is_wrong_writes_one_entry_and_one_webhook_once(any_web: WebWallet
                                                                        ) -> None:
    web = any_web
    b = web.sign_up()
    assert b.citizen_id is not None
    issuer = agency(web)
    issued(web, b, issuer)
    confirm = b.get(f"{PAGE}/wrong")
    assert confirm.status_code == 200
    words = text_of(confirm)
    assert "Tell Benefits Agency your Attendance Allowance is wrong" in words
    assert "nothing else from your vault" in words
    assert '<a href="mailto:help@agency.example">help@agency.example</a>' in confirm.text
    assert '<input type="hidden" name="version" value="1">' in confirm.text
    for code in ("not_me", "details_wrong", "out_of_date", "other"):
        assert f'name="reason" value="{code}"' in confirm.text
    assert "<textarea" not in confirm.text                    # no free text, on purpose
    before_entries, before_messages = len(entries(web)), len(messages(web))

    r = b.form(f"{PAGE}/wrong", {"version": "1", "reason": "details_wrong"})
    assert (r.status_code, r.headers["location"]) == (303, f"{PAGE}?done=told")
    new = entries(web)[before_entries:]
    assert [e["kind"] for e in new] == ["record.disputed"]
    subject = citizens_subject(web, b.citizen_id)
    assert new[0]["body"] == {"subject": subject, "category": AA, "issuer": issuer,
                              "version": 1}
    sent = messages(web)[before_messages:]
    assert [(m.service_id, m.event) for m in sent] == [(issuer, "record.disputed")]
    body = orjson.loads(sent[0].body)
    assert body["type"] == "record.disputed"
    # What the issuer already knows, and the reason code: no value, no ledger pseudonym.
    assert body["data"] == {"category": AA, "version": 1, "reason": "details_wrong",
                            "ledger_index": new[0]["seq"]}
    assert subject not in sent[0].body and "lower" not in sent[0].body

    page = b.get(f"{PAGE}?done=told")
    words = text_of(page)
    assert "We told Benefits Agency that you think this is wrong." in words
    assert re.search(r"You told Benefits Agency this was wrong on \d+ \w+ \d{4}", words)
    assert f'href="{PAGE}/wrong"' not in page.text             # told: no second button

    # Again (another tab, a double click): the first dispute is found, nothing is added.
    again = b.form(f"{PAGE}/wrong", {"version": "1", "reason": "other"})
    assert (again.status_code, again.headers["location"]) == (
        303, f"{PAGE}?done=told_before")
    assert len(entries(web)) == before_entries + 1
    assert len(messages(web)) == before_messages + 1
    assert [r.reason for r in dispute_rows(web)] == ["details_wrong"]
    assert "You had told Benefits Agency already" in text_of(
        b.get(f"{PAGE}?done=told_before"))


def citizens_subject(web: WebWallet, citizen_id: str) -> str:
    with Session(web.ctx.engine) as s:
        return citizens.get_citizen(s, citizen_id).subject


def test_disputes_at_the_same_moment_tell_the_issuer_once(any_web: WebWallet) -> None:
    """Two tabs, a double click: the record's rows are locked, so the others find the
    first dispute (on PostgreSQL as on SQLite) and nothing is told twice."""
    web = any_web
    b = web.sign_up()
    assert b.citizen_id is not None
    issued(web, b, agency(web))
    before = counts(web)
    citizen = b.citizen_id
    with ThreadPoolExecutor(max_workers=4) as pool:
        told = list(pool.map(lambda _: disputes.dispute_record(
            web.ctx, citizen, AA, version=1, reason="not_me").new, range(4)))
    assert sorted(told) == [False, False, False, True]
    assert counts(web) == (before[0] + 1, before[1] + 1, before[2] + 1)


def test_no_reason_given_is_a_reason_too(web: WebWallet) -> None:
    b = web.sign_up()
    issued(web, b, agency(web))
    r = b.form(f"{PAGE}/wrong", {"version": "1"})
    assert r.status_code == 303
    assert orjson.loads(messages(web)[-1].body)["data"]["reason"] == "not_given"


def test_the_issuer_is_told_who_as_it_knows_them(web: WebWallet) -> None:
    """Its own pairwise `sub` and its write grant: identifiers it holds already."""
    b = web.sign_up()
    assert b.citizen_id is not None
    issuer = agency(web)
    grant = grants.request_grant(
        web.ctx, service_id=issuer, citizen_id=b.citizen_id, purpose="service_provision",
        categories=[AA], access=Access("periodic", max_reads=100), data_life="P30D",
        justification="To add your award to your vault.", duration=timedelta(days=30),
        actions=["write"])
    with Session(web.ctx.engine) as s, s.begin():
        s.add(OAuthSubjectRow(service_id=issuer, sub="ps_agency_knows_me",
                              citizen_id=b.citizen_id))
    issued(web, b, issuer)
    assert b.form(f"{PAGE}/wrong", {"version": "1", "reason": "not_me"}).status_code == 303
    data = orjson.loads(messages(web)[-1].body)["data"]
    assert (data["sub"], data["grant_id"]) == ("ps_agency_knows_me", grant.id)


def test_the_issuer_reads_the_webhook_with_the_sdk(web: WebWallet) -> None:
    """The message as queued, signed as the dispatcher signs it, read by the SDK."""
    b = web.sign_up()
    issuer = agency(web)
    issued(web, b, issuer)
    b.form(f"{PAGE}/wrong", {"version": "1", "reason": "out_of_date"})
    (message,) = messages(web)
    key = webhook_secret(web.app.state.vault.app_secret, issuer)
    stamp = int(time.time())
    headers = signature_headers(key, message_id=message.id, timestamp=stamp,
                                body=message.body.encode())
    event = verify_webhook(key, headers, message.body.encode())
    assert (event.id, event.type) == (message.id, "record.disputed")
    assert isinstance(event, RecordDisputed)
    assert (event.category, event.version, event.reason, event.sub, event.grant_id,
            event.ledger_index) == (AA, 1, "out_of_date", None, None, entries(web)[-1]["seq"])


# --- refusals: a clear 4xx, and nothing written ---------------------------------------------


def test_refusals_write_nothing(any_web: WebWallet) -> None:
    web = any_web
    b = web.sign_up()
    assert b.citizen_id is not None
    issuer = agency(web)
    issued(web, b, issuer)
    issued(web, b, issuer, {**AWARD, "award": "higher"})        # version 2 replaces 1
    records.write_record(web.ctx, b.citizen_id, "identity.name",
                         {"given": "Ada", "family": "King"})
    records.write_record(web.ctx, b.citizen_id, "education.school",
                         {"name": "Riverside Primary", "urn": "100000"}, source="svc_gone")
    before = counts(web)
    cases = [
        (PAGE, {"version": "2", "reason": "because I say so"}, 400, "the reason must be"),
        (PAGE, {"version": "two"}, 400, "did not say which version"),
        (PAGE, {}, 400, "did not say which version"),
        (PAGE, {"version": "1"}, 409, "has changed this since you opened the page"),
        (PAGE, {"version": "7"}, 404, "you have no version 7"),
        ("/wallet/data/identity.name", {"version": "2"}, 409, "you added this value yourself"),
        ("/wallet/data/education.school", {"version": "1"}, 409, "nobody to tell"),
        ("/wallet/data/no.such", {"version": "1"}, 404, "no such kind of information"),
    ]
    for page, fields, status, words in cases:
        r = b.form(f"{page}/wrong", fields)
        assert r.status_code == status, (page, fields, r.text)
        assert words.lower() in text_of(r).lower(), (page, fields)
    r = b.form(f"{PAGE}/wrong", {"version": "2"}, csrf="0" * 64)
    assert r.status_code == 403
    # Nothing to tell anyone about: the confirm page is not found, or has no form.
    assert b.get("/wallet/data/identity.name/wrong").status_code == 404
    assert b.get("/wallet/data/education.school/wrong").status_code == 404
    assert nothing_changed(web, before)


def test_another_citizen_cannot_dispute(web: WebWallet) -> None:
    owner, other = web.sign_up(), web.sign_up("Other phone")
    issued(web, owner, agency(web))
    before = counts(web)
    assert other.get(f"{PAGE}/wrong").status_code == 404
    r = other.form(f"{PAGE}/wrong", {"version": "1", "reason": "not_me"})
    assert r.status_code == 404
    assert nothing_changed(web, before)
    assert disputes.disputes_of(web.ctx, owner.citizen_id or "", AA) == {}
    # Signed out: sent to sign in, nothing written.
    stranger = web.browser()
    assert stranger.get(f"{PAGE}/wrong", follow_redirects=False).status_code == 303
    assert stranger.form(f"{PAGE}/wrong", {"version": "1"}).status_code == 401
    assert nothing_changed(web, before)


def test_disputes_go_with_the_citizen_on_erasure(web: WebWallet) -> None:
    b = web.sign_up()
    assert b.citizen_id is not None
    issued(web, b, agency(web))
    b.form(f"{PAGE}/wrong", {"version": "1", "reason": "not_me"})
    assert len(dispute_rows(web)) == 1
    citizens.erase_citizen(web.ctx, b.citizen_id)
    assert dispute_rows(web) == []


def test_a_withdrawn_record_says_so_and_stays_in_the_history(web: WebWallet) -> None:
    b = web.sign_up()
    assert b.citizen_id is not None
    issued(web, b, agency(web))
    with Session(web.ctx.engine) as s, s.begin():  # as DELETE /v1/records/{category} does
        row = s.exec(select(RecordRow).where(col(RecordRow.category) == AA)).one()
        row.withdrawn_at = web.ctx.clock()
        s.add(row)
    words = text_of(b.get("/wallet/data"))
    assert "Benefits Agency withdrew what they issued, so services no longer get it." in words
    page = b.get(PAGE)
    assert re.search(r"Benefits Agency withdrew this on \d+ \w+ \d{4}", text_of(page))
    assert '<input type="hidden" name="own" value="1">' in page.text  # still theirs
    assert b.form(PAGE, {"f.award": "higher", "f.since": "2024-03-01",
                         "f.awarded_by": "DWP"}).status_code == 409


def test_the_auditor_agrees_with_what_the_wallet_wrote(web: WebWallet) -> None:
    """Own values over an issued one, deleted; disputes, one again: every story holds."""
    b = web.sign_up()
    assert b.citizen_id is not None
    issuer = agency(web)
    issued(web, b, issuer)
    b.form(PAGE, {"f.award": "higher", "f.since": "2024-03-01", "f.awarded_by": "DWP",
                  "own": "1"})
    b.form(f"{PAGE}/wrong", {"version": "1", "reason": "not_me"})
    b.form(f"{PAGE}/delete")
    b.form(f"{PAGE}/wrong", {"version": "1", "reason": "not_me"})   # told already
    issued(web, b, issuer, {**AWARD, "award": "higher"})               # corrected: v2
    b.form(f"{PAGE}/wrong", {"version": "2", "reason": "other"})
    checker = StoryChecker(rp_id="localhost", origins=[ORIGIN])
    kinds = []
    for i, entry in enumerate(entries(web)):
        checker.feed(i, entry)
        kinds.append(entry["kind"])
    checker.finish()
    assert kinds.count("record.disputed") == 2
    assert [(f.index, f.rule, f.detail) for f in checker.failures] == []
