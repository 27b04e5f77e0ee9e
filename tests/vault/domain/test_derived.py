"""Derived answers: yes, no or unknown, from records and a date passed in."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.domain.derived import age_on, resolve_derived, static_derived_names
from vault.domain.errors import UnknownDerived


def answer(name: str, records: dict[str, Any], today: date) -> bool | None:
    return resolve_derived(name).compute(records, today)


def dob(text: str) -> dict[str, Any]:
    return {"identity.date_of_birth": text}


def test_static_names() -> None:
    assert static_derived_names() == ["age_over_18", "age_over_65", "eligible_free_school_meals",
                                      "observations_of_concern"]
    for name in static_derived_names():
        d = resolve_derived(name)
        assert d.name == name and d.label.startswith("Whether") and d.inputs


@pytest.mark.parametrize(
    ("birth", "today", "over_18"),
    [
        ("2008-03-15", date(2026, 3, 14), False),  # the day before the 18th birthday
        ("2008-03-15", date(2026, 3, 15), True),   # the birthday itself
        ("2008-03-15", date(2026, 3, 16), True),
        ("2008-12-31", date(2026, 12, 30), False),
        ("2008-01-01", date(2026, 1, 1), True),
        # Born on 29 February: in a year without one, the birthday is 1 March (our rule).
        ("2008-02-29", date(2026, 2, 28), False),
        ("2008-02-29", date(2026, 3, 1), True),
        # ... and in a leap year it is 29 February itself.
        ("2012-02-29", date(2030, 2, 28), False),
        ("2012-02-29", date(2030, 3, 1), True),
        ("2012-02-29", date(2032, 2, 28), True),   # 20 in 2032: long past 18
        ("2016-02-29", date(2034, 2, 28), False),
        ("2016-02-29", date(2034, 3, 1), True),
    ],
)
def test_age_over_18_around_birthdays(birth: str, today: date, over_18: bool) -> None:
    assert answer("age_over_18", dob(birth), today) is over_18


def test_leap_day_birthday_in_a_leap_year() -> None:
    # 18th birthday falls in 2028, a leap year: it is 29 February 2028.
    assert answer("age_over_18", dob("2010-02-28"), date(2028, 2, 28)) is True
    assert answer("age_over_18", dob("2010-03-01"), date(2028, 2, 29)) is False
    assert age_on(date(2008, 2, 29), date(2026, 2, 28)) == 17
    assert age_on(date(2008, 2, 29), date(2026, 3, 1)) == 18
    assert age_on(date(2008, 2, 29), date(2028, 2, 29)) == 20


@pytest.mark.parametrize(
    ("birth", "today", "over_65"),
    [
        ("1961-06-30", date(2026, 6, 29), False),
        ("1961-06-30", date(2026, 6, 30), True),
        ("1960-02-29", date(2025, 2, 28), False),  # 2025 has no 29 February
        ("1960-02-29", date(2025, 3, 1), True),
        ("1930-01-01", date(2026, 1, 1), True),
    ],
)
def test_age_over_65(birth: str, today: date, over_65: bool) -> None:
    assert answer("age_over_65", dob(birth), today) is over_65


@pytest.mark.parametrize("records", [{}, dob("not a date"), dob("2026-02-30"), dob(""),
                                     {"identity.date_of_birth": 20080315}, dob("2030-01-01")])
def test_age_unknown_when_missing_malformed_or_in_the_future(records: dict[str, Any]) -> None:
    assert answer("age_over_18", records, date(2026, 3, 1)) is None
    assert answer("age_over_65", records, date(2026, 3, 1)) is None


@settings(max_examples=200, deadline=None)
@given(birth=st.dates(min_value=date(1900, 1, 1), max_value=date(2030, 12, 31)),
       today=st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31)))
def test_age_matches_a_naive_count(birth: date, today: date) -> None:
    """Compare with counting birthdays one year at a time (1 March stands in for 29 Feb)."""
    got = answer("age_over_18", dob(birth.isoformat()), today)
    if birth > today:
        assert got is None
        return
    years = 0
    while True:
        y = birth.year + years + 1
        try:
            anniversary = birth.replace(year=y)
        except ValueError:
            anniversary = date(y, 3, 1)
        if anniversary > today:
            break
        years += 1
    assert age_on(birth, today) == years
    assert got is (years >= 18)


HOME = {"lines": ["1 Park Row"], "town": "Leeds", "postcode": "LS1 5HD",
        "local_authority": "Leeds"}


def test_resident_in() -> None:
    records = {"address.home": HOME}
    today = date(2026, 3, 1)
    assert answer("resident_in:Leeds", records, today) is True
    assert answer("resident_in:leeds", records, today) is True  # case does not matter
    assert answer("resident_in:Bradford", records, today) is False
    assert answer("resident_in:Leeds", {}, today) is None
    assert resolve_derived("resident_in:Leeds").inputs == ("address.home",)
    assert resolve_derived("resident_in:Leeds").label == "Whether you live in Leeds"


@pytest.mark.parametrize("name", ["resident_in:", "resident_in: Leeds", "resident_in:Le\neds",
                                  "resident_in:" + "x" * 101, "receives:", "receives:pension",
                                  "receives:Universal_Credit", "age_over_21", "unknown",
                                  "age_over_18:x", "", "resident_in"])
def test_unknown_names(name: str) -> None:
    with pytest.raises(UnknownDerived):
        resolve_derived(name)


def test_receives() -> None:
    today = date(2026, 3, 1)
    uc = "receives:universal_credit"
    aa = "receives:attendance_allowance"
    assert answer(uc, {"benefits.universal_credit": {"receiving": True}}, today) is True
    assert answer(uc, {"benefits.universal_credit": {"receiving": False}}, today) is False
    assert answer(uc, {"benefits.universal_credit": {"receiving": True,
                                                     "since": "2026-04-01"}}, today) is False
    assert answer(uc, {}, today) is None
    award = {"award": "higher", "since": "2023-06-01", "awarded_by": "DWP"}
    assert answer(aa, {"benefits.attendance_allowance": award}, today) is True
    assert answer(aa, {"benefits.attendance_allowance": {**award, "since": "2026-03-02"}},
                  today) is False
    assert answer(aa, {}, today) is None
    assert resolve_derived(aa).inputs == ("benefits.attendance_allowance",)


TODAY = date(2026, 3, 1)
SCHOOL_CHILD = {"given": "Tobi", "date_of_birth": "2017-09-03"}   # 8
BABY = {"given": "Ada", "date_of_birth": "2024-12-01"}            # 1
JUST_FOUR = {"given": "Kim", "date_of_birth": "2022-03-01"}       # 4 today
NEARLY_FOUR = {"given": "Lee", "date_of_birth": "2022-03-02"}     # 4 tomorrow
EIGHTEEN = {"given": "Sam", "date_of_birth": "2007-03-02"}        # 18 (19 tomorrow)
NINETEEN = {"given": "Jo", "date_of_birth": "2007-03-01"}         # 19 today
UC_YES = {"receiving": True, "since": "2024-01-15"}
UC_NO = {"receiving": False}
UC_LATER = {"receiving": True, "since": "2026-06-01"}
MISSING = object()


@pytest.mark.parametrize(
    ("uc", "children", "expected"),
    [
        (UC_YES, [SCHOOL_CHILD], True),
        (UC_YES, [BABY, SCHOOL_CHILD], True),
        (UC_YES, [BABY], False),
        (UC_YES, [], False),
        (UC_YES, [JUST_FOUR], True),
        (UC_YES, [NEARLY_FOUR], False),
        (UC_YES, [EIGHTEEN], True),
        (UC_YES, [NINETEEN], False),
        (UC_NO, [SCHOOL_CHILD], False),
        (UC_NO, [], False),
        (UC_LATER, [SCHOOL_CHILD], False),
        (MISSING, [SCHOOL_CHILD], None),
        (UC_YES, MISSING, None),
        (UC_NO, MISSING, None),
        (MISSING, MISSING, None),
        (UC_YES, [{"given": "X", "date_of_birth": "2017-02-30"}], None),
    ],
)
def test_free_school_meals_truth_table(uc: Any, children: Any, expected: bool | None) -> None:
    records: dict[str, Any] = {}
    if uc is not MISSING:
        records["benefits.universal_credit"] = uc
    if children is not MISSING:
        records["household.children"] = children
    assert answer("eligible_free_school_meals", records, TODAY) is expected


@pytest.mark.parametrize(
    ("household_uc", "birth", "expected"),
    [
        (UC_YES, SCHOOL_CHILD["date_of_birth"], True),
        (UC_YES, JUST_FOUR["date_of_birth"], True),
        (UC_YES, NEARLY_FOUR["date_of_birth"], False),
        (UC_YES, EIGHTEEN["date_of_birth"], True),
        (UC_YES, NINETEEN["date_of_birth"], False),
        (UC_YES, BABY["date_of_birth"], False),
        (UC_NO, SCHOOL_CHILD["date_of_birth"], False),  # the award ended
        (UC_LATER, SCHOOL_CHILD["date_of_birth"], False),
        (MISSING, SCHOOL_CHILD["date_of_birth"], None),  # withdrawn, or never issued
        (UC_YES, MISSING, None),
        (UC_YES, "2026-03-02", None),  # a birth in the future
        (UC_YES, "2017-02-30", None),
        ({"receiving": "yes"}, SCHOOL_CHILD["date_of_birth"], None),
    ],
)
def test_free_school_meals_in_a_childs_vault(household_uc: Any, birth: Any,
                                             expected: bool | None) -> None:
    """In a child's own vault: the household's award the agency issued there, and the
    child's own date of birth (4 to 18 today)."""
    records: dict[str, Any] = {}
    if household_uc is not MISSING:
        records["household.universal_credit"] = household_uc
    if birth is not MISSING:
        records["identity.date_of_birth"] = birth
    assert answer("eligible_free_school_meals", records, TODAY) is expected


@pytest.mark.parametrize(
    ("household", "child", "expected"),
    [
        ({"benefits.universal_credit": UC_NO, "household.children": [SCHOOL_CHILD]},
         {"household.universal_credit": UC_YES}, True),
        ({"benefits.universal_credit": UC_YES, "household.children": [SCHOOL_CHILD]},
         {"household.universal_credit": UC_NO}, True),
        ({"benefits.universal_credit": UC_NO, "household.children": [SCHOOL_CHILD]},
         {}, False),
        ({}, {"household.universal_credit": UC_NO}, False),
    ],
)
def test_free_school_meals_either_form_yes_is_yes_then_either_no(
        household: dict[str, Any], child: dict[str, Any], expected: bool) -> None:
    records = {**household, **child, "identity.date_of_birth": SCHOOL_CHILD["date_of_birth"]}
    assert answer("eligible_free_school_meals", records, TODAY) is expected


def test_free_school_meals_rule_is_documented() -> None:
    d = resolve_derived("eligible_free_school_meals")
    assert d.inputs == ("benefits.universal_credit", "household.children",
                        "household.universal_credit", "identity.date_of_birth")
    assert d.issued_inputs == {"household.universal_credit"} and not d.issued_only
    doc = d.compute.__doc__ or ""
    assert "Simplified" in doc and "Universal Credit" in doc and "child's own vault" in doc
    assert "household.universal_credit" in d.rule and "issued" in d.rule


def test_a_typed_in_household_award_does_not_count_in_a_childs_vault() -> None:
    """`counted` drops the citizen's own value of an issued-only input (so the child's
    answer is unknown), keeps an issued one, and keeps their own date of birth."""
    d = resolve_derived("eligible_free_school_meals")
    records = {"household.universal_credit": UC_YES,
               "identity.date_of_birth": SCHOOL_CHILD["date_of_birth"]}
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    typed = d.counted(records, own={"household.universal_credit", "identity.date_of_birth"})
    assert "household.universal_credit" not in typed and d.answer(typed, now) is None
    issued = d.counted(records, own={"identity.date_of_birth"})
    assert issued == records and d.answer(issued, now) is True
    # An answer resting only on issued facts drops every own input, as before.
    receives = resolve_derived("receives:universal_credit")
    assert receives.counted({"benefits.universal_credit": UC_YES},
                            own={"benefits.universal_credit"}) == {}


def test_observations_of_concern_names_a_measure_the_catalog_has_a_band_for() -> None:
    answer = resolve_derived("observations_of_concern:heart_rate")
    assert answer.inputs == ("health.observations",)
    assert answer.label.startswith("Whether a heart rate reading")
    for bad in ("observations_of_concern:steps", "observations_of_concern:",
                "observations_of_concern:Heart_rate"):
        with pytest.raises(UnknownDerived, match="knows only body_temperature, heart_rate"):
            resolve_derived(bad)
