"""Telling an issuer its record is wrong (ARCHITECTURE §8: issued data is the issuer's to
change).

The citizen cannot change a value a service issued; they can tell the issuer it is
wrong. One transaction holds the dispute's row (the line in the record's history), the
ledger entry `record.disputed` {"subject", "category", "issuer", "version"} and the
webhook `record.disputed` to the issuer from the outbox: the issuer is told exactly when
the dispute is recorded, never for one that rolled back.

Only the newest version the issuer wrote can be disputed (an older one it has replaced
already), and each version once: a second dispute finds the first and tells nobody again.

What the issuer is told is what it knows already, and nothing more: the citizen as it
knows them (its pairwise `sub`, and the write grant it holds), the category and version
it wrote, and why, as a code from `REASONS`. There is no free text, on purpose: words the
citizen typed would be personal data, sent to the issuer, kept in its logs and ours, and
(without care) on the ledger; a short fixed list tells the issuer where to look, and the
wallet points the citizen to the issuer's own contact for anything longer. The reason is
not on the ledger either: the entry records that a dispute happened, not what it says.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlmodel import Session, col, select

from vault.domain.errors import RecordConflict
from vault.domain.relationships import DelegatedAction
from vault.domain.terms import GrantTerms
from vault.errors import InvalidRequest, NotFound
from vault.services import behalf
from vault.services.citizens import get_citizen
from vault.services.context import VaultContext, Work, reading, unit_of_work
from vault.services.webhooks import enqueue
from vault.storage.tables import (
    GrantRow,
    OAuthSubjectRow,
    RecordDisputeRow,
    RecordRow,
    ServiceRow,
)

__all__ = ["REASONS", "Dispute", "Disputed", "dispute_record", "disputes_of"]

#: Why the citizen says an issued record is wrong: the codes the issuer receives, and the
#: wallet's words for each, in the order the wallet offers them.
REASONS: dict[str, str] = {
    "not_me": "It is not about me",
    "details_wrong": "Some of the details are wrong",
    "out_of_date": "It has changed or ended",
    "other": "Something else is wrong",
    "not_given": "No reason given",
}


@dataclass(frozen=True, slots=True)
class Dispute:
    """The citizen told `issuer` that `version` of their `category` is wrong."""

    category: str
    version: int
    issuer: str
    reason: str
    at: datetime
    ledger_index: int


@dataclass(frozen=True, slots=True)
class Disputed:
    """A dispute, and whether it is `new` (False: that version was disputed before, and
    nothing was recorded or sent this time)."""

    dispute: Dispute
    new: bool


def _dispute(row: RecordDisputeRow) -> Dispute:
    return Dispute(row.category, row.version, row.issuer, row.reason, row.created_at,
                   row.ledger_index)


def _locked_versions(work: Work, citizen_id: str, category: str) -> list[RecordRow]:
    # Locked, so two disputes of one version (two tabs, a double click) take turns and
    # the second finds the first's row (PostgreSQL; SQLite's write lock does it anyway).
    return list(work.session.execute(
        select(RecordRow).where(col(RecordRow.citizen_id) == citizen_id,
                                col(RecordRow.category) == category)
        .order_by(col(RecordRow.version)).with_for_update()).scalars())


def _who_to_the_issuer(session: Session, *, citizen_id: str, issuer: str, category: str
                       ) -> dict[str, Any]:
    """How the issuer knows this citizen: its pairwise `sub` (if it has been told one)
    and its newest write grant over the category (if it has one). Nothing else."""
    told: dict[str, Any] = {}
    sub = session.execute(select(col(OAuthSubjectRow.sub)).where(
        col(OAuthSubjectRow.service_id) == issuer,
        col(OAuthSubjectRow.citizen_id) == citizen_id).limit(1)).scalar_one_or_none()
    if sub is not None:
        told["sub"] = sub
    grants = session.execute(
        select(col(GrantRow.id), col(GrantRow.terms)).where(
            col(GrantRow.citizen_id) == citizen_id, col(GrantRow.service_id) == issuer)
        .order_by(col(GrantRow.requested_at).desc(), col(GrantRow.id))).all()
    for grant_id, terms in grants:
        parsed = GrantTerms.from_json(orjson.loads(terms))
        if parsed.can_write and category in parsed.categories:
            told["grant_id"] = grant_id
            break
    return told


def dispute_record(ctx: VaultContext, citizen_id: str, category: str, *, version: int,
                   reason: str, actor_id: str | None = None) -> Disputed:
    """The citizen tells the issuer of `version` of their `category` that it is wrong.

    NotFound if there is no such version; RecordConflict if it is the citizen's own value,
    not the newest version its issuer wrote (it changed after the page was drawn), or
    its issuer is not a registered service; InvalidRequest for a reason not in
    `REASONS`. `actor_id`: someone acting for the citizen (needs `edit`)."""
    if reason not in REASONS:
        raise InvalidRequest(f"the reason must be one of: {', '.join(REASONS)}")
    with unit_of_work(ctx) as work:
        citizen = get_citizen(work.session, citizen_id)
        who = behalf.check(work, actor_id=actor_id, subject_id=citizen_id,
                           action=DelegatedAction.EDIT)
        rows = _locked_versions(work, citizen_id, category)
        target = next((r for r in rows if r.version == version), None)
        if target is None:
            raise NotFound(f"you have no version {version} of {category}")
        if target.source == "citizen":
            raise RecordConflict("you added this value yourself: you can change it, so "
                                 "there is nobody to tell")
        newest = [r for r in rows if r.source == target.source][-1]
        if newest.version != target.version:
            raise RecordConflict("the service has changed this since you opened the page: "
                                 "look at the newest version and tell them again if it "
                                 "is still wrong")
        if work.session.get(ServiceRow, target.source) is None:
            raise RecordConflict("the service that issued this is not registered with "
                                 "the vault: there is nobody to tell")
        before = work.session.get(RecordDisputeRow, (citizen_id, category, version))
        if before is not None:
            return Disputed(_dispute(before), new=False)
        entry = work.ledger.append("record.disputed", {
            "subject": citizen.subject, "category": category, "issuer": target.source,
            "version": version, **behalf.fields(who)})
        behalf.note(work, who, seq=entry.seq, kind="record.disputed", category=category)
        enqueue(work, service_id=target.source, event="record.disputed", data={
            **_who_to_the_issuer(work.session, citizen_id=citizen_id, issuer=target.source,
                                 category=category),
            "category": category, "version": version, "reason": reason,
            "ledger_index": entry.seq})
        row = RecordDisputeRow(citizen_id=citizen_id, category=category, version=version,
                               issuer=target.source, reason=reason, ledger_index=entry.seq,
                               created_at=work.now)
        work.session.add(row)
        return Disputed(_dispute(row), new=True)


def disputes_of(ctx: VaultContext, citizen_id: str, category: str) -> dict[int, Dispute]:
    """The citizen's disputes of one category, by the version disputed."""
    with reading(ctx) as session:
        rows = session.execute(select(RecordDisputeRow).where(
            col(RecordDisputeRow.citizen_id) == citizen_id,
            col(RecordDisputeRow.category) == category)).scalars()
        return {row.version: _dispute(row) for row in rows}
