"""Derived answers: yes/no questions the vault answers from a citizen's records.

A service granted a derived answer receives only `True`, `False` or `None` ("unknown"),
never the records behind it. Each answer is a pure function of the citizen's records (a
mapping from category code to decrypted value) and today's date, passed in.

The answer is `None` whenever an input record is missing or unusable: the vault says
"unknown" rather than guess. An answer that rests on issued facts (`issued_only`:
`receives:<benefit>`) is given only the records an issuer wrote: a citizen's own value
of an award is no evidence of it, so it answers None. An answer may also rest on issued
facts for some inputs only (`issued_inputs`): `eligible_free_school_meals` counts the
household's Universal Credit in a child's vault only as the benefits agency issued it,
while the child's date of birth is the family's to write (`DerivedAnswer.counted`).

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
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from vault.domain.categories import categories
from vault.domain.errors import UnknownDerived

__all__ = [
    "BENEFITS",
    "CONCERN_WINDOW",
    "HOUSEHOLD_UC",
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
    #: Inputs that count only as an issuer wrote them (the others also as the citizen
    #: wrote them): a citizen's own value of one of these is dropped, as if missing.
    issued_inputs: frozenset[str] = frozenset()
    #: The rule in a few sentences, for `vault catalog list` (when the label is not all).
    rule: str = ""

    def answer(self, records: Mapping[str, Any], now: datetime) -> bool | None:
        """The answer at `now` (an aware datetime)."""
        return self.timed(records, now) if self.timed is not None \
            else self.compute(records, now.date())

    def counted(self, records: Mapping[str, Any], own: Collection[str]
                ) -> Mapping[str, Any]:
        """The records this answer may rest on, of `records` (category -> value) of which
        the categories in `own` hold the citizen's own values (not an issuer's)."""
        drop = frozenset(self.inputs) if self.issued_only else self.issued_inputs
        if drop.isdisjoint(own):
            return records
        return {cat: v for cat, v in records.items() if cat not in drop or cat not in own}


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
#: The household's Universal Credit award, as the benefits agency issues it into a
#: child's vault (only the issued record counts: `issued_inputs`).
HOUSEHOLD_UC = "household.universal_credit"


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


def _household_form(records: Mapping[str, Any], today: date) -> bool | None:
    """In the claimant's own vault: their Universal Credit, and the children at home."""
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


def _child_form(records: Mapping[str, Any], today: date) -> bool | None:
    """In a child's own vault: the household's award, and the child's own age."""
    uc = records.get(HOUSEHOLD_UC)
    birth = _date(records.get("identity.date_of_birth"))
    if uc is None or birth is None or birth > today:
        return None
    receiving = _receiving_universal_credit(uc, today)
    if receiving is None:
        return None
    return receiving and SCHOOL_AGE_FROM <= age_on(birth, today) < SCHOOL_AGE_BELOW


def _free_school_meals(records: Mapping[str, Any], today: date) -> bool | None:
    """Simplified England rule: Universal Credit now, and a child of school age.

    Asked in two kinds of vault, each with its own records:

    * the household's (the parent or carer who claims Universal Credit): True when
      `benefits.universal_credit` says they receive it on `today` and at least one child
      in `household.children` is aged 4 to 18 on `today` (Reception to sixth form);
    * a child's own vault (ARCHITECTURE §9, a parent acting for the child): True when
      `household.universal_credit`, the household's award AS THE BENEFITS AGENCY ISSUED
      IT into the child's vault (a value the family typed in does not count: the read
      drops it, `issued_inputs`), says it is received on `today`, and the child's own
      `identity.date_of_birth` makes them 4 to 18 on `today`. So the school that asks
      for the child is told at once, and told again (`record.changed`) when the agency
      changes or withdraws the award.

    Either form's True is the answer; else either form's False; else None (a form
    answers None when one of its records is missing or unusable, a birth in the future
    included). This is a simplification: the real rule also caps household earnings
    (which the vault does not hold), covers other benefits, and gives every infant a
    meal anyway.
    """
    found = (_household_form(records, today), _child_form(records, today))
    if True in found:
        return True
    return False if False in found else None


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
        "Whether free school meals can be given (the household gets Universal Credit "
        "and has a child of school age; in a child's vault, only the award the benefits "
        "agency added counts)",
        ("benefits.universal_credit", "household.children", HOUSEHOLD_UC,
         "identity.date_of_birth"),
        _free_school_meals, issued_inputs=frozenset({HOUSEHOLD_UC}),
        rule="Yes when Universal Credit is received today and a child is aged 4 to 18: in "
             "the claimant's vault, benefits.universal_credit and household.children; in "
             f"a child's vault, {HOUSEHOLD_UC} as the benefits agency issued it (a value "
             "typed in does not count) and the child's identity.date_of_birth. Simplified: "
             "no earnings cap, no other benefits.",
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
