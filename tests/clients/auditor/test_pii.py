"""The personal-data scan: what it flags, what it leaves alone, and that its fast path
(a prefilter over the entry's bytes) never lets through what the full walk would flag."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.auditjourney import Journey, shared_journey

from clients.auditor.pii import CATALOG_SHAPES, PiiScanner, shapes_from_catalog

CATALOG = Path(__file__).resolve().parents[3] / "vault" / "domain" / "catalog" / \
    "categories.json"
scanner = PiiScanner()
TIME = "2026-11-22T09:00:00.000Z"


def scan(body: dict[str, Any]) -> list[str]:
    """Findings with the fast first look (as the verifier runs it), which must equal the
    thorough walk's, on a fresh scanner and on one that has seen it all before."""
    fast = PiiScanner().scan(body, time=TIME)
    assert fast == scanner.scan(body, time=TIME) == scanner.scan(body, time=TIME, thorough=True)
    return [str(f) for f in fast]


@pytest.mark.parametrize(("value", "what"), [
    ("ada.lovelace@example.org", "an email address"),
    ("write to ada@example.co.uk please", "an email address"),
    ("+447700900123", "a phone number"),
    ("+44 7700 900123", "a phone number"),
    ("07700 900123", "a phone number"),
    ("call (020) 7946 0958", "a phone number"),
    ("SW1A 1AA", "a UK postcode"),
    ("lives at sw1y4jh", "a UK postcode"),
    ("M1 1AE", "a UK postcode"),
    ("1950-12-10", "a date (of birth?)"),
    ("born on 2001-02-03.", "a date (of birth?)"),
])
def test_personal_data_in_a_string_is_flagged(value: str, what: str) -> None:
    assert scan({"grant_id": "gr_x", "note": value}) == [f"body.note looks like {what}"]


@pytest.mark.parametrize("value", [
    {"given": "Ada", "family": "Lovelace"},
    {"lines": ["12 St James's Square"], "town": "London", "postcode": "SW1Y 4JH",
     "local_authority": "Westminster"},
    {"receiving": True},
    {"name": "Riverside Health Centre", "ods_code": "Y01234"},
    {"number": "AB12", "expires": "2030-01-01"},
])
def test_an_object_shaped_like_a_catalog_value_is_flagged(value: dict[str, Any]) -> None:
    found = scan({"subject": "sub_x", "extra": {"inner": [value]}})
    assert len(found) == 1 and found[0].startswith("body.extra.inner[0] looks like a value of")


@pytest.mark.parametrize("value", [
    "sub_Ab3dEf_hIjKlMnOpQrStUv", "gr_3dyXuzso8FL-01fxwTErnA", "svc_K7x9_2mZ4aQ1",
    "kek_0123456789abcdef", "rec_ZZ1A1AAqwertyuiopasdf",
    "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=",  # a hash in base64
    "k-8SJ7Mhq4XZ9fOByz01p3l2uQx0tRwMlY8_aV3bCd4",  # base64url
    "identity.date_of_birth", "contact.email", "contact.phone", "address.home",
    "P30D", "PT1H", "P1DT2H30M", "citizen_erased", "eligibility_assessment",
    "Blue Badge team", "To check you can have a Blue Badge.", "http://localhost:8000",
    "2027-06-01",  # later than the entry: not a date of birth
])
def test_the_vaults_own_values_are_not_flagged(value: str) -> None:
    assert scan({"x": value, "list": [value]}) == []


def test_times_in_time_fields_are_not_flagged() -> None:
    body = {"terms": {"not_before": "1950-12-10", "expires_at": "1960-12-10T00:00:00Z"}}
    assert scan(body) == []


def test_the_shapes_are_the_catalogs() -> None:
    catalog = json.loads(CATALOG.read_text())
    assert shapes_from_catalog(catalog) == CATALOG_SHAPES


@pytest.fixture(scope="module")
def journey(tmp_path_factory: pytest.TempPathFactory) -> Journey:
    return shared_journey(tmp_path_factory)


def test_a_real_journey_holds_no_personal_data(journey: Journey) -> None:
    """Ada's name, birthday and address are in the vault, never on the ledger."""
    for e in journey.entries:
        assert scanner.scan(e["body"], time=e["time"], thorough=True) == [], e
        assert scanner.scan(e["body"], time=e["time"]) == []


_PII = st.sampled_from(["ada@example.org", "+447700900123", "07700 900123", "SW1A 1AA",
                        "1950-12-10", "x m1 1ae y"])
_SAFE = st.text(alphabet="abcXYZ019_-+/=. @:", max_size=30)
_KEYS = st.sampled_from(["note", "given", "family", "town", "lines", "postcode",
                         "local_authority", "name", "ods_code", "not_before", "a"])
_VALUES = st.recursive(
    st.one_of(_PII, _SAFE, st.integers(-10**6, 10**6), st.booleans(), st.none()),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(_KEYS, inner, max_size=5)),
    max_leaves=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies=st.lists(st.dictionaries(_KEYS, _VALUES, max_size=5), min_size=1, max_size=4),
       years=st.lists(st.sampled_from(["1949", "1950", "2026"]), min_size=4, max_size=4))
def test_the_fast_look_never_hides_what_the_walk_finds(bodies: list[dict[str, Any]],
                                                       years: list[str]) -> None:
    """Whatever the scanner remembers from earlier entries (and their years)."""
    remembering = PiiScanner(remember=5)
    for body, year in zip(bodies, years, strict=False):
        time = year + TIME[4:]
        assert remembering.scan(body, time=time) == scanner.scan(body, time=time,
                                                                 thorough=True)
