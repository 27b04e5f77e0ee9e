"""Invitations to act for someone (ARCHITECTURE §9, issue 14 §1): single-use codes.

The principal chooses the terms (kind, actions, until) and gets a code to pass on, by
hand, as a link or as a QR code. The person who opens it, signed in, sees the terms and
accepts them with their passkey: the relationship is proposed, signed by the delegate
and the code used up in one transaction. The principal then confirms with theirs and it
goes live (`delegations.sign`).

Codes are 60 random bits in Crockford's base32 (typeable, read aloud without I/L/O/U
mix-ups), kept only as HMAC-SHA-256 under the wallet's secret, as recovery codes are:
a copy of the database cannot be searched for them. Each works once, for 7 days.

The delegate signs the terms' hash before the relationship row exists, and the terms
name its id. So the id is derived, not drawn: a keyed hash of the invitation and the
delegate (`delegation_id`), the same when the options are made and when the answer
comes back, known to nobody without the secret, and different for every invitation.

Refusals (`RelationshipRefused`, nothing written): a used or expired code, one's own
invitation (`self`), terms outside the rules (a helper over a day), an invitation made
or accepted while acting for someone else (`further`), a relationship already live. A
code that matches no invitation is `UnknownInvitation`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, update
from sqlmodel import Session, col, select

from vault.crypto import typed_codes
from vault.domain.relationships import (
    DelegatedAction,
    DelegationTerms,
    Kind,
    RelationshipRefused,
    check_terms,
    parse_actions,
)
from vault.errors import NotFound
from vault.services import delegations
from vault.services.approvals import ApprovalProof
from vault.services.citizens import get_citizen
from vault.services.context import VaultContext, Work, reading, unit_of_work
from vault.storage.tables import RelationshipInviteRow, RelationshipRow

__all__ = [
    "CODE_CHARS",
    "INVITE_TTL",
    "PURPOSE",
    "Invitation",
    "NewInvitation",
    "UnknownInvitation",
    "accept",
    "cancel",
    "code_hash",
    "delegation_id",
    "find",
    "invite",
    "signing_terms",
    "unused",
]

PURPOSE = "delegate"
INVITE_TTL = timedelta(days=7)
CODE_CHARS = 12


class UnknownInvitation(NotFound):
    """No invitation has this code (mistyped, cancelled, or never made)."""


@dataclass(frozen=True, slots=True)
class NewInvitation:
    #: The code, formatted to read (ABCD-EFGH-JKMN): shown this once, never stored.
    code: str
    code_hash: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Invitation:
    """An invitation as its principal made it."""

    code_hash: str
    principal_id: str
    kind: Kind
    actions: frozenset[DelegatedAction]
    until: datetime
    created_at: datetime
    expires_at: datetime


def code_hash(secret: bytes, code: str) -> str:
    """The key an invitation is kept under: HMAC-SHA-256 of its normalised code."""
    return typed_codes.code_hash(secret, b"relationship-invite", typed_codes.normalise(code))


def delegation_id(secret: bytes, invite_hash: str, delegate_id: str) -> str:
    """The id the relationship from this invitation will have if `delegate_id` accepts
    it: what the delegate's signed terms name (see the module docstring)."""
    digest = hmac.new(secret, b"delegation-id\x00" + invite_hash.encode("ascii") + b"\x00"
                      + delegate_id.encode("utf-8"), hashlib.sha256).digest()[:16]
    return "dlg_" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _view(row: RelationshipInviteRow) -> Invitation:
    assert row.kind is not None and row.actions is not None and row.until is not None
    return Invitation(row.code_hash, row.principal_id, Kind(row.kind),
                      parse_actions(row.actions.split(",")), row.until, row.created_at,
                      row.expires_at)


def _not_acting(actor_id: str, subject_id: str | None) -> None:
    """A person sets relationships up for their own vault only, never while acting for
    someone: what they were trusted with is not theirs to pass on."""
    if subject_id is not None and subject_id != actor_id:
        raise RelationshipRefused("further")


def invite(ctx: VaultContext, secret: bytes, *, principal_id: str, kind: str,
           actions: list[str], until: datetime, acting_for: str | None = None
           ) -> NewInvitation:
    """A new single-use invitation to act for `principal_id` on these terms.
    `acting_for`: whose vault the principal is in now, if not their own (refused)."""
    _not_acting(principal_id, acting_for)
    raw = typed_codes.new_code(CODE_CHARS)
    key = code_hash(secret, raw)
    with unit_of_work(ctx) as work:
        get_citizen(work.session, principal_id)
        parsed, chosen = check_terms(kind, actions, until, now=work.now)
        # An invitation is no use after the relationship it offers would have ended.
        expires = min(work.now + INVITE_TTL, until)
        work.session.add(RelationshipInviteRow(
            code_hash=key, principal_id=principal_id, purpose=PURPOSE, kind=parsed.value,
            actions=",".join(sorted(a.value for a in chosen)), until=until,
            created_at=work.now, expires_at=expires))
    return NewInvitation(typed_codes.readable(raw), key, expires)


def unused(session: Session, principal_id: str, *, now: datetime) -> list[Invitation]:
    """The principal's invitations nobody has used yet and still in time, newest first."""
    rows = session.execute(select(RelationshipInviteRow).where(
        col(RelationshipInviteRow.principal_id) == principal_id,
        col(RelationshipInviteRow.purpose) == PURPOSE,
        col(RelationshipInviteRow.used_at).is_(None),
        col(RelationshipInviteRow.expires_at) > now)
        .order_by(col(RelationshipInviteRow.created_at).desc())).scalars().all()
    return [_view(r) for r in rows]


def cancel(ctx: VaultContext, *, principal_id: str, invite_hash: str) -> None:
    """The principal takes back an invitation nobody has used: the code stops working."""
    with unit_of_work(ctx) as work:
        gone = cast("CursorResult[Any]", work.session.execute(
            delete(RelationshipInviteRow).where(
                col(RelationshipInviteRow.code_hash) == invite_hash,
                col(RelationshipInviteRow.principal_id) == principal_id,
                col(RelationshipInviteRow.purpose) == PURPOSE,
                col(RelationshipInviteRow.used_at).is_(None))))
        if gone.rowcount != 1:
            raise UnknownInvitation("there is no unused invitation of yours like that")


def _checked(session: Session, secret: bytes, code: str, *, delegate_id: str,
             now: datetime, lock: bool = False) -> RelationshipInviteRow:
    normal = typed_codes.normalise(code)
    if not typed_codes.well_formed(normal, CODE_CHARS):
        raise UnknownInvitation("an invitation code is 12 letters and numbers, like "
                                "ABCD-EFGH-JKMN")
    query = select(RelationshipInviteRow).where(
        col(RelationshipInviteRow.code_hash) == code_hash(secret, normal),
        col(RelationshipInviteRow.purpose) == PURPOSE)
    row = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if row is None:
        raise UnknownInvitation("no invitation has that code: check it, or ask for a new one")
    if row.used_at is not None:
        raise RelationshipRefused("invitation_used")
    if row.expires_at <= now:
        raise RelationshipRefused("invitation_expired")
    if row.principal_id == delegate_id:
        raise RelationshipRefused("self", "this is your own invitation: give it to the "
                                          "person you want to act for you")
    return row  # type: ignore[no-any-return]


def find(ctx: VaultContext, secret: bytes, code: str, *, delegate_id: str
         ) -> Invitation:
    """The invitation `delegate_id` has the code of, if they may still accept it."""
    with reading(ctx) as session:
        return _view(_checked(session, secret, code, delegate_id=delegate_id,
                              now=ctx.clock()))


def signing_terms(ctx: VaultContext, secret: bytes, code: str, *, delegate_id: str,
                  acting_for: str | None = None) -> DelegationTerms:
    """The exact terms `delegate_id` signs to accept (their hash is the challenge)."""
    _not_acting(delegate_id, acting_for)
    with reading(ctx) as session:
        row = _checked(session, secret, code, delegate_id=delegate_id, now=ctx.clock())
        return _terms(session, secret, row, delegate_id)


def _terms(session: Session, secret: bytes, row: RelationshipInviteRow,
           delegate_id: str) -> DelegationTerms:
    invitation = _view(row)
    return DelegationTerms(
        delegation_id=delegation_id(secret, row.code_hash, delegate_id),
        principal=get_citizen(session, row.principal_id).subject,
        delegate=get_citizen(session, delegate_id).subject, kind=invitation.kind,
        actions=invitation.actions, until=invitation.until, issuer=None)


def accept(ctx: VaultContext, secret: bytes, code: str, *, delegate_id: str,
           proof: ApprovalProof, acting_for: str | None = None) -> str:
    """The delegate accepts with their passkey over the terms' hash: the relationship
    proposed and signed by them, the code used up, in one transaction. Returns its id."""
    _not_acting(delegate_id, acting_for)
    with unit_of_work(ctx) as work:
        row = _checked(work.session, secret, code, delegate_id=delegate_id, now=work.now,
                       lock=True)
        relationship = _propose(work, secret, row, delegate_id)
        delegations.sign(work, relationship, side="delegate", proof=proof,
                         verifier=ctx.approvals)
        # Guarded, so of two people racing with one code only one gets it.
        spent = cast("CursorResult[Any]", work.session.execute(
            update(RelationshipInviteRow).where(
                col(RelationshipInviteRow.code_hash) == row.code_hash,
                col(RelationshipInviteRow.used_at).is_(None))
            .values(used_at=work.now, relationship_id=relationship.id)))
        if spent.rowcount != 1:
            raise RelationshipRefused("invitation_used")
        return relationship.id


def _propose(work: Work, secret: bytes, row: RelationshipInviteRow,
             delegate_id: str) -> RelationshipRow:
    invitation = _view(row)
    return delegations.propose(
        work, principal_id=row.principal_id, delegate_id=delegate_id,
        kind=invitation.kind.value, actions=frozenset(a.value for a in invitation.actions),
        until=invitation.until, origin="invited",
        relationship_id=delegation_id(secret, row.code_hash, delegate_id))
