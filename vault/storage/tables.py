"""The vault's tables. Only ciphertext and non-personal metadata live here.

A citizen is a random id and a random ledger pseudonym; everything they told the vault
is a record sealed under their own data key. Services, grants and their terms are
not personal data (terms name categories, never values).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

from vault.storage.types import UtcDateTime

__all__ = [
    "AccessRow",
    "CeremonyRow",
    "CitizenRow",
    "DelegatedActionRow",
    "GrantEventRow",
    "GrantRow",
    "OAuthBackchannelRow",
    "OAuthJtiRow",
    "OAuthRefreshTokenRow",
    "OAuthRequestRow",
    "OAuthSubjectRow",
    "OAuthTokenFamilyRow",
    "PasskeyRow",
    "RecordChangeRow",
    "RecordDisputeRow",
    "RecordJtiRow",
    "RecordRow",
    "RecoveryCodeRow",
    "SeriesCursorRow",
    "ServiceBlockRow",
    "ServiceRow",
    "SourceCategoryRow",
    "TransparencyAtomRow",
    "TransparencyCursorRow",
    "TransparencyGrantRow",
    "WalletSessionRow",
    "WebhookDeliveryRow",
    "WebhookMessageRow",
    "metadata",
]

metadata = SQLModel.metadata

#: A ledger index as a key: BIGINT, but INTEGER on SQLite, where only that is a rowid alias.
_SEQ = BigInteger().with_variant(Integer(), "sqlite")


def _utc(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(sa_column=Column(UtcDateTime(), nullable=nullable, index=index))


class CitizenRow(SQLModel, table=True):
    __tablename__ = "citizens"

    id: str = Field(primary_key=True, max_length=40)
    #: Random pseudonym used on the ledger; deleted on erasure, so entries become unlinkable.
    subject: str = Field(max_length=40, unique=True)
    #: The citizen's data key, sealed under the KEK named by kek_id.
    kek_id: str = Field(max_length=40, index=True)
    wrapped_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = _utc()


class RecordRow(SQLModel, table=True):
    __tablename__ = "records"
    __table_args__ = (
        UniqueConstraint("citizen_id", "category", "version"),
        # A series' batches of the last day (migration 0012).
        Index("ix_records_citizen_category_created", "citizen_id", "category", "created_at"),
    )

    id: str = Field(primary_key=True, max_length=40)
    citizen_id: str = Field(sa_column=Column(
        String(40), ForeignKey("citizens.id", ondelete="CASCADE"), nullable=False, index=True))
    category: str = Field(max_length=64)
    version: int
    #: The value, sealed under the citizen's data key (AD: citizen, record, category, version).
    ciphertext: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    #: Provenance: "citizen" or the id of the issuing service.
    source: str = Field(max_length=40)
    created_at: datetime = _utc()
    #: The issuer's compact JWS exactly as written, sealed under the citizen's data key
    #: (AD `envelope.record_jws_ad`); None for the citizen's own values and for issued
    #: values written without one (the operator's `vault citizen write --source`).
    record_jws: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    #: When its issuer withdrew it (the award ended): the row stays for the history,
    #: and a category whose newest version is withdrawn reads as absent.
    withdrawn_at: datetime | None = _utc(nullable=True)


class RecordJtiRow(SQLModel, table=True):
    """An issuer's record `jti` already used (`vault.services.issued`): the SHA-256 of the
    payload of the JWS that used it and what the vault answered, so the same record again
    gets the same answer and writes nothing, and another payload with the jti is refused.
    Erased with the citizen the record was written for."""

    __tablename__ = "record_jtis"

    service_id: str = Field(sa_column=Column(
        String(40), ForeignKey("services.id"), primary_key=True))
    jti: str = Field(primary_key=True, max_length=200)
    digest: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    citizen_id: str = Field(sa_column=Column(
        String(40), ForeignKey("citizens.id", ondelete="CASCADE"), nullable=False, index=True))
    answer: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = _utc()


class ServiceRow(SQLModel, table=True):
    __tablename__ = "services"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    description: str = Field(max_length=2000)
    purposes: list[str] = Field(sa_column=Column(JSON, nullable=False))
    categories: list[str] = Field(sa_column=Column(JSON, nullable=False))
    derived: list[str] = Field(sa_column=Column(JSON, nullable=False))
    #: Categories the service may issue (write grants cover only these); migration 0009.
    issues: list[str] = Field(default_factory=list, sa_column=Column(
        JSON, nullable=False, server_default=text("'[]'")))
    max_days: int
    #: Its public keys, a JWK Set (RFC 7517 §5) checked by `check_service_jwks`: every
    #: key has a unique kid. They verify its client assertions and the records it issues.
    jwks: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    redirect_uris: list[str] = Field(sa_column=Column(JSON, nullable=False))
    webhook_url: str | None = Field(default=None, max_length=2000)
    #: The service's privacy notice and DPIA: by default the vault's own pages about it
    #: (/services/{id}/privacy and /dpia, absolute URLs under the vault's public URL).
    privacy_notice_url: str = Field(max_length=2000)
    dpia_url: str | None = Field(default=None, max_length=2000)
    active: bool = True
    created_at: datetime = _utc()
    #: The organisation answerable for what the service reads (the controller), when it
    #: is not the service itself; how to reach it; the DPIA's text, when the operator
    #: published it here rather than at a URL of its own.
    controller: str | None = Field(default=None, max_length=200)
    contact: str | None = Field(default=None, max_length=320)
    dpia_text: str | None = Field(default=None, sa_column=Column(Text))


class GrantRow(SQLModel, table=True):
    __tablename__ = "grants"

    id: str = Field(primary_key=True, max_length=40)
    service_id: str = Field(sa_column=Column(
        String(40), ForeignKey("services.id"), nullable=False, index=True))
    citizen_id: str = Field(sa_column=Column(
        String(40), ForeignKey("citizens.id", ondelete="CASCADE"), nullable=False, index=True))
    #: The terms exactly as hashed (JCS text) and their SHA-256.
    terms: str = Field(sa_column=Column(Text, nullable=False))
    terms_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    state: str = Field(max_length=16, index=True)
    reads: int = 0
    last_read_at: datetime | None = _utc(nullable=True)
    requested_at: datetime = _utc()
    updated_at: datetime = _utc()
    #: When the sweeper must act: requests lapse, approved or paused grants expire.
    due_at: datetime = _utc(index=True)
    #: Ledger index of this grant's latest transition (grant.* entry): signed actions
    #: commit to it, so an old signature (a pause, say) can never be replayed later.
    last_seq: int = Field(sa_column=Column(BigInteger, nullable=False))


class PasskeyRow(SQLModel, table=True):
    __tablename__ = "passkeys"

    #: base64url credential id, as WebAuthn names it.
    credential_id: str = Field(primary_key=True, max_length=1400)
    citizen_id: str = Field(sa_column=Column(
        String(40), ForeignKey("citizens.id", ondelete="CASCADE"), nullable=False, index=True))
    #: COSE public key (not personal data: also published on the ledger).
    public_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    #: WebAuthn counters are unsigned 32-bit: BIGINT, not INTEGER (PostgreSQL's is signed).
    sign_count: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    #: The citizen's own name for it ("my phone") may be personal: sealed like a record.
    label_sealed: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    transports: list[str] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = _utc()
    last_used_at: datetime | None = _utc(nullable=True)


def _citizen_fk(*, index: bool = True) -> Any:
    return Field(sa_column=Column(
        String(40), ForeignKey("citizens.id", ondelete="CASCADE"), nullable=False, index=index))


class GrantEventRow(SQLModel, table=True):
    """A grant's story for its citizen's wallet: one row per `grant.*` ledger entry.

    The ledger holds the entries themselves; this index finds them (a receipt needs the
    index of the approval) without scanning the log, and goes with the grant on erasure.
    """

    __tablename__ = "grant_events"

    seq: int = Field(sa_column=Column(_SEQ, primary_key=True, autoincrement=False))
    grant_id: str = Field(sa_column=Column(
        String(40), ForeignKey("grants.id", ondelete="CASCADE"), nullable=False, index=True))
    kind: str = Field(max_length=32)
    at: datetime = _utc()


class AccessRow(SQLModel, table=True):
    """One read by a service (its `data.accessed` entry), for the citizen's activity page.

    Names categories and answers, never values; erased with the citizen.
    """

    __tablename__ = "accesses"
    __table_args__ = (
        Index("ix_accesses_citizen_seq", "citizen_id", "seq"),
        Index("ix_accesses_grant_seq", "grant_id", "seq"),
    )

    seq: int = Field(sa_column=Column(_SEQ, primary_key=True, autoincrement=False))
    grant_id: str = Field(sa_column=Column(
        String(40), ForeignKey("grants.id", ondelete="CASCADE"), nullable=False))
    citizen_id: str = _citizen_fk(index=False)
    service_id: str = Field(max_length=40)
    categories: list[str] = Field(sa_column=Column(JSON, nullable=False))
    derived: list[str] = Field(sa_column=Column(JSON, nullable=False))
    at: datetime = _utc()


class TransparencyAtomRow(SQLModel, table=True):
    """The transparency report's atoms, counted from the public ledger (`ledger.transparency`).

    One row per atom, so nothing here tells one citizen from another. Only the counter
    writes here, with the cursor, in one transaction.
    """

    __tablename__ = "transparency_atoms"

    #: SHA-256 (hex) of the atom's other fields: one short key however long its sets.
    atom: str = Field(primary_key=True, max_length=64)
    #: "grant" or "access".
    kind: str = Field(max_length=8)
    #: Calendar month (UTC), 'YYYY-MM': of the request for grants, of the read for reads.
    month: str = Field(max_length=7)
    #: The service read for; empty for grants.
    service_id: str = Field(max_length=64)
    #: The purpose of the grant read under; empty for grants.
    purpose: str = Field(max_length=64)
    #: A grant's state now; empty for reads.
    state: str = Field(max_length=16)
    #: What a read released (sorted); empty for grants.
    categories: list[str] = Field(sa_column=Column(JSON, nullable=False))
    derived: list[str] = Field(sa_column=Column(JSON, nullable=False))
    count: int = Field(sa_column=Column(BigInteger, nullable=False))


class TransparencyGrantRow(SQLModel, table=True):
    """What counting needs of each grant, all public on the ledger: the month it was
    asked for and its purpose (for its reads), and its state now (to move it)."""

    __tablename__ = "transparency_grants"

    grant_id: str = Field(primary_key=True, max_length=64)
    month: str = Field(max_length=7)
    purpose: str = Field(max_length=64)
    state: str = Field(max_length=16)


class TransparencyCursorRow(SQLModel, table=True):
    """One row: the next ledger index to count (all before it are in the atoms)."""

    __tablename__ = "transparency_cursor"

    id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    next_seq: int = Field(sa_column=Column(BigInteger, nullable=False))


class ServiceBlockRow(SQLModel, table=True):
    """A citizen stopped a service asking them (`vault.services.blocks`): until they lift
    it, the service's requests for them are refused before anything is recorded. Not on
    the ledger, so the service cannot learn of it; erased with the citizen."""

    __tablename__ = "service_blocks"

    citizen_id: str = Field(sa_column=Column(
        String(40), ForeignKey("citizens.id", ondelete="CASCADE"), primary_key=True))
    service_id: str = Field(sa_column=Column(
        String(40), ForeignKey("services.id"), primary_key=True))
    created_at: datetime = _utc()


class SeriesCursorRow(SQLModel, table=True):
    """How far a grant has read a series (migration 0012): the version of the last batch
    released to it. Moved in the same transaction as the read's `data.accessed` entry."""

    __tablename__ = "series_cursors"

    grant_id: str = Field(sa_column=Column(
        String(40), ForeignKey("grants.id", ondelete="CASCADE"), primary_key=True))
    category: str = Field(primary_key=True, max_length=64)
    version: int = Field(sa_column=Column(BigInteger, nullable=False))
    updated_at: datetime = _utc()


class SourceCategoryRow(SQLModel, table=True):
    """A category held at source by an issuer (ARCHITECTURE §8, migration 0013): the
    vault stores no value of it for anyone; a read under a grant asks `url`. Public
    facts about a service, no personal data."""

    __tablename__ = "source_categories"

    category: str = Field(primary_key=True, max_length=100)
    service_id: str = Field(sa_column=Column(
        String(40), ForeignKey("services.id"), nullable=False, index=True))
    url: str = Field(max_length=2000)
    created_at: datetime = _utc()


class RecordDisputeRow(SQLModel, table=True):
    """The citizen told an issuer that one version of its record is wrong
    (`vault.services.disputes`, migration 0014): shown in the record's history; the key
    makes a second dispute of that version find this one. `reason` is a code from
    `disputes.REASONS`, never free text. Erased with the citizen."""

    __tablename__ = "record_disputes"

    citizen_id: str = Field(sa_column=Column(
        String(40), ForeignKey("citizens.id", ondelete="CASCADE"), primary_key=True))
    category: str = Field(primary_key=True, max_length=64)
    version: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    issuer: str = Field(sa_column=Column(
        String(40), ForeignKey("services.id"), nullable=False))
    reason: str = Field(max_length=32)
    ledger_index: int = Field(sa_column=Column(BigInteger, nullable=False))
    created_at: datetime = _utc()


class RelationshipRow(SQLModel, table=True):
    """Someone (the delegate) may act in someone else's (the principal's) vault
    (`vault.services.delegations`, ARCHITECTURE §9, migration 0018). `proposed` until
    both have signed the terms (a child's vault: the parent alone), then `live` with its
    `delegation.granted` entry at `ledger_index`, then `ended` (by the principal, the
    delegate, expiry, the issuer, or a child taking their vault over). Ended rows stay:
    they say who acted on someone's behalf. Erased with either person."""

    __tablename__ = "relationships"
    __table_args__ = (
        Index("ix_relationships_delegate_state", "delegate_id", "state"),
        Index("ix_relationships_principal_state", "principal_id", "state"),
    )

    id: str = Field(primary_key=True, max_length=40)
    principal_id: str = _citizen_fk(index=False)
    delegate_id: str = _citizen_fk(index=False)
    kind: str = Field(max_length=16)
    #: The delegated actions, sorted, comma-separated ("approve,view").
    actions: str = Field(max_length=64)
    until: datetime = _utc()
    state: str = Field(max_length=16)
    #: How it began: "invited", "issued", "dependant" (a child's vault) or "counter".
    origin: str = Field(max_length=16)
    issuer: str | None = Field(default=None, sa_column=Column(
        String(40), ForeignKey("services.id"), nullable=True))
    #: SHA-256 of the terms' JCS (`DelegationTerms.terms_hash`): what both people sign.
    terms_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    #: Each person's WebAuthn assertion over `terms_hash` (JSON), kept until both have
    #: signed and the ledger entry carries them.
    principal_assertion: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    delegate_assertion: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    ledger_index: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    created_at: datetime = _utc()
    ended_at: datetime | None = _utc(nullable=True)
    #: "principal", "delegate", "expiry", "issuer", "handover" or "citizen_erased".
    ended_by: str | None = Field(default=None, max_length=16)


class RelationshipInviteRow(SQLModel, table=True):
    """A single-use code (kept as a keyed hash): an invitation to act for the principal
    on the terms here (`purpose` "delegate"), or a child's one-time handover of their
    own vault ("handover", naming the parent's relationship). Migration 0018."""

    __tablename__ = "relationship_invites"

    code_hash: str = Field(primary_key=True, max_length=64)
    principal_id: str = _citizen_fk()
    purpose: str = Field(max_length=16)
    kind: str | None = Field(default=None, max_length=16)
    actions: str | None = Field(default=None, max_length=64)
    until: datetime | None = _utc(nullable=True)
    relationship_id: str | None = Field(default=None, sa_column=Column(
        String(40), ForeignKey("relationships.id", ondelete="CASCADE"), nullable=True))
    created_at: datetime = _utc()
    expires_at: datetime = _utc()
    used_at: datetime | None = _utc(nullable=True)


class RecoveryCodeRow(SQLModel, table=True):
    """A one-time recovery code, kept only as a keyed hash (HMAC-SHA-256, hex)."""

    __tablename__ = "recovery_codes"

    code_hash: str = Field(primary_key=True, max_length=64)
    citizen_id: str = _citizen_fk()
    created_at: datetime = _utc()
    used_at: datetime | None = _utc(nullable=True)


class WalletSessionRow(SQLModel, table=True):
    """A signed-in browser. The cookie holds a random token; the table only its SHA-256."""

    __tablename__ = "wallet_sessions"

    token_hash: str = Field(primary_key=True, max_length=64)
    citizen_id: str = _citizen_fk()
    created_at: datetime = _utc()
    seen_at: datetime = _utc()
    #: Whose vault the signed-in person chose to act in (None: their own). Checked against
    #: a live relationship on every request (`wallet.acting`); migration 0019.
    acting_for: str | None = Field(default=None, sa_column=Column(
        String(40), ForeignKey("citizens.id", ondelete="SET NULL",
                               name="fk_wallet_sessions_acting_for"), nullable=True))


class DelegatedActionRow(SQLModel, table=True):
    """One thing a delegate did in a principal's vault, for the principal's activity page
    (issue 14 §3, migration 0019): written in the action's own transaction, keyed by the
    ledger index of the action's entry (which carries `actor` and `delegation_id`). Erased
    with the principal; the actor's id is cleared if the actor is erased (the principal
    still sees that someone acted)."""

    __tablename__ = "delegated_actions"
    __table_args__ = (
        Index("ix_delegated_actions_principal_seq", "principal_id", "seq"),
    )

    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    principal_id: str = _citizen_fk(index=False)
    actor_id: str | None = Field(default=None, sa_column=Column(
        String(40), ForeignKey("citizens.id", ondelete="SET NULL"), nullable=True))
    relationship_id: str | None = Field(default=None, sa_column=Column(
        String(40), ForeignKey("relationships.id", ondelete="SET NULL"), nullable=True))
    #: The ledger entry's kind ("grant.approved", "record.written", ...).
    kind: str = Field(max_length=32)
    grant_id: str | None = Field(default=None, sa_column=Column(
        String(40), nullable=True, index=True))
    category: str | None = Field(default=None, max_length=64)
    at: datetime = _utc()


class WebhookMessageRow(SQLModel, table=True):
    """A webhook in the outbox: written with the change it reports, sent after commit."""

    __tablename__ = "webhook_messages"
    __table_args__ = (Index("ix_webhook_messages_due", "delivered_at", "failed_at",
                            "next_attempt_at"),)

    #: The Standard Webhooks `webhook-id` (the same on every retry).
    id: str = Field(primary_key=True, max_length=40)
    service_id: str = Field(sa_column=Column(
        String(40), ForeignKey("services.id"), nullable=False, index=True))
    event: str = Field(max_length=32)
    #: The exact JSON body that is signed and sent (ids and states, no personal data).
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = _utc()
    attempts: int = 0
    next_attempt_at: datetime = _utc()
    delivered_at: datetime | None = _utc(nullable=True)
    #: Given up: retries exhausted, or the service answered 410 Gone.
    failed_at: datetime | None = _utc(nullable=True)
    last_status: int | None = None
    last_error: str | None = Field(default=None, max_length=300)


class WebhookDeliveryRow(SQLModel, table=True):
    """One delivery attempt: the per-service delivery log."""

    __tablename__ = "webhook_deliveries"

    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(sa_column=Column(
        String(40), ForeignKey("webhook_messages.id", ondelete="CASCADE"), nullable=False,
        index=True))
    service_id: str = Field(max_length=40, index=True)
    attempt: int
    at: datetime = _utc()
    status: int | None = None
    error: str | None = Field(default=None, max_length=300)
    ms: int


class RecordChangeRow(SQLModel, table=True):
    """A change to a citizen's records that services have yet to be told of
    (`vault.services.changes`): written in the change's own transaction, turned into one
    `record.changed` webhook per grant to tell and deleted, in one later transaction.
    Names categories, never values; erased with the citizen."""

    __tablename__ = "record_changes"

    #: The ledger index of the change's entry (one change per entry).
    seq: int = Field(sa_column=Column(_SEQ, primary_key=True, autoincrement=False))
    citizen_id: str = _citizen_fk()
    categories: list[str] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = _utc()


class CeremonyRow(SQLModel, table=True):
    """A pending WebAuthn challenge: single use, short-lived, shared by all workers.

    `citizen_id` has no foreign key: a sign-up ceremony names a citizen who does not
    exist until it succeeds.
    """

    __tablename__ = "ceremonies"

    id: str = Field(primary_key=True, max_length=40)
    challenge: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    purpose: str = Field(max_length=16)
    citizen_id: str | None = Field(default=None, max_length=40)
    expires_at: datetime = _utc(index=True)


class OAuthJtiRow(SQLModel, table=True):
    """A client assertion's `jti` already used (RFC 7523 §3 item 7), kept until it expires.

    `expires_at` is the assertion's `exp` plus the clock leeway: until then a replay
    would still pass the expiry check, so the row must still be here to refuse it.
    """

    __tablename__ = "oauth_jti"

    client_id: str = Field(primary_key=True, max_length=40)
    jti: str = Field(primary_key=True, max_length=200)
    expires_at: datetime = _utc(index=True)


class OAuthRequestRow(SQLModel, table=True):
    """A pushed authorization request (RFC 9126), waiting for the authorize endpoint.

    Its `request_uri` is `urn:ietf:params:oauth:request_uri:<id>`. It lives a minute
    (`expires_at`) and is used at most once (`used_at`), by the client that pushed it.
    The terms it asks for (`authorization_details`, RFC 9396) name categories, never
    values; nothing here is personal data.

    Once taken, the row follows the authorization in the wallet: `expires_at` is moved
    to the end of the time the citizen has to answer, `grant_id` is the grant requested
    for the signed-in citizen, `answered_at` when the browser was sent back, with a code
    (stored as `code_hash`, single use by `code_used_at`) or an error. `family_id` is the
    token family the code was redeemed for, so a replayed code can revoke it.
    """

    __tablename__ = "oauth_requests"

    id: str = Field(primary_key=True, max_length=64)
    client_id: str = Field(sa_column=Column(
        String(40), ForeignKey("services.id"), nullable=False))
    redirect_uri: str = Field(max_length=2000)
    state: str | None = Field(default=None, max_length=512)
    code_challenge: str = Field(max_length=128)
    authorization_details: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = _utc()
    expires_at: datetime = _utc(index=True)
    used_at: datetime | None = _utc(nullable=True)
    grant_id: str | None = Field(default=None, sa_column=Column(
        String(40), ForeignKey("grants.id", ondelete="CASCADE",
                               name="fk_oauth_requests_grant")))
    answered_at: datetime | None = _utc(nullable=True)
    code_hash: bytes | None = Field(default=None, sa_column=Column(
        LargeBinary(32), index=True, unique=True))
    code_expires_at: datetime | None = _utc(nullable=True)
    code_used_at: datetime | None = _utc(nullable=True)
    family_id: str | None = Field(default=None, max_length=40)


class OAuthTokenFamilyRow(SQLModel, table=True):
    """The tokens issued from one authorization (a code or a CIBA request): every access
    token carries the family's id, every refresh token belongs to it. Revoking the family
    (RFC 7009, a replayed code, a reused refresh token) stops all of them at once."""

    __tablename__ = "oauth_token_families"

    id: str = Field(primary_key=True, max_length=40)
    client_id: str = Field(sa_column=Column(
        String(40), ForeignKey("services.id"), nullable=False))
    grant_id: str = Field(sa_column=Column(
        String(40), ForeignKey("grants.id", ondelete="CASCADE"), nullable=False, index=True))
    created_at: datetime = _utc()
    revoked_at: datetime | None = _utc(nullable=True)
    revoked_because: str | None = Field(default=None, max_length=40)


class OAuthRefreshTokenRow(SQLModel, table=True):
    """A refresh token (its SHA-256). Used once: using it issues the next one (rotation);
    presenting a used one again revokes its family (reuse detection)."""

    __tablename__ = "oauth_refresh_tokens"

    hash: bytes = Field(sa_column=Column(LargeBinary(32), primary_key=True))
    family_id: str = Field(sa_column=Column(
        String(40), ForeignKey("oauth_token_families.id", ondelete="CASCADE"),
        nullable=False, index=True))
    created_at: datetime = _utc()
    used_at: datetime | None = _utc(nullable=True)


class OAuthSubjectRow(SQLModel, table=True):
    """Which citizen a service's pairwise `sub` names, so a service can ask by `sub`
    (CIBA `login_hint`). The pairwise value is a one-way hash: this table is its only
    inverse, written when a service is first told the `sub`, erased with the citizen."""

    __tablename__ = "oauth_subjects"

    service_id: str = Field(sa_column=Column(
        String(40), ForeignKey("services.id"), primary_key=True))
    sub: str = Field(primary_key=True, max_length=40)
    citizen_id: str = Field(sa_column=Column(
        String(40), ForeignKey("citizens.id", ondelete="CASCADE"), nullable=False, index=True))


class OAuthBackchannelRow(SQLModel, table=True):
    """A CIBA request (poll mode): its `auth_req_id` (SHA-256), the grant it requested,
    until when it may be polled, at what interval, and when it was last polled and used."""

    __tablename__ = "oauth_backchannel"

    hash: bytes = Field(sa_column=Column(LargeBinary(32), primary_key=True))
    client_id: str = Field(sa_column=Column(
        String(40), ForeignKey("services.id"), nullable=False))
    grant_id: str = Field(sa_column=Column(
        String(40), ForeignKey("grants.id", ondelete="CASCADE"), nullable=False, index=True))
    created_at: datetime = _utc()
    expires_at: datetime = _utc()
    interval: int = Field(sa_column=Column(Integer, nullable=False))
    #: CIBA §7.1: shown to the citizen beside the request, to match it with the service.
    binding_message: str | None = Field(default=None, max_length=40)
    polled_at: datetime | None = _utc(nullable=True)
    used_at: datetime | None = _utc(nullable=True)
