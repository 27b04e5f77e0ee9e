"""Derived answers: yes/no questions the vault answers from a citizen's records.

A service granted a derived answer receives only `True`, `False` or `None` ("unknown"),
never the records behind it. Each answer is a pure function of the citizen's records (a
mapping from category code to decrypted value) and today's date, passed in.

The answer is `None` whenever an input record is missing or unusable: the vault says
"unknown" rather than guess.

Names: the fixed `age_over_18`, `age_over_65`, `eligible_free_school_meals`, and the
parametrised `resident_in:<local authority>` and `receives:<benefit>` (benefit one of
`attendance_allowance`, `universal_credit`).

Birthdays: a person reaches an age on the anniversary of their birth. Someone born on
29 February reaches it on 1 March in a year that has no 29 February (the later of the two
candidate days, so the vault never says "18 or over" a day early).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from vault.domain.errors import UnknownDerived

__all__ = [
    "BENEFITS",
    "PARAMETRISED_PREFIXES",
    "DerivedAnswer",
    "age_on",
    "resolve_derived",
    "static_derived_names",
]

Compute = Callable[[Mapping[str, Any], date], bool | None]


@dataclass(frozen=True)
class DerivedAnswer:
    """A named yes/no question, the categories it reads, and how to answer it."""

    name: str
    label: str
    inputs: tuple[str, ...]
    compute: Compute


#: benefit name in `receives:<benefit>` -> (category holding it, plain-English name)
BENEFITS: Mapping[str, tuple[str, str]] = {
    "attendance_allowance": ("benefits.attendance_allowance", "Attendance Allowance"),
    "universal_credit": ("benefits.universal_credit", "Universal Credit"),
}
PARAMETRISED_PREFIXES = ("resident_in:", "receives:")

#: Free school meals: children from Reception (age 4) to the end of sixth form (under 19).
SCHOOL_AGE_FROM = 4
SCHOOL_AGE_BELOW = 19


def _date(value: Any) -> date | None:
    if not isinstance(value, str) or len(value) != 10:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def age_on(birth: date, today: date) -> int:
    """Whole years of age on `today` (29 February birthdays fall on 1 March in other years)."""
    years = today.year - birth.year
    try:
        birthday = birth.replace(year=today.year)
    except ValueError:  # 29 February in a year without one
        birthday = date(today.year, 3, 1)
    return years if today >= birthday else years - 1


def _age_at_least(years: int) -> Compute:
    def compute(records: Mapping[str, Any], today: date) -> bool | None:
        birth = _date(records.get("identity.date_of_birth"))
        if birth is None or birth > today:
            return None  # missing, malformed, or a birth in the future: unknown
        return age_on(birth, today) >= years

    return compute


def _receiving_universal_credit(value: Any, today: date) -> bool | None:
    if not isinstance(value, Mapping) or not isinstance(value.get("receiving"), bool):
        return None
    if not value["receiving"]:
        return False
    since = value.get("since")
    if since is None:
        return True
    started = _date(since)
    return None if started is None else started <= today


def _receiving_attendance_allowance(value: Any, today: date) -> bool | None:
    # The record is an award; it counts from the day it starts.
    if not isinstance(value, Mapping):
        return None
    started = _date(value.get("since"))
    return None if started is None else started <= today


def _free_school_meals(records: Mapping[str, Any], today: date) -> bool | None:
    """Simplified England rule: Universal Credit now, and a child of school age at home.

    True when the household receives Universal Credit (on `today`) and at least one
    child in `household.children` is aged 4 to 18 on `today` (Reception to sixth form).
    This is a simplification: the real rule also caps household earnings (which the
    vault does not hold), covers other benefits, and gives every infant a meal anyway.
    None when either record is missing or unusable.
    """
    uc = records.get("benefits.universal_credit")
    children = records.get("household.children")
    if uc is None or children is None or not isinstance(children, list):
        return None
    receiving = _receiving_universal_credit(uc, today)
    if receiving is None:
        return None
    ages: list[int] = []
    for child in children:
        birth = _date(child.get("date_of_birth")) if isinstance(child, Mapping) else None
        if birth is None:
            return None
        if birth <= today:
            ages.append(age_on(birth, today))
    return receiving and any(SCHOOL_AGE_FROM <= a < SCHOOL_AGE_BELOW for a in ages)


def _fold(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _resident_in(authority: str) -> Compute:
    wanted = _fold(authority)

    def compute(records: Mapping[str, Any], today: date) -> bool | None:
        address = records.get("address.home")
        if not isinstance(address, Mapping) or not isinstance(
            address.get("local_authority"), str
        ):
            return None
        return _fold(address["local_authority"]) == wanted

    return compute


_STATIC: dict[str, DerivedAnswer] = {
    "age_over_18": DerivedAnswer(
        "age_over_18", "Whether you are 18 or over", ("identity.date_of_birth",),
        _age_at_least(18),
    ),
    "age_over_65": DerivedAnswer(
        "age_over_65", "Whether you are 65 or over", ("identity.date_of_birth",),
        _age_at_least(65),
    ),
    "eligible_free_school_meals": DerivedAnswer(
        "eligible_free_school_meals",
        "Whether your household can get free school meals (you get Universal Credit "
        "and a child of school age lives with you)",
        ("benefits.universal_credit", "household.children"),
        _free_school_meals,
    ),
}


def static_derived_names() -> list[str]:
    """The fixed derived-answer names (the parametrised ones are `resident_in:`, `receives:`)."""
    return sorted(_STATIC)


def _valid_parameter(value: str) -> bool:
    return (
        0 < len(value) <= 100
        and value == value.strip()
        and not any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp") for c in value)
    )


def resolve_derived(name: str) -> DerivedAnswer:
    """The derived answer called `name`; UnknownDerived if there is none."""
    if not isinstance(name, str):
        raise UnknownDerived("a derived-answer name must be text")
    if name in _STATIC:
        return _STATIC[name]
    prefix, sep, parameter = name.partition(":")
    if sep and prefix == "resident_in":
        if not _valid_parameter(parameter):
            raise UnknownDerived(
                "resident_in: needs a local authority name or code of 1 to 100 characters, "
                "without leading or trailing spaces or control characters"
            )
        return DerivedAnswer(
            name, f"Whether you live in {parameter}", ("address.home",), _resident_in(parameter)
        )
    if sep and prefix == "receives":
        if parameter not in BENEFITS:
            raise UnknownDerived(
                f"receives: knows only {', '.join(sorted(BENEFITS))}, not '{parameter[:40]}'"
            )
        category, benefit = BENEFITS[parameter]
        check = (
            _receiving_universal_credit
            if parameter == "universal_credit"
            else _receiving_attendance_allowance
        )

        def compute(records: Mapping[str, Any], today: date) -> bool | None:
            value = records.get(category)
            return None if value is None else check(value, today)

        return DerivedAnswer(name, f"Whether you get {benefit}", (category,), compute)
    raise UnknownDerived(f"there is no derived answer called '{name[:60]}'")
