"""Relationships between people (ARCHITECTURE §9): set up, signed, checked, ended.

One rule holds everywhere: a person acts in another's vault only inside a *live*
relationship that names the action, before its end date. `authorize` is that check, run
in the transaction of the action itself, so ending a relationship ends access at once.

The ledger sees a relationship when it goes live (`delegation.granted`, with its terms
and both people's passkey assertions over their hash) and when it ends
(`delegation.revoked`, `delegation.expired`). Actions a delegate takes carry `actor`
(the delegate's pseudonym) and `delegation_id` beside the principal's `subject`
(`acting_fields`), so an auditor can check each against a delegation live at that time.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson
from sqlalchemy import update
from sqlmodel import Session, col, select

from vault.domain.relationships import (
    DelegatedAction,
    DelegationTerms,
    Kind,
    RelationshipRefused,
    check_terms,
    parse_actions,
)
from vault.domain.terms import format_utc
from vault.errors import NotFound
from vault.services.approvals import ApprovalProof, ApprovalVerifier
from vault.services.citizens import get_citizen
from vault.services.context import VaultContext, Work, new_id, unit_of_work
from vault.services.records import latest_values
from vault.storage.tables import CitizenRow, PasskeyRow, RelationshipRow

__all__ = [
    "Acting",
    "Side",
    "acting_fields",
    "acting_for",
    "authorize",
    "display_names",
    "end",
    "expire_due",
    "has_passkey",
    "lock",
    "propose",
    "sign",
    "terms_of",
]

PROPOSED, LIVE, ENDED = "proposed", "live", "ended"
Side = Literal["principal", "delegate"]


def _actions_text(actions: frozenset[DelegatedAction]) -> str:
    return ",".join(sorted(a.value for a in actions))


def actions_of(row: RelationshipRow) -> frozenset[DelegatedAction]:
    return parse_actions(row.actions.split(","))


@dataclass(frozen=True, slots=True)
class Acting:
    """One person the signed-in person may act for now."""

    relationship_id: str
    principal_id: str
    kind: Kind
    actions: frozenset[DelegatedAction]
    until: datetime


def authorize(session: Session, *, actor_id: str, subject_id: str,
              action: DelegatedAction, now: datetime) -> RelationshipRow | None:
    """None when people act for themselves; else the live relationship letting `actor_id`
    take `action` in `subject_id`'s vault at `now`, or RelationshipRefused("not_allowed")."""
    if actor_id == subject_id:
        return None
    rows = session.execute(
        select(RelationshipRow).where(
            col(RelationshipRow.delegate_id) == actor_id,
            col(RelationshipRow.principal_id) == subject_id,
            col(RelationshipRow.state) == LIVE, col(RelationshipRow.until) > now)
    ).scalars().all()
    for row in rows:
        if action in actions_of(row):
            return row  # type: ignore[no-any-return]
    raise RelationshipRefused("not_allowed")


def acting_fields(session: Session, *, actor_id: str, subject_id: str,
                  action: DelegatedAction, now: datetime) -> dict[str, Any]:
    """The ledger fields of an action by `actor_id` in `subject_id`'s vault: nothing when
    they are the same person, else `actor` and `delegation_id` (RelationshipRefused if no
    live relationship allows it)."""
    row = authorize(session, actor_id=actor_id, subject_id=subject_id, action=action, now=now)
    if row is None:
        return {}
    return {"actor": get_citizen(session, actor_id).subject, "delegation_id": row.id}


def acting_for(session: Session, actor_id: str, *, now: datetime) -> list[Acting]:
    """Everyone `actor_id` may act for at `now`, oldest relationship first."""
    rows = session.execute(
        select(RelationshipRow).where(
            col(RelationshipRow.delegate_id) == actor_id,
            col(RelationshipRow.state) == LIVE, col(RelationshipRow.until) > now)
        .order_by(col(RelationshipRow.created_at), col(RelationshipRow.id))
    ).scalars().all()
    return [Acting(r.id, r.principal_id, Kind(r.kind), actions_of(r), r.until) for r in rows]


#: What the wallet calls someone whose `identity.name` record is missing or unusable.
UNNAMED = "Someone without a name in their vault"


def display_names(ctx: VaultContext, session: Session, citizen_ids: list[str]
                  ) -> dict[str, str]:
    """Each person's name as the other side of a relationship sees it: their own
    `identity.name` record ("given family"), decrypted here and never stored elsewhere."""
    names: dict[str, str] = {}
    for citizen_id in dict.fromkeys(citizen_ids):
        citizen = session.get(CitizenRow, citizen_id)
        value = None if citizen is None else latest_values(
            ctx, session, citizen, ("identity.name",)).get("identity.name")
        name = value.value if value is not None else None
        if isinstance(name, dict):
            text = " ".join(str(name[k]).strip() for k in ("given", "family")
                            if isinstance(name.get(k), str) and name[k].strip())
            names[citizen_id] = text or UNNAMED
        else:
            names[citizen_id] = UNNAMED
    return names


def has_passkey(session: Session, citizen_id: str) -> bool:
    return session.execute(select(PasskeyRow.credential_id).where(
        col(PasskeyRow.citizen_id) == citizen_id).limit(1)).first() is not None


def terms_of(session: Session, row: RelationshipRow) -> DelegationTerms:
    principal = session.get(CitizenRow, row.principal_id)
    delegate = session.get(CitizenRow, row.delegate_id)
    if principal is None or delegate is None:
        raise NotFound("no such relationship")
    return DelegationTerms(delegation_id=row.id, principal=principal.subject,
                           delegate=delegate.subject, kind=Kind(row.kind),
                           actions=actions_of(row), until=row.until, issuer=row.issuer)


def lock(work: Work, relationship_id: str) -> RelationshipRow:
    row = work.session.execute(
        select(RelationshipRow).where(col(RelationshipRow.id) == relationship_id)
        .with_for_update()).scalar_one_or_none()
    if row is None:
        raise NotFound("no such relationship")
    return row  # type: ignore[no-any-return]


def propose(work: Work, *, principal_id: str, delegate_id: str, kind: str,
            actions: list[str] | frozenset[str], until: datetime, origin: str,
            issuer: str | None = None, relationship_id: str | None = None
            ) -> RelationshipRow:
    """A new relationship waiting for its signatures. Refused (nothing written) when the
    terms break a rule, or when the delegate can already act for the principal.
    `relationship_id` is for a signer shown the terms before the row exists (an
    invitation's delegate signs their hash, which names the id): else a new one."""
    parsed, chosen = check_terms(kind, actions, until, now=work.now,
                                 principal_id=principal_id, delegate_id=delegate_id)
    already = work.session.execute(select(RelationshipRow.id).where(
        col(RelationshipRow.principal_id) == principal_id,
        col(RelationshipRow.delegate_id) == delegate_id,
        col(RelationshipRow.state) == LIVE, col(RelationshipRow.until) > work.now)
    ).first()
    if already is not None:
        raise RelationshipRefused("already")
    row = RelationshipRow(
        id=relationship_id or new_id("dlg"), principal_id=principal_id, delegate_id=delegate_id,
        kind=parsed.value, actions=_actions_text(chosen), until=until, state=PROPOSED,
        origin=origin, issuer=issuer, terms_hash=b"", created_at=work.now)
    work.session.add(row)
    work.session.flush()
    row.terms_hash = terms_of(work.session, row).terms_hash()
    return row


def sign(work: Work, row: RelationshipRow, *, side: Side, proof: ApprovalProof,
         verifier: ApprovalVerifier) -> RelationshipRow:
    """One person's passkey signature over the terms. The relationship goes live (and
    on the ledger) once each side that can sign has: a principal with no passkey (a
    child's vault) has nobody to sign for them but the parent."""
    if row.state != PROPOSED:
        raise RelationshipRefused("ended" if row.state == ENDED else "already")
    if row.until <= work.now:
        raise RelationshipRefused("bad_until")
    signer = row.principal_id if side == "principal" else row.delegate_id
    verifier.verify(work.session, citizen_id=signer, challenge=row.terms_hash, proof=proof)
    assertion = orjson.dumps(proof.to_json()).decode()
    if side == "principal":
        row.principal_assertion = assertion
    else:
        row.delegate_assertion = assertion
    principal_signs = row.principal_assertion is not None or (
        row.origin == "dependant" and not has_passkey(work.session, row.principal_id))
    if principal_signs and row.delegate_assertion is not None:
        _go_live(work, row)
    work.session.add(row)
    return row


def _go_live(work: Work, row: RelationshipRow) -> None:
    terms = terms_of(work.session, row)
    entry = work.ledger.append("delegation.granted", {
        "delegation_id": row.id, "subject": terms.principal, "delegate": terms.delegate,
        "relationship": row.kind, "actions": sorted(a.value for a in terms.actions),
        "until": format_utc(row.until), "issuer": row.issuer,
        "terms_hash": base64.b64encode(row.terms_hash).decode(),
        "principal_assertion": _assertion(row.principal_assertion),
        "delegate_assertion": _assertion(row.delegate_assertion)})
    row.state = LIVE
    row.ledger_index = entry.seq


def _assertion(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def end(work: Work, row: RelationshipRow, *, by: str, actor_id: str | None = None) -> None:
    """End a relationship now: a live one on the ledger (`delegation.revoked`, saying by
    whom), a proposed one quietly (it never was). Ending an ended one is refused."""
    if row.state == ENDED:
        raise RelationshipRefused("ended")
    if row.state == LIVE:
        subject = get_citizen(work.session, row.principal_id).subject
        body: dict[str, Any] = {"delegation_id": row.id, "subject": subject, "by": by}
        if actor_id is not None:
            body["actor"] = get_citizen(work.session, actor_id).subject
        work.ledger.append("delegation.revoked", body)
    row.state, row.ended_at, row.ended_by = ENDED, work.now, by
    work.session.add(row)


def expire_due(ctx: VaultContext, *, batch: int = 200) -> int:
    """Every live relationship past its end date ends on the ledger
    (`delegation.expired`); access already stopped at `until` (`authorize`)."""
    expired = 0
    while True:
        with unit_of_work(ctx) as work:
            rows = work.session.execute(
                select(RelationshipRow).where(
                    col(RelationshipRow.state) == LIVE,
                    col(RelationshipRow.until) <= work.now)
                .order_by(col(RelationshipRow.until)).limit(batch)
                .with_for_update(skip_locked=True)).scalars().all()
            for row in rows:
                subject = get_citizen(work.session, row.principal_id).subject
                work.ledger.append("delegation.expired",
                                   {"delegation_id": row.id, "subject": subject})
            if rows:
                work.session.execute(
                    update(RelationshipRow)
                    .where(col(RelationshipRow.id).in_([r.id for r in rows]))
                    .values(state=ENDED, ended_at=work.now, ended_by="expiry"))
            expired += len(rows)
        if len(rows) < batch:
            return expired
