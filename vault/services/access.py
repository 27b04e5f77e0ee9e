"""Reading under a grant: checked live, released by the terms, logged before returned."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
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

__all__ = ["ReadAsk", "ReadBatch", "Release", "TokensRevoked", "plan_reads", "read_in",
           "read_under_grant"]


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
    key = ctx.keyring.unwrap(row.kek_id, row.wrapped_key, citizen_id=row.id)
    newest: dict[str, Any] = {}
    for rec in conn.execute(_RECORDS, {"citizen_id": row.id,
                                       "categories": sorted(_needed(terms))}):
        newest[rec.category] = rec  # ordered by version: the last one wins
    released = _open(key, row.id, terms, newest, work.now)

    reads = row.reads + 1
    conn.execute(_COUNT_READ, {"grant_id": grant_id, "reads": reads, "now": work.now})
    entry = work.ledger.append("data.accessed", released.entry(grant_id, service_id,
                                                               row.subject))
    conn.execute(_LOG_ACCESS, released.access_row(entry.seq, grant_id, row.id, service_id,
                                                  work.now))
    if exhausted_after(terms, reads):
        transition(work, lock_grant(work, grant_id), GrantAction.EXHAUST)
    return Release(grant_id, row.subject, released.data, released.derived, entry.seq)


def _needed(terms: GrantTerms) -> set[str]:
    """The categories a read must open: the released ones and the derived answers' inputs."""
    needed = set(terms.categories)
    for name in terms.derived:
        needed.update(resolve_derived(name).inputs)
    return needed


@dataclass(frozen=True, slots=True)
class _Released:
    """What one read releases, and the keyed commitment to it that the ledger keeps."""

    data: dict[str, Any]
    derived: dict[str, Any]
    commitment: str

    def entry(self, grant_id: str, service_id: str, subject: str) -> dict[str, Any]:
        return {"grant_id": grant_id, "service_id": service_id, "subject": subject,
                "categories": sorted(self.data), "derived": sorted(self.derived),
                "commitment": self.commitment}

    def access_row(self, seq: int, grant_id: str, citizen_id: str, service_id: str,
                   at: datetime) -> dict[str, Any]:
        # The citizen's own view of it (the activity page), erased with them.
        return {"seq": seq, "grant_id": grant_id, "citizen_id": citizen_id,
                "service_id": service_id, "categories": sorted(self.data),
                "derived": sorted(self.derived), "at": at}


def _open(key: bytes, citizen_id: str, terms: GrantTerms, newest: Mapping[str, Any],
          now: datetime) -> _Released:
    """Decrypt the newest records the terms need and compute the derived answers."""
    values = {
        cat: open_record(key, citizen_id=citizen_id, record_id=rec.id, category=cat,
                         version=rec.version, ciphertext=rec.ciphertext)
        for cat, rec in newest.items()
    }
    data = {cat: values[cat] for cat in terms.categories if cat in values}
    derived = {name: resolve_derived(name).compute(values, now.date())
               for name in terms.derived}
    # A keyed commitment to exactly what was released: the citizen (who can derive the
    # key) can later prove what a service saw; nobody else learns anything from it.
    commitment = envelope.commit(envelope.commitment_key(key),
                                 canonical_json({"data": data, "derived": derived}))
    return _Released(data, derived, commitment)


# -- many reads in one transaction (group commit) -------------------------------------------


@dataclass(frozen=True, slots=True)
class ReadAsk:
    """One read a service asked for, as `read_in` takes it."""

    service_id: str
    grant_id: str
    token_family: str | None = None


# All of a batch's grants at once, locked in id order on PostgreSQL (as group_commit's
# `_lock_grants` explains: before any ledger append, in one order, or a batch and a
# revocation can deadlock). With each grant, the batch's token families that belong to it.
_GRANTS = (
    select(GrantRow.id.label("grant_id"), GrantRow.state, GrantRow.terms,  # type: ignore[call-overload, attr-defined]
           GrantRow.reads, GrantRow.last_read_at, GrantRow.service_id, ServiceRow.active,
           CitizenRow.id, CitizenRow.subject, CitizenRow.kek_id, CitizenRow.wrapped_key,
           OAuthTokenFamilyRow.id.label("family"),  # type: ignore[attr-defined]
           OAuthTokenFamilyRow.revoked_at)
    .join(ServiceRow, col(ServiceRow.id) == col(GrantRow.service_id))
    .join(CitizenRow, col(CitizenRow.id) == col(GrantRow.citizen_id))
    .outerjoin(OAuthTokenFamilyRow,
               col(OAuthTokenFamilyRow.id).in_(bindparam("families", expanding=True))
               & (col(OAuthTokenFamilyRow.grant_id) == col(GrantRow.id)))
    .where(col(GrantRow.id).in_(bindparam("ids", expanding=True)))
    .order_by(col(GrantRow.id))
    .with_for_update(of=GrantRow)
)
_REVOKED = datetime.min  # a token family not found with its grant: as good as revoked
_ALL_RECORDS = (
    select(RecordRow.citizen_id, RecordRow.id, RecordRow.category, RecordRow.version,  # type: ignore[call-overload]
           RecordRow.ciphertext)
    .where(col(RecordRow.citizen_id).in_(bindparam("citizens", expanding=True)),
           col(RecordRow.category).in_(bindparam("categories", expanding=True)))
    .order_by(col(RecordRow.version))
)


@dataclass(slots=True)
class _Count:
    """A grant as the batch's allowed reads so far leave it."""

    state: GrantState
    reads: int
    last_read_at: datetime | None
    read: bool = False


@dataclass(frozen=True, slots=True)
class _Allowed:
    """A read that passed every check; its writes are still to do."""

    ask: ReadAsk
    citizen_id: str
    subject: str
    released: _Released
    exhausts: bool


class ReadBatch:
    """Many reads in one transaction, in a few statements in all rather than some per read.

    `plan_reads` reads (one SELECT of the grants, locked; one of the records) and checks
    each read in order as `read_in` would, counting the allowed reads of each grant as
    it goes: two reads of one grant see each other's count, exhaustion and
    min_interval. A refused read (AccessDenied, NotFound, TokensRevoked, a failure of
    its own) is refused alone, before anything is written. `write` then does every
    write at once: the read counts, the ledger entries in batch order, the accesses
    rows, and the rare exhaustions. If `write` fails, the transaction is unusable: roll
    it back (nothing is returned) and run the reads with `read_in` instead.
    """

    def __init__(self, outcomes: list[_Allowed | Exception], counts: dict[str, _Count]
                 ) -> None:
        self._outcomes = outcomes
        self._counts = counts

    def write(self, work: Work) -> list[Release | Exception]:
        """Log and count the allowed reads; each read's Release or its own error."""
        allowed = [o for o in self._outcomes if isinstance(o, _Allowed)]
        if not allowed:
            return [o for o in self._outcomes if isinstance(o, Exception)]
        conn = work.session.connection()
        conn.execute(_COUNT_READ, [{"grant_id": gid, "reads": c.reads, "now": work.now}
                                   for gid, c in self._counts.items() if c.read])
        seqs = self._append(work, allowed)
        conn.execute(_LOG_ACCESS, [
            a.released.access_row(seq, a.ask.grant_id, a.citizen_id, a.ask.service_id,
                                  work.now)
            for a, seq in zip(allowed, seqs, strict=True)])
        session = work.session
        if session.new or session.dirty or session.deleted:
            session.flush()  # the exhaustions' rows: a failure here is still `write`'s
        by_read = iter(zip(allowed, seqs, strict=True))
        results: list[Release | Exception] = []
        for o in self._outcomes:
            if isinstance(o, Exception):
                results.append(o)
                continue
            a, seq = next(by_read)
            results.append(Release(a.ask.grant_id, a.subject, a.released.data,
                                   a.released.derived, seq))
        return results

    @staticmethod
    def _append(work: Work, allowed: list[_Allowed]) -> list[int]:
        """The `data.accessed` entries in batch order. A read that exhausts its grant is
        followed at once by the grant's `grant.exhausted` entry, as one by one."""
        seqs: list[int] = []
        start = 0
        for i, a in enumerate(allowed):
            if a.exhausts:
                seqs += _append_reads(work, allowed[start:i + 1])
                transition(work, lock_grant(work, a.ask.grant_id), GrantAction.EXHAUST)
                start = i + 1
        return seqs + _append_reads(work, allowed[start:])


def _append_reads(work: Work, allowed: list[_Allowed]) -> list[int]:
    entries = work.ledger.append_many(
        ("data.accessed", a.released.entry(a.ask.grant_id, a.ask.service_id, a.subject))
        for a in allowed)
    return [e.seq for e in entries]


def plan_reads(ctx: VaultContext, work: Work, asks: Sequence[ReadAsk]) -> ReadBatch:
    """Read and check a batch of reads (see ReadBatch); nothing is written yet."""
    conn = work.session.connection()
    grants: dict[str, Any] = {}
    families: dict[tuple[str, str], datetime | None] = {}
    for found in conn.execute(_GRANTS, {
            "ids": sorted({a.grant_id for a in asks}),
            "families": sorted({a.token_family for a in asks if a.token_family})}):
        grants.setdefault(found.grant_id, found)
        if found.family is not None:
            families[(found.grant_id, found.family)] = found.revoked_at
    needed: set[str] = set()
    for found in grants.values():
        needed |= _needed(_terms(found.terms))
    newest: dict[str, dict[str, Any]] = {found.id: {} for found in grants.values()}
    if grants:
        for rec in conn.execute(_ALL_RECORDS, {"citizens": sorted(newest),
                                               "categories": sorted(needed)}):
            newest[rec.citizen_id][rec.category] = rec  # by version: the last one wins
    counts = {gid: _Count(GrantState(found.state), found.reads, found.last_read_at)
              for gid, found in grants.items()}
    # What a grant releases is the same for every read of it in the batch (same records,
    # same time): decrypted and committed to once.
    released: dict[str, _Released] = {}
    outcomes: list[_Allowed | Exception] = []
    for ask in asks:
        try:
            row = grants.get(ask.grant_id)
            if row is None or row.service_id != ask.service_id:
                raise NotFound("no such grant")
            if ask.token_family is not None and families.get(
                    (ask.grant_id, ask.token_family), _REVOKED) is not None:
                raise TokensRevoked("the access token has been revoked")
            terms = _terms(row.terms)
            count = counts[ask.grant_id]
            check_read(state=count.state, terms=terms, now=work.now, reads_used=count.reads,
                       last_read_at=count.last_read_at, service_active=row.active)
            if ask.grant_id not in released:
                key = ctx.keyring.unwrap(row.kek_id, row.wrapped_key, citizen_id=row.id)
                wanted = _needed(terms)
                records = {c: r for c, r in newest[row.id].items() if c in wanted}
                released[ask.grant_id] = _open(key, row.id, terms, records, work.now)
            reads = count.reads + 1
            exhausts = exhausted_after(terms, reads)
        except Exception as exc:  # this read's own refusal or failure; nothing written
            outcomes.append(exc)
            continue
        count.reads, count.last_read_at, count.read = reads, work.now, True
        if exhausts:
            count.state = GrantState.EXHAUSTED
        outcomes.append(_Allowed(ask, row.id, row.subject, released[ask.grant_id], exhausts))
    return ReadBatch(outcomes, counts)
