"""How grants, accesses and events read on the wallet's pages: plain words, no codes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from jinja2 import Environment

from vault.domain.categories import categories as category_catalog
from vault.domain.derived import resolve_derived
from vault.domain.errors import UnknownDerived
from vault.domain.grants import GrantState, PlainTerms, plain_terms
from vault.domain.purposes import Purpose
from vault.domain.purposes import purposes as purpose_catalog
from vault.services.grants import GrantView
from wallet.clock import when

__all__ = [
    "EVENT_WORDS",
    "STATE_WORDS",
    "GrantCard",
    "behalf_words",
    "category_label",
    "category_line",
    "category_words",
    "derived_label",
    "grant_card",
    "install_filters",
    "possessive",
    "when",
]

#: A state in words, and the tag style that shows it (the text is always there too).
STATE_WORDS: dict[GrantState, tuple[str, str]] = {
    GrantState.REQUESTED: ("Waiting for your answer", "requested"),
    GrantState.APPROVED: ("Active", "approved"),
    GrantState.PAUSED: ("Paused", "paused"),
    GrantState.DENIED: ("You said no", "ended"),
    GrantState.CANCELLED: ("Withdrawn by the service", "ended"),
    GrantState.LAPSED: ("Not answered in time", "ended"),
    GrantState.REVOKED: ("You stopped it", "ended"),
    GrantState.EXPIRED: ("Ended: time is up", "ended"),
    GrantState.EXHAUSTED: ("Ended: all looks used", "ended"),
}

EVENT_WORDS: dict[str, str] = {
    "grant.requested": "The service asked",
    "grant.approved": "You said yes with your passkey",
    "grant.denied": "You said no",
    "grant.cancelled": "The service withdrew its request",
    "grant.lapsed": "The request ran out of time",
    "grant.paused": "You paused it",
    "grant.resumed": "You turned it back on",
    "grant.revoked": "You stopped it",
    "grant.expired": "It ended: time was up",
    "grant.exhausted": "It ended: the service used all its looks",
}


def possessive(name: str) -> str:
    """A name that owns something, with a typographic apostrophe: "Leeds Council" gets
    an apostrophe and s, "Riverside schools" (a plural) only the apostrophe."""
    name = name.strip()
    return f"{name}\u2019" if name.endswith("s") else f"{name}\u2019s"


def install_filters(env: Environment) -> None:
    """The filters every wallet template shares: `when` for every time on a page,
    `possessive` for a name that owns something."""
    env.filters["when"] = when
    env.filters["possessive"] = possessive


def category_label(code: str) -> str:
    found = category_catalog().get(code)
    return found.label if found is not None else code


def category_words(code: str) -> str:
    """What a category holds, as the end of "They want to see: ...": its description
    ("the school you attend"), since a label alone ("School") says too little."""
    found = category_catalog().get(code)
    if found is None:
        return code
    text = found.description.strip().rstrip(".")
    return text[:1].lower() + text[1:]


def category_line(code: str) -> str:
    """A category as a consent screen lists it: "Name: your given name and family name",
    or its words alone when they name it already ("Your Attendance Allowance award: ...",
    not "Attendance Allowance: your Attendance Allowance award: ...")."""
    label, words = category_label(code), category_words(code)
    if label in words:
        return words[:1].upper() + words[1:]
    return f"{label}: {words}"


def derived_label(name: str) -> str:
    try:
        return resolve_derived(name).label
    except UnknownDerived:
        return name


@dataclass(frozen=True, slots=True)
class GrantCard:
    """One grant as the wallet shows it."""

    grant: GrantView
    service_name: str
    purpose: Purpose
    plain: PlainTerms
    state_words: str
    tag: str
    #: The labels of the categories they see, and (seen) each with what it holds.
    sees: tuple[str, ...]
    answers: tuple[str, ...]
    seen: tuple[tuple[str, str], ...] = ()
    #: Each category as the terms list it (`category_line`).
    lines: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return self.grant.id


def grant_card(grant: GrantView, service_name: str) -> GrantCard:
    purpose = purpose_catalog()[grant.terms.purpose]
    words, tag = STATE_WORDS[grant.state]
    return GrantCard(
        grant, service_name, purpose,
        plain_terms(grant.terms, service_name=service_name, purpose=purpose, at=when),
        words, tag,
        tuple(category_label(c) for c in grant.terms.categories),
        tuple(derived_label(d) for d in grant.terms.derived),
        tuple((category_label(c), category_words(c)) for c in grant.terms.categories),
        tuple(category_line(c) for c in grant.terms.categories))


def behalf_words(name: str | None) -> str:
    """How a grant approved by someone acting for the citizen is marked (issue 14 §3)."""
    return f"Approved on your behalf by {name or 'someone who has since left the vault'}"


def grant_cards(grants: Iterable[GrantView], names: dict[str, str]) -> list[GrantCard]:
    return [grant_card(g, names.get(g.service_id, "A service")) for g in grants]
