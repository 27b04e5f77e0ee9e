"""The Blue Badge application: what it asks the vault for, and how the answer fills it in.

The service asks for as little as it needs: the name and address to put on the badge
and post it to, and two yes/no answers computed inside the vault (over 65; receives
Attendance Allowance) instead of a date of birth or an award letter.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from clients.service import Access, PersonalData, Release

__all__ = [
    "ASKED",
    "QUESTIONS",
    "TERMS",
    "Application",
    "Asked",
    "Prefill",
    "Statement",
    "Submission",
    "prefill",
    "read_submission",
    "statement",
]

TERMS = PersonalData(
    purpose="eligibility_assessment",
    categories=["identity.name", "address.home"],
    derived=["age_over_65", "receives:attendance_allowance"],
    duration="P30D",
    # Up to three reads in 30 days: enough to fill the form in again if the citizen
    # comes back, never a standing feed.
    access=Access.periodic(max_reads=3),
    data_life="P30D",
    justification=("To fill in your Blue Badge application for you, and to see whether "
                   "you can get a badge without sending us more evidence."),
)


@dataclass(frozen=True)
class Asked:
    """One line of the start page's 'what we will ask your vault' list."""

    what: str
    why: str


ASKED = (
    Asked("Your name", "to print it on your badge."),
    Asked("Your home address", "to post the badge to you and check you live in our area."),
    Asked("Whether you are 65 or over",
          "a yes or no only: we do not see your date of birth."),
    Asked("Whether you get Attendance Allowance",
          "a yes or no only: we do not see your award."),
)

#: Derived answer -> (when yes, when no, when the vault cannot tell).
_STATEMENTS: dict[str, tuple[str, str, str]] = {
    "age_over_65": ("You are 65 or over.", "You are under 65.",
                    "Your vault could not say whether you are 65 or over."),
    "receives:attendance_allowance": (
        "You get Attendance Allowance.", "You do not get Attendance Allowance.",
        "Your vault holds no Attendance Allowance award for you."),
}


@dataclass(frozen=True)
class Statement:
    """A derived answer as a sentence; `answer` is True, False or None (unknown)."""

    name: str
    text: str
    answer: bool | None


@dataclass(frozen=True)
class Prefill:
    """The form's starting values, and where they came from."""

    given: str = ""
    family: str = ""
    lines: tuple[str, ...] = ()
    town: str = ""
    postcode: str = ""
    statements: tuple[Statement, ...] = ()
    #: Set when the values came from the vault.
    grant_id: str | None = None
    ledger_index: int | None = None

    @property
    def from_vault(self) -> bool:
        return self.grant_id is not None

    @property
    def line1(self) -> str:
        return self.lines[0] if self.lines else ""

    @property
    def line2(self) -> str:
        return ", ".join(self.lines[1:])


def _text(doc: Any, key: str) -> str:
    value = doc.get(key) if isinstance(doc, Mapping) else None
    return value if isinstance(value, str) else ""


def prefill(release: Release) -> Prefill:
    """Turn what the vault released into form values (anything missing stays blank)."""
    person = release.data.get("identity.name")
    address = release.data.get("address.home")
    raw_lines = address.get("lines") if isinstance(address, Mapping) else None
    lines = tuple(x for x in raw_lines if isinstance(x, str)) if isinstance(
        raw_lines, list) else ()
    statements = tuple(statement(name, value if isinstance(value, bool) else None)
                       for name in _STATEMENTS for value in [release.derived.get(name)])
    return Prefill(given=_text(person, "given"), family=_text(person, "family"), lines=lines,
                   town=_text(address, "town"), postcode=_text(address, "postcode"),
                   statements=statements, grant_id=release.grant_id,
                   ledger_index=release.ledger_index)


#: The form's radio buttons for the yes/no questions, when the vault did not answer them.
QUESTIONS = {"age_over_65": "Are you 65 or over?",
             "receives:attendance_allowance": "Do you get Attendance Allowance?"}


@dataclass(frozen=True)
class Submission:
    """What the citizen sent back in the form, checked; `errors` maps field to message."""

    given: str
    family: str
    line1: str
    line2: str
    town: str
    postcode: str
    statements: tuple[Statement, ...]
    errors: dict[str, str] = field(default_factory=dict)

    def as_prefill(self, base: Prefill) -> Prefill:
        """The form again, with what was typed (to show next to the errors)."""
        lines = tuple(x for x in (self.line1, self.line2) if x)
        return Prefill(given=self.given, family=self.family, lines=lines, town=self.town,
                       postcode=self.postcode, statements=base.statements,
                       grant_id=base.grant_id, ledger_index=base.ledger_index)


_UNANSWERED = {"age_over_65": "Say whether you are 65 or over",
               "receives:attendance_allowance": "Say whether you get Attendance Allowance"}
_FIELDS = {"given": "your given name", "family": "your family name",
           "line1": "the first line of your address", "town": "your town or city",
           "postcode": "your postcode"}
_MAX = 100


def statement(name: str, answer: bool | None) -> Statement:
    yes, no, unknown = _STATEMENTS[name]
    return Statement(name, unknown if answer is None else yes if answer else no, answer)


def read_submission(form: Mapping[str, Any], base: Prefill) -> Submission:
    """Check the posted form. The yes/no answers come from the vault when it gave them
    (they are not form fields then, so they cannot be edited); else from the radios."""
    values = {k: str(form.get(k, "")).strip()
              for k in ("given", "family", "line1", "line2", "town", "postcode")}
    errors = {k: f"Enter {label}" for k, label in _FIELDS.items() if not values[k]}
    errors.update({k: f"This must be {_MAX} characters or fewer"
                   for k, v in values.items() if len(v) > _MAX})
    statements = base.statements
    if not statements:
        answers = {name: str(form.get(name, "")) for name in QUESTIONS}
        errors.update({name: _UNANSWERED[name] for name, value in answers.items()
                       if value not in ("yes", "no")})
        statements = tuple(statement(name, value == "yes") for name, value in answers.items()
                           if value in ("yes", "no"))
    return Submission(**values, statements=statements, errors=errors)


@dataclass(frozen=True)
class Application:
    """A submitted application (kept in memory; this example sends nothing anywhere)."""

    reference: str
    submission: Submission
    #: The grant the vault's answers came under (None: typed in by hand).
    grant_id: str | None
    submitted_at: datetime

    @classmethod
    def make(cls, submission: Submission, base: Prefill, *, now: datetime) -> Application:
        return cls(f"BB-{secrets.token_hex(4).upper()}", submission, base.grant_id, now)
