"""Write grants (issue 12, ARCHITECTURE §8): `actions` in the terms, what the catalog lets
be issued, the rules of a request to write, reads under a grant only to write, and the
consent screen's words. Terms that only read keep their old JSON, byte for byte."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.canonical import canonical_json
from vault.domain.categories import categories, issuable_codes
from vault.domain.derived import static_derived_names
from vault.domain.durations import format_duration
from vault.domain.errors import AccessDenied, GrantRefused
from vault.domain.grants import (
    Access,
    GrantState,
    GrantTerms,
    check_read,
    describe,
    plain_terms,
    request_terms,
)
from vault.domain.purposes import purposes
from vault.domain.services import ServiceProfile
from vault.domain.terms import MAX_READS_LIMIT

# --- the catalog ---


def test_the_catalog_says_which_categories_may_be_issued() -> None:
    issuable = set(issuable_codes())
    assert {"benefits.attendance_allowance", "benefits.universal_credit",
            "health.observations", "identity.name", "identity.date_of_birth"} <= issuable
    # What only the citizen can say stays theirs.
    assert not {"contact.email", "contact.phone", "address.home"} & issuable
    for code in issuable:
        assert categories()[code].issuable and categories()[code].issued_by
    assert (categories()["identity.name"].issued_by or "").startswith("a registrar")
    assert categories()["contact.email"].issued_by is None


# --- terms that only read: the JSON (and hash) they always had ---

def old_json(t: GrantTerms) -> dict[str, Any]:
    """The terms' JSON as it was written before `actions` existed (the oracle)."""
    return {"grant_id": t.grant_id, "service_id": t.service_id, "purpose": t.purpose,
            "categories": list(t.categories), "derived": list(t.derived),
            "not_before": t.not_before, "expires_at": t.expires_at,
            "access": {"mode": t.access.mode, "max_reads": t.access.max_reads,
                       "min_interval": t.access.min_interval},
            "data_life": t.data_life, "justification": t.justification}


ids = st.from_regex(r"[A-Za-z0-9_-]{1,100}", fullmatch=True)
accesses = st.one_of(
    st.just(Access("one_time")),
    st.tuples(st.none() | st.integers(1, MAX_READS_LIMIT),
              st.none() | st.integers(1, 3650 * 86_400))
    .filter(lambda t: t != (None, None))
    .map(lambda t: Access("periodic", max_reads=t[0], min_interval=None if t[1] is None
                          else format_duration(timedelta(seconds=t[1])))),
)


@st.composite
def read_terms(draw: st.DrawFn) -> GrantTerms:
    start = draw(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1)))
    start = start.replace(microsecond=0)
    length = draw(st.integers(1, 3650 * 86_400))
    cats = draw(st.lists(st.sampled_from(sorted(categories())), max_size=5))
    derived = draw(st.lists(st.sampled_from([*static_derived_names(), "resident_in:Leeds",
                                             "receives:universal_credit"]), max_size=3))
    spelled: dict[str, Any] = draw(st.sampled_from(
        [{}, {"actions": ("read",)}, {"actions": ["read", "read"]}]))
    return GrantTerms(
        grant_id=draw(ids), service_id=draw(ids),
        purpose=draw(st.sampled_from(sorted(purposes()))),
        categories=tuple(cats), derived=tuple(derived),
        not_before=start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        expires_at=(start + timedelta(seconds=length)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        access=draw(accesses),
        data_life=format_duration(timedelta(seconds=draw(st.integers(0, 3650 * 86_400)))),
        justification=draw(st.text(st.characters(min_codepoint=32, max_codepoint=126),
                                   min_size=1, max_size=80).filter(str.strip)),
        **spelled)


@settings(max_examples=200, deadline=None)
@given(read_terms())
def test_terms_that_only_read_hash_as_they_always_did(terms: GrantTerms) -> None:
    assert terms.actions == ("read",) and terms.can_read and not terms.can_write
    assert terms.to_json() == old_json(terms)
    assert "actions" not in terms.to_json()
    assert canonical_json(terms.to_json()) == canonical_json(old_json(terms))
    assert terms.terms_hash() == hashlib.sha256(canonical_json(old_json(terms))).digest()
    assert GrantTerms.from_json(old_json(terms)) == terms


# --- terms that write ---

WRITE = GrantTerms(
    grant_id="g_w", service_id="svc_aa", purpose="service_provision",
    categories=("benefits.attendance_allowance",), derived=(),
    not_before="2026-03-01T09:00:00Z", expires_at="2027-03-01T09:00:00Z",
    access=Access("one_time"), data_life="P0D",
    justification="To record your Attendance Allowance award.", actions=("write",),
)


def test_write_terms_say_so_and_hash_differently() -> None:
    obj = WRITE.to_json()
    assert obj["actions"] == ["write"]
    assert GrantTerms.from_json(obj) == WRITE
    assert GrantTerms.from_json(json.loads(json.dumps(obj))).terms_hash() == WRITE.terms_hash()
    assert WRITE.terms_hash() == hashlib.sha256(canonical_json(obj)).digest()
    read = dataclasses.replace(WRITE, actions=("read",))
    assert read.terms_hash() != WRITE.terms_hash()
    assert WRITE.can_write and not WRITE.can_read
    both = dataclasses.replace(WRITE, actions=("write", "read", "write"))
    assert both.actions == ("read", "write") and both.to_json()["actions"] == ["read", "write"]
    assert both.terms_hash() not in (read.terms_hash(), WRITE.terms_hash())


@pytest.mark.parametrize(("changes", "words"), [
    ({"actions": ()}, "actions must not be empty"),
    ({"actions": "write"}, "actions must be a list"),
    ({"actions": ("delete",)}, "'delete' is not an action"),
    ({"actions": (1,)}, "'1' is not an action"),
    ({"derived": ("age_over_18",)}, "cannot name derived answers"),
    ({"categories": ()}, "must name the categories it writes"),
])
def test_bad_write_terms_are_refused(changes: dict[str, Any], words: str) -> None:
    with pytest.raises(GrantRefused, match=words):
        dataclasses.replace(WRITE, **changes)


def test_stored_terms_have_one_spelling_of_read_only() -> None:
    # ["read"] written out would hash differently from the same terms as signed.
    with pytest.raises(GrantRefused, match="leave actions out"):
        GrantTerms.from_json({**WRITE.to_json(), "actions": ["read"]})
    with pytest.raises(GrantRefused, match="not an action"):
        GrantTerms.from_json({**WRITE.to_json(), "actions": ["admin"]})


# --- a request to write, against the registration ---

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ISSUER = ServiceProfile(
    id="svc_aa", name="Attendance Allowance Unit", description="Awards",
    purposes=frozenset({"service_provision"}), categories=frozenset({"address.home"}),
    derived=frozenset({"age_over_65"}), max_days=365, active=True,
    issues=frozenset({"benefits.attendance_allowance", "address.home"}),
)


def ask(service: ServiceProfile = ISSUER, **changes: Any) -> GrantTerms:
    fields: dict[str, Any] = {
        "grant_id": "g_w", "purpose": "service_provision",
        "categories": ["benefits.attendance_allowance"], "derived": [],
        "duration": timedelta(days=365), "access": Access("one_time"), "data_life": "P0D",
        "justification": "To record your Attendance Allowance award.", "now": NOW,
        "actions": ["write"],
    }
    fields.update(changes)
    return request_terms(service, **fields)


def test_an_issuer_may_ask_to_write_what_it_issues() -> None:
    assert ask() == WRITE
    # Absent means read, as before.
    read = ask(actions=("read",), categories=["address.home"])
    assert read.actions == ("read",) and "actions" not in read.to_json()


@pytest.mark.parametrize(("changes", "words"), [
    ({"categories": ["benefits.universal_credit"]},
     "not registered to issue the category 'benefits.universal_credit'"),
    # Registered to issue it (a registration from before the catalog changed, say), but
    # the catalog lets no service write it.
    ({"categories": ["address.home"]}, "the catalog lets no service issue it"),
    ({"derived": ["age_over_65"]}, "cannot name derived answers"),
    ({"categories": [], "derived": ["age_over_65"]}, "cannot name derived answers"),
    ({"categories": []}, "must name the categories it writes"),
    ({"actions": ["read", "write"]},
     "not registered to read the category 'benefits.attendance_allowance'"),
    ({"actions": []}, "actions must not be empty"),
    ({"actions": ["erase"]}, "'erase' is not an action"),
])
def test_a_request_to_write_beyond_the_registration_is_refused(
        changes: dict[str, Any], words: str) -> None:
    with pytest.raises(GrantRefused, match=words):
        ask(**changes)


def test_a_reader_may_not_ask_to_write() -> None:
    reader = dataclasses.replace(ISSUER, issues=frozenset(),
                                 categories=frozenset({"benefits.attendance_allowance"}))
    assert ask(reader, actions=["read"]).can_read
    with pytest.raises(GrantRefused, match="not registered to issue"):
        ask(reader)


def test_read_and_write_needs_both_registrations() -> None:
    both = dataclasses.replace(ISSUER, categories=frozenset({"benefits.attendance_allowance"}))
    terms = ask(both, actions=["write", "read"])
    assert terms.actions == ("read", "write")


# --- reads under a grant only to write ---

def test_a_grant_only_to_write_allows_no_read() -> None:
    with pytest.raises(AccessDenied) as info:
        check_read(state=GrantState.APPROVED, terms=WRITE, now=NOW + timedelta(days=1),
                   reads_used=0, last_read_at=None, service_active=True)
    assert info.value.reason == "insufficient_scope" and "not read" in str(info.value)
    both = dataclasses.replace(WRITE, actions=("read", "write"))
    check_read(state=GrantState.APPROVED, terms=both, now=NOW + timedelta(days=1),
               reads_used=0, last_read_at=None, service_active=True)


# --- the consent screen's words ---

def test_the_words_say_the_service_adds_to_the_vault() -> None:
    plain = plain_terms(WRITE, service_name="Attendance Allowance Unit")
    assert plain.intro == "Attendance Allowance Unit is asking to add information to your vault."
    assert plain.adds is not None and "add to your vault" in plain.adds
    assert plain.adds.endswith(": Attendance Allowance.")
    # For a page that lists the categories beside it: the same sentence, no labels.
    assert plain.may_change == "They may change or withdraw what they added while this lasts."
    assert plain.may_change not in plain.lines()
    assert plain.sees is None and plain.keep is None
    assert "does not let them see anything" in plain.how_often
    assert plain.when \
        == "From 1 March 2026 at 09:00 UTC until 1 March 2027 at 09:00 UTC (365 days)."
    lines = describe(WRITE, service_name="Attendance Allowance Unit")
    assert lines[2] == plain.adds and None not in lines
    both = plain_terms(dataclasses.replace(WRITE, actions=("read", "write")),
                       service_name="Attendance Allowance Unit")
    assert both.intro.endswith("add information to your vault, and to see it.")
    assert both.sees == "They will see: Attendance Allowance." and both.adds
    assert both.keep is not None and both.how_often == "They can look once."
