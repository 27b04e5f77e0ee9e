"""Derived answers: yes/no questions the vault answers from a citizen's records.

A service granted a derived answer receives only `True`, `False` or `None` ("unknown"),
never the records behind it. Each answer is a pure function of the citizen's records (a
mapping from category code to decrypted value) and today's date, passed in.

The answer is `None` whenever an input record is missing or unusable: the vault says
"unknown" rather than guess. An answer that rests on issued facts (`issued_only`:
`receives:<benefit>`) is given only the records an issuer wrote: a citizen's own value
of an award is no evidence of it, so it answers None.

Names: the fixed `age_over_18`, `age_over_65`, `eligible_free_school_meals`,
`observations_of_concern`, and the parametrised `resident_in:<local authority>`,
`receives:<benefit>` (benefit one of `attendance_allowance`, `universal_credit`) and
`observations_of_concern:<measure>`.

Observations of concern ("access to the outcome of analytical routines, not data"): over
the health readings series, whether any reading taken in the 24 hours up to now lies
outside the band the catalog sets for its measure (`Category.bands`). Which measure is
asked as a question of its own, `observations_of_concern:heart_rate`, rather than as a
list in one answer: every answer stays a yes/no that a consent screen, a receipt and the
ledger already know how to show, and the citizen consents to each measure a service may
ask about (a GP practice may be told of concern about breathing and not about steps).
Only readings in a band's unit are judged; with none in the window the answer is None.
These answers need the time, not only the date: `DerivedAnswer.answer(records, now)`.

Birthdays: a person reaches an age on the anniversary of their birth. Someone born on
29 February reaches it on 1 March in a year that has no 29 February (the later of the two
candidate days, so the vault never says "18 or over" a day early).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from vault.domain.categories import categories
from vault.domain.errors import UnknownDerived

__all__ = [
    "BENEFITS",
    "CONCERN_WINDOW",
    "OBSERVATIONS",
    "PARAMETRISED_PREFIXES",
    "DerivedAnswer",
    "age_on",
    "resolve_derived",
    "static_derived_names",
]

Compute = Callable[[Mapping[str, Any], date], bool | None]
#: An answer that needs the time of day (over a series' last 24 hours).
TimedCompute = Callable[[Mapping[str, Any], datetime], bool | None]


@dataclass(frozen=True)
class DerivedAnswer:
    """A named yes/no question, the categories it reads, and how to answer it.

    An input that is a series (`Category.series`) is given as the list of its items
    from the batches written in the last `CONCERN_WINDOW` and a little more (the read
    path's `series_window`), not as one version's value."""

    name: str
    label: str
    inputs: tuple[str, ...]
    compute: Compute
    timed: TimedCompute | None = None
    #: It rests on issued facts (ARCHITECTURE §8): it is given only the records an
    #: issuer wrote, so a citizen's own value of its inputs counts as missing (None).
    issued_only: bool = False

    def answer(self, records: Mapping[str, Any], now: datetime) -> bool | None:
        """The answer at `now` (an aware datetime)."""
        return self.timed(records, now) if self.timed is not None \
            else self.compute(records, now.date())


#: benefit name in `receives:<benefit>` -> (category holding it, plain-English name)
BENEFITS: Mapping[str, tuple[str, str]] = {
    "attendance_allowance": ("benefits.attendance_allowance", "Attendance Allowance"),
    "universal_credit": ("benefits.universal_credit", "Universal Credit"),
}
PARAMETRISED_PREFIXES = ("resident_in:", "receives:", "observations_of_concern:")
#: The series observations_of_concern reads, and how far back it looks.
OBSERVATIONS = "health.observations"
CONCERN_WINDOW = timedelta(hours=24)

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


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


def _concern(measure: str | None) -> TimedCompute:
    """Any reading (of `measure`, or of any measure with a band) taken in the window up
    to now outside its band: True; some judged and none outside: False; none: None."""
    bands = categories()[OBSERVATIONS].bands

    def compute(records: Mapping[str, Any], now: datetime) -> bool | None:
        items = records.get(OBSERVATIONS)
        if not isinstance(items, list):
            return None
        since = now - CONCERN_WINDOW
        judged = False
        for item in items:
            if not isinstance(item, Mapping):
                continue
            kind, value = item.get("kind"), item.get("value")
            band = bands.get(kind) if isinstance(kind, str) else None
            if band is None or (measure is not None and kind != measure) \
                    or type(value) is not int or not band.judges(item.get("unit")):
                continue
            at = _instant(item.get("at"))
            if at is None or not since <= at <= now:  # a reading from the future: not yet
                continue
            if band.outside(value):
                return True
            judged = True
        return False if judged else None

    return compute


def _no_date(_records: Mapping[str, Any], _today: date) -> bool | None:
    raise TypeError("a timed answer: call DerivedAnswer.answer with the time")


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
    "observations_of_concern": DerivedAnswer(
        "observations_of_concern",
        "Whether any of your health readings in the last 24 hours was outside its usual "
        "range (the readings themselves are not shared)",
        (OBSERVATIONS,), _no_date, _concern(None),
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

        # An award is the agency's to state: only the record it issued counts.
        return DerivedAnswer(name, f"Whether you get {benefit}", (category,), compute,
                             issued_only=True)
    if sep and prefix == "observations_of_concern":
        bands = categories()[OBSERVATIONS].bands
        if parameter not in bands:
            raise UnknownDerived(f"observations_of_concern: knows only {', '.join(sorted(bands))}")
        words = categories()[OBSERVATIONS].code_label("kind", parameter).lower()
        return DerivedAnswer(
            name, f"Whether a {words} reading of yours in the last 24 hours was outside its "
            "usual range (the readings themselves are not shared)",
            (OBSERVATIONS,), _no_date, _concern(parameter))
    raise UnknownDerived(f"there is no derived answer called '{name[:60]}'")
