"""Relationships an issuer records (ARCHITECTURE §9, issue 14 §1 "Issued").

A registrar (`relationship.parent`), the Office of the Public Guardian
(`relationship.attorney`) or a benefits agency (`relationship.appointee`), registered as
issuer of the category and linked by the principal (a write grant, issue 12), writes a
record for the principal naming the delegate by the issuer's own pairwise `sub` for
them (OpenID Connect pairwise identifiers: `vault.oauth.pairwise`; the vault knows
which citizen a `sub` names from `oauth_subjects`, written when the issuer was first
told it), with the actions and the end date:

    {"delegate": "psub_...", "actions": ["view", "approve"], "until": "2030-03-31T23:00:00Z"}

In the write's transaction the vault proposes the relationship (origin "issued", the
issuer named in the signed terms). Nobody acts on an issuer's word alone: it shows on
both people's People page, and goes live only when both have signed it with their
passkeys, as any other. A newer record of the same kind from the same issuer replaces
the relationship the older one set up; withdrawing the record ends it (`by` "issuer").

`check` runs before anything is stored and refuses, so the write adds nothing:

RecordRefused (vault.oauth.record_jws)
└── RelationshipRecordRefused
    ├── UnknownDelegate      unknown_delegate: no citizen has that sub for this issuer
    └── BadRelationship      bad_relationship: terms the vault would refuse (the
                             principal as their own delegate, an end date past, the
                             delegate already acting for them under another)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import col, select

from vault.domain.errors import GrantRefused
from vault.domain.relationships import (
    ACTING_REASONS,
    DelegatedAction,
    Kind,
    RelationshipRefused,
    check_terms,
    kind_of_category,
)
from vault.domain.terms import parse_utc
from vault.oauth.record_jws import RecordRefused
from vault.services import delegations
from vault.services.context import Work
from vault.storage.tables import OAuthSubjectRow, RelationshipRow

__all__ = [
    "BadRelationship",
    "Pending",
    "RelationshipRecordRefused",
    "UnknownDelegate",
    "check",
    "end_withdrawn",
    "propose",
]


class RelationshipRecordRefused(RecordRefused):
    """An issued relationship the vault cannot set up; `reason` says why."""


class UnknownDelegate(RelationshipRecordRefused):
    reason = "unknown_delegate"


class BadRelationship(RelationshipRecordRefused):
    reason = "bad_relationship"


@dataclass(frozen=True, slots=True)
class Pending:
    """A relationship a checked record sets up once it is stored."""

    principal_id: str
    delegate_id: str
    kind: Kind
    actions: frozenset[DelegatedAction]
    until: datetime
    issuer: str


def check(work: Work, *, service_id: str, citizen_id: str, category: str, value: Any
          ) -> Pending | None:
    """The relationship an issued record of `category` would set up (None: the
    category is not a relationship), or RelationshipRecordRefused. `value` has passed
    the category's schema."""
    kind = kind_of_category(category)
    if kind is None:
        return None
    delegate_id = work.session.execute(select(OAuthSubjectRow.citizen_id).where(
        col(OAuthSubjectRow.service_id) == service_id,
        col(OAuthSubjectRow.sub) == value["delegate"])).scalar_one_or_none()
    if delegate_id is None:
        raise UnknownDelegate(
            "no citizen of the vault has that delegate sub for your "
            "service: name the delegate by the sub the vault gave you for them")
    try:
        until = parse_utc(value["until"])
        parsed, actions = check_terms(kind.value, value["actions"], until, now=work.now,
                                      principal_id=citizen_id, delegate_id=delegate_id)
    except (RelationshipRefused, GrantRefused) as exc:
        raise BadRelationship(str(exc)) from None
    # Refused here, before anything is stored, rather than by `delegations.propose`
    # after (which a batch of writes could only answer by starting again one by one);
    # the issuer's own earlier one of this kind is not in the way: `propose` ends it.
    live = work.session.execute(select(RelationshipRow.issuer, RelationshipRow.kind).where(
        col(RelationshipRow.principal_id) == citizen_id,
        col(RelationshipRow.delegate_id) == delegate_id,
        col(RelationshipRow.state) == "live", col(RelationshipRow.until) > work.now)).all()
    if any((issuer, kind_) != (service_id, parsed.value) for issuer, kind_ in live):
        raise BadRelationship(ACTING_REASONS["already"])
    return Pending(citizen_id, delegate_id, parsed, actions, until, service_id)


def _current(work: Work, *, principal_id: str, issuer: str, kind: Kind
             ) -> list[RelationshipRow]:
    rows = work.session.execute(select(RelationshipRow).where(
        col(RelationshipRow.principal_id) == principal_id,
        col(RelationshipRow.issuer) == issuer, col(RelationshipRow.kind) == kind.value,
        col(RelationshipRow.state) != "ended")
        .order_by(col(RelationshipRow.id)).with_for_update()).scalars().all()
    return list(rows)


def propose(work: Work, pending: Pending) -> RelationshipRow:
    """After the record is stored: the relationship it sets up, waiting for both
    people's signatures; the one an older record of the issuer set up ends."""
    for old in _current(work, principal_id=pending.principal_id, issuer=pending.issuer,
                        kind=pending.kind):
        delegations.end(work, old, by="issuer")
    try:
        return delegations.propose(
            work, principal_id=pending.principal_id, delegate_id=pending.delegate_id,
            kind=pending.kind.value, actions=frozenset(a.value for a in pending.actions),
            until=pending.until, origin="issued", issuer=pending.issuer)
    except RelationshipRefused as exc:
        raise BadRelationship(str(exc)) from None


def end_withdrawn(work: Work, *, service_id: str, citizen_id: str, category: str) -> None:
    """The issuer withdrew its record: the relationship it set up ends now."""
    kind = kind_of_category(category)
    if kind is None:
        return
    for row in _current(work, principal_id=citizen_id, issuer=service_id, kind=kind):
        delegations.end(work, row, by="issuer")
