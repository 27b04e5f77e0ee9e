"""The stories of records (issue 12 §7, ARCHITECTURE §8), checked by the auditor from the
ledger alone: issuers write and withdraw only under a live write grant of theirs over the
category, the citizen disputes only what an issuer wrote, and a read names as issuer or
source only who wrote or holds the value. Each rule kept by a small ledger written by
hand and broken by another; entries from before issuers verify as before; and over random
interleavings of grants, writes, withdrawals and reads the auditor agrees with a model
a few lines long."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from typing import Any

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from support.ledgerstory import (
    AA,
    ORIGIN,
    RP_ID,
    Story,
    issuer_story,
    terms,
    write_terms,
)

from clients.auditor.pii import PiiFinding, PiiScanner
from clients.auditor.story import StoryChecker, StoryStats
from clients.auditor.verify import EntryChecks, VerifyReport, render_text
from vault.domain.grants import Access

UC = "benefits.universal_credit"
READER = {"service_id": "svc_rd", "name": "Council tax", "purposes": ["eligibility_assessment"],
          "categories": sorted([AA, UC]), "derived": [], "max_days": 90}
ISSUER = "svc_aa"


def linked(*, issues: tuple[str, ...] = (AA, UC), write: tuple[str, ...] = (AA,)) -> Story:
    """An issuer (svc_aa) with an approved write grant gr_w of sub_1 over `write`, and a
    reader (svc_rd) with an approved read grant gr_r over AA and UC."""
    s = issuer_story(issues=sorted(issues))
    s.request(write_terms(categories=write))
    s.approve("gr_w")
    s.add("service.registered", READER)
    s.request(dataclasses.replace(
        terms("gr_r", "svc_rd", categories=tuple(sorted([AA, UC])),
              access=Access("periodic", max_reads=1000)), derived=()))
    s.approve("gr_r")
    return s


def read(s: Story, *categories: str, **changes: Any) -> int:
    """A read under the reader's grant releasing `categories` (AA if none named)."""
    i: int = s.read("gr_r", categories=sorted(categories or (AA,)), derived=[], **changes)
    return i


def rules(s: Story, index: int) -> list[str]:
    return [f.rule for f in s.check().failures if f.index == index]


# -- an honest story ------------------------------------------------------------------------


def test_an_issuers_story_verifies() -> None:
    s = linked()
    s.write()
    read(s, issuers={AA: ISSUER})
    s.write()  # the award changes: version 2
    s.dispute(2)
    s.withdraw()  # the award ends: the category reads as absent
    s.read("gr_r", categories=[], derived=[])
    s.write(items=3)  # written again (a batch's count, as a series writes it)
    read(s, issuers={AA: ISSUER})
    s.own_write()  # the citizen's own value, newer
    read(s)
    c = s.check()
    assert c.failures == [] and c.warnings == []
    assert c.stats.unknown_kinds == 0
    assert c.stats.records_checked == 5  # three writes, a dispute, a withdrawal


def test_the_report_counts_the_record_entries_it_checked() -> None:
    def lines(n: int) -> list[str]:
        return [t for _, t in render_text(VerifyReport(size=9, stats=StoryStats(
            records_checked=n)))]
    assert "  5 issuers' writes, withdrawals and disputes checked" in lines(5)
    assert "  1 issuer's write, withdrawal or dispute checked" in lines(1)
    assert not any("dispute" in t for t in lines(0))  # a ledger from before issuers


def test_the_state_saved_at_any_entry_changes_nothing() -> None:
    s = linked()
    s.write()
    s.withdraw()
    s.withdraw()  # a second time: a failure to carry across
    s.dispute(1)
    read(s, issuers={AA: ISSUER})  # withdrawn: a failure
    s.write()
    s.dispute(2)
    straight = s.check()
    assert [f.rule for f in straight.failures] == ["withdraw.record", "access.issuer"]
    for split in range(len(s.entries) + 1):
        a = StoryChecker(rp_id=RP_ID, origins=[ORIGIN])
        for i, e in enumerate(s.entries[:split]):
            a.feed(i, e)
        b = StoryChecker.from_state(json.loads(json.dumps(a.to_state())), rp_id=RP_ID,
                                    origins=[ORIGIN])
        for i, e in enumerate(s.entries[split:], start=split):
            b.feed(i, e)
        assert a.failures + b.failures == straight.failures, split
        assert b.to_state() == straight.to_state(), split


# -- 1. writes: under a live write grant of that issuer and category ---------------------------


@pytest.mark.parametrize(("change", "rule"), [
    ({"grant_id": "gr_9"}, "write.grant"),  # never requested
    ({"grant_id": "gr_r"}, "write.grant"),  # the reader's grant: another service
    ({"source": "citizen"}, "write.grant"),  # the issuer writes as someone else
    ({"category": UC}, "write.scope"),  # registered to issue it, but not in the grant
    ({"version": 1}, "record.version"),  # not above version 1 written before
])
def test_a_write_must_be_within_its_grant(change: dict[str, Any], rule: str) -> None:
    s = linked()
    s.write()
    i = s.write(**change)
    assert [(f.index, f.rule) for f in s.check().failures] == [(i, rule)]


def test_a_write_names_its_grants_subject() -> None:
    s = linked()
    s.add("citizen.enrolled", {"subject": "sub_2"})
    i = s.write(subject="sub_2")
    assert s.failures() == [(i, "write.grant")]


@pytest.mark.parametrize("end", ["grant.paused", "grant.revoked"])
def test_a_write_needs_the_grant_approved_now(end: str) -> None:
    s = linked()
    s.write()
    s.action(end, "gr_w")
    i = s.write()
    assert s.failures() == [(i, "write.state")]
    s = issuer_story()
    s.request(write_terms())
    asked = s.write()  # requested, never approved
    assert s.failures() == [(asked, "write.state")]
    s = linked()
    s.add("grant.expired", s.grant_body("gr_w"), later=timedelta(days=31))
    assert rules(s, s.write()) == ["write.state", "write.window"]


def test_a_write_needs_the_grants_window() -> None:
    s = linked()
    s.now += timedelta(days=30)  # the grant's end, with no grant.expired entry yet
    i = s.write(later=timedelta(0))
    assert s.failures() == [(i, "write.window")]


def test_a_read_grant_lets_nothing_be_written() -> None:
    s = linked()
    s.request(dataclasses.replace(write_terms("gr_x", actions=("read", "write")),
                                  actions=("read",)))
    s.approve("gr_x")
    i = s.write(grant="gr_x")
    assert rules(s, i) == ["write.scope"]
    assert "does not allow writing" in s.check().failures[-1].detail


def test_a_write_needs_the_issuers_registration() -> None:
    s = linked()
    s.add("service.suspended", {"service_id": ISSUER})
    i = s.write()
    assert s.failures() == [(i, "write.issuer")]
    # Terms beyond the registration fail when asked, and each write under them again.
    s = issuer_story(issues=[UC])
    asked = s.request(write_terms())
    s.approve("gr_w")
    i = s.write()
    assert s.failures() == [(asked, "terms"), (i, "write.issuer")]


def test_versions_rise_above_every_version_still_held() -> None:
    s = linked()
    s.own_write()  # the citizen's version 1
    i = s.write(version=1)
    assert s.failures() == [(i, "record.version")]
    # The citizen deletes their own versions: versions start again at 1.
    s = linked()
    s.own_write()
    s.add("record.deleted", {"subject": "sub_1", "category": AA, "versions": 1})
    s.write(version=1)
    assert s.failures() == []
    # The issuer's versions stay (theirs to withdraw): the next is above them.
    s = linked()
    s.write()
    s.own_write()
    s.add("record.deleted", {"subject": "sub_1", "category": AA, "versions": 1})
    reused = s.write(version=1)
    s.write(version=2)  # above the issuer's version 1, the newest still held
    assert s.failures() == [(reused, "record.version")]


@pytest.mark.parametrize(("body", "words"), [
    ({"issuer": ISSUER}, "grant_id must be text"),
    ({"grant_id": "gr_w"}, "comes only with an issuer"),
    ({"items": "3"}, "items must be a whole number"),
    ({"issuer": ISSUER, "grant_id": "gr_w", "items": 0}, "items must be a whole number"),
    ({"issuer": ISSUER, "grant_id": "gr_w", "version": "2"}, "version must be a whole"),
])
def test_a_malformed_write_is_an_entry_failure(body: dict[str, Any], words: str) -> None:
    s = linked()
    i = s.add("record.written", {"subject": "sub_1", "record_id": "rec_1", "category": AA,
                                 "version": 1, "source": ISSUER, **body})
    c = s.check()
    assert [(f.index, f.rule) for f in c.failures] == [(i, "entry")]
    assert words in c.failures[0].detail


# -- 2. withdrawals: the issuer's current record, under such a grant ---------------------------


def test_a_withdrawal_needs_the_issuers_current_record() -> None:
    s = linked()
    never = s.withdraw(version=1)
    s.write()
    s.withdraw()
    again = s.withdraw()
    s.write()  # version 2: current again
    other = s.withdraw(version=1)
    s.own_write()  # version 3 is the citizen's: not the issuer's to end
    theirs = s.withdraw(version=2)
    assert s.failures() == [(never, "withdraw.record"), (again, "withdraw.record"),
                            (other, "withdraw.record"), (theirs, "withdraw.record")]
    details = [f.detail for f in s.check().failures]
    assert "there is none" in details[0] and "withdrawn it already" in details[1]
    assert "its record is version 2" in details[2] and "citizen's" in details[3]


def test_a_withdrawal_needs_a_live_write_grant_of_the_issuer() -> None:
    s = linked()
    s.write()
    s.action("grant.revoked", "gr_w")
    revoked = s.withdraw()
    assert s.failures() == [(revoked, "write.state")]
    s = linked()
    s.write()
    other = s.withdraw(grant="gr_r")
    assert s.failures() == [(other, "write.grant")]
    s = linked()
    s.write()
    outside = s.withdraw(UC, version=1)  # nothing of UC either
    assert rules(s, outside) == ["write.scope", "withdraw.record"]
    s.add("citizen.enrolled", {"subject": "sub_2"})
    stranger = s.withdraw(subject="sub_2")  # another subject than the grant's
    assert rules(s, stranger) == ["write.grant", "withdraw.record"]


# -- 3. disputes: of what that issuer wrote ------------------------------------------------


def test_a_dispute_is_of_the_issuers_newest_version_once() -> None:
    s = linked()
    nothing = s.dispute(1)
    s.own_write()
    own = s.dispute(1)  # the citizen's own value
    own_named = s.dispute(1, issuer="citizen")
    s.write()  # version 2
    other = s.dispute(2, issuer="svc_rd")
    s.dispute(2)
    twice = s.dispute(2)
    s.write()  # version 3: version 2 is replaced
    replaced = s.dispute(2)
    s.withdraw()
    s.dispute(3)  # a withdrawn record can still be disputed
    assert s.failures() == [(i, "dispute.record") for i in (nothing, own, own_named, other,
                                                             twice, replaced)]


def test_a_dispute_names_a_registered_issuer_and_a_live_subject() -> None:
    s = Story()
    s.citizen()
    s.own_write(source="svc_gone")  # the operator's `--source`, never registered
    i = s.dispute(1, issuer="svc_gone")
    assert s.failures() == [(i, "dispute.record")]
    s = linked()
    s.write()
    s.add("citizen.erased", {"subject": "sub_1"})
    gone = s.dispute(1)
    assert (gone, "erasure") in s.failures()


# -- 4. reads: issuers wrote it, sources hold it, write grants read nothing ---------------------


def test_a_read_names_an_issuer_only_of_what_it_wrote_and_has_not_withdrawn() -> None:
    s = linked()
    before = read(s, issuers={AA: ISSUER})
    s.write()
    fine = read(s, issuers={AA: ISSUER})
    unreleased = read(s, UC, issuers={AA: ISSUER})
    other = read(s, issuers={AA: "svc_rd"})
    s.withdraw()
    withdrawn = read(s, issuers={AA: ISSUER})
    s.write()
    s.own_write()
    s.add("record.deleted", {"subject": "sub_1", "category": AA, "versions": 1})
    kept = read(s, issuers={AA: ISSUER})  # the citizen's own deleted: the issuer's stays
    assert s.failures() == [(i, "access.issuer") for i in (before, unreleased, other,
                                                           withdrawn)]
    assert fine not in [i for i, _ in s.failures()] and kept not in [i for i, _ in
                                                                     s.failures()]
    details = [f.detail for f in s.check().failures]
    assert "never wrote" in details[0] and "does not release" in details[1]
    assert "withdrew" in details[3]


def test_the_operators_writes_for_a_service_are_that_services_issued_records() -> None:
    s = linked()
    s.own_write(source=ISSUER)  # `vault citizen write --source svc_aa`: no issuer, no JWS
    read(s, issuers={AA: ISSUER})
    s.withdraw()
    assert s.failures() == []


def register(s: Story, service_id: str = "svc_er", **body: Any) -> int:
    """A register holding address.home at source."""
    return s.add("service.registered", {
        "service_id": service_id, "name": "Electoral register",
        "purposes": ["service_provision"], "categories": [], "derived": [], "max_days": 365,
        "issues": ["address.home"], "held_at_source": ["address.home"], **body})


def at_source() -> Story:
    """A register holding address.home at source, and a reader's grant over it."""
    s = Story()
    register(s)
    s.service()
    s.citizen()
    s.request(terms(access=Access("periodic", max_reads=10)))
    s.approve()
    return s


def test_a_read_names_a_source_only_of_what_it_holds_at_source() -> None:
    s = at_source()
    s.read(sources={"address.home": "svc_er"})
    s.read(categories=[])  # the source held nothing for this citizen: nothing released
    assert s.failures() == []
    stranger = s.read(sources={"address.home": "svc_1"})  # registered, holds nothing
    unknown = s.read(sources={"address.home": "svc_9"})
    unreleased = s.read(categories=[], derived=[], sources={"address.home": "svc_er"})
    assert s.failures() == [(i, "access.source") for i in (stranger, unknown, unreleased)]


def test_a_source_may_be_named_for_a_derived_answer_alone() -> None:
    # resident_in: reads the home address at source and releases only the answer.
    s = at_source()
    s.read(categories=[], sources={"address.home": "svc_er"})  # derived: age_over_65
    assert s.failures() == []
    s.read(categories=[], derived=[], sources={"address.home": "svc_er"})
    s.read(categories=[], sources={"address.home": "svc_1"})  # not its holder
    assert [rule for _, rule in s.failures()] == ["access.source", "access.source"]


def test_what_is_held_at_source_is_never_stored_nor_released_from_the_vault() -> None:
    s = at_source()
    stored = s.own_write("address.home")
    released = s.read()  # address.home, but from no source
    assert s.failures() == [(stored, "record.held"), (released, "access.source")]
    assert "names no source" in s.check().failures[1].detail
    # The same from a state saved before them: what is held is in the registrations.
    saved = StoryChecker(rp_id=RP_ID, origins=[ORIGIN])
    for i, e in enumerate(s.entries[:stored]):
        saved.feed(i, e)
    then = StoryChecker.from_state(json.loads(json.dumps(saved.to_state())), rp_id=RP_ID,
                                   origins=[ORIGIN])
    for i, e in enumerate(s.entries[stored:], start=stored):
        then.feed(i, e)
    assert [(f.index, f.rule) for f in then.failures] == s.failures()
    # Before the register held it, a stored value was the citizen's own, released as such.
    s = Story().approved()
    s.own_write("address.home")
    s.read()
    assert s.failures() == []


def test_holding_at_source_is_for_an_issuer_and_one_service_a_category() -> None:
    s = Story()
    i = register(s, issues=[])
    j = register(s, "svc_er2")  # address.home is svc_er's
    assert s.failures() == [(i, "service"), (j, "service")]
    assert "held by another already" in s.check().failures[1].detail


@pytest.mark.parametrize("field", ["issuers", "sources"])
@pytest.mark.parametrize("value", [[AA], {}, {AA: 3}, "svc_aa"])
def test_malformed_issuers_or_sources_are_entry_failures(field: str, value: Any) -> None:
    s = linked()
    s.write()
    i = read(s, **{field: value})
    assert s.failures() == [(i, "entry")]


@pytest.mark.parametrize("categories", [[], [AA]])
def test_any_read_under_a_grant_only_to_write_is_a_failure(categories: list[str]) -> None:
    s = linked()
    i = s.read("gr_w", categories=categories, derived=[])
    assert s.failures() == [(i, "access.scope")]
    assert "only to write" in s.check().failures[0].detail


class _Counting(PiiScanner):
    """The personal-data scan, counting the bodies it is asked to scan."""

    def __init__(self) -> None:
        super().__init__()
        self.scanned: list[Any] = []

    def scan(self, body: Any, *, time: str = "", thorough: bool = False) -> list[PiiFinding]:
        self.scanned.append(body)
        return super().scan(body, time=time, thorough=thorough)


def test_a_read_in_order_naming_issuers_and_sources_is_not_scanned_again() -> None:
    """What it names was scanned where it was named first (the record's entry, the
    source's registration); a read out of order is scanned whole."""
    s = linked()
    s.write()
    fine = read(s, issuers={AA: ISSUER})
    bogus = read(s, issuers={AA: "ada@example.com"})
    scanner = _Counting()
    checks = EntryChecks(StoryChecker(rp_id=RP_ID, origins=[ORIGIN]), scanner)
    for i, e in enumerate(s.entries):
        checks.feed(i, orjson.dumps(e))
    assert s.entries[fine]["body"] not in scanner.scanned
    assert s.entries[bogus]["body"] in scanner.scanned
    assert [(f.index, f.rule) for f in checks.failures] == [(bogus, "access.issuer"),
                                                           (bogus, "personal_data")]


# -- 5. entries from before issuers -----------------------------------------------------------


def test_records_written_before_issuers_verify_as_before() -> None:
    s = Story().approved()
    s.own_write("address.home")
    s.own_write("address.home", source="svc_1")
    s.add("record.deleted", {"subject": "sub_1", "category": "address.home", "versions": 2})
    s.own_write("address.home")
    s.read()
    s.own_write("health.observations")
    s.entries[-1]["body"]["items"] = 12  # the citizen's own batch of a series
    # Without an issuer, versions out of order are not this checker's to judge (they
    # were not before), and nor is a disputed or withdrawn story.
    s.add("record.written", {"subject": "sub_1", "record_id": "rec_x",
                             "category": "address.home", "version": 1, "source": "citizen"})
    c = s.check()
    assert c.failures == [] and c.warnings == []


def test_a_state_saved_before_record_stories_loads_and_goes_on() -> None:
    s = linked()
    s.own_write(UC)
    s.write()
    checker = s.check()
    state = json.loads(json.dumps(checker.to_state()))
    # What only the citizen wrote is kept as its newest version alone.
    assert state["records"] == {"sub_1": {AA: [1, ISSUER, [[1, 1, ISSUER]], [], []], UC: 1}}
    del state["records"], state["stats"]["records_checked"]
    c = StoryChecker.from_state(state, rp_id=RP_ID, origins=[ORIGIN])
    c.feed(len(s.entries), {**s.entries[-1], "body": {
        **s.entries[-1]["body"], "version": 2}})
    assert c.failures == []  # nothing known of before: a record from here on


# -- the auditor against a model, over random interleavings ----------------------------------

# Mostly writes, withdrawals and reads, mostly of one category: so that a record is
# written, withdrawn, written again and read in most examples.
_CAT = st.sampled_from([AA, AA, AA, UC])
_OPS = st.lists(st.one_of(
    st.tuples(st.sampled_from(["write", "withdraw"]), st.integers(0, 3), _CAT),
    st.tuples(st.sampled_from(["read", "read", "own"]), _CAT),
    st.tuples(st.sampled_from(["revoke", "pause", "resume"]), st.integers(0, 3)),
    st.tuples(st.just("grant"), st.sampled_from([(AA,), (UC,), (AA, UC)])),
), min_size=10, max_size=30)

_ENDS = {"revoke": ("grant.revoked", {"approved", "paused"}, "revoked"),
         "pause": ("grant.paused", {"approved"}, "paused"),
         "resume": ("grant.resumed", {"paused"}, "approved")}


@settings(max_examples=80, deadline=None)
@given(ops=_OPS, split=st.floats(0, 1))
@example(ops=[("write", 0, AA), ("withdraw", 0, AA), ("write", 0, AA), ("read", AA),
              ("own", AA), ("withdraw", 0, AA), ("read", AA)], split=0.5)
def test_the_auditor_agrees_with_a_model_of_grants_and_records(ops: list[Any],
                                                               split: float) -> None:
    """The model: a grant is approved, paused or revoked; a write or withdrawal is fine
    under an approved grant over its category; a withdrawal needs the newest version to
    be the issuer's, not withdrawn; a read may name the issuer of what it wrote and has
    not withdrawn since. Every entry the model calls wrong, and only those, fails, with
    the rule the model expects among its failures; and so it does when the checker's
    state is saved and loaded at any entry."""
    s = linked(write=(AA, UC))
    state: dict[str, str] = {"gr_w": "approved"}
    cats: dict[str, tuple[str, ...]] = {"gr_w": (AA, UC)}
    newest: dict[str, str] = {}  # category -> who wrote its newest version
    withdrawn: set[str] = set()  # categories whose issued record is withdrawn
    wrote: set[str] = set()  # categories the issuer has written
    expected: dict[int, str] = {}
    for op in ops:
        grants = list(state)
        if op[0] == "grant":
            gid = f"gr_{len(grants)}"
            s.request(write_terms(gid, categories=op[1]))
            s.approve(gid)
            state[gid], cats[gid] = "approved", op[1]
        elif op[0] in _ENDS:
            gid = grants[op[1] % len(grants)]
            kind, before, after = _ENDS[op[0]]
            if state[gid] in before:  # (the citizen cannot sign what the vault refuses)
                s.action(kind, gid)
                state[gid] = after
        elif op[0] in ("write", "withdraw"):
            gid = grants[op[1] % len(grants)]
            cat = op[2]
            grant_fault = ("write.state" if state[gid] != "approved" else
                           "write.scope" if cat not in cats[gid] else None)
            if op[0] == "write":
                i = s.write(cat, grant=gid)
                newest[cat] = ISSUER
                wrote.add(cat)
                withdrawn.discard(cat)
                fault = grant_fault
            else:
                i = s.withdraw(cat, grant=gid)
                if newest.get(cat) == ISSUER and cat not in withdrawn:
                    withdrawn.add(cat)
                    fault = grant_fault
                else:
                    fault = grant_fault or "withdraw.record"
            if fault:
                expected[i] = fault
        elif op[0] == "own":
            s.own_write(op[1])
            newest[op[1]] = "citizen"
        else:
            i = read(s, op[1], issuers={op[1]: ISSUER})
            if op[1] not in wrote or op[1] in withdrawn:
                expected[i] = "access.issuer"
    at = round(split * len(s.entries))
    first = StoryChecker(rp_id=RP_ID, origins=[ORIGIN])
    for i, e in enumerate(s.entries[:at]):
        first.feed(i, e)
    then = StoryChecker.from_state(json.loads(json.dumps(first.to_state())), rp_id=RP_ID,
                                   origins=[ORIGIN])
    for i, e in enumerate(s.entries[at:], start=at):
        then.feed(i, e)
    assert first.failures + then.failures == s.check().failures
    found: dict[int | None, list[str]] = {}
    for f in s.check().failures:
        found.setdefault(f.index, []).append(f.rule)
    assert set(found) == set(expected), (found, expected)
    for i, rule in expected.items():
        assert rule in found[i], (i, rule, found[i])
