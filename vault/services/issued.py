"""An issuer writes and withdraws records under a write grant (ARCHITECTURE §8 "Writing").

`write_issued` is one transaction:

1. `writer_in`: lock the grant, with its service's keys and its citizen; the token's
   family must be the grant's and live; then `check_write` (the service active, the
   grant approved, in its window, letting its service write this category).
2. `verify_in`: the record JWS, by `verify_record` against the issuer's JWKS, with `iss`
   the grant's service and `category` the path's.
3. `seen_jti`: a jti the issuer used before. The same record again (the same payload,
   for the same citizen) gets the answer it got then, and nothing is written; another
   payload with that jti is refused (`RecordJtiReused`). The payload, not the whole JWS:
   ES256 signatures are randomised, so an issuer that signs the same record again to
   retry it sends other bytes for the same claims.
4. `clean_issued`: the value through its category's schema (`RecordInvalidValue`).
5. `store_issued`: the value and the JWS sealed under the citizen's data key, `source`
   the issuer; `record.written` with `issuer` and `grant_id`; `tell_changed`.
6. `remember_jti`: the jti, the JWS's SHA-256 and the answer.

A `relationship.*` record (issue 14) also sets up a relationship: checked
(`relationship_records.check`: the delegate's sub known, the terms allowed) before it is
stored, proposed after; withdrawing it ends that relationship.

Any refusal raises before anything is added, so the transaction rolls back with nothing
written. A series batch (`POST /v1/records/{category}/items`) is built from the same
steps. `withdraw_issued` marks the issuer's current record of a category withdrawn
(`record.withdrawn`): the category then reads as absent; the row stays for the history.

Refusals added here to `verify_record`'s (`vault.oauth.record_jws`):

RecordRefused (vault.oauth.record_jws)
├── RecordJtiReused      jti_reused: the issuer used the jti for another record
├── RecordInvalidValue   invalid_value: the value fails its category's schema
└── IsASeries            series: a series takes batches (vault.services.series), not PUT
NotFound (vault.errors)
└── NothingToWithdraw    the issuer has no current record of the category to withdraw
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, TypedDict

import orjson
from sqlalchemy import Row, bindparam, insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from vault.crypto import envelope
from vault.domain.categories import clean_value
from vault.domain.errors import InvalidValue
from vault.domain.grants import GrantState, GrantTerms, check_write
from vault.errors import NotFound
from vault.oauth.record_jws import RecordRefused, VerifiedRecord, verify_record
from vault.services import relationship_records
from vault.services.access import TokensRevoked, parsed_terms
from vault.services.changes import tell_changed
from vault.services.context import VaultContext, Work, new_id, unit_of_work
from vault.services.series import IsASeries, is_series, next_version
from vault.services.sources import refuse_held
from vault.storage.tables import (
    CitizenRow,
    GrantRow,
    OAuthTokenFamilyRow,
    RecordJtiRow,
    RecordRow,
    ServiceRow,
)

__all__ = [
    "RACE_ATTEMPTS",
    "NothingToWithdraw",
    "RecordInvalidValue",
    "RecordJtiReused",
    "WriterGrant",
    "Written",
    "clean_issued",
    "jws_digest",
    "remember_jti",
    "seen_jti",
    "store_issued",
    "unless_raced",
    "verify_in",
    "withdraw_issued",
    "write_in",
    "write_issued",
    "writer_in",
]

#: How many times a write that keeps losing races for its version is made (`unless_raced`).
RACE_ATTEMPTS = 5


class RecordJtiReused(RecordRefused):
    """The issuer already used this `jti` for another record (or another citizen's)."""

    reason = "jti_reused"


class RecordInvalidValue(RecordRefused):
    """The record's value does not fit its category's schema (the message says where)."""

    reason = "invalid_value"


class NothingToWithdraw(NotFound):
    """The issuer has no current record of the category for this citizen."""


@dataclass(frozen=True, slots=True)
class WriterGrant:
    """A write grant found live and locked, with what a write under it needs."""

    grant_id: str
    service_id: str
    citizen_id: str
    subject: str
    kek_id: str
    wrapped_key: bytes
    jwks: Mapping[str, Any]
    terms: GrantTerms

    def data_key(self, ctx: VaultContext) -> bytes:
        return ctx.keyring.unwrap(self.kek_id, self.wrapped_key, citizen_id=self.citizen_id)


@dataclass(frozen=True, slots=True)
class Written:
    """What a write or a withdrawal answers (ARCHITECTURE §8): the category, the version
    written (or withdrawn) and the index of its ledger entry."""

    category: str
    version: int
    ledger_index: int

    def answer(self) -> dict[str, Any]:
        return {"category": self.category, "version": self.version,
                "ledger_index": self.ledger_index}

    @classmethod
    def from_answer(cls, answer: Mapping[str, Any]) -> Written:
        return cls(answer["category"], answer["version"], answer["ledger_index"])


# The write path's statements are built once, and its rows inserted with Core, not the
# ORM: building a statement per call and the ORM's flush cost about half of a write's
# CPU (measured with bench.service_load's issuer writes: 10 ms a write before, 6.5 after).
_LOCKED = (
    select(GrantRow.state, GrantRow.terms, GrantRow.service_id,  # type: ignore[call-overload]
           ServiceRow.active, ServiceRow.jwks, CitizenRow.id.label("citizen_id"),  # type: ignore[attr-defined]
           CitizenRow.subject, CitizenRow.kek_id, CitizenRow.wrapped_key)
    .join(ServiceRow, col(ServiceRow.id) == col(GrantRow.service_id))
    .join(CitizenRow, col(CitizenRow.id) == col(GrantRow.citizen_id))
    .where(col(GrantRow.id) == bindparam("grant_id"))
    # Locked before anything is appended, as a read locks it: a revocation that
    # commits first is always seen, and one that comes after waits for the write.
    .with_for_update(of=GrantRow)
)
_USED_JTI = select(RecordJtiRow.digest, RecordJtiRow.citizen_id,
                   RecordJtiRow.answer).where(
    col(RecordJtiRow.service_id) == bindparam("service_id"),
    col(RecordJtiRow.jti) == bindparam("jti"))
_FAMILY = select(OAuthTokenFamilyRow.grant_id, OAuthTokenFamilyRow.revoked_at).where(
    col(OAuthTokenFamilyRow.id) == bindparam("family"))
_ADD_RECORD = insert(RecordRow.__table__)  # type: ignore[attr-defined]
_ADD_JTI = insert(RecordJtiRow.__table__)  # type: ignore[attr-defined]


def _locked(work: Work, grant_id: str) -> Row[Any] | None:
    row: Row[Any] | None = work.session.connection().execute(
        _LOCKED, {"grant_id": grant_id}).one_or_none()
    return row


def writer_in(work: Work, *, service_id: str, grant_id: str, token_family: str | None,
              category: str) -> WriterGrant:
    """The grant, locked, if it lets `service_id` write `category` now. NotFound (no
    such grant of this service), TokensRevoked, or AccessDenied with its reason."""
    row = _locked(work, grant_id)
    if row is None or row.service_id != service_id:
        raise NotFound("no such grant")
    if token_family is not None:
        family = work.session.connection().execute(
            _FAMILY, {"family": token_family}).one_or_none()
        if family is None or family.grant_id != grant_id or family.revoked_at is not None:
            raise TokensRevoked("the access token has been revoked")
    terms = parsed_terms(row.terms)  # parsed once per text, as reads parse them
    check_write(state=GrantState(row.state), terms=terms, now=work.now, category=category,
                service_active=row.active)
    return WriterGrant(grant_id, service_id, row.citizen_id, row.subject, row.kek_id,
                       row.wrapped_key, row.jwks, terms)


def verify_in(work: Work, grant: WriterGrant, *, category: str,
              record: Any) -> VerifiedRecord:
    """The record, if the grant's service signed it for `category` (RecordRefused)."""
    return verify_record(record, expected_issuer=grant.service_id, jwks=grant.jwks,
                         expected_category=category, now=work.now)


def jws_digest(jws: str) -> bytes:
    """SHA-256 of the JWS's payload segment, exactly as signed (`seen_jti`)."""
    return hashlib.sha256(jws.split(".")[1].encode("ascii")).digest()


def seen_jti(work: Work, grant: WriterGrant,
             record: VerifiedRecord) -> dict[str, Any] | None:
    """What the vault answered when this record (its payload) was written for this
    citizen before, or None if its jti is unused; RecordJtiReused if the jti went with
    another payload or another citizen."""
    used = work.session.connection().execute(
        _USED_JTI, {"service_id": grant.service_id, "jti": record.jti}).one_or_none()
    if used is None:
        return None
    if used.digest != jws_digest(record.jws) or used.citizen_id != grant.citizen_id:
        raise RecordJtiReused("the record's jti was used before for another record; "
                              "sign each record with a new jti")
    return dict(used.answer)


def remember_jti(work: Work, grant: WriterGrant, record: VerifiedRecord,
                 answer: Mapping[str, Any]) -> None:
    work.session.connection().execute(_ADD_JTI, {
        "service_id": grant.service_id, "jti": record.jti, "digest": jws_digest(record.jws),
        "citizen_id": grant.citizen_id, "answer": dict(answer), "created_at": work.now})


def clean_issued(category: str, value: Any) -> Any:
    """`value` as stored (`clean_value`), or RecordInvalidValue saying what is wrong."""
    try:
        return clean_value(category, value)
    except InvalidValue as exc:
        raise RecordInvalidValue(str(exc)) from None


def _next_version(work: Work, citizen_id: str, category: str) -> int:
    return next_version(work, citizen_id, category)  # a series never reuses a version


class _Where(TypedDict):
    """A record's place: what both its associated data name."""

    citizen_id: str
    record_id: str
    category: str
    version: int


def store_issued(ctx: VaultContext, work: Work, grant: WriterGrant, record: VerifiedRecord,
                 value: Any, *, entry: Mapping[str, Any] | None = None) -> Written:
    """Add the record as the newest version of its category: the value and the JWS
    sealed under the citizen's data key, `source` the issuer; append `record.written`
    (with `entry`'s fields added: a series batch's "items") and tell the services that
    rely on the category."""
    category = record.category
    refuse_held(work.session, category)  # held at source: the vault stores no value of it
    version = _next_version(work, grant.citizen_id, category)
    record_id = new_id("rec")
    key = grant.data_key(ctx)
    where = _Where(citizen_id=grant.citizen_id, record_id=record_id, category=category,
                   version=version)
    work.session.connection().execute(_ADD_RECORD, {
        "id": record_id, "citizen_id": grant.citizen_id, "category": category,
        "version": version,
        "ciphertext": envelope.seal(key, orjson.dumps(value), ad=envelope.record_ad(**where)),
        "record_jws": envelope.seal(key, record.jws.encode("utf-8"),
                                    ad=envelope.record_jws_ad(**where)),
        "source": grant.service_id, "created_at": work.now, "withdrawn_at": None})
    appended = work.ledger.append("record.written", {
        "subject": grant.subject, "record_id": record_id, "category": category,
        "version": version, "source": grant.service_id, "issuer": grant.service_id,
        "grant_id": grant.grant_id, **(entry or {})})
    tell_changed(work, citizen_id=grant.citizen_id, categories=[category],
                 ledger_index=appended.seq)
    return Written(category, version, appended.seq)


def write_issued(ctx: VaultContext, *, service_id: str, grant_id: str,
                 token_family: str | None, category: str, record: Any) -> Written:
    """`PUT /v1/records/{category}`: the issuer's record written for the grant's
    citizen, or the answer the same record got before (see the module docstring)."""
    return unless_raced(partial(_write_once, ctx, service_id=service_id, grant_id=grant_id,
                                token_family=token_family, category=category,
                                record=record))


def unless_raced(write: Callable[[], Written]) -> Written:
    """`write()`, a whole transaction (`write_issued`, `issued_series.append_issued`) or
    one savepoint (`group_commit.GroupCommitWriter`), made again if it lost a race.

    On PostgreSQL another grant's write for the same citizen (another issuer's, or the
    same issuer's with the same jti) can commit between our reading the newest version
    (or the jti) and our insert: the unique (citizen, category, version), or the jti's
    key, then fails it, and nothing of ours is kept. Made again, the write sees the
    other: it goes above its version, or finds its jti (the same record answered as
    before, another refused). Each loss is another write committed, so only a stream of
    rivals winning every time could use up `RACE_ATTEMPTS`."""
    for _ in range(RACE_ATTEMPTS - 1):
        try:
            return write()
        except IntegrityError:
            continue
    return write()


def _write_once(ctx: VaultContext, *, service_id: str, grant_id: str,
                token_family: str | None, category: str, record: Any) -> Written:
    with unit_of_work(ctx) as work:
        return write_in(ctx, work, service_id=service_id, grant_id=grant_id,
                        token_family=token_family, category=category, record=record)


def write_in(ctx: VaultContext, work: Work, *, service_id: str, grant_id: str,
             token_family: str | None, category: str, record: Any) -> Written:
    """The write's steps (the module docstring) in `work`: `write_issued`'s
    transaction, or a savepoint of a group commit (`group_commit.GroupCommitWriter`)."""
    if is_series(category):  # it grows by batches: POST /v1/records/{category}/items
        raise IsASeries(f"{category} is a series: append batches with "
                        f"POST /v1/records/{category}/items")
    grant = writer_in(work, service_id=service_id, grant_id=grant_id,
                      token_family=token_family, category=category)
    verified = verify_in(work, grant, category=category, record=record)
    before = seen_jti(work, grant, verified)
    if before is not None:
        return Written.from_answer(before)
    value = clean_issued(category, verified.value)
    relationship = relationship_records.check(
        work, service_id=service_id, citizen_id=grant.citizen_id, category=category,
        value=value)
    written = store_issued(ctx, work, grant, verified, value)
    if relationship is not None:  # relationship.*: proposed for both people to sign
        relationship_records.propose(work, relationship)
    remember_jti(work, grant, verified, written.answer())
    return written


def withdraw_issued(ctx: VaultContext, *, service_id: str, grant_id: str,
                    token_family: str | None, category: str) -> Written:
    """`DELETE /v1/records/{category}`: the issuer's current record of the category
    (its newest version, if the issuer wrote it and has not withdrawn it) is marked
    withdrawn; `record.withdrawn` names that version. NothingToWithdraw otherwise."""
    with unit_of_work(ctx) as work:
        grant = writer_in(work, service_id=service_id, grant_id=grant_id,
                          token_family=token_family, category=category)
        newest = work.session.execute(
            select(RecordRow).where(col(RecordRow.citizen_id) == grant.citizen_id,
                                    col(RecordRow.category) == category)
            .order_by(col(RecordRow.version).desc()).limit(1)
        ).scalar_one_or_none()
        if newest is None or newest.source != service_id or newest.withdrawn_at is not None:
            raise NothingToWithdraw(f"this citizen has no current {category} record of "
                                    "yours to withdraw")
        newest.withdrawn_at = work.now
        appended = work.ledger.append("record.withdrawn", {
            "subject": grant.subject, "category": category, "issuer": service_id,
            "grant_id": grant_id, "version": newest.version})
        relationship_records.end_withdrawn(work, service_id=service_id,
                                           citizen_id=grant.citizen_id, category=category)
        tell_changed(work, citizen_id=grant.citizen_id, categories=[category],
                     ledger_index=appended.seq)
        return Written(category, newest.version, appended.seq)
