"""Grant terms: shape, JSON round trip, terms_hash; request_terms; lapse_deadline; describe."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.domain.categories import categories
from vault.domain.derived import static_derived_names
from vault.domain.durations import format_duration
from vault.domain.errors import GrantRefused
from vault.domain.grants import (
    CLOCK_SKEW,
    Access,
    GrantTerms,
    describe,
    lapse_deadline,
    request_terms,
)
from vault.domain.purposes import purposes
from vault.domain.services import ServiceProfile
from vault.domain.terms import MAX_READS_LIMIT, format_utc, parse_utc

EXAMPLE = GrantTerms(
    grant_id="g_1", service_id="svc_leeds", purpose="eligibility_assessment",
    categories=("transport.blue_badge", "address.home", "transport.blue_badge"),
    derived=("resident_in:Leeds",),
    not_before="2026-03-01T09:00:00Z", expires_at="2026-03-31T09:00:00Z",
    access=Access("periodic", max_reads=5, min_interval="PT24H"),
    data_life="P30D", justification="To renew your Blue Badge \u2014 caf\u00e9",
)
# RFC 8785 bytes written out by hand: keys in code-unit order, no spaces, UTF-8 as is.
EXAMPLE_JCS = (
    '{"access":{"max_reads":5,"min_interval":"P1D","mode":"periodic"},'
    '"categories":["address.home","transport.blue_badge"],"data_life":"P30D",'
    '"derived":["resident_in:Leeds"],"expires_at":"2026-03-31T09:00:00Z","grant_id":"g_1",'
    '"justification":"To renew your Blue Badge \u2014 caf\u00e9",'
    '"not_before":"2026-03-01T09:00:00Z","purpose":"eligibility_assessment",'
    '"service_id":"svc_leeds"}'
).encode()
ONE_TIME = GrantTerms(
    grant_id="g2", service_id="svc2", purpose="age_verification", categories=(),
    derived=("age_over_18",), not_before="2026-03-01T09:00:00Z",
    expires_at="2026-03-01T10:00:00Z", access=Access("one_time", max_reads=1),
    data_life="P0D", justification="Age check",
)


def test_terms_hash_is_sha256_of_the_canonical_terms() -> None:
    assert EXAMPLE.terms_hash() == hashlib.sha256(EXAMPLE_JCS).digest()
    # Pinned, so any change to the JSON form of terms shows up here.
    assert EXAMPLE.terms_hash().hex() == (
        "db39cee5bdbbf5e42469a99fd2c7307cf92fb9a70cea7f9040921bfa579ab9c1"
    )
    assert ONE_TIME.terms_hash().hex() == (
        "f4adf7f6f3cc4b9dcbadea611c8416cc597d881c91dafbfc0dee20c499c385cd"
    )


def test_terms_are_normalised() -> None:
    assert EXAMPLE.categories == ("address.home", "transport.blue_badge")
    assert EXAMPLE.access.min_interval == "P1D"
    assert ONE_TIME.access.max_reads is None and ONE_TIME.data_life == "PT0S"


def test_access_json_may_leave_out_unset_fields() -> None:
    assert Access.from_json({"mode": "one_time"}) == Access("one_time")
    assert Access.from_json({"mode": "periodic", "max_reads": 2}) == Access("periodic", 2)
    assert Access("periodic", 2).to_json() == {"mode": "periodic", "max_reads": 2,
                                               "min_interval": None}


def test_to_json_holds_plain_json() -> None:
    obj = EXAMPLE.to_json()
    assert json.loads(json.dumps(obj)) == obj
    # Every field but `actions`, which terms that only read leave out.
    assert set(obj) == {f.name for f in dataclasses.fields(GrantTerms)} - {"actions"}


# --- bad shapes ---

def with_(**changes: Any) -> dict[str, Any]:
    obj = EXAMPLE.to_json()
    obj.update(changes)
    return obj


BAD_JSON: list[tuple[Any, str]] = [
    ([], "must be a JSON object"),
    ({k: v for k, v in EXAMPLE.to_json().items() if k != "purpose"}, "missing purpose"),
    (with_(extra=1), "unexpected field(s): extra"),
    (with_(grant_id=""), "grant_id must be"),
    (with_(grant_id="g 1"), "grant_id must be"),
    (with_(service_id=5), "service_id must be"),
    (with_(purpose="Eligibility"), "purpose must be a purpose code"),
    (with_(categories="address.home"), "categories must be a list"),
    (with_(categories=["Address"]), "not a valid entry for categories"),
    (with_(derived=[""]), "every entry of derived"),
    (with_(derived=["age\nover"]), "every entry of derived"),
    (with_(not_before="2026-03-01T09:00:00.000Z"), "UTC, whole seconds"),
    (with_(not_before="2026-03-01T09:00:00+00:00"), "UTC, whole seconds"),
    (with_(not_before="2026-02-30T09:00:00Z"), "not a real date"),
    (with_(expires_at="2026-03-01T09:00:00Z"), "expires_at must be after not_before"),
    (with_(expires_at="2026-02-01T09:00:00Z"), "expires_at must be after not_before"),
    (with_(access={"mode": "periodic"}), "needs max_reads, min_interval or both"),
    (with_(access={"max_reads": 1}), "access must be a JSON object with a mode"),
    (with_(access={"mode": "one_time", "limit": 1}), "unexpected field(s): limit"),
    (with_(access={"mode": "often", "max_reads": None, "min_interval": None}), "access mode"),
    (with_(data_life="P1Y"), "data_life"),
    (with_(data_life="P3651D"), "at most 3650 days"),
    (with_(justification=""), "justification"),
    (with_(justification="   "), "justification"),
    (with_(justification="x" * 501), "at most 500"),
    (with_(justification="ok\x07"), "control characters"),
    (with_(justification="pay \u202eevil"), "control characters"),
    (with_(justification="two\u2028lines"), "control characters"),
]


@pytest.mark.parametrize(("obj", "words"), BAD_JSON)
def test_from_json_refuses_bad_shapes(obj: Any, words: str) -> None:
    with pytest.raises(GrantRefused) as info:
        GrantTerms.from_json(obj)
    assert words in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"mode": "one_time", "max_reads": 2}, "exactly one read"),
        ({"mode": "one_time", "min_interval": "PT1H"}, "cannot have a min_interval"),
        ({"mode": "periodic"}, "needs max_reads, min_interval or both"),
        ({"mode": "periodic", "max_reads": 0}, "from 1 to"),
        ({"mode": "periodic", "max_reads": MAX_READS_LIMIT + 1}, "from 1 to"),
        ({"mode": "periodic", "max_reads": True}, "from 1 to"),
        ({"mode": "periodic", "max_reads": 2.0}, "from 1 to"),
        ({"mode": "periodic", "min_interval": "PT0S"}, "at least 1 second"),
        ({"mode": "periodic", "min_interval": "P1M"}, "min_interval"),
        ({"mode": "periodic", "min_interval": "P3651D"}, "at most 3650 days"),
        ({"mode": "sometimes"}, "'one_time' or 'periodic'"),
    ],
)
def test_access_rules(kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(GrantRefused) as info:
        Access(**kwargs)
    assert words in str(info.value)


# --- properties ---

BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
ids = st.from_regex(r"[A-Za-z0-9_-]{1,24}", fullmatch=True)
seconds = st.integers(min_value=0, max_value=3650 * 86_400)
accesses = st.one_of(
    st.just(Access("one_time")),
    st.tuples(st.none() | st.integers(1, MAX_READS_LIMIT),
              st.none() | st.integers(1, 3650 * 86_400))
    .filter(lambda t: t != (None, None))
    .map(lambda t: Access("periodic", max_reads=t[0], min_interval=None if t[1] is None
                          else format_duration(timedelta(seconds=t[1])))),
)
justifications = st.text(
    st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp"), exclude_characters=BIDI),
    min_size=1, max_size=500,
).filter(str.strip)
derived_names = st.sampled_from(
    [*static_derived_names(), "resident_in:Leeds", "resident_in:E08000035",
     "receives:universal_credit", "receives:attendance_allowance"]
)


@st.composite
def grant_terms(draw: st.DrawFn) -> GrantTerms:
    start = draw(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1)))
    length = draw(st.integers(1, 3650 * 86_400))
    start = start.replace(microsecond=0)
    return GrantTerms(
        grant_id=draw(ids), service_id=draw(ids),
        purpose=draw(st.sampled_from(sorted(purposes()))),
        categories=tuple(draw(st.lists(st.sampled_from(sorted(categories())), max_size=5))),
        derived=tuple(draw(st.lists(derived_names, max_size=3))),
        not_before=start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        expires_at=(start + timedelta(seconds=length)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        access=draw(accesses),
        data_life=format_duration(timedelta(seconds=draw(seconds))),
        justification=draw(justifications),
    )


@settings(max_examples=150, deadline=None)
@given(grant_terms())
def test_json_round_trip(terms: GrantTerms) -> None:
    obj = terms.to_json()
    assert GrantTerms.from_json(obj) == terms
    assert GrantTerms.from_json(json.loads(json.dumps(obj))) == terms
    assert GrantTerms.from_json(obj).terms_hash() == terms.terms_hash()
    assert len(terms.terms_hash()) == 32


@settings(max_examples=150, deadline=None)
@given(grant_terms(), grant_terms())
def test_any_change_of_any_field_changes_the_hash(a: GrantTerms, b: GrantTerms) -> None:
    changed = 0
    for field in dataclasses.fields(GrantTerms):
        try:
            mixed = dataclasses.replace(a, **{field.name: getattr(b, field.name)})
        except GrantRefused:
            continue  # e.g. b's not_before after a's expires_at
        if mixed == a:
            assert mixed.terms_hash() == a.terms_hash()
        else:
            changed += 1
            assert mixed.terms_hash() != a.terms_hash(), field.name
    assert (a == b) == (a.terms_hash() == b.terms_hash())
    assert changed or a == b or _only_time_fields_differ(a, b)


def _only_time_fields_differ(a: GrantTerms, b: GrantTerms) -> bool:
    others = [f.name for f in dataclasses.fields(GrantTerms)
              if f.name not in ("not_before", "expires_at")]
    return all(getattr(a, n) == getattr(b, n) for n in others)


@settings(max_examples=100, deadline=None)
@given(grant_terms(), st.randoms(use_true_random=False))
def test_category_order_and_repeats_do_not_change_the_hash(terms: GrantTerms, rnd: Any) -> None:
    shuffled_categories = list(terms.categories) * 2
    shuffled_derived = list(terms.derived) + list(terms.derived[:1])
    rnd.shuffle(shuffled_categories)
    rnd.shuffle(shuffled_derived)
    again = dataclasses.replace(terms, categories=tuple(shuffled_categories),
                                derived=tuple(shuffled_derived))
    assert again == terms
    assert again.terms_hash() == terms.terms_hash()


@settings(max_examples=150, deadline=None)
@given(st.datetimes(min_value=datetime(1, 1, 1, 12), max_value=datetime(9999, 12, 30),
                    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5)),
                                               timezone(timedelta(hours=5, minutes=30))])))
def test_utc_text_round_trip(moment: datetime) -> None:
    text = format_utc(moment)
    assert len(text) == 20 and text.endswith("Z")
    back = parse_utc(text)
    assert back.tzinfo is UTC
    assert timedelta(0) <= moment - back < timedelta(seconds=1)  # fractions are cut, not rounded


# --- request_terms ---

NOW = datetime(2026, 3, 1, 9, 0, 0, 250_000, tzinfo=UTC)
SERVICE = ServiceProfile(
    id="svc_leeds", name="Leeds Blue Badge team", description="Blue Badges",
    purposes=frozenset({"eligibility_assessment", "service_provision"}),
    categories=frozenset({"address.home", "transport.blue_badge"}),
    derived=frozenset({"age_over_65", "resident_in:Leeds"}), max_days=90, active=True,
)


def ask(service: ServiceProfile = SERVICE, **changes: Any) -> GrantTerms:
    fields: dict[str, Any] = {
        "grant_id": "g_1", "purpose": "eligibility_assessment",
        "categories": ["transport.blue_badge", "address.home"],
        "derived": ["resident_in:Leeds"], "duration": timedelta(days=30),
        "access": Access("periodic", max_reads=5, min_interval="PT24H"),
        "data_life": "P30D", "justification": "To renew your Blue Badge \u2014 caf\u00e9",
        "now": NOW,
    }
    fields.update(changes)
    return request_terms(service, **fields)


def test_request_within_the_registration() -> None:
    assert ask() == EXAMPLE  # not_before = now, cut to whole seconds
    by_end = ask(duration=None, expires_at=datetime(2026, 3, 31, 9, tzinfo=UTC))
    assert by_end == EXAMPLE
    later = ask(not_before=NOW + timedelta(days=2), duration=timedelta(days=90))
    assert (later.not_before, later.expires_at) == ("2026-03-03T09:00:00Z",
                                                   "2026-06-01T09:00:00Z")
    skewed = ask(not_before=NOW - CLOCK_SKEW + timedelta(seconds=1))
    assert skewed.not_before == "2026-03-01T08:55:01Z"
    assert ask(categories=[], derived=["age_over_65"]).categories == ()


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"service": dataclasses.replace(SERVICE, active=False)}, "is suspended"),
        ({"purpose": "marketing"}, "unknown purpose 'marketing'"),
        ({"purpose": "research_with_consent"},
         "not registered for the purpose 'research_with_consent'"),
        ({"categories": ["identity.shoe_size"]}, "unknown category 'identity.shoe_size'"),
        ({"categories": ["contact.email"]}, "not registered to read the category 'contact.email'"),
        ({"categories": "address.home"}, "categories must be a list"),
        ({"derived": ["age_over_21"]}, "unknown derived answer"),
        ({"derived": ["age_over_18"]}, "not registered for the derived answer 'age_over_18'"),
        ({"derived": ["resident_in:Bradford"]}, "derived answer 'resident_in:Bradford'"),
        ({"categories": [], "derived": []}, "at least one category or derived answer"),
        ({"not_before": NOW - CLOCK_SKEW - timedelta(seconds=1)}, "not_before is in the past"),
        ({"not_before": NOW + timedelta(days=366)}, "at most 365 days ahead"),
        ({"not_before": datetime(2026, 3, 2, 9)}, "not_before must be a date and time with"),
        ({"expires_at": NOW + timedelta(days=1)}, "exactly one of them"),
        ({"duration": None}, "exactly one of them"),
        ({"duration": timedelta(0)}, "longer than zero"),
        ({"duration": timedelta(days=-1)}, "longer than zero"),
        ({"duration": timedelta(days=91)}, "at most 90 days"),
        ({"duration": timedelta(days=10**6)}, "at most 90 days"),
        ({"duration": timedelta(days=91, microseconds=5)}, "would last 91 days"),
        ({"duration": timedelta(microseconds=5)}, "expires_at must be after not_before"),
        ({"duration": None, "expires_at": NOW + timedelta(days=90, seconds=1)},
         "at most 90 days, but this request would last 90 days and 1 second"),
        ({"duration": None, "expires_at": NOW - timedelta(hours=1)},
         "expires_at must be after not_before"),
        ({"duration": None, "expires_at": datetime(2026, 4, 1)}, "expires_at must be a date"),
        ({"access": "one_time"}, "access must be one_time or periodic"),
        ({"data_life": "P1M"}, "data_life"),
        ({"justification": ""}, "justification"),
        ({"grant_id": "not valid!"}, "grant_id must be"),
    ],
)
def test_request_outside_the_registration_is_refused(changes: dict[str, Any],
                                                     words: str) -> None:
    service = changes.pop("service", SERVICE)
    with pytest.raises(GrantRefused) as info:
        ask(service, **changes)
    assert words in str(info.value)


def test_request_needs_an_aware_now() -> None:
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        ask(now=datetime(2026, 3, 1, 9))


# --- lapse_deadline and describe ---

def test_lapse_deadline_is_seven_days_or_expiry_whichever_first() -> None:
    asked = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    assert lapse_deadline(asked, EXAMPLE) == asked + timedelta(days=7)
    assert lapse_deadline(asked, ONE_TIME) == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    with pytest.raises(ValueError):
        lapse_deadline(datetime(2026, 3, 1, 9), EXAMPLE)


def test_describe_in_plain_english() -> None:
    lines = describe(EXAMPLE, service_name="Leeds Blue Badge team")
    text = "\n".join(lines)
    assert lines[0] == "Leeds Blue Badge team is asking to use some of your information."
    assert purposes()["eligibility_assessment"].text in text
    assert "They will see: Home address, Blue Badge." in text
    assert "yes or no answer (not your details) to: Whether you live in Leeds." in text
    assert "From 1 March 2026 at 09:00 UTC until 31 March 2026 at 09:00 UTC (30 days)." in text
    assert "They can look up to 5 times, and no more often than once every day." in text
    assert "keep what they see for 30 days" in text
    assert "\u201cTo renew your Blue Badge \u2014 caf\u00e9\u201d" in text
    assert "GDPR Article 6(1)(e)" in text
    assert "You can say no." in text
    once = "\n".join(describe(ONE_TIME, service_name="Age check",
                              purpose=purposes()["age_verification"]))
    assert "They can look once." in once and "They will see" not in once
    assert "They must not keep what they see" in once
