"""The grant-story rules, each broken on a small ledger written by hand; the auditor's own
copies of the vault's rules (state machine, terms, reads) compared with the vault's; and
the checker's state, saved and loaded at any point, changing nothing."""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.auditjourney import Journey, shared_journey
from support.ledgerstory import (
    ORIGIN,
    RP_ID,
    START,
    Story,
    at,
    issuer_story,
    terms,
    write_terms,
)

from clients.auditor.grants import TRANSITIONS, TermsInvalid, action_challenge, parse_terms
from clients.auditor.story import Failure, StoryChecker
from vault.domain.errors import AccessDenied, IllegalTransition
from vault.domain.grants import (
    ENTRY_KIND,
    Access,
    GrantAction,
    GrantState,
    check_read,
    next_state,
    read_limit,
)
from vault.services.approvals import action_challenge as vault_action_challenge

# -- an honest story ------------------------------------------------------------------------


def test_an_honest_story_verifies() -> None:
    s = Story().approved()
    s.read()
    s.action("grant.paused")
    s.action("grant.resumed")
    s.read()
    s.action("grant.revoked")
    c = s.check()
    assert c.failures == [] and c.warnings == []
    assert (c.stats.approvals_verified, c.stats.accesses_checked, c.stats.grants) == (4, 2, 1)


# -- each rule ------------------------------------------------------------------------------


def test_subjects_must_be_enrolled_once_and_live() -> None:
    s = Story()
    s.service()
    s.citizen()
    twice = s.add("citizen.enrolled", {"subject": "sub_1"})
    stranger = s.request(terms(), subject="sub_nobody")
    assert (twice, "subject") in s.failures() and (stranger, "subject") in s.failures()
    s = Story()
    s.citizen()
    erased = s.add("citizen.erased", {"subject": "sub_1"})
    after = s.add("record.written", {"subject": "sub_1", "record_id": "rec_1",
                                     "category": "address.home", "version": 1,
                                     "source": "citizen"})
    assert s.failures() == [(after, "erasure")]
    assert erased < after


def test_an_erasure_must_end_every_live_grant_and_follow_its_endings_at_once() -> None:
    s = Story().approved()
    ended = s.add("grant.revoked", {**s.grant_body("gr_1"), "reason": "citizen_erased"})
    s.read()  # not the citizen.erased that must come next
    assert (ended, "erasure") in s.failures()
    s = Story().approved()
    erased = s.add("citizen.erased", {"subject": "sub_1"})
    assert s.failures() == [(erased, "erasure")]  # the approved grant was left live
    s = Story().approved()
    ended = s.add("grant.revoked", {**s.grant_body("gr_1"), "reason": "citizen_erased"})
    assert s.failures() == [(ended, "erasure")]  # the ledger ends mid-erasure
    s.add("citizen.erased", {"subject": "sub_1"})
    assert s.failures() == []


def test_passkeys_are_registered_once_and_removed_only_if_registered() -> None:
    s = Story().approved()
    first = s.entries[2]["body"]
    again = s.add("passkey.registered", dict(first))
    unknown = s.add("passkey.removed", {"subject": "sub_1", "credential_id": "AAAA"})
    assert s.failures() == [(again, "passkey"), (unknown, "passkey")]


def test_services_must_be_registered_and_active_and_ask_within_their_registration() -> None:
    s = Story()
    s.citizen()
    unknown = s.request(terms())
    assert s.failures() == [(unknown, "service")]
    s = Story()
    s.service(max_days=10)
    s.citizen()
    too_long = s.request(terms())
    wider = s.request(terms("gr_2", categories=("address.home", "identity.name")))
    assert s.failures() == [(too_long, "terms"), (wider, "terms")]
    s = Story().approved()
    s.add("service.suspended", {"service_id": "svc_1"})
    read = s.read()
    asks = s.request(terms("gr_2"))
    assert s.failures() == [(read, "access.service"), (asks, "service")]


def test_terms_must_hash_to_their_hash_and_be_well_formed() -> None:
    s = Story()
    s.service()
    s.citizen()
    i = s.request(terms())
    s.entries[i]["body"]["terms"]["justification"] = "Something else."
    assert s.failures() == [(i, "terms")]
    j = s.request(terms("gr_2"))
    s.entries[j]["body"]["terms"]["access"] = {"mode": "sometimes"}
    k = s.request(terms("gr_3"))
    s.entries[k]["body"]["grant_id"] = "gr_other"
    assert s.failures() == [(i, "terms"), (j, "terms"), (k, "terms")]


def test_transitions_follow_the_state_machine() -> None:
    s = Story().approved()
    resumed = s.action("grant.resumed")  # never paused
    approved = s.approve()  # approved already
    other = s.add("grant.cancelled", {**s.grant_body("gr_1"), "service_id": "svc_2"})
    unknown = s.add("grant.expired", {"grant_id": "gr_9", "service_id": "svc_1",
                                      "subject": "sub_1"})
    assert s.failures() == [(resumed, "transition"), (approved, "transition"),
                            (other, "transition"), (unknown, "transition")]


def test_vault_transitions_need_their_reason() -> None:
    s = Story().approved(terms(access=Access("periodic", max_reads=2)))
    s.read()
    early = s.add("grant.exhausted", s.grant_body("gr_1"))
    assert s.failures() == [(early, "transition.early")]
    s = Story().approved()
    expired = s.add("grant.expired", s.grant_body("gr_1"))
    assert s.failures() == [(expired, "transition.early")]
    s = Story().approved()
    unsigned = s.add("grant.paused", s.grant_body("gr_1"))
    assert s.failures() == [(unsigned, "transition.unsigned")]
    s = Story().approved(terms(access=Access("one_time")))
    s.read()
    s.add("grant.exhausted", s.grant_body("gr_1"))
    s.add("grant.expired", s.grant_body("gr_1"), later=timedelta(days=31))
    assert s.failures() == [(7, "transition")]  # exhausted is final


def test_approvals_must_verify_against_the_subjects_passkey() -> None:
    s = Story()
    s.service()
    s.citizen()
    s.request(terms())
    bad = s.approve(uv=False)
    s.read()  # rests on the failed approval: not named again
    assert s.failures() == [(bad, "approval")]
    assert "user_not_verified" in s.check().failures[0].detail
    s = Story()
    s.service()
    s.citizen()
    s.request(terms())
    forged = s.approve(wrong_key=True)
    assert s.failures() == [(forged, "approval")]
    assert s.check().failures[0].detail.startswith("bad_signature")
    assert s.check().stats.approvals_verified == 0


def test_an_action_must_sign_its_own_challenge() -> None:
    s = Story().approved()
    i = s.action("grant.paused")
    s.entries[i]["body"]["challenge"] = base64.b64encode(bytes(32)).decode()
    assert s.failures() == [(i, "approval.terms")]


def test_a_counter_going_backwards_is_a_warning() -> None:
    s = Story().approved()
    i = s.action("grant.paused", counter=1)
    c = s.check()
    assert c.failures == [] and [(w.index, w.rule) for w in c.warnings] == [(i, "sign_count")]


@pytest.mark.parametrize(("change", "rule"), [
    ({"grant_id": "gr_9"}, "access.grant"),
    ({"service_id": "svc_9"}, "access.grant"),
    ({"categories": ["identity.name"]}, "access.scope"),
    ({"derived": ["age_over_18"]}, "access.scope"),
    ({"categories": "address.home"}, "entry"),
])
def test_reads_must_match_their_grant(change: dict[str, Any], rule: str) -> None:
    s = Story().approved()
    i = s.read(**change)
    assert s.failures() == [(i, rule)]


def test_unknown_kinds_are_counted_and_named_only_when_they_name_someone() -> None:
    s = Story().approved()
    s.add("audit.note", {"text": "nothing about anyone"})
    i = s.add("data.exported", {"grant_id": "gr_1", "subject": "sub_1"})
    c = s.check()
    assert c.failures == [] and c.stats.unknown_kinds == 2
    assert [(w.index, w.rule) for w in c.warnings] == [(i, "unknown_kind")]


def test_a_malformed_body_is_a_failure_not_a_crash() -> None:
    s = Story()
    i = s.add("passkey.registered", {"subject": 3})
    j = s.add("grant.requested", {"grant_id": "gr_1"})
    c = StoryChecker(rp_id=RP_ID, origins=[ORIGIN])
    for n, e in enumerate(s.entries):
        c.feed(n, e)
    c.feed(2, {"kind": "data.accessed"})
    assert [(f.index, f.rule) for f in c.failures] == [(i, "entry"), (j, "entry"), (2, "entry")]


# -- the auditor's copies of the vault's rules ------------------------------------------------


def test_the_state_machine_is_the_vaults() -> None:
    for state in GrantState:
        for action in GrantAction:
            try:
                expected: str | None = next_state(state, action).value
            except IllegalTransition:
                expected = None
            assert TRANSITIONS[ENTRY_KIND[action]].get(state.value) == expected, (state, action)


@given(grant_id=st.text(min_size=1, max_size=30), action=st.sampled_from(
    ["pause", "resume", "revoke"]), terms_hash=st.binary(min_size=32, max_size=32),
    after=st.integers(0, 2**53 - 1))
def test_the_action_challenge_is_the_vaults(grant_id: str, action: str, terms_hash: bytes,
                                            after: int) -> None:
    kw: dict[str, Any] = {"grant_id": grant_id, "action": action, "terms_hash": terms_hash,
                          "after": after}
    assert action_challenge(**kw) == vault_action_challenge(**kw)


_ACCESS = st.one_of(
    st.just(Access("one_time")),
    st.builds(lambda n, i: Access("periodic", max_reads=n, min_interval=i),
              st.one_of(st.none(), st.integers(1, 5)),
              st.sampled_from(["PT1M", "PT1H", "P1DT2H30M", "PT90S"])),
    st.builds(lambda n: Access("periodic", max_reads=n), st.integers(1, 5)))


@settings(max_examples=60, deadline=None)
@given(access=_ACCESS, days=st.integers(1, 90))
def test_terms_read_as_the_vault_means_them(access: Access, days: int) -> None:
    t = terms(access=access, days=days)
    mine = parse_terms(t.to_json())
    assert mine.limit == read_limit(t) if access.mode == "periodic" else mine.limit == 1
    interval = access.interval
    assert mine.interval_ms == (None if interval is None else interval // timedelta(
        milliseconds=1))
    assert (mine.start, mine.end) == (at(t.starts), at(t.ends))
    assert mine.categories == set(t.categories) and mine.derived == set(t.derived)


_REASON_RULE = {"not_yet_valid": "access.window", "expired": "access.window",
                "exhausted": "access.limit", "too_soon": "access.interval",
                "paused": "access.state"}


@settings(max_examples=80, deadline=None)
@given(access=_ACCESS, gaps=st.lists(st.integers(0, 3 * 86_400_000), min_size=1, max_size=6),
       pause_at=st.one_of(st.none(), st.integers(0, 5)))
def test_reads_are_judged_as_the_vault_judges_them(access: Access, gaps: list[int],
                                                   pause_at: int | None) -> None:
    """Every recorded read, judged by the auditor and by `check_read` with the same
    state, count and last read: the same verdict, for the same reason."""
    t = terms(access=access, days=2, start=START + timedelta(hours=1))
    s = Story().approved(t)
    state, reads, last = GrantState.APPROVED, 0, None
    expected: list[tuple[int, str]] = []
    for n, gap in enumerate(gaps):
        if n == pause_at:
            s.action("grant.paused")
            state = GrantState.PAUSED
        i = s.read(later=timedelta(milliseconds=gap))
        try:
            check_read(state=state, terms=t, now=s.now, reads_used=reads, last_read_at=last,
                       service_active=True)
        except AccessDenied as exc:
            expected.append((i, _REASON_RULE[exc.reason]))
        reads, last = reads + 1, s.now
    found = s.failures()
    assert {i for i, _ in found} == {i for i, _ in expected}
    for i, rule in expected:  # the vault names the first rule broken; the auditor all
        assert (i, rule) == next(f for f in found if f[0] == i)


# -- state ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def journey(tmp_path_factory: pytest.TempPathFactory) -> Journey:
    return shared_journey(tmp_path_factory)


def _tampered(journey: Journey) -> list[dict[str, Any]]:
    """The journey with a read after the revocation (a failure to carry across)."""
    entries: list[dict[str, Any]] = journey.entries
    k = journey.index("grant.revoked", "main") + 1
    read = dict(entries[journey.index("data.accessed", "main")])
    entries.insert(k, {**read, "time": entries[k]["time"]})
    return entries


def test_the_state_saved_at_any_entry_changes_nothing(journey: Journey) -> None:
    entries = _tampered(journey)
    straight = StoryChecker(rp_id=RP_ID, origins=[ORIGIN])
    for i, e in enumerate(entries):
        straight.feed(i, e)
    assert [f.rule for f in straight.failures] == ["access.state"]
    for split in range(len(entries) + 1):
        a = StoryChecker(rp_id=RP_ID, origins=[ORIGIN])
        for i, e in enumerate(entries[:split]):
            a.feed(i, e)
        state = json.loads(json.dumps(a.to_state()))
        b = StoryChecker.from_state(state, rp_id=RP_ID, origins=[ORIGIN])
        for i, e in enumerate(entries[split:], start=split):
            b.feed(i, e)
        assert a.failures + b.failures == straight.failures, split
        assert b.to_state() == straight.to_state(), split


def test_the_state_is_compact(journey: Journey) -> None:
    checker = StoryChecker(rp_id=RP_ID, origins=[ORIGIN])
    for i, e in enumerate(journey.entries):
        checker.feed(i, e)
    size = len(json.dumps(checker.to_state()))
    assert size < 300 * 9 + 300 * 3 + 2000, size  # per grant, per passkey, the rest


def test_a_failure_reads_as_the_report_prints_it() -> None:
    assert str(Failure(3, "access.scope", "too much")) == "entry 3: access.scope: too much"
    assert str(Failure(None, "checkpoint", "bad")) == "checkpoint: bad"


# -- issuers and write grants (issue 12, ARCHITECTURE §8) ------------------------------------


def test_a_write_grant_within_the_issuers_registration_verifies() -> None:
    s = issuer_story()
    s.request(write_terms())
    s.approve("gr_w")
    c = s.check()
    assert c.failures == [] and c.stats.approvals_verified == 1
    assert c.to_state()["services"]["svc_aa"][4] == ["benefits.attendance_allowance"]


def test_a_write_grant_beyond_the_registrations_issues_fails_the_terms_rule() -> None:
    s = issuer_story()
    beyond = s.request(write_terms(categories=("benefits.universal_credit",)))
    c = s.check()
    assert [(f.index, f.rule) for f in c.failures] == [(beyond, "terms")]
    assert "write benefits.universal_credit" in c.failures[0].detail
    # A service registered before issuers (no `issues`) may write nothing.
    s = Story()
    s.service()
    s.citizen()
    reader = s.request(dataclasses.replace(write_terms(categories=("address.home",)),
                                           service_id="svc_1"))
    assert s.failures() == [(reader, "terms")]
    # Reading and writing: each action within its own part of the registration.
    s = issuer_story()
    both = s.request(write_terms(actions=("read", "write")))
    assert s.failures() == [(both, "terms")]  # registered to issue it, not to read it
    s = issuer_story(categories=["benefits.attendance_allowance"])
    s.request(write_terms(actions=("read", "write")))
    assert s.failures() == []


def test_a_grant_only_to_write_covers_no_read() -> None:
    s = issuer_story()
    s.request(write_terms())
    s.approve("gr_w")
    read = s.read("gr_w", categories=["benefits.attendance_allowance"], derived=[])
    assert s.failures() == [(read, "access.scope")]


@pytest.mark.parametrize(("actions", "words"), [
    (["read"], "leave actions out"),
    (["write", "read"], "sorted"),
    ([], "read, write or both"),
    (["delete"], "read, write or both"),
    ("write", "list of text"),
])
def test_the_auditor_reads_actions_as_the_vault_writes_them(actions: Any, words: str) -> None:
    ok = write_terms(actions=("read", "write"))
    mine = parse_terms(ok.to_json())
    assert mine.actions == set(ok.actions) and mine.writes == mine.reads == set(ok.categories)
    assert parse_terms(terms().to_json()).actions == {"read"}
    assert parse_terms(write_terms().to_json()).reads == frozenset()
    with pytest.raises(TermsInvalid, match=words):
        parse_terms({**ok.to_json(), "actions": actions})
    with pytest.raises(TermsInvalid, match="no derived answers"):
        parse_terms({**write_terms().to_json(), "derived": ["age_over_65"]})


def test_a_state_saved_before_write_grants_still_loads() -> None:
    s = Story().approved()
    state = json.loads(json.dumps(s.check().to_state()))
    for reg in state["services"].values():
        del reg[4:]  # issues, held
    for g in state["grants"].values():
        del g[13]
    del state["records"]
    c = StoryChecker.from_state(state, rp_id=RP_ID, origins=[ORIGIN])
    assert c.to_state() == s.check().to_state()
