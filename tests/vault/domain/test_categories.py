"""The categories catalog: every schema is sound, good values pass, bad ones say why."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from vault.domain.categories import Category, categories, clean_value, is_email, validate_value
from vault.domain.errors import InvalidValue

REQUIRED_CODES = {
    "identity.name", "identity.date_of_birth", "contact.email", "contact.phone",
    "address.home", "benefits.attendance_allowance", "benefits.universal_credit",
    "health.gp_practice", "health.prescriptions", "health.observations",
    "education.school", "household.children", "transport.blue_badge",
}

GOOD: dict[str, Any] = {
    "identity.name": {"given": "Amara", "family": "Okafor"},
    "identity.date_of_birth": "1958-02-28",
    "contact.email": "amara.okafor@example.org",
    "contact.phone": "+447700900123",
    "address.home": {
        "lines": ["Flat 2", "14 Park Row"], "town": "Leeds", "postcode": "LS1 5HD",
        "local_authority": "Leeds",
    },
    "benefits.attendance_allowance": {
        "award": "higher", "since": "2023-06-01", "awarded_by": "Department for Work and Pensions",
    },
    "benefits.universal_credit": {"receiving": True, "since": "2024-01-15"},
    "health.gp_practice": {"name": "Park Row Surgery", "ods_code": "B86001"},
    "health.prescriptions": [{"medicine": "Metformin", "dose": "500 mg twice a day",
                              "since": "2022-09-10"}],
    "health.observations": [
        {"kind": "heart_rate", "value": 72, "unit": "bpm", "at": "2026-03-01T08:15:00Z"},
        {"kind": "blood_pressure", "value": "128/82", "unit": "mmHg",
         "at": "2026-03-01T08:16:30.250+01:00"},
    ],
    "education.school": {"name": "Park Primary", "urn": "107936"},
    "household.children": [
        {"given": "Tobi", "date_of_birth": "2017-09-03", "school_urn": "107936"},
        {"given": "Ada", "date_of_birth": "2024-12-01"},
    ],
    "household.universal_credit": {"receiving": False},
    "transport.blue_badge": {"number": "LS12345678", "expires": "2027-05-31"},
    **{f"relationship.{kind}": {"delegate": "psub_" + "A" * 22, "actions": ["view", "approve"],
                                "until": "2030-03-31T23:00:00Z"}
       for kind in ("parent", "attorney", "appointee")},
}

# (category, bad value, words the message must contain)
BAD: list[tuple[str, Any, str]] = [
    ("identity.name", {"given": "Amara"}, "missing the required field 'family'"),
    ("identity.name", {"given": "A", "family": "B", "nickname": "C"}, "not allowed: 'nickname'"),
    ("identity.name", {"given": 7, "family": "B"}, "given must be text"),
    ("identity.name", {"given": "", "family": "B"}, "given must not be empty"),
    ("identity.name", {"given": "A" * 101, "family": "B"}, "at most 100 characters"),
    ("identity.name", ["Amara", "Okafor"], "must be an object"),
    ("identity.date_of_birth", "2026-02-30", "not a valid date"),
    ("identity.date_of_birth", "1990-13-01", "not a valid date"),
    ("identity.date_of_birth", "19900101", "not a valid date"),
    ("identity.date_of_birth", "1990-01-01T00:00:00Z", "not a valid date"),
    ("identity.date_of_birth", 19900101, "must be text"),
    ("contact.email", "not-an-email", "not a valid email address"),
    ("contact.email", "a@b", "not a valid email address"),
    ("contact.email", "a..b@example.org", "not a valid email address"),
    ("contact.email", "a@-example.org", "not a valid email address"),
    ("contact.phone", "07700 900123", "UK phone number such as 07700 900123"),  # not cleaned
    ("contact.phone", "0770090012", "UK phone number such as 07700 900123"),
    ("contact.phone", "+447700900123\n", "control characters"),
    ("address.home", {**GOOD["address.home"], "postcode": "12345"}, "postcode must be a UK"),
    ("address.home", {**GOOD["address.home"], "postcode": "SW1A"}, "postcode must be a UK"),
    ("address.home", {**GOOD["address.home"], "postcode": "LS1 5HD\n"}, "control characters"),
    ("address.home", {**GOOD["address.home"], "lines": []}, "lines must have at least 1"),
    ("address.home", {**GOOD["address.home"], "lines": ["a"] * 5}, "at most 4 items"),
    ("address.home", {k: v for k, v in GOOD["address.home"].items() if k != "local_authority"},
     "missing the required field 'local_authority'"),
    ("benefits.attendance_allowance", {**GOOD["benefits.attendance_allowance"],
                                       "award": "middle"}, "award must be higher or lower"),
    ("benefits.attendance_allowance", {**GOOD["benefits.attendance_allowance"],
                                       "since": "2023-02-29"}, "since is not a valid date"),
    ("benefits.universal_credit", {"receiving": "yes"}, "receiving must be true or false"),
    ("benefits.universal_credit", {"receiving": 1}, "receiving must be true or false"),
    ("health.gp_practice", {"name": "X", "ods_code": "b86001"}, "ods_code must be an NHS"),
    ("health.prescriptions", [{"medicine": "M", "dose": "1"}], "[0] is missing"),
    ("health.observations", [{**GOOD["health.observations"][0], "value": 72.5}],
     "[0].value must be a whole number"),
    ("health.observations", [{**GOOD["health.observations"][0], "value": 72.0}],
     "fractional part"),
    ("health.observations", [{**GOOD["health.observations"][0], "value": True}],
     "[0].value must be a whole number or a short text"),
    ("health.observations", [{**GOOD["health.observations"][0], "at": "2026-03-01 08:15"}],
     "not a valid date and time"),
    ("health.observations", [{**GOOD["health.observations"][0], "at": "2026-03-01T08:15:00"}],
     "not a valid date and time"),
    ("health.observations", [{**GOOD["health.observations"][0], "at": "2026-02-29T08:15:00Z"}],
     "not a valid date and time"),
    ("health.observations", [{**GOOD["health.observations"][0], "kind": "Heart Rate"}],
     "kind must be a measurement name"),
    ("education.school", {"name": "P", "urn": "12345"}, "urn must be a school's unique"),
    ("household.children", [{"given": "T", "date_of_birth": "2017-02-30"}],
     "[0].date_of_birth is not a valid date"),
    ("household.children", {"given": "T", "date_of_birth": "2017-01-30"}, "must be a list"),
    ("transport.blue_badge", {"number": "LS-1", "expires": "2027-05-31"}, "number must be"),
    ("transport.blue_badge", {"number": "LS1"}, "missing the required field 'expires'"),
    ("relationship.attorney", {**GOOD["relationship.attorney"], "actions": ["approve"]},
     "actions"),
    ("relationship.attorney", {**GOOD["relationship.attorney"], "delegate": "cit_x"},
     "delegate"),
    ("relationship.parent", {**GOOD["relationship.parent"], "until": "2030-03-31"},
     "until"),
]


def test_catalog_has_every_required_category() -> None:
    assert set(categories()) >= REQUIRED_CODES
    assert set(GOOD) == set(categories()), "every category needs a good example here"


@pytest.mark.parametrize("code", sorted(REQUIRED_CODES))
def test_every_category_is_described_and_its_schema_is_sound(code: str) -> None:
    cat = categories()[code]
    assert isinstance(cat, Category) and cat.code == code
    assert cat.label and cat.description
    Draft202012Validator.check_schema(dict(cat.schema))
    _assert_strict(cat.schema)


def _assert_strict(schema: Any) -> None:
    """Every object is closed, every string bounded, and no JSON number allows fractions."""
    if isinstance(schema, dict):
        assert schema.get("type") != "number", "use integer: fractions are not allowed"
        if schema.get("type") == "object":
            assert schema.get("additionalProperties") is False
            assert schema.get("required"), "objects must have required fields"
        if schema.get("type") == "string":
            assert "maxLength" in schema or "pattern" in schema or "format" in schema \
                or "enum" in schema
        for v in schema.values():
            _assert_strict(v)
    elif isinstance(schema, list):
        for v in schema:
            _assert_strict(v)


def accepted(code: str, value: Any) -> bool:
    try:
        validate_value(code, value)
    except InvalidValue:
        return False
    return True


@pytest.mark.parametrize("code", sorted(GOOD))
def test_good_example_passes(code: str) -> None:
    assert accepted(code, GOOD[code])


@pytest.mark.parametrize(("code", "value", "words"), BAD)
def test_bad_value_is_refused_with_a_clear_message(code: str, value: Any, words: str) -> None:
    with pytest.raises(InvalidValue) as info:
        validate_value(code, value)
    message = str(info.value)
    assert message.startswith(f"{code}: ")
    assert words in message


def test_unknown_category() -> None:
    with pytest.raises(InvalidValue, match=r"unknown category 'identity\.shoe_size'"):
        validate_value("identity.shoe_size", "9")


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), 2**60, {1: "x"}, {"a": b"x"}, "\ud800", [set()]],
)
def test_values_json_cannot_hold_are_refused(value: Any) -> None:
    with pytest.raises(InvalidValue):
        validate_value("identity.date_of_birth", value)


def test_deep_nesting_is_refused_not_a_crash() -> None:
    value: Any = "x"
    for _ in range(200):
        value = [value]
    with pytest.raises(InvalidValue, match="nested"):
        validate_value("health.observations", value)


def test_messages_do_not_quote_the_value() -> None:
    secret = "Zanzibar-Quokka-1234"
    with pytest.raises(InvalidValue) as info:
        validate_value("identity.name", {"given": secret, "family": 5})
    assert secret not in str(info.value)
    with pytest.raises(InvalidValue) as info:
        validate_value("contact.email", secret)
    assert secret not in str(info.value)


@pytest.mark.parametrize("postcode", ["SW1A 1AA", "M1 1AE", "B33 8TH", "GIR 0AA"])
def test_uk_postcodes_pass(postcode: str) -> None:
    assert accepted("address.home", {**GOOD["address.home"], "postcode": postcode})


@pytest.mark.parametrize(("typed", "stored"), [
    ("sw1a1aa", "SW1A 1AA"), (" m1  1ae ", "M1 1AE"), ("b338th", "B33 8TH"), ("GIR0AA", "GIR 0AA")])
def test_postcodes_are_stored_in_capitals_with_one_space(typed: str, stored: str) -> None:
    # The stored form is the only one the schema takes: a write must go through clean_value.
    assert not accepted("address.home", {**GOOD["address.home"], "postcode": typed})
    home = clean_value("address.home", {**GOOD["address.home"], "postcode": typed})
    assert home == {**GOOD["address.home"], "postcode": stored}


@pytest.mark.parametrize("typed", [
    "07700 900456", "07700-900-456", "(07700) 900456", "+44 7700 900456",
    "+44 (0)7700 900456", "0044 7700 900456", "+44 07700 900456", "\u00a007700\u00a0900456 "])
def test_uk_phone_numbers_are_stored_in_e164(typed: str) -> None:
    assert clean_value("contact.phone", typed) == "+447700900456"


@pytest.mark.parametrize(("typed", "words"), [
    ("07700 9004", "UK phone number such as 07700 900123"),
    ("call me", "UK phone number such as 07700 900123"),
    ("7700 900456", "UK phone number such as 07700 900123"),
    ("+447700900456\n", "control characters"),
    (447700900456, "must be text"),
])
def test_phone_numbers_that_cannot_be_read_are_refused_clearly(typed: Any, words: str) -> None:
    with pytest.raises(InvalidValue, match=r"^contact\.phone: ") as info:
        clean_value("contact.phone", typed)
    assert words in str(info.value)


@pytest.mark.parametrize(("typed", "words"), [
    ("sw1a", "postcode must be a UK postcode such as SW1A 1AA"),
    ("12345", "postcode must be a UK postcode such as SW1A 1AA"),
    (12345, "postcode must be text"),
])
def test_postcodes_that_cannot_be_read_are_refused_clearly(typed: Any, words: str) -> None:
    with pytest.raises(InvalidValue) as info:
        clean_value("address.home", {**GOOD["address.home"], "postcode": typed})
    assert words in str(info.value)


@pytest.mark.parametrize(
    ("text", "ok"),
    [("a@example.org", True), ("first.last+tag@sub.example.co.uk", True),
     ("@example.org", False), ("a@example", False), ("a@example.1", False),
     ("a.@example.org", False), ("a b@example.org", False), ("a@exa_mple.org", False),
     ("a" * 65 + "@example.org", False)],
)
def test_email_shape(text: str, ok: bool) -> None:
    assert is_email(text) is ok


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
field_names = st.sampled_from(
    ["given", "family", "lines", "town", "postcode", "local_authority", "award", "since",
     "receiving", "name", "ods_code", "kind", "value", "unit", "at", "urn", "number",
     "expires", "date_of_birth", "school_urn", "medicine", "dose", "awarded_by"]
)
# Objects shaped like the real ones, so the schemas are exercised beyond "not an object".
shaped = st.dictionaries(field_names, json_values, max_size=6)


@settings(max_examples=300, deadline=None)
@given(code=st.sampled_from(sorted(GOOD)),
       value=json_values | shaped | st.lists(shaped, max_size=3))
def test_random_json_never_crashes(code: str, value: Any) -> None:
    try:
        validate_value(code, value)
    except InvalidValue as exc:
        assert str(exc).startswith(f"{code}: ")
    else:
        # Whatever passed has the top-level shape of that category's good example.
        assert type(value) is type(GOOD[code])
