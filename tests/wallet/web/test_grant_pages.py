"""Requests and grants over HTTP: the consent screen shows the terms that are hashed, in
plain words; approving signs the terms hash with a passkey (checkable from the ledger
alone); declining needs only the session; pause, resume and revoke are signed with an
action challenge that cannot be replayed; the activity page lists every read."""

from __future__ import annotations

import base64
import dataclasses
import re
from datetime import datetime, timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import orjson
import pytest
from sqlmodel import Session, col, select
from support.ledgerview import opened_entries
from support.vaultworld import JWK, World, ask
from support.webwallet import ORIGIN, Browser, WebWallet

from ledger.entry import Entry, utc_now
from vault.domain.categories import categories as category_catalog
from vault.domain.derived import resolve_derived
from vault.domain.errors import AccessDenied
from vault.domain.grants import Access, GrantState, GrantTerms, plain_terms
from vault.domain.purposes import purposes as purpose_catalog
from vault.services import registry
from vault.services.access import read_under_grant
from vault.services.approvals import ApprovalProof, action_challenge
from vault.services.grants import GrantView, get_grant
from vault.storage.tables import AccessRow, GrantRow, PasskeyRow, ServiceRow
from wallet.passkeys import AssertionRejected, verify_approval_offline
from wallet.passkeys.software import unb64url
from wallet.views import when

NAME = "Roads team"
DESCRIPTION = "Looks after the roads and parking"
PRIVACY = "https://roads.example.gov/privacy"
DPIA = "https://roads.example.gov/dpia"


# -- a little DOM, to read pages by their structure ------------------------------------

_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
         "source", "track", "wbr"}


@dataclasses.dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = dataclasses.field(default_factory=list)

    @property
    def text(self) -> str:
        parts: list[str] = []

        def walk(node: Node) -> None:
            for child in node.children:
                if isinstance(child, str):
                    parts.append(child)
                else:
                    walk(child)
        walk(self)
        return " ".join(" ".join(parts).split())

    def all(self, tag: str, **want: str) -> list[Node]:
        found = []
        for child in self.children:
            if isinstance(child, Node):
                if child.tag == tag and all(
                    child.attrs.get(k.replace("_", "-").rstrip("-")) == v
                    for k, v in want.items()
                ):
                    found.append(child)
                found += child.all(tag, **want)
        return found

    def one(self, tag: str, **want: str) -> Node:
        found = self.all(tag, **want)
        assert len(found) == 1, (tag, want, len(found))
        return found[0]


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def dom(r: httpx.Response) -> Node:
    assert r.status_code == 200, (r.status_code, r.text[:500])
    builder = _Builder()
    builder.feed(r.text)
    return builder.root


def terms_list(page: Node) -> dict[str, str]:
    """The consent terms (dl.terms) as {label: text}."""
    dl = page.one("dl", class_="terms")
    labels = [n for n in dl.children if isinstance(n, Node) and n.tag in ("dt", "dd")]
    pairs = list(zip(labels[::2], labels[1::2], strict=True))
    assert all(dt.tag == "dt" and dd.tag == "dd" for dt, dd in pairs)
    return {dt.text: dd.text for dt, dd in pairs}


def buttons(page: Node) -> dict[str, Node]:
    """Each button's accessible name -> the form it submits."""
    found = {}
    for form in page.all("form"):
        for button in form.all("button"):
            assert button.text not in found, button.text
            found[button.text] = form
    return found


def table_rows(page: Node) -> list[list[Any]]:
    """The access tables' rows; "what they saw" as a sorted list of its items."""
    rows: list[list[Any]] = []
    for body in page.all("tbody"):
        for tr in body.all("tr"):
            at, who, what, why = (td.text for td in tr.all("td"))
            rows.append([at, who, sorted(re.split(r"[;,] ", what)), why])
    return rows


# -- helpers ---------------------------------------------------------------------------


def entries(web: WebWallet, kind: str) -> list[Entry]:
    with web.ctx.engine.connect() as conn:
        found = opened_entries(conn)
    return [e for e in found if e.kind == kind]


def roads(web: WebWallet) -> str:
    return registry.register_service(web.ctx, registry.Registration(
        name=NAME, description=DESCRIPTION, purposes=["eligibility_assessment"],
        categories=["identity.name", "address.home"], derived=["age_over_65"], jwk=JWK,
        redirect_uris=["https://roads.example.gov/cb"], privacy_notice_url=PRIVACY,
        dpia_url=DPIA, max_days=90))


def request(web: WebWallet, b: Browser, service_id: str, **terms: Any) -> GrantView:
    assert b.citizen_id is not None
    args: dict[str, Any] = {
        "categories": ["identity.name", "address.home"], "derived": ["age_over_65"],
        "access": Access("periodic", max_reads=3, min_interval="P1D"),
        "justification": "To check you can have a parking permit."}
    args.update(terms)
    grant: GrantView = ask(web.ctx, World(service_id, b.citizen_id, ""), **args)
    return grant


def grant_row(web: WebWallet, grant_id: str) -> GrantRow:
    with Session(web.ctx.engine, expire_on_commit=False) as session:
        row = session.get(GrantRow, grant_id)
        assert row is not None
        return row


def credential(b: Browser) -> str:
    ids: list[str] = list(b.device.credentials)
    [credential_id] = ids
    return credential_id


def sign_count(web: WebWallet, credential_id: str) -> int:
    with Session(web.ctx.engine) as session:
        row = session.get(PasskeyRow, credential_id)
        assert row is not None
        return row.sign_count


def registered_key(web: WebWallet, credential_id: str) -> bytes:
    """The COSE key of a passkey as its passkey.registered entry has it."""
    [entry] = [e for e in entries(web, "passkey.registered")
               if e.body["credential_id"] == credential_id]
    return unb64url(entry.body["public_key"])


def check_offline(web: WebWallet, assertion: dict[str, str], challenge: bytes) -> None:
    """What an auditor does: the assertion against the key on the ledger, nothing else."""
    proof = ApprovalProof(**assertion)
    verify_approval_offline(public_key_cose=registered_key(web, proof.credential_id),
                            challenge=challenge, proof=proof, rp_id="localhost",
                            origins=[ORIGIN])


def signed_options(b: Browser, grant_id: str, action: str) -> dict[str, Any]:
    r = b.json(f"/wallet/grants/{grant_id}/{action}/options", {})
    assert r.status_code == 200, r.text
    options: dict[str, Any] = r.json()["publicKey"]
    return options


def act(b: Browser, grant_id: str, action: str, past: str) -> None:
    r = b.passkey_post(f"/wallet/grants/{grant_id}/{action}")
    assert r.status_code == 200, r.text
    assert r.json() == {"redirect": f"/wallet/grants/{grant_id}?done={past}"}


def refused(r: httpx.Response, status: int, reason: str) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["reason"] == reason, body
    return str(body["detail"])


# -- the consent screen ----------------------------------------------------------------


def test_the_consent_screen_shows_the_hashed_terms_in_plain_words(web: WebWallet) -> None:
    ada = web.sign_up()
    grant = request(web, ada, roads(web))
    page = dom(ada.get(f"/wallet/grants/{grant.id}"))

    # What is shown comes from the stored terms, the very ones that are hashed.
    row = grant_row(web, grant.id)
    terms = GrantTerms.from_json(orjson.loads(row.terms))
    assert terms.terms_hash() == row.terms_hash
    plain = plain_terms(terms, service_name=NAME, at=when)  # on London's clock
    purpose = purpose_catalog()[terms.purpose]

    assert page.one("h1").text == f"{NAME} is asking to use some of your information"
    shown = terms_list(page)
    labels = [category_catalog()[c].label for c in terms.categories]
    assert sorted(labels) == ["Home address", "Name"]
    # Each with what it holds: "Name" alone says too little.
    seen = [f"{category_catalog()[c].label}: "
            f"{category_catalog()[c].description[0].lower()}"
            f"{category_catalog()[c].description[1:].rstrip('.')}" for c in terms.categories]
    assert "Name: your given name and family name" in seen
    assert shown == {
        "Who": f"{NAME}: {DESCRIPTION}",
        "Why": purpose.text,
        "What they want to see": " ".join(seen),
        "Yes or no answers only": plain.answers,
        "For how long": plain.when,
        "How often": plain.how_often,
        "Keeping your information": plain.keep,
        "What they told us": f"\u201c{terms.justification}\u201d",
        "The law they rely on": purpose.lawful_basis_text,
        "Read more": f"{NAME}\u2019s privacy notice , and their data protection impact "
                     "assessment",
    }
    assert [e.text for e in page.one("dl", class_="terms").all("li")] == seen
    assert resolve_derived("age_over_65").label in shown["Yes or no answers only"]
    # The words themselves say what the terms say, with times on London's clock.
    assert plain.when is not None and "(30 days)" in plain.when
    assert re.fullmatch(r"From .* (GMT|BST) until .* (GMT|BST) \(30 days\)\.", plain.when)
    assert "UTC" not in page.text
    assert plain.how_often == ("They can look up to 3 times, and no more often than once "
                               "every day.")
    assert plain.keep == "They may keep what they see for 30 days, then they must delete it."
    links = {a.attrs["href"]: a.text for a in page.one("dl", class_="terms").all("a")}
    assert links == {PRIVACY: f"{NAME}\u2019s privacy notice",
                     DPIA: "their data protection impact assessment"}
    assert plain.rights in page.text
    assert row.terms_hash.hex() in page.one("code").text  # the fingerprint


def test_the_consent_screen_has_approve_and_decline(web: WebWallet) -> None:
    ada = web.sign_up()
    grant = request(web, ada, roads(web))
    page = dom(ada.get(f"/wallet/grants/{grant.id}"))
    token = page.one("meta", name="csrf-token").attrs["content"]
    forms = buttons(page)
    assert set(forms) == {"Approve", "Decline", "Sign out"}
    approve, decline = forms["Approve"], forms["Decline"]
    assert approve.attrs == {
        "method": "post", "action": f"/wallet/grants/{grant.id}/approve",
        "data-passkey": "get", "data-options": f"/wallet/grants/{grant.id}/approve/options",
        "data-status": "approve-status"}
    assert decline.attrs == {"method": "post", "action": f"/wallet/grants/{grant.id}/decline"}
    for form in (approve, decline):
        assert form.one("input", name="csrf").attrs["value"] == token
    # Where the passkey script says what happened: above the buttons, not in a form (an
    # error in the Approve form broke the row of buttons).
    assert page.one("p", id="approve-status").attrs["role"] == "alert"
    assert not approve.all("p", role="alert")


def test_the_pages_of_an_approved_paused_and_ended_grant_offer_what_can_be_done(
    web: WebWallet,
) -> None:
    ada = web.sign_up()
    service_id = roads(web)
    active = request(web, ada, service_id)
    act(ada, active.id, "approve", "approved")
    forms = buttons(dom(ada.get(f"/wallet/grants/{active.id}")))
    assert set(forms) == {"Pause", "Revoke access", "Sign out"}
    assert forms["Revoke access"].attrs == {
        "method": "post", "action": f"/wallet/grants/{active.id}/revoke",
        "data-passkey": "get", "data-options": f"/wallet/grants/{active.id}/revoke/options"}
    act(ada, active.id, "pause", "paused")
    assert set(buttons(dom(ada.get(f"/wallet/grants/{active.id}")))) == {
        "Turn back on", "Revoke access", "Sign out"}
    ended = request(web, ada, service_id)
    assert ada.form(f"/wallet/grants/{ended.id}/decline").status_code == 303
    page = dom(ada.get(f"/wallet/grants/{ended.id}"))
    assert set(buttons(page)) == {"Sign out"}
    assert "You said no" in page.text


# -- approve and decline ---------------------------------------------------------------


def test_approving_signs_the_terms_hash_with_a_passkey(web: WebWallet) -> None:
    ada = web.sign_up()
    grant = request(web, ada, roads(web))
    other = request(web, ada, roads(web), justification="Something else.")
    options = signed_options(ada, grant.id, "approve")
    assert unb64url(options["challenge"]) == grant.terms_hash  # exactly these terms
    assert [c["id"] for c in options["allowCredentials"]] == [credential(ada)]
    assert options["userVerification"] == "required" and options["rpId"] == "localhost"

    act(ada, grant.id, "approve", "approved")
    assert get_grant(web.ctx, grant.id).state is GrantState.APPROVED
    assert sign_count(web, credential(ada)) == 1
    [entry] = entries(web, "grant.approved")
    body = entry.body
    assert body["grant_id"] == grant.id
    assert base64.b64decode(body["terms_hash"]) == grant.terms_hash
    assert body["assertion"]["credential_id"] == credential(ada)
    # The auditor's view: the terms in grant.requested hash to what the passkey signed.
    [asked] = [e for e in entries(web, "grant.requested") if e.body["grant_id"] == grant.id]
    assert GrantTerms.from_json(asked.body["terms"]).terms_hash() == grant.terms_hash
    check_offline(web, body["assertion"], grant.terms_hash)
    with pytest.raises(AssertionRejected) as exc:
        check_offline(web, body["assertion"], other.terms_hash)
    assert exc.value.reason == "challenge_mismatch"

    page = dom(ada.get(f"/wallet/grants/{grant.id}?done=approved"))
    assert "Done. You said yes." in page.one("div", class_="notice").text
    assert "Active" in page.text


def test_an_approval_of_other_terms_is_refused(web: WebWallet) -> None:
    ada = web.sign_up()
    grant = request(web, ada, roads(web))
    other = request(web, ada, roads(web), justification="Something else.")
    answer = ada.device.get(signed_options(ada, other.id, "approve"))
    r = ada.json(f"/wallet/grants/{grant.id}/approve", {"credential": answer})
    assert "another challenge" in refused(r, 400, "challenge_mismatch")
    answer = ada.device.get(signed_options(ada, grant.id, "approve"), uv=False)
    r = ada.json(f"/wallet/grants/{grant.id}/approve", {"credential": answer})
    refused(r, 400, "user_not_verified")
    assert get_grant(web.ctx, grant.id).state is GrantState.REQUESTED
    assert not entries(web, "grant.approved")


def test_declining_needs_only_the_session(web: WebWallet) -> None:
    ada = web.sign_up()
    grant = request(web, ada, roads(web))
    r = ada.form(f"/wallet/grants/{grant.id}/decline")
    assert r.status_code == 303 and r.headers["location"] == "/wallet/requests?done=declined"
    assert get_grant(web.ctx, grant.id).state is GrantState.DENIED
    [entry] = entries(web, "grant.denied")
    assert entry.body["grant_id"] == grant.id and "assertion" not in entry.body
    assert sign_count(web, credential(ada)) == 0  # no passkey was asked for
    page = dom(ada.get("/wallet/requests?done=declined"))
    assert "You said no" in page.one("div", class_="notice").text
    assert grant.id not in ada.get("/wallet/requests").text
    # Answered is answered.
    r = ada.form(f"/wallet/grants/{grant.id}/decline", headers={"accept": "application/json"})
    assert r.status_code == 409


# -- pause, resume, revoke -------------------------------------------------------------


def test_pause_resume_and_revoke_are_signed_with_their_action_challenge(
    web: WebWallet,
) -> None:
    ada = web.sign_up()
    service_id = roads(web)
    grant = request(web, ada, service_id, access=Access("periodic", max_reads=3))
    act(ada, grant.id, "approve", "approved")
    read_under_grant(web.ctx, service_id=service_id, grant_id=grant.id)
    steps = [("pause", "paused", GrantState.PAUSED), ("resume", "resumed", GrantState.APPROVED),
             ("revoke", "revoked", GrantState.REVOKED)]
    for action, past, state in steps:
        expected = action_challenge(grant_id=grant.id, action=action,
                                    terms_hash=grant.terms_hash,
                                    after=grant_row(web, grant.id).last_seq)
        options = signed_options(ada, grant.id, action)
        assert unb64url(options["challenge"]) == expected
        assert [c["id"] for c in options["allowCredentials"]] == [credential(ada)]
        act(ada, grant.id, action, past)
        assert get_grant(web.ctx, grant.id).state is state
        [entry] = entries(web, f"grant.{past}")
        assert entry.body["by"] == "citizen"
        assert base64.b64decode(entry.body["challenge"]) == expected
        check_offline(web, entry.body["assertion"], expected)
        page = dom(ada.get(f"/wallet/grants/{grant.id}?done={past}"))
        assert page.one("div", class_="notice").text
        if action == "pause":
            with pytest.raises(AccessDenied) as exc:
                read_under_grant(web.ctx, service_id=service_id, grant_id=grant.id)
            assert exc.value.reason == "paused"
        if action == "resume":
            read_under_grant(web.ctx, service_id=service_id, grant_id=grant.id)
    # Revoked: the very next read is refused.
    with pytest.raises(AccessDenied) as exc:
        read_under_grant(web.ctx, service_id=service_id, grant_id=grant.id)
    assert exc.value.reason == "revoked"
    assert "Stopped." in dom(ada.get(f"/wallet/grants/{grant.id}?done=revoked")).text


def test_a_signed_action_cannot_be_replayed_later(web: WebWallet) -> None:
    ada = web.sign_up()
    grant = request(web, ada, roads(web))
    act(ada, grant.id, "approve", "approved")
    # A revoke signed now but caught on its way (never arrives)...
    caught = ada.device.get(signed_options(ada, grant.id, "revoke"))
    pause = ada.device.get(signed_options(ada, grant.id, "pause"))
    r = ada.json(f"/wallet/grants/{grant.id}/pause", {"credential": pause})
    assert r.status_code == 200, r.text
    act(ada, grant.id, "resume", "resumed")
    # ...played later, after a pause and a resume, is refused: it signed another moment.
    r = ada.json(f"/wallet/grants/{grant.id}/revoke", {"credential": caught})
    assert "another challenge" in refused(r, 400, "challenge_mismatch")
    # So is the old pause, played again.
    r = ada.json(f"/wallet/grants/{grant.id}/pause", {"credential": pause})
    refused(r, 400, "challenge_mismatch")
    assert get_grant(web.ctx, grant.id).state is GrantState.APPROVED
    assert not entries(web, "grant.revoked")
    assert len(entries(web, "grant.paused")) == 1


def test_a_signature_for_one_action_does_not_serve_another(web: WebWallet) -> None:
    ada = web.sign_up()
    grant = request(web, ada, roads(web))
    act(ada, grant.id, "approve", "approved")
    pause = ada.device.get(signed_options(ada, grant.id, "pause"))
    r = ada.json(f"/wallet/grants/{grant.id}/revoke", {"credential": pause})
    refused(r, 400, "challenge_mismatch")
    assert get_grant(web.ctx, grant.id).state is GrantState.APPROVED


# -- activity --------------------------------------------------------------------------


def _reads(web: WebWallet, service_id: str, grant_id: str, n: int) -> list[datetime]:
    """`n` reads, a minute apart (a clock of their own), so each row can be told apart."""
    start = utc_now().replace(second=0, microsecond=0) + timedelta(minutes=1)
    times = [start + timedelta(minutes=i) for i in range(n)]
    for at in times:
        ctx = dataclasses.replace(web.ctx, clock=lambda at=at: at)
        read_under_grant(ctx, service_id=service_id, grant_id=grant_id)
    return times


def test_the_activity_page_shows_each_read(web: WebWallet) -> None:
    ada = web.sign_up()
    service_id = roads(web)
    grant = request(web, ada, service_id)
    act(ada, grant.id, "approve", "approved")
    page = dom(ada.get("/wallet/activity"))
    assert "Nobody has looked at your information yet." in page.text
    [at] = _reads(web, service_id, grant.id, 1)
    page = dom(ada.get("/wallet/activity"))
    what = sorted(["Name", "Home address", "Answer only: Whether you are 65 or over"])
    purpose = purpose_catalog()["eligibility_assessment"].text
    assert table_rows(page) == [[when(at), NAME, what, purpose]]
    assert page.one("tbody").one("a").attrs["href"] == f"/wallet/grants/{grant.id}"
    # The grant's own page lists it too.
    assert table_rows(dom(ada.get(f"/wallet/grants/{grant.id}"))) == [
        [when(at), NAME, what, purpose]]
    # And so does the dashboard, among the latest.
    assert [when(at), NAME, what, purpose] in table_rows(dom(ada.get("/wallet")))


def test_the_activity_page_goes_back_page_by_page(web: WebWallet) -> None:
    ada = web.sign_up()
    service_id = roads(web)
    grant = request(web, ada, service_id, access=Access("periodic", max_reads=100))
    act(ada, grant.id, "approve", "approved")
    times = _reads(web, service_id, grant.id, 60)
    newest_first = [when(t) for t in reversed(times)]
    with Session(web.ctx.engine) as session:
        seqs = list(session.exec(select(AccessRow.seq).where(
            col(AccessRow.grant_id) == grant.id).order_by(col(AccessRow.seq).desc())).all())
    assert len(seqs) == 60

    first = dom(ada.get("/wallet/activity"))
    rows = table_rows(first)
    assert [r[0] for r in rows] == newest_first[:50]
    older = first.one("nav", class_="pagination").one("a")
    assert older.text == "Older"
    target = urlsplit(urljoin(ORIGIN + "/wallet/activity", older.attrs["href"]))
    assert target.path == "/wallet/activity" and target.query == f"before={seqs[49]}"

    second = dom(ada.get(f"{target.path}?{target.query}"))
    more = table_rows(second)
    assert [r[0] for r in more] == newest_first[50:]  # the rest, none twice
    assert not second.all("nav", class_="pagination")  # the last page
    assert {r[0] for r in rows} & {r[0] for r in more} == set()
    assert all(r[1:] == rows[0][1:] for r in rows + more)


def test_the_service_name_on_the_pages_is_the_registered_one(web: WebWallet) -> None:
    ada = web.sign_up()
    service_id = roads(web)
    grant = request(web, ada, service_id)
    with Session(web.ctx.engine) as session:
        service = session.get(ServiceRow, service_id)
        assert service is not None and service.name == NAME
    cards = dom(ada.get("/wallet/requests")).all("article", class_="card")
    [card] = cards
    assert card.one("h3").text == NAME
    assert card.one("h3").one("a").attrs["href"] == f"/wallet/grants/{grant.id}"


def register(web: WebWallet, name: str, description: str) -> str:
    return registry.register_service(web.ctx, registry.Registration(
        name=name, description=description, purposes=["eligibility_assessment"],
        categories=["education.school"], derived=[], jwk=JWK,
        redirect_uris=["https://school.example.gov/cb"],
        privacy_notice_url="https://school.example.gov/privacy", max_days=90))


@pytest.mark.parametrize(("name", "owner"), [
    ("Riverside schools", "Riverside schools\u2019 privacy notice"),
    ("Leeds Council", "Leeds Council\u2019s privacy notice")])
def test_a_service_name_owns_its_privacy_notice_in_good_english(
        web: WebWallet, name: str, owner: str) -> None:
    ada = web.sign_up()
    grant = request(web, ada, register(web, name, "Checks free school meals"),
                    categories=["education.school"], derived=[])
    terms = terms_list(dom(ada.get(f"/wallet/grants/{grant.id}")))
    assert terms["Read more"] == owner
    assert "\u2019s\u2019" not in owner and "s\u2019s" not in terms["Read more"]


def test_a_service_without_a_description_is_named_once(web: WebWallet) -> None:
    ada = web.sign_up()
    # `vault service add` without --description registers the name as the description.
    grant = request(web, ada, register(web, "My Test Service", "My Test Service"),
                    categories=["education.school"], derived=[])
    assert terms_list(dom(ada.get(f"/wallet/grants/{grant.id}")))["Who"] == "My Test Service"


def test_a_category_whose_words_name_it_is_not_labelled_again(web: WebWallet) -> None:
    ada = web.sign_up()
    reader = registry.register_service(web.ctx, registry.Registration(
        name="Council tax", description="Council tax reductions",
        purposes=["eligibility_assessment"],
        categories=["identity.name", "benefits.attendance_allowance"], derived=[], jwk=JWK,
        redirect_uris=["https://tax.example.gov/cb"],
        privacy_notice_url="https://tax.example.gov/privacy", max_days=90))
    grant = request(web, ada, reader, derived=[],
                    categories=["identity.name", "benefits.attendance_allowance"])
    terms = terms_list(dom(ada.get(f"/wallet/grants/{grant.id}")))
    # "Attendance Allowance: your Attendance Allowance award..." said it twice.
    assert terms["What they want to see"] == (
        "Your Attendance Allowance award: the rate, since when, and who awarded it "
        "Name: your given name and family name")


def test_the_request_says_what_a_category_holds_not_only_its_label(web: WebWallet) -> None:
    ada = web.sign_up()
    grant = request(web, ada, register(web, "Riverside schools", "Checks free school meals"),
                    categories=["education.school"], derived=[])
    [card] = dom(ada.get("/wallet/requests")).all("article", class_="card")
    assert "They want to see: the school you attend." in card.text
    assert re.search(r"Asked on \d+ \w+ \d{4}, \d\d:\d\d (GMT|BST)$", card.text.split(
        " Look at")[0]), card.text  # London's clock
    terms = terms_list(dom(ada.get(f"/wallet/grants/{grant.id}")))
    assert terms["What they want to see"] == "School: the school you attend"
