"""Reading under a grant: checked live, released by the terms, logged before returned."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import bindparam, insert, update
from sqlmodel import col, select

from ledger.canonical import canonical_json
from vault.crypto import envelope
from vault.domain.derived import resolve_derived
from vault.domain.grants import GrantAction, GrantState, GrantTerms, check_read, exhausted_after
from vault.errors import NotAuthorized, NotFound
from vault.services.context import VaultContext, Work, unit_of_work
from vault.services.grants import lock_grant, transition
from vault.services.records import open_record
from vault.storage.tables import (
    AccessRow,
    CitizenRow,
    GrantRow,
    OAuthTokenFamilyRow,
    RecordRow,
    ServiceRow,
)

__all__ = ["Release", "TokensRevoked", "read_in", "read_under_grant"]


class TokensRevoked(NotAuthorized):
    """The access token's family was revoked (by its client, or after a replayed code
    or refresh token): no read, whatever the grant says."""


@dataclass(frozen=True, slots=True)
class Release:
    """What a service receives: only what the terms allow, and where it was logged."""

    grant_id: str
    subject: str
    data: dict[str, Any]
    derived: dict[str, Any]
    ledger_index: int


def read_under_grant(ctx: VaultContext, *, service_id: str, grant_id: str,
                     token_family: str | None = None) -> Release:
    """One read by a service. Denied (AccessDenied) unless a live grant allows it now.

    The grant is locked and checked inside the transaction that records the access, so
    a revocation that commits first is always seen; the `data.accessed` entry commits
    before anything is returned.
    """
    with unit_of_work(ctx) as work:
        return read_in(ctx, work, service_id=service_id, grant_id=grant_id,
                       token_family=token_family)


@lru_cache(maxsize=4096)
def _terms(text: str) -> GrantTerms:
    """Parsed terms, by their exact text: terms never change, so parse each once."""
    return GrantTerms.from_json(orjson.loads(text))


_GRANT = (
    select(GrantRow.state, GrantRow.terms, GrantRow.reads, GrantRow.last_read_at,  # type: ignore[call-overload]
           GrantRow.service_id, ServiceRow.active, CitizenRow.id, CitizenRow.subject,
           CitizenRow.kek_id, CitizenRow.wrapped_key,
           OAuthTokenFamilyRow.id.label("family"),  # type: ignore[attr-defined]
           OAuthTokenFamilyRow.revoked_at)
    .join(ServiceRow, col(ServiceRow.id) == col(GrantRow.service_id))
    .join(CitizenRow, col(CitizenRow.id) == col(GrantRow.citizen_id))
    # The token's family, if it has one (None matches nothing): revoked tokens read nothing.
    .outerjoin(OAuthTokenFamilyRow, (col(OAuthTokenFamilyRow.id) == bindparam("family"))
               & (col(OAuthTokenFamilyRow.grant_id) == col(GrantRow.id)))
    .where(col(GrantRow.id) == bindparam("grant_id"))
    .with_for_update(of=GrantRow)
)
_RECORDS = (
    select(RecordRow.id, RecordRow.category, RecordRow.version, RecordRow.ciphertext)
    .where(col(RecordRow.citizen_id) == bindparam("citizen_id"),
           col(RecordRow.category).in_(bindparam("categories", expanding=True)))
    .order_by(col(RecordRow.version))
)
_LOG_ACCESS = insert(AccessRow)
_COUNT_READ = (
    update(GrantRow).where(col(GrantRow.id) == bindparam("grant_id"))
    .values(reads=bindparam("reads"), last_read_at=bindparam("now"))
)


def read_in(ctx: VaultContext, work: Work, *, service_id: str, grant_id: str,
            token_family: str | None = None) -> Release:
    """`read_under_grant` inside a transaction the caller commits (group commit batches
    several reads into one). Nothing may be returned to a service before that commit.

    The hottest path of the vault, so it speaks SQLAlchemy Core: one locking SELECT of
    grant, service and citizen, one of the records it needs, one UPDATE.
    """
    conn = work.session.connection()
    row = conn.execute(_GRANT, {"grant_id": grant_id, "family": token_family}).first()
    if row is None or row.service_id != service_id:
        raise NotFound("no such grant")
    if token_family is not None and (row.family is None or row.revoked_at is not None):
        raise TokensRevoked("the access token has been revoked")
    terms = _terms(row.terms)
    check_read(state=GrantState(row.state), terms=terms, now=work.now, reads_used=row.reads,
               last_read_at=row.last_read_at, service_active=row.active)
    answers = [resolve_derived(name) for name in terms.derived]
    needed = set(terms.categories)
    for answer in answers:
        needed.update(answer.inputs)
    key = ctx.keyring.unwrap(row.kek_id, row.wrapped_key, citizen_id=row.id)
    newest: dict[str, Any] = {}
    for rec in conn.execute(_RECORDS, {"citizen_id": row.id, "categories": sorted(needed)}):
        newest[rec.category] = rec  # ordered by version: the last one wins
    values = {
        cat: open_record(key, citizen_id=row.id, record_id=rec.id, category=cat,
                         version=rec.version, ciphertext=rec.ciphertext)
        for cat, rec in newest.items()
    }
    data = {cat: values[cat] for cat in terms.categories if cat in values}
    derived = {a.name: a.compute(values, work.now.date()) for a in answers}

    reads = row.reads + 1
    conn.execute(_COUNT_READ, {"grant_id": grant_id, "reads": reads, "now": work.now})
    # A keyed commitment to exactly what was released: the citizen (who can derive the
    # key) can later prove what a service saw; nobody else learns anything from it.
    released = {"data": data, "derived": derived}
    entry = work.ledger.append("data.accessed", {
        "grant_id": grant_id, "service_id": service_id, "subject": row.subject,
        "categories": sorted(data), "derived": sorted(derived),
        "commitment": envelope.commit(envelope.commitment_key(key), canonical_json(released))})
    # The citizen's own view of it (the activity page), erased with them.
    conn.execute(_LOG_ACCESS, {"seq": entry.seq, "grant_id": grant_id, "citizen_id": row.id,
                               "service_id": service_id, "categories": sorted(data),
                               "derived": sorted(derived), "at": work.now})
    if exhausted_after(terms, reads):
        transition(work, lock_grant(work, grant_id), GrantAction.EXHAUST)
    return Release(grant_id, row.subject, data, derived, entry.seq)
