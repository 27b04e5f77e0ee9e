"""The People page's use cases: who can act for me, whom I act for, what waits for my
signature, and ending a relationship (ARCHITECTURE §9, issue 14 §1).

Everything here is for the signed-in person in their own right (the actor), never for
someone whose vault they are in: relationships are set up and ended by the two people
they join. Confirming is a passkey signature over the relationship's terms hash, the
same ceremony as approving a grant; ending needs only the session, as declining does,
and takes effect at once (`delegations.authorize` runs in every delegated action).
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import segno
from sqlmodel import Session, col, or_, select

from vault.domain.relationships import DelegatedAction, Kind, RelationshipRefused
from vault.errors import NotFound
from vault.services import delegations, invitations
from vault.services.activity import service_names
from vault.services.approvals import ApprovalProof
from vault.services.context import VaultContext, reading, unit_of_work
from vault.storage.tables import RelationshipRow

__all__ = [
    "ACTION_WORDS",
    "KIND_WORDS",
    "Line",
    "People",
    "end",
    "invitation_qr",
    "line_of",
    "people",
    "sign",
    "signing_challenge",
]

KIND_WORDS: dict[Kind, str] = {
    Kind.PARENT: "Parent",
    Kind.ATTORNEY: "Attorney (lasting power of attorney)",
    Kind.APPOINTEE: "Appointee (benefits)",
    Kind.HELPER: "Helper (for one visit)",
}

#: What each action lets the delegate do, as the end of "They can ...".
ACTION_WORDS: dict[DelegatedAction, str] = {
    DelegatedAction.VIEW: "see the information, requests, grants and activity",
    DelegatedAction.EDIT: "add, change and delete information",
    DelegatedAction.APPROVE: "say yes or no to services' requests",
    DelegatedAction.REVOKE: "pause and stop what services can see",
}

_ORIGIN_WORDS = {"invited": "By invitation", "dependant": "A child's vault",
                 "counter": "At a counter, for one visit"}

#: How many ended relationships the page lists (the newest).
ENDED_SHOWN = 20


@dataclass(frozen=True, slots=True)
class Line:
    """One relationship as one of its two people sees it."""

    id: str
    #: The other person's name (from their own identity.name record).
    name: str
    #: "principal" when the other person acts for me, "delegate" when I act for them.
    my_side: str
    kind: str
    actions: tuple[str, ...]
    until: datetime
    origin: str
    state: str
    state_words: str
    tag: str
    #: Waiting for my passkey signature.
    mine_to_sign: bool
    ended_at: datetime | None = None
    #: The other person has signed the terms already.
    other_signed: bool = False


@dataclass(frozen=True, slots=True)
class People:
    act_for_me: list[Line]
    i_act_for: list[Line]
    to_sign: list[Line]
    ended: list[Line]
    invitations: list[invitations.Invitation]


def _side(row: RelationshipRow, citizen_id: str) -> delegations.Side:
    return "principal" if row.principal_id == citizen_id else "delegate"


def _mine_to_sign(row: RelationshipRow, citizen_id: str) -> bool:
    if row.state != "proposed":
        return False
    mine = row.principal_assertion if _side(row, citizen_id) == "principal" \
        else row.delegate_assertion
    return mine is None


def _state(row: RelationshipRow, citizen_id: str, name: str, now: datetime
           ) -> tuple[str, str]:
    if row.state == "live" and row.until <= now:
        return "Ended: time was up", "ended"
    if row.state == "live":
        return "Active", "approved"
    if row.state == "ended":
        return {"expiry": "Ended: time was up", "issuer": "Ended by who recorded it",
                "handover": "Ended when the vault was handed over",
                "citizen_erased": "Ended: an account was deleted"}.get(
                    row.ended_by or "", "Ended"), "ended"
    if _mine_to_sign(row, citizen_id):
        return "Waiting for you to confirm", "requested"
    return f"Waiting for {name} to accept", "requested"


def _lines(ctx: VaultContext, session: Session, rows: Iterable[RelationshipRow],
           citizen_id: str) -> list[Line]:
    now = ctx.clock()
    rows = list(rows)
    others = [r.delegate_id if r.principal_id == citizen_id else r.principal_id
              for r in rows]
    names = delegations.display_names(ctx, session, others)
    issuers = service_names(session, [r.issuer for r in rows if r.issuer])
    out = []
    for row, other in zip(rows, others, strict=True):
        name = names[other]
        words, tag = _state(row, citizen_id, name, now)
        origin = (f"Recorded by {issuers.get(row.issuer, row.issuer)}" if row.issuer
                  else _ORIGIN_WORDS.get(row.origin, row.origin))
        actions = delegations.actions_of(row)
        out.append(Line(
            row.id, name, _side(row, citizen_id), KIND_WORDS[Kind(row.kind)],
            tuple(ACTION_WORDS[a] for a in DelegatedAction if a in actions), row.until,
            origin, row.state, words, tag, _mine_to_sign(row, citizen_id), row.ended_at,
            other_signed=(row.delegate_assertion if row.principal_id == citizen_id
                          else row.principal_assertion) is not None))
    return out


def people(ctx: VaultContext, citizen_id: str) -> People:
    """Everything the People page shows `citizen_id`."""
    now = ctx.clock()
    with reading(ctx) as session:
        mine = or_(col(RelationshipRow.principal_id) == citizen_id,
                   col(RelationshipRow.delegate_id) == citizen_id)
        # A live one past its end date is ended already for every check; the sweeper
        # only has not written its entry yet.
        current = session.execute(
            select(RelationshipRow).where(mine, col(RelationshipRow.state) != "ended",
                                          col(RelationshipRow.until) > now)
            .order_by(col(RelationshipRow.created_at), col(RelationshipRow.id))
        ).scalars().all()
        ended = session.execute(
            select(RelationshipRow).where(mine, or_(
                col(RelationshipRow.state) == "ended",
                (col(RelationshipRow.state) == "live") & (col(RelationshipRow.until) <= now)))
            .order_by(col(RelationshipRow.ended_at).desc(), col(RelationshipRow.until).desc())
            .limit(ENDED_SHOWN)
        ).scalars().all()
        lines = _lines(ctx, session, current, citizen_id)
        # A proposal that was never agreed did not let anyone act: not worth listing.
        gone = _lines(ctx, session, [r for r in ended if r.ledger_index is not None],
                      citizen_id)
        waiting = invitations.unused(session, citizen_id, now=now)
    return People(
        act_for_me=[x for x in lines if x.my_side == "principal"],
        i_act_for=[x for x in lines if x.my_side == "delegate"],
        to_sign=[x for x in lines if x.mine_to_sign], ended=gone, invitations=waiting)


def _own(session: Session, relationship_id: str, citizen_id: str) -> RelationshipRow:
    row = session.get(RelationshipRow, relationship_id) if len(relationship_id) <= 40 \
        else None
    if row is None or citizen_id not in (row.principal_id, row.delegate_id):
        raise NotFound("you have no relationship like that")
    return row


def line_of(ctx: VaultContext, citizen_id: str, relationship_id: str) -> Line:
    """One of `citizen_id`'s relationships as the People page shows it (NotFound)."""
    with reading(ctx) as session:
        return _lines(ctx, session, [_own(session, relationship_id, citizen_id)],
                      citizen_id)[0]


def _check_signable(row: RelationshipRow, citizen_id: str) -> None:
    if row.state == "ended":
        raise RelationshipRefused("ended")
    if not _mine_to_sign(row, citizen_id):
        raise RelationshipRefused("already", "you have already agreed to this")


def signing_challenge(ctx: VaultContext, citizen_id: str, relationship_id: str,
                      *, acting_for: str | None = None) -> bytes:
    """What `citizen_id` signs to agree to the relationship: its terms hash."""
    if acting_for is not None and acting_for != citizen_id:
        raise RelationshipRefused("further")
    with reading(ctx) as session:
        row = _own(session, relationship_id, citizen_id)
        _check_signable(row, citizen_id)
        return row.terms_hash


def sign(ctx: VaultContext, citizen_id: str, relationship_id: str, proof: ApprovalProof,
         *, acting_for: str | None = None) -> str:
    """`citizen_id`'s passkey signature over the terms: live once both have signed.
    Returns the relationship's state after it."""
    if acting_for is not None and acting_for != citizen_id:
        raise RelationshipRefused("further")
    with unit_of_work(ctx) as work:
        _own(work.session, relationship_id, citizen_id)
        row = delegations.lock(work, relationship_id)
        _check_signable(row, citizen_id)
        delegations.sign(work, row, side=_side(row, citizen_id),
                         proof=proof, verifier=ctx.approvals)
        return row.state


def end(ctx: VaultContext, citizen_id: str, relationship_id: str) -> None:
    """Either person ends the relationship now: `delegation.revoked` naming their side
    and them (a proposal nobody agreed to yet just goes)."""
    with unit_of_work(ctx) as work:
        _own(work.session, relationship_id, citizen_id)
        row = delegations.lock(work, relationship_id)
        delegations.end(work, row, by=_side(row, citizen_id), actor_id=citizen_id)


def invitation_qr(url: str) -> str:
    """The invitation's link as an inline SVG QR code (segno, as the service SDK's
    `qr_svg` draws it: no script, no style attribute, fit for the wallet's CSP)."""
    out = io.BytesIO()
    segno.make(url, error="m", micro=False).save(
        out, kind="svg", scale=4, border=4, xmldecl=False, nl=False, light="#fff",
        svgclass="qr", lineclass=None, title="QR code of the invitation link")
    return out.getvalue().decode("utf-8")
