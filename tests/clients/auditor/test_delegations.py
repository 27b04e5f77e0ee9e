"""Acting for others in the auditor (ARCHITECTURE §9, issue 14 §4): delegations granted
and ended, and every action a delegate took checked against a delegation live then with
that action. Small ledgers written by hand as the vault writes them (the terms hashed by
the vault's own `DelegationTerms`), each rule broken once and named at its entry; a
property over random histories; the auditor's copy of the terms rules against the vault's."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.auditjourney import Forge
from support.ledgerstory import ORIGIN, RP_ID, START, Story, terms

from clients.auditor.story import StoryChecker
from clients.auditor.verify import render_text, verify_entries
from ledger.canonical import canonical_json
from ledger.checkpoint import open_checkpoint
from vault.domain.relationships import DelegationTerms, Kind, RelationshipRefused, check_terms
from vault.domain.terms import format_utc

DAY = timedelta(days=1)


@dataclass
class People:
    """A story with a principal (sub_1), a delegate (sub_2) and a stranger (sub_3), each
    with a passkey of their own, and a service asking sub_1 for a grant."""

    s: Story = field(default_factory=Story)
    creds: dict[str, str] = field(default_factory=dict)
    subjects: dict[str, str] = field(default_factory=dict)  # grant -> its subject

    def __post_init__(self) -> None:
        self.s.service()
        for subject in ("sub_1", "sub_2", "sub_3"):
            self.creds[subject] = self.s.citizen(subject)

    def grant(self, did: str = "dlg_1", *, principal: str = "sub_1", delegate: str = "sub_2",
              kind: str = "attorney", actions: tuple[str, ...] = ("approve", "revoke", "view"),
              until: datetime | None = None, issuer: str | None = None,
              principal_signs: bool = True, signer: dict[str, str] | None = None,
              knobs: dict[str, Any] | None = None, **changes: Any) -> int:
        """`delegation.granted` as the vault writes it: the terms hashed by the vault,
        signed by each side's passkey (`signer` names another person's for a side)."""
        until = until or self.s.now + 30 * DAY
        t = DelegationTerms(delegation_id=did, principal=principal, delegate=delegate,
                            kind=Kind.HELPER, actions=frozenset(), until=until, issuer=issuer)
        # Built as the vault does (to_json), with any kind and actions, valid or not.
        doc = {**t.to_json(), "kind": kind, "actions": sorted(actions)}
        h = DelegationTerms.from_json(doc).terms_hash() if _valid(kind, actions) else \
            _hash(doc)
        signer = signer or {}

        def sign(side: str, person: str) -> Any:
            cred = self.creds[signer.get(side, person)]
            return self.s.device.proof(challenge=h, credential_id=cred,
                                       **(knobs or {}).get(side, {})).to_json()

        return self.s.add("delegation.granted", {
            "delegation_id": did, "subject": principal, "delegate": delegate,
            "relationship": kind, "actions": sorted(actions), "until": format_utc(until),
            "issuer": issuer, "terms_hash": base64.b64encode(h).decode(),
            "principal_assertion": sign("principal", principal) if principal_signs else None,
            "delegate_assertion": sign("delegate", delegate), **changes})

    def request(self, grant_id: str = "gr_1", subject: str = "sub_1") -> int:
        self.subjects[grant_id] = subject
        return self.s.request(terms(grant_id), subject=subject)

    def acted(self, i: int, actor: str = "sub_2", did: str | None = "dlg_1") -> int:
        """Entry `i` made an action by `actor` under delegation `did`."""
        body = self.s.entries[i]["body"]
        body["actor"] = actor
        if did is not None:
            body["delegation_id"] = did
        return i

    def approve(self, grant_id: str = "gr_1", actor: str = "sub_2", did: str | None = "dlg_1",
                *, later: timedelta = timedelta(minutes=1), signer: str | None = None) -> int:
        self.s.now += later
        i = self.s.approve(grant_id, credential_id=self.creds[signer or actor])
        self.s.entries[i]["body"]["subject"] = self.subjects[grant_id]
        return self.acted(i, actor, did)

    def action(self, kind: str, grant_id: str = "gr_1", actor: str = "sub_2",
               did: str = "dlg_1") -> int:
        return self.acted(self.s.action(kind, grant_id, credential_id=self.creds[actor]),
                          actor, did)

    def revoke(self, did: str = "dlg_1", *, subject: str = "sub_1", by: str = "principal",
               actor: str | None = "sub_1") -> int:
        body = {"delegation_id": did, "subject": subject, "by": by}
        return self.s.add("delegation.revoked",
                          body if actor is None else {**body, "actor": actor})

    def failures(self) -> list[tuple[int | None, str]]:
        return self.s.failures()


def _valid(kind: str, actions: tuple[str, ...]) -> bool:
    return kind in Kind._value2member_map_ and "view" in actions and set(actions) <= {
        "view", "edit", "approve", "revoke"}


def _hash(doc: dict[str, Any]) -> bytes:
    return hashlib.sha256(canonical_json(doc)).digest()


# -- an honest story ------------------------------------------------------------------------


def test_a_delegate_acting_within_a_live_delegation_verifies() -> None:
    p = People()
    p.grant()
    p.request()
    p.approve()  # by the delegate, with the delegate's own passkey
    p.s.read()
    p.action("grant.paused")
    p.s.action("grant.resumed", credential_id=p.creds["sub_1"])  # the principal, as ever
    p.revoke()
    p.action("grant.revoked", actor="sub_1", did="dlg_1")  # actor == subject: their own
    c = p.s.check()
    assert c.failures == [] and c.warnings == []
    assert (c.stats.delegations, c.stats.delegated_actions, c.stats.approvals_verified) == (
        1, 2, 4)


def test_a_childs_vault_without_a_passkey_goes_live_on_the_parents_signature() -> None:
    p = People()
    p.s.add("citizen.enrolled", {"subject": "sub_child"})
    p.grant(principal="sub_child", delegate="sub_1", kind="parent",
            actions=("approve", "edit", "revoke", "view"), principal_signs=False)
    p.s.own_write("identity.name", subject="sub_child")
    p.acted(len(p.s.entries) - 1, actor="sub_1")
    assert p.failures() == []
    assert p.s.check().stats.delegated_actions == 1


def test_an_erasure_ends_the_delegations_of_either_person() -> None:
    p = People()
    p.grant()
    p.grant("dlg_2", principal="sub_3", delegate="sub_2")
    # The delegate is erased: each delegation ends in the erasure's transaction.
    p.revoke("dlg_1", by="citizen_erased", actor=None)
    p.revoke("dlg_2", subject="sub_3", by="citizen_erased", actor=None)
    p.s.add("citizen.erased", {"subject": "sub_2"})
    assert p.failures() == []
    # A delegation still live when its principal is erased ends with them.
    p = People()
    p.grant("dlg_2", principal="sub_3", delegate="sub_2")
    p.s.add("citizen.erased", {"subject": "sub_3"})
    late = p.revoke("dlg_2", subject="sub_3")
    assert p.failures() == [(late, "delegation.end")]


# -- each rule, named at its entry ---------------------------------------------------------


def test_an_action_outside_the_delegations_actions() -> None:
    p = People()
    p.grant(actions=("approve", "view"))
    p.request()
    p.approve()
    paused = p.action("grant.paused")  # needs revoke
    edited = p.acted(p.s.own_write("identity.name"))  # needs edit
    assert p.failures() == [(paused, "delegation.action"), (edited, "delegation.action")]


def test_an_action_after_until() -> None:
    p = People()
    p.grant(kind="helper", until=START + timedelta(hours=2))
    p.request()
    late = p.approve(later=timedelta(hours=3))
    assert p.failures() == [(late, "delegation.until")]


def test_an_action_after_the_delegation_was_revoked() -> None:
    p = People()
    p.grant()
    p.request()
    p.revoke(by="delegate", actor="sub_2")
    after = p.approve()
    assert p.failures() == [(after, "delegation.ended")]


def test_an_action_by_someone_other_than_the_delegate() -> None:
    p = People()
    p.grant()
    p.request()
    other = p.approve(actor="sub_3")  # signed by sub_3's own passkey, under sub_2's delegation
    assert p.failures() == [(other, "delegation.who")]


def test_an_action_for_someone_other_than_the_principal() -> None:
    p = People()
    p.grant()
    p.request("gr_3", subject="sub_3")
    wrong = p.approve("gr_3")
    assert p.failures() == [(wrong, "delegation.who")]


def test_an_action_by_another_person_names_a_delegation() -> None:
    p = People()
    p.request()
    bare = p.approve(did=None)
    p.request("gr_2")
    unknown = p.approve("gr_2", did="dlg_9")
    assert p.failures() == [(bare, "delegation.acting"), (unknown, "delegation.acting")]


def test_a_delegates_approval_is_signed_with_the_delegates_passkey() -> None:
    p = People()
    p.grant()
    p.request()
    by_principal = p.approve(signer="sub_1")  # says sub_2 acted, sub_1's passkey signed
    assert p.failures() == [(by_principal, "approval.credential")]


def test_terms_that_do_not_hash_to_the_terms_hash() -> None:
    p = People()
    bad = p.grant(terms_hash=base64.b64encode(bytes(32)).decode())
    assert p.failures() == [(bad, "delegation.terms_hash")]
    p = People()
    wider = p.grant()
    p.s.entries[wider]["body"]["actions"] = ["approve", "edit", "revoke", "view"]
    found = p.failures()
    assert found[0] == (wider, "delegation.terms_hash")
    # What both signed is not what the entry says: their signatures do not cover it.
    assert set(found[1:]) == {(wider, "delegation.signature")}


def test_a_signature_that_does_not_verify() -> None:
    p = People()
    forged = p.grant(knobs={"delegate": {"wrong_key": True}})
    unverified = p.grant("dlg_2", principal="sub_3", knobs={"principal": {"uv": False}})
    c = p.s.check()
    assert [(f.index, f.rule) for f in c.failures] == [(forged, "delegation.signature"),
                                                       (unverified, "delegation.signature")]
    assert c.failures[0].detail.startswith("bad_signature")
    assert c.failures[1].detail.startswith("user_not_verified")


def test_a_signature_by_another_persons_passkey() -> None:
    p = People()
    swapped = p.grant(signer={"principal": "sub_2"})  # the delegate signed for both
    assert p.failures() == [(swapped, "delegation.credential")]


def test_a_principal_with_a_passkey_must_sign() -> None:
    p = People()
    unsigned = p.grant(principal_signs=False)
    no_delegate = p.grant("dlg_2", principal="sub_3", delegate_assertion=None)
    assert p.failures() == [(unsigned, "delegation.unsigned"),
                            (no_delegate, "delegation.unsigned")]


def test_a_helper_for_more_than_one_day() -> None:
    p = People()
    p.grant(kind="helper", actions=("approve", "view"), until=START + timedelta(hours=24))
    long = p.grant("dlg_2", principal="sub_3", kind="helper", actions=("view",),
                   until=p.s.now + timedelta(hours=24, seconds=1))
    assert p.failures() == [(long, "delegation.too_long")]


@pytest.mark.parametrize(("changes", "rule"), [
    ({"kind": "friend"}, "delegation.terms"),
    ({"actions": ("approve", "revoke")}, "delegation.terms"),
    ({"actions": ("view", "sign")}, "delegation.terms"),
    ({"until": START - timedelta(seconds=1)}, "delegation.terms"),
    ({"delegate": "sub_1", "signer": {"delegate": "sub_1"}}, "delegation.parties"),
    ({"issuer": "svc_1"}, "delegation.issuer"),  # registered, but not for relationship.*
    ({"issuer": "svc_9"}, "delegation.issuer"),
])
def test_terms_the_vault_would_refuse(changes: dict[str, Any], rule: str) -> None:
    p = People()
    i = p.grant(**changes)
    assert p.failures() == [(i, rule)]


def test_parties_must_be_live_enrolled_subjects() -> None:
    p = People()
    p.s.add("citizen.erased", {"subject": "sub_3"})
    gone = p.grant(principal="sub_3", principal_signs=False)
    assert (gone, "delegation.parties") in p.failures()


def test_an_issuer_registered_for_the_kind_may_issue_it() -> None:
    p = People()
    p.s.add("service.registered", {
        "service_id": "svc_reg", "name": "Register office", "purposes": ["service_provision"],
        "categories": [], "derived": [], "max_days": 365, "issues": ["relationship.parent"]})
    p.s.add("citizen.enrolled", {"subject": "sub_child"})
    p.grant(principal="sub_child", kind="parent", issuer="svc_reg", principal_signs=False)
    wrong_kind = p.grant("dlg_2", principal="sub_3", kind="attorney", issuer="svc_reg")
    assert p.failures() == [(wrong_kind, "delegation.issuer")]


def test_a_delegation_is_granted_once_and_ended_once() -> None:
    p = People()
    p.grant()
    again = p.grant(principal="sub_3")
    p.revoke()
    twice = p.revoke()
    unknown = p.revoke("dlg_9")
    other = p.revoke("dlg_1", subject="sub_3", actor=None, by="issuer")
    assert p.failures() == [(again, "delegation.id"), (twice, "delegation.end"),
                            (unknown, "delegation.end"), (other, "delegation.end")]
    p = People()
    p.grant()
    wrong_actor = p.revoke(by="delegate", actor="sub_3")
    assert p.failures() == [(wrong_actor, "delegation.end")]


def test_a_delegation_expires_at_its_until_not_before() -> None:
    p = People()
    p.grant(until=START + timedelta(hours=5))
    early = p.s.add("delegation.expired", {"delegation_id": "dlg_1", "subject": "sub_1"},
                    later=timedelta(hours=4))
    assert p.failures() == [(early, "delegation.early")]
    p = People()
    p.grant(until=START + timedelta(hours=5))
    p.s.add("delegation.expired", {"delegation_id": "dlg_1", "subject": "sub_1"},
            later=timedelta(hours=5))
    p.request()
    after = p.approve()
    assert p.failures() == [(after, "delegation.ended")]


def test_an_erasure_ending_must_be_followed_by_the_erasure() -> None:
    p = People()
    p.grant()
    ended = p.revoke(by="citizen_erased", actor=None)
    p.s.add("service.suspended", {"service_id": "svc_1"})  # not the erasure
    assert p.failures() == [(ended, "delegation.end")]
    p = People()
    p.grant()
    ended = p.revoke(by="citizen_erased", actor=None)
    p.s.add("citizen.erased", {"subject": "sub_3"})  # neither of its people
    assert p.failures() == [(ended, "delegation.end")]


def test_a_malformed_delegation_is_a_failure_not_a_crash() -> None:
    p = People()
    i = p.s.add("delegation.granted", {"delegation_id": "dlg_1", "subject": "sub_1"})
    j = p.grant(actions=("view",), issuer=None, principal_signs=True)
    p.s.entries[j]["body"]["actions"] = "view"
    k = p.s.add("delegation.revoked", {"delegation_id": 3, "subject": "sub_1", "by": "x"})
    p.request()
    m = p.approve(actor="sub_2")
    p.s.entries[m]["body"]["actor"] = 7
    assert p.failures() == [(i, "entry"), (j, "entry"), (k, "entry"), (m, "entry")]


# -- in the full verification (vault-audit verify) ---------------------------------------


@pytest.mark.parametrize("parallel", [False, True])
def test_verify_names_each_delegation_failure_at_its_index_and_counts_them(
        parallel: bool) -> None:
    """Sealed, through the openings, with the signatures checked in the log worker or
    here: a forged delegation signature is named `delegation.signature` either way."""
    p = People()
    p.grant()
    forged = p.grant("dlg_2", principal="sub_3", knobs={"delegate": {"wrong_key": True}})
    p.request()
    p.approve()
    p.action("grant.paused")  # dlg_1 allows revoke
    p.revoke()
    p.request("gr_2")
    after = p.approve("gr_2")
    forge = Forge(p.s.entries)
    lines, openings = forge.written()
    report, _ = verify_entries(lines, checkpoint=open_checkpoint(
        forge.note(lines), expected_verifier=forge.verifier), rp_id=RP_ID, origins=[ORIGIN],
        openings=openings, parallel=parallel)
    assert [(f.index, f.rule) for f in report.failures] == [
        (forged, "delegation.signature"), (after, "delegation.ended")]
    assert "bad_signature" in report.failures[0].detail
    assert (report.stats.delegations, report.stats.delegated_actions) == (2, 3)
    assert report.stats.approvals_verified == 3
    text = [line for _, line in render_text(report)]
    assert "  2 delegations checked (terms and both signatures), 3 actions by a delegate " \
           "checked against a delegation live then" in text
    assert report.to_json()["stats"]["delegations"] == 2


# -- the checker's state ----------------------------------------------------------------------


def test_the_state_saved_at_any_entry_changes_nothing() -> None:
    p = People()
    p.grant()
    p.grant("dlg_2", principal="sub_3", kind="helper", until=START + timedelta(hours=3))
    p.request()
    p.approve()
    p.revoke(by="citizen_erased", actor=None)
    p.revoke("dlg_2", subject="sub_3", by="citizen_erased", actor=None)
    p.s.add("citizen.erased", {"subject": "sub_2"})
    p.request("gr_3", subject="sub_3")
    p.approve("gr_3", actor="sub_2", did="dlg_2")  # after the erasure
    entries = p.s.entries
    straight = p.s.check()
    assert straight.failures and straight.stats.delegations == 2
    for split in range(len(entries) + 1):
        a = StoryChecker(rp_id=RP_ID, origins=[ORIGIN])
        for i, e in enumerate(entries[:split]):
            a.feed(i, e)
        state = json.loads(json.dumps(a.to_state()))
        b = StoryChecker.from_state(state, rp_id=RP_ID, origins=[ORIGIN])
        for i, e in enumerate(entries[split:], start=split):
            b.feed(i, e)
        b.finish()
        assert a.failures + b.failures == straight.failures, split
        assert b.to_state() == straight.to_state(), split


# -- the auditor's copy of the vault's rules --------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(kind=st.sampled_from(["parent", "attorney", "appointee", "helper", "friend"]),
       actions=st.sets(st.sampled_from(["view", "edit", "approve", "revoke", "sign"])),
       minutes=st.integers(-60, 3 * 24 * 60))
def test_the_terms_rules_are_the_vaults(kind: str, actions: set[str], minutes: int) -> None:
    """A delegation the vault's `check_terms` refuses at the time it goes live is one the
    auditor names (by a terms rule), and one it allows the auditor accepts."""
    p = People()
    until = p.s.now + timedelta(minutes=minutes)
    try:
        check_terms(kind, actions, until, now=p.s.now)
        refused = False
    except RelationshipRefused:
        refused = True
    p.grant(kind=kind, actions=tuple(actions), until=until)
    rules = {rule for _, rule in p.failures()}
    assert rules <= {"delegation.terms", "delegation.too_long"}
    assert bool(rules) == refused, rules


_OPS = st.lists(st.tuples(
    st.sampled_from(["grant", "revoke", "expire", "edit", "approve", "wait"]),
    st.integers(0, 3), st.integers(0, 15)), max_size=25)


@settings(max_examples=60, deadline=None)
@given(ops=_OPS)
def test_the_auditor_accepts_exactly_the_valid_histories(ops: list[tuple[str, int, int]]
                                                         ) -> None:
    """Random histories of delegations granted, revoked and expired (sub_2 acting for
    sub_1), and of the delegate's edits and approvals under one of them, judged by a naive
    model of the rules: the auditor names exactly the entries the model finds wrong, by
    the same rule."""
    p = People()
    live: dict[str, tuple[frozenset[str], datetime, bool]] = {}  # id -> actions, until, ended
    expected: list[tuple[int, str]] = []
    for n, (op, pick, amount) in enumerate(ops):
        did = f"dlg_{pick}"
        known = live.get(did)
        if op == "wait":
            p.s.now += timedelta(hours=amount)
        elif op == "grant":
            if known is not None:
                continue  # a new id each time: reuse is a rule of its own
            actions = frozenset({"view"} | {a for bit, a in enumerate(
                ("edit", "approve", "revoke")) if amount >> bit & 1})
            until = p.s.now + timedelta(hours=1 + amount)
            p.grant(did, actions=tuple(sorted(actions)), until=until)
            live[did] = (actions, until, False)
        elif op in ("revoke", "expire"):
            if op == "revoke":
                i = p.revoke(did)
            else:
                i = p.s.add("delegation.expired", {"delegation_id": did, "subject": "sub_1"})
            if known is None or known[2]:
                expected.append((i, "delegation.end"))
            else:
                if op == "expire" and p.s.now < known[1]:
                    expected.append((i, "delegation.early"))
                live[did] = (known[0], known[1], True)
        else:
            if op == "edit":
                i = p.acted(p.s.own_write("identity.name"), did=did)
            else:
                p.request(f"gr_{n}")
                i = p.approve(f"gr_{n}", did=did, later=timedelta(0))
            need = "edit" if op == "edit" else "approve"
            if known is None:
                expected.append((i, "delegation.acting"))
                continue
            actions, until, ended = known
            if ended:
                expected.append((i, "delegation.ended"))
            elif p.s.now >= until:
                expected.append((i, "delegation.until"))
            if need not in actions:
                expected.append((i, "delegation.action"))
    assert p.failures() == expected
