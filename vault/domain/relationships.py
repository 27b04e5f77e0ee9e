"""Acting for others (ARCHITECTURE §9): kinds of relationship, what each may do, the terms.

A relationship lets a *delegate* act in a *principal's* vault: a parent for a child, an
attorney under a lasting power of attorney, an appointee for someone's benefits, a helper
at a counter for one visit. Its terms (who, kind, actions, until) are what both people
sign with their passkeys; their hash is what the ledger's `delegation.granted` carries
and what an auditor recomputes. All times are passed in, never read from a clock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from ledger.canonical import canonical_json
from vault.domain.errors import DomainError
from vault.domain.terms import format_utc, parse_utc

__all__ = [
    "ACTING_REASONS",
    "ISSUED_KINDS",
    "LONGEST",
    "DelegatedAction",
    "DelegationTerms",
    "Kind",
    "RelationshipRefused",
    "check_terms",
    "issuer_category",
    "kind_of_category",
    "parse_actions",
]


class Kind(StrEnum):
    PARENT = "parent"
    ATTORNEY = "attorney"
    APPOINTEE = "appointee"
    HELPER = "helper"


class DelegatedAction(StrEnum):
    """What a delegate may do in the principal's vault. `view` is in every relationship:
    nobody can approve what they cannot see."""

    VIEW = "view"
    EDIT = "edit"
    APPROVE = "approve"
    REVOKE = "revoke"


#: The longest a relationship of each kind may run (None: no limit but its end date).
LONGEST: Mapping[Kind, timedelta | None] = {
    Kind.PARENT: None, Kind.ATTORNEY: None, Kind.APPOINTEE: None,
    Kind.HELPER: timedelta(days=1),
}

#: Kinds an issuer may write (a registrar, the Office of the Public Guardian, a benefits
#: agency), each under the category `relationship.<kind>`. A helper is only ever invited.
ISSUED_KINDS = frozenset({Kind.PARENT, Kind.ATTORNEY, Kind.APPOINTEE})

#: Why acting for someone was refused, with the plain-English default message for each.
ACTING_REASONS: dict[str, str] = {
    "self": "a person cannot act for themselves",
    "unknown_kind": "that is not a kind of relationship the vault knows "
                    "(parent, attorney, appointee or helper)",
    "unknown_action": "actions are view, edit, approve and revoke",
    "no_view": "a relationship always lets the other person see the vault",
    "bad_until": "a relationship needs an end date in the future",
    "too_long": "a helper can act for someone for at most one day",
    "not_allowed": "you cannot do that for this person",
    "ended": "this relationship has ended",
    "not_live": "this relationship has not been agreed by both people yet",
    "further": "someone acting for another person cannot pass that on to anyone else",
    "invitation_used": "this invitation has already been used",
    "invitation_expired": "this invitation has expired; ask for a new one",
    "already": "you can already act for this person",
}


class RelationshipRefused(DomainError):
    """Acting for someone, or setting a relationship up, outside what is allowed;
    `reason` is a key of `ACTING_REASONS`. Nothing was recorded."""

    def __init__(self, reason: str, message: str | None = None) -> None:
        if reason not in ACTING_REASONS:
            raise ValueError(f"unknown relationship-refused reason {reason!r}")
        self.reason = reason
        super().__init__(message or ACTING_REASONS[reason])


def issuer_category(kind: Kind) -> str:
    return f"relationship.{kind.value}"


def kind_of_category(category: str) -> Kind | None:
    """The kind an issued `relationship.<kind>` record sets up, or None."""
    prefix, _, rest = category.partition(".")
    if prefix != "relationship":
        return None
    try:
        kind = Kind(rest)
    except ValueError:
        return None
    return kind if kind in ISSUED_KINDS else None


def parse_actions(values: Iterable[str]) -> frozenset[DelegatedAction]:
    try:
        actions = frozenset(DelegatedAction(v) for v in values)
    except ValueError:
        raise RelationshipRefused("unknown_action") from None
    if DelegatedAction.VIEW not in actions:
        raise RelationshipRefused("no_view")
    return actions


def check_terms(
    kind: str, actions: Iterable[str], until: datetime, *, now: datetime,
    principal_id: str | None = None, delegate_id: str | None = None,
) -> tuple[Kind, frozenset[DelegatedAction]]:
    """The kind and actions of a relationship that may be set up at `now`, or
    RelationshipRefused saying why not. The two ids, when known, must differ."""
    try:
        parsed = Kind(kind)
    except ValueError:
        raise RelationshipRefused("unknown_kind") from None
    chosen = parse_actions(actions)
    if principal_id is not None and principal_id == delegate_id:
        raise RelationshipRefused("self")
    if until.tzinfo is None or until <= now:
        raise RelationshipRefused("bad_until")
    longest = LONGEST[parsed]
    if longest is not None and until - now > longest:
        raise RelationshipRefused("too_long")
    return parsed, chosen


@dataclass(frozen=True, slots=True)
class DelegationTerms:
    """Exactly what both people sign: who acts for whom (ledger pseudonyms), as what,
    doing what, until when, and the issuer that vouched for it (or None)."""

    delegation_id: str
    principal: str
    delegate: str
    kind: Kind
    actions: frozenset[DelegatedAction]
    until: datetime
    issuer: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"delegation_id": self.delegation_id, "principal": self.principal,
                "delegate": self.delegate, "kind": self.kind.value,
                "actions": sorted(a.value for a in self.actions),
                "until": format_utc(self.until), "issuer": self.issuer}

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> DelegationTerms:
        return cls(delegation_id=str(value["delegation_id"]),
                   principal=str(value["principal"]), delegate=str(value["delegate"]),
                   kind=Kind(value["kind"]), actions=parse_actions(value["actions"]),
                   until=parse_utc(value["until"]), issuer=value.get("issuer"))

    def terms_hash(self) -> bytes:
        """SHA-256 of the terms' JCS: the challenge each person's passkey signs."""
        return hashlib.sha256(canonical_json(self.to_json())).digest()

    def allows(self, action: DelegatedAction, at: datetime) -> bool:
        return action in self.actions and at < self.until
