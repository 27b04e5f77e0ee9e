"""Children's vaults (ARCHITECTURE §9 "Dependants", issue 14 §2): made by a parent, handed over.

A parent makes a vault for a child: a citizen with no passkey whose first records are the
child's name and date of birth, and a `parent` relationship with every action, live at
once on the parent's signature alone (nobody can sign for the child yet). It all commits
in one transaction, so there is never a child's vault that nobody can act for.

The parent signs terms naming ids that do not exist yet (the child's pseudonym, the
relationship's id): `plan_child` chooses them and checks the rules, `child_terms` gives
the terms to show and whose hash the parent's passkey signs, and `create_child` writes
it all. The wallet carries the plan between the two requests under its own MAC.

Handing over: the parent issues a one-time code (`issue_handover`: a keyed hash in
`relationship_invites`, purpose "handover", 14 days). The child redeems it signed out,
with their first passkey, in one transaction (`claim_handover`, then the wallet
registers the passkey, then `settle_handover`): the parent's relationship ends
(`delegation.revoked` by "handover") unless the child chose to keep it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast

import orjson
from sqlalchemy import CursorResult, delete, update
from sqlmodel import Session, col, select

from vault.crypto import envelope, typed_codes
from vault.domain.categories import clean_value
from vault.domain.errors import InvalidValue
from vault.domain.relationships import (
    DelegatedAction,
    DelegationTerms,
    Kind,
    RelationshipRefused,
    check_terms,
)
from vault.errors import NotFound
from vault.services import behalf, delegations
from vault.services.approvals import ApprovalProof, ApprovalVerifier
from vault.services.citizens import enrol_in, get_citizen
from vault.services.context import VaultContext, Work, new_id, unit_of_work
from vault.storage.tables import CitizenRow, RecordRow, RelationshipInviteRow, RelationshipRow

__all__ = [
    "ALL_ACTIONS",
    "HANDOVER_LIFETIME",
    "Child",
    "ChildPlan",
    "ChildVault",
    "Handover",
    "IssuedHandover",
    "check_handover",
    "child_terms",
    "children_of",
    "claim_handover",
    "create_child",
    "eighteenth_birthday",
    "issue_handover",
    "plan_child",
    "settle_handover",
]

#: A parent may do everything in a young child's vault.
ALL_ACTIONS = frozenset(DelegatedAction)
HANDOVER_LIFETIME = timedelta(days=14)
_HANDOVER = "handover"
_DEPENDANT = "dependant"
_CODE_CHARS = 16  # 80 bits: a code lives 14 days, so far more than a recovery code's 60


# -- making a child's vault ---------------------------------------------------------------

def eighteenth_birthday(born: date) -> datetime:
    """Midnight UTC starting the child's 18th birthday (29 February: 1 March)."""
    try:
        day = born.replace(year=born.year + 18)
    except ValueError:
        day = date(born.year + 18, 3, 1)
    return datetime.combine(day, time(0), tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ChildPlan:
    """A child's vault as the parent is about to sign for it: every id chosen, every rule
    checked, nothing written yet."""

    parent_id: str
    child_id: str
    child_subject: str
    relationship_id: str
    given: str
    family: str
    date_of_birth: date
    until: datetime

    def to_json(self) -> dict[str, str]:
        return {"parent_id": self.parent_id, "child_id": self.child_id,
                "child_subject": self.child_subject, "relationship_id": self.relationship_id,
                "given": self.given, "family": self.family,
                "date_of_birth": self.date_of_birth.isoformat(),
                "until": self.until.isoformat()}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> ChildPlan:
        return cls(parent_id=value["parent_id"], child_id=value["child_id"],
                   child_subject=value["child_subject"],
                   relationship_id=value["relationship_id"], given=value["given"],
                   family=value["family"],
                   date_of_birth=date.fromisoformat(value["date_of_birth"]),
                   until=datetime.fromisoformat(value["until"]))


def plan_child(*, parent_id: str, given: str, family: str, date_of_birth: str,
               until: datetime | None, now: datetime) -> ChildPlan:
    """The plan of a child's vault, or why not: the name as `identity.name` takes it
    (InvalidValue), a date of birth of someone under 18 and not in the future
    (InvalidValue), and an end date in the future, no later than the 18th birthday
    (RelationshipRefused "bad_until"); none given: the 18th birthday."""
    name = clean_value("identity.name", {"given": given.strip(), "family": family.strip()})
    try:
        born = date.fromisoformat(clean_value("identity.date_of_birth", date_of_birth.strip()))
    except ValueError:
        raise InvalidValue("the date of birth is not a date such as 2018-05-17") from None
    if born > now.date():
        raise InvalidValue("the date of birth is in the future")
    adult = eighteenth_birthday(born)
    if adult <= now:
        raise InvalidValue("a child's vault is for someone under 18: an adult makes their "
                           "own account, and can invite you to act for them")
    until = adult if until is None else until
    check_terms(Kind.PARENT, ALL_ACTIONS, until, now=now)
    if until > adult:
        raise RelationshipRefused("bad_until", "a parent acts in a child's vault until the "
                                  "child's 18th birthday at the latest")
    return ChildPlan(parent_id=parent_id, child_id=new_id("cit"), child_subject=new_id("sub"),
                     relationship_id=new_id("dlg"), given=name["given"],
                     family=name["family"], date_of_birth=born, until=until)


def child_terms(session: Session, plan: ChildPlan) -> DelegationTerms:
    """The terms the parent signs: what `create_child` will make live, to the byte."""
    parent = get_citizen(session, plan.parent_id)
    return DelegationTerms(delegation_id=plan.relationship_id, principal=plan.child_subject,
                           delegate=parent.subject, kind=Kind.PARENT, actions=ALL_ACTIONS,
                           until=plan.until)


@dataclass(frozen=True, slots=True)
class ChildVault:
    child_id: str
    relationship_id: str


def create_child(ctx: VaultContext, plan: ChildPlan, *, proof: ApprovalProof,
                 verifier: ApprovalVerifier) -> ChildVault:
    """The child (a citizen with no passkey), the parent's relationship signed by the
    parent and live, and the child's name and date of birth written by the parent acting
    for the child (`actor`, `delegation_id` on their ledger entries): all or nothing."""
    with unit_of_work(ctx) as work:
        if work.session.get(CitizenRow, plan.child_id) is not None:
            raise RelationshipRefused("already", "this child's vault has been made already")
        _, key = enrol_in(ctx, work, plan.child_id, subject=plan.child_subject)
        row = delegations.propose(
            work, principal_id=plan.child_id, delegate_id=plan.parent_id, kind=Kind.PARENT,
            actions=frozenset(a.value for a in ALL_ACTIONS), until=plan.until,
            origin=_DEPENDANT, relationship_id=plan.relationship_id)
        delegations.sign(work, row, side="delegate", proof=proof, verifier=verifier)
        who = behalf.check(work, actor_id=plan.parent_id, subject_id=plan.child_id,
                           action=DelegatedAction.EDIT)
        for category, value in (
                ("identity.name", {"given": plan.given, "family": plan.family}),
                ("identity.date_of_birth", plan.date_of_birth.isoformat())):
            _first_record(work, key, plan.child_id, plan.child_subject, category, value,
                          who)
    return ChildVault(plan.child_id, row.id)


def _first_record(work: Work, key: bytes, citizen_id: str, subject: str, category: str,
                  value: Any, who: behalf.Behalf | None) -> None:
    """Version 1 of a record in a vault made in this transaction: as `records.
    write_record` writes one, inside the caller's transaction (nobody can have a grant
    to be told of yet), and on the child's list of what was done for them."""
    record_id = new_id("rec")
    ad = envelope.record_ad(citizen_id=citizen_id, record_id=record_id, category=category,
                            version=1)
    work.session.add(RecordRow(
        id=record_id, citizen_id=citizen_id, category=category, version=1,
        ciphertext=envelope.seal(key, orjson.dumps(value), ad=ad), source="citizen",
        created_at=work.now))
    entry = work.ledger.append("record.written", {
        "subject": subject, "record_id": record_id, "category": category, "version": 1,
        "source": "citizen", **behalf.fields(who)})
    behalf.note(work, who, seq=entry.seq, kind="record.written", category=category)


@dataclass(frozen=True, slots=True)
class Child:
    """One child's vault someone can act in as its parent, as their children's page shows it."""

    child_id: str
    relationship_id: str
    until: datetime
    #: The child has their own passkey: the vault is theirs now.
    handed_over: bool


def children_of(session: Session, parent_id: str, *, now: datetime) -> list[Child]:
    """The vaults `parent_id` made for children and can still act in, oldest first."""
    rows = session.execute(
        select(RelationshipRow).where(
            col(RelationshipRow.delegate_id) == parent_id,
            col(RelationshipRow.origin) == _DEPENDANT,
            col(RelationshipRow.state) == delegations.LIVE, col(RelationshipRow.until) > now)
        .order_by(col(RelationshipRow.created_at), col(RelationshipRow.id))
    ).scalars().all()
    return [Child(r.principal_id, r.id, r.until,
                  delegations.has_passkey(session, r.principal_id)) for r in rows]


# -- handing it over -------------------------------------------------------------------

def _code_hash(secret: bytes, code: str) -> str:
    return typed_codes.code_hash(secret, b"handover-code", code)


@dataclass(frozen=True, slots=True)
class IssuedHandover:
    #: The code, formatted to read (ABCD-EFGH-JKMN-PQRS): shown to the parent this once.
    code: str
    expires_at: datetime


def issue_handover(ctx: VaultContext, secret: bytes, *, parent_id: str,
                   child_id: str) -> IssuedHandover:
    """A one-time code for the child to take their vault over, replacing any unused one.
    Only a parent who can act in the child's vault now may issue it, and only while the
    child has no passkey of their own."""
    raw = typed_codes.new_code(_CODE_CHARS)
    with unit_of_work(ctx) as work:
        row = _parents_relationship(work.session, parent_id, child_id, now=work.now)
        if delegations.has_passkey(work.session, child_id):
            raise RelationshipRefused("invitation_used", _TAKEN_OVER)
        work.session.execute(delete(RelationshipInviteRow).where(
            col(RelationshipInviteRow.principal_id) == child_id,
            col(RelationshipInviteRow.purpose) == _HANDOVER,
            col(RelationshipInviteRow.used_at).is_(None)))
        expires = work.now + HANDOVER_LIFETIME
        work.session.add(RelationshipInviteRow(
            code_hash=_code_hash(secret, raw), principal_id=child_id, purpose=_HANDOVER,
            relationship_id=row.id, created_at=work.now, expires_at=expires))
    return IssuedHandover(typed_codes.readable(raw), expires)


_TAKEN_OVER = "this vault has been taken over already: its owner has their own passkey"


def _parents_relationship(session: Session, parent_id: str, child_id: str, *,
                          now: datetime) -> RelationshipRow:
    row = session.execute(select(RelationshipRow).where(
        col(RelationshipRow.delegate_id) == parent_id,
        col(RelationshipRow.principal_id) == child_id,
        col(RelationshipRow.origin) == _DEPENDANT,
        col(RelationshipRow.state) == delegations.LIVE,
        col(RelationshipRow.until) > now)).scalars().first()
    if row is None:
        raise RelationshipRefused("not_allowed")
    return cast(RelationshipRow, row)


@dataclass(frozen=True, slots=True)
class Handover:
    """A handover code that works: whose vault it hands over, and from which parent."""

    code_hash: str
    child_id: str
    relationship_id: str | None
    parent_id: str | None


def check_handover(session: Session, secret: bytes, code: str, *, now: datetime) -> Handover:
    """The handover a code stands for, or why it does not work: not a code of ours
    (NotFound), used, expired, or for a vault whose owner has a passkey already
    (RelationshipRefused). Reads only: `claim_handover` uses it up."""
    normal = typed_codes.normalise(code)
    if not typed_codes.well_formed(normal, _CODE_CHARS):
        raise NotFound("that is not a handover code: it has 16 letters and digits, like "
                       "ABCD-EFGH-JKMN-PQRS")
    row = session.get(RelationshipInviteRow, _code_hash(secret, normal))
    if row is None or row.purpose != _HANDOVER:
        raise NotFound("that handover code is not right: check it, or ask for a new one")
    if row.used_at is not None:
        raise RelationshipRefused("invitation_used", "this handover code has been used "
                                  "already")
    if row.expires_at <= now:
        raise RelationshipRefused("invitation_expired", "this handover code has expired: "
                                  "ask for a new one")
    if delegations.has_passkey(session, row.principal_id):
        raise RelationshipRefused("invitation_used", _TAKEN_OVER)
    relationship = None if row.relationship_id is None else \
        session.get(RelationshipRow, row.relationship_id)
    return Handover(row.code_hash, row.principal_id, row.relationship_id,
                    None if relationship is None else relationship.delegate_id)


def claim_handover(work: Work, secret: bytes, code: str) -> Handover:
    """Use a handover code up, in the transaction that registers the child's first
    passkey. The guarded UPDATE lets only one of two requests racing with it through."""
    handover = check_handover(work.session, secret, code, now=work.now)
    spent = cast("CursorResult[Any]", work.session.execute(
        update(RelationshipInviteRow).where(
            col(RelationshipInviteRow.code_hash) == handover.code_hash,
            col(RelationshipInviteRow.used_at).is_(None))
        .values(used_at=work.now)))
    if spent.rowcount != 1:
        raise RelationshipRefused("invitation_used", "this handover code has been used "
                                  "already")
    return handover


def settle_handover(work: Work, handover: Handover, *, keep: bool) -> bool:
    """The child's choice, once their passkey is registered: the parent's relationship
    stays as it was if they keep it, else it ends now (by "handover"). Returns whether
    it is still live."""
    if handover.relationship_id is None:
        return False
    row = delegations.lock(work, handover.relationship_id)
    if row.state != delegations.LIVE or row.until <= work.now:
        return False
    if keep:
        return True
    delegations.end(work, row, by="handover", actor_id=handover.child_id)
    return False
