"""Many issuer writes in one transaction with a fixed number of statements (the bulk
path of `group_commit.GroupCommitWriter`).

`issued.write_in` makes a write's steps one statement at a time: about a dozen round
trips a write, which on PostgreSQL cost more than everything else a write does. Here a
batch of writes takes each step for all of them at once: one locking SELECT of their
grants (in id order, before any append, as every appender locks), one of the token
families, one of the jtis used before, one of the highest versions, then the checks of
each write in batch order, one `append_many`, and one multi-row INSERT each of records,
changes and jtis.

The outcome of every write is what `write_in` would give it made alone in batch order:
the same checks in the same order, so the same refusal; a write repeating an earlier
one's jti (in the batch or before) gets that write's answer, or RecordJtiReused; the
versions of one citizen's category follow one another. A refused write adds nothing.
Anything else that fails (a race lost to another transaction on PostgreSQL: an
IntegrityError) is raised, and the caller rolls the whole batch back and makes the
writes one by one on the safe path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from sqlalchemy import Row, bindparam, func, insert, tuple_
from sqlmodel import col, select

from vault.crypto import envelope
from vault.domain.grants import GrantState, check_write
from vault.errors import NotFound
from vault.oauth.record_jws import VerifiedRecord
from vault.services import relationship_records
from vault.services.access import TokensRevoked, parsed_terms
from vault.services.changes import tell_changes
from vault.services.context import VaultContext, Work, new_id
from vault.services.issued import (
    RecordJtiReused,
    WriterGrant,
    Written,
    clean_issued,
    jws_digest,
    verify_in,
)
from vault.services.series import IsASeries, is_series
from vault.services.sources import refuse_held
from vault.storage.tables import (
    CitizenRow,
    GrantRow,
    OAuthTokenFamilyRow,
    RecordJtiRow,
    RecordRow,
    ServiceRow,
    SourceCategoryRow,
)

__all__ = ["Ask", "write_many"]


class Ask(Protocol):
    """One write: `issued.write_in`'s arguments but the transaction."""

    @property
    def service_id(self) -> str: ...
    @property
    def grant_id(self) -> str: ...
    @property
    def token_family(self) -> str | None: ...
    @property
    def category(self) -> str: ...
    @property
    def record(self) -> Any: ...


_GRANTS = (
    select(GrantRow.id, GrantRow.state, GrantRow.terms,  # type: ignore[call-overload]
           GrantRow.service_id, ServiceRow.active, ServiceRow.jwks,
           CitizenRow.id.label("citizen_id"),  # type: ignore[attr-defined]
           CitizenRow.subject, CitizenRow.kek_id, CitizenRow.wrapped_key)
    .join(ServiceRow, col(ServiceRow.id) == col(GrantRow.service_id))
    .join(CitizenRow, col(CitizenRow.id) == col(GrantRow.citizen_id))
    .where(col(GrantRow.id).in_(bindparam("ids", expanding=True)))
    .order_by(col(GrantRow.id))
    .with_for_update(of=GrantRow)
)
_FAMILIES = select(OAuthTokenFamilyRow.id, OAuthTokenFamilyRow.grant_id,
                   OAuthTokenFamilyRow.revoked_at).where(
    col(OAuthTokenFamilyRow.id).in_(bindparam("ids", expanding=True)))
_HELD = select(SourceCategoryRow.category).where(
    col(SourceCategoryRow.category).in_(bindparam("categories", expanding=True)))
_ADD_RECORDS = insert(RecordRow.__table__)  # type: ignore[attr-defined]
_ADD_JTIS = insert(RecordJtiRow.__table__)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class _Checked:
    """A write past its grant's checks and its signature."""

    index: int
    grant: WriterGrant
    record: VerifiedRecord
    digest: bytes


@dataclass(slots=True)
class _Stored:
    """A write to be stored, with the jti it takes."""

    index: int
    checked: _Checked
    record_id: str
    version: int
    written: Written | None = None


def write_many(ctx: VaultContext, work: Work, asks: Sequence[Ask]
               ) -> list[Written | Exception]:
    """Each ask's outcome, in order: its Written or its refusal (see the module)."""
    outcomes: list[Written | Exception | None] = [None] * len(asks)
    grants = _lock_grants(work, {a.grant_id for a in asks})
    families = _families(work, {a.token_family for a in asks if a.token_family is not None})
    checked: list[_Checked] = []
    for i, ask in enumerate(asks):
        try:
            checked.append(_check(work, ask, i, grants, families))
        except Exception as exc:  # the write's own refusal, or its JWS's
            outcomes[i] = exc
    used = _used_jtis(work, {(c.grant.service_id, c.record.jti) for c in checked})
    highest = _highest(work, {(c.grant.citizen_id, c.record.category) for c in checked})
    held = _held(work, {c.record.category for c in checked})
    stored: list[_Stored] = []
    taken: dict[tuple[str, str], _Stored] = {}  # (service, jti) -> the write that took it
    repeats: list[tuple[int, _Stored]] = []
    values: dict[int, Any] = {}
    relationships: dict[int, relationship_records.Pending] = {}
    for c in checked:
        key = (c.grant.service_id, c.record.jti)
        first = taken.get(key)
        before = used.get(key)
        if before is not None or first is not None:
            if before is not None:
                digest, citizen = before.digest, before.citizen_id
            else:
                assert first is not None
                digest, citizen = first.checked.digest, first.checked.grant.citizen_id
            if digest != c.digest or citizen != c.grant.citizen_id:
                outcomes[c.index] = RecordJtiReused(
                    "the record's jti was used before for another record; sign each "
                    "record with a new jti")
            elif before is not None:
                outcomes[c.index] = Written.from_answer(before.answer)
            else:
                assert first is not None
                repeats.append((c.index, first))  # answered once `first` is stored
            continue
        try:
            values[c.index] = clean_issued(c.record.category, c.record.value)
            if c.record.category in held:
                refuse_held(work.session, c.record.category)  # raises, naming the source
            relationship = relationship_records.check(
                work, service_id=c.grant.service_id, citizen_id=c.grant.citizen_id,
                category=c.record.category, value=values[c.index])
            if relationship is not None:
                relationships[c.index] = relationship
        except Exception as exc:
            outcomes[c.index] = exc
            continue
        place = (c.grant.citizen_id, c.record.category)
        highest[place] = version = highest.get(place, 0) + 1
        s = _Stored(c.index, c, new_id("rec"), version)
        stored.append(s)
        taken[key] = s
    _store(ctx, work, stored, values)
    for s in stored:  # relationship.*: proposed once its record is stored (issue 14)
        if s.index in relationships:
            relationship_records.propose(work, relationships[s.index])
    for s in stored:
        outcomes[s.index] = s.written
    for index, first in repeats:
        outcomes[index] = first.written
    assert all(o is not None for o in outcomes)
    return outcomes  # type: ignore[return-value]


def _lock_grants(work: Work, ids: set[str]) -> dict[str, Row[Any]]:
    rows = work.session.connection().execute(_GRANTS, {"ids": sorted(ids)}).all()
    return {r.id: r for r in rows}


def _families(work: Work, ids: set[str]) -> dict[str, Row[Any]]:
    if not ids:
        return {}
    rows = work.session.connection().execute(_FAMILIES, {"ids": sorted(ids)}).all()
    return {r.id: r for r in rows}


def _check(work: Work, ask: Ask, index: int, grants: Mapping[str, Row[Any]],
           families: Mapping[str, Row[Any]]) -> _Checked:
    """`issued.write_in`'s checks up to the jti, in its order."""
    if is_series(ask.category):
        raise IsASeries(f"{ask.category} is a series: append batches with "
                        f"POST /v1/records/{ask.category}/items")
    row = grants.get(ask.grant_id)
    if row is None or row.service_id != ask.service_id:
        raise NotFound("no such grant")
    if ask.token_family is not None:
        family = families.get(ask.token_family)
        if family is None or family.grant_id != ask.grant_id or family.revoked_at is not None:
            raise TokensRevoked("the access token has been revoked")
    terms = parsed_terms(row.terms)
    check_write(state=GrantState(row.state), terms=terms, now=work.now,
                category=ask.category, service_active=row.active)
    grant = WriterGrant(ask.grant_id, ask.service_id, row.citizen_id, row.subject,
                        row.kek_id, row.wrapped_key, row.jwks, terms)
    record = verify_in(work, grant, category=ask.category, record=ask.record)
    return _Checked(index, grant, record, jws_digest(record.jws))


def _used_jtis(work: Work, keys: set[tuple[str, str]]) -> dict[tuple[str, str], Row[Any]]:
    if not keys:
        return {}
    rows = work.session.connection().execute(
        select(RecordJtiRow.service_id, RecordJtiRow.jti,  # type: ignore[call-overload]
               RecordJtiRow.digest, RecordJtiRow.citizen_id, RecordJtiRow.answer)
        .where(tuple_(col(RecordJtiRow.service_id), col(RecordJtiRow.jti)).in_(
            sorted(keys)))).all()
    return {(r.service_id, r.jti): r for r in rows}


def _highest(work: Work, places: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """The highest stored version of each (citizen, category). No series here: a series
    is refused above, so no grant's cursor can stand above its records."""
    if not places:
        return {}
    rows = work.session.connection().execute(
        select(RecordRow.citizen_id, RecordRow.category, func.max(RecordRow.version))
        .where(tuple_(col(RecordRow.citizen_id), col(RecordRow.category)).in_(sorted(places)))
        .group_by(col(RecordRow.citizen_id), col(RecordRow.category))).all()
    return {(r[0], r[1]): r[2] for r in rows}


def _held(work: Work, categories: set[str]) -> set[str]:
    if not categories:
        return set()
    return set(work.session.connection().execute(
        _HELD, {"categories": sorted(categories)}).scalars())


def _store(ctx: VaultContext, work: Work, stored: list[_Stored],
           values: Mapping[int, Any]) -> None:
    """`issued.store_issued` and `remember_jti` for every write, a statement each."""
    if not stored:
        return
    keys: dict[str, bytes] = {}
    records: list[dict[str, Any]] = []
    for s in stored:
        g, r = s.checked.grant, s.checked.record
        key = keys.get(g.citizen_id)
        if key is None:
            key = keys[g.citizen_id] = g.data_key(ctx)
        records.append({
            "id": s.record_id, "citizen_id": g.citizen_id, "category": r.category,
            "version": s.version,
            "ciphertext": envelope.seal(key, orjson.dumps(values[s.index]), ad=envelope.record_ad(
                citizen_id=g.citizen_id, record_id=s.record_id, category=r.category,
                version=s.version)),
            "record_jws": envelope.seal(key, r.jws.encode("utf-8"), ad=envelope.record_jws_ad(
                citizen_id=g.citizen_id, record_id=s.record_id, category=r.category,
                version=s.version)),
            "source": g.service_id, "created_at": work.now, "withdrawn_at": None})
    conn = work.session.connection()
    conn.execute(_ADD_RECORDS, records)
    appended = work.ledger.append_many(_entries(stored))
    for s, entry in zip(stored, appended, strict=True):
        s.written = Written(s.checked.record.category, s.version, entry.seq)
    tell_changes(work, [(s.written.ledger_index, s.checked.grant.citizen_id,
                         [s.checked.record.category]) for s in stored if s.written is not None])
    conn.execute(_ADD_JTIS, [
        {"service_id": s.checked.grant.service_id, "jti": s.checked.record.jti,
         "digest": s.checked.digest, "citizen_id": s.checked.grant.citizen_id,
         "answer": s.written.answer(), "created_at": work.now}
        for s in stored if s.written is not None])


def _entries(stored: Iterable[_Stored]) -> list[tuple[str, dict[str, Any]]]:
    return [("record.written", {
        "subject": s.checked.grant.subject, "record_id": s.record_id,
        "category": s.checked.record.category, "version": s.version,
        "source": s.checked.grant.service_id, "issuer": s.checked.grant.service_id,
        "grant_id": s.checked.grant.grant_id}) for s in stored]
