"""Issuer writes group-committed (`GroupCommitWriter`): many writes share one transaction,
made all at once (`issued_batch.write_many`) or, on the safe path, each in its own
savepoint; each gets the answer it would get alone; on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, col, select
from support.ledgerview import full_entries
from support.vaultworld import Clock, add_passkey

from clients.service.keys import ServiceKey
from vault.crypto import envelope
from vault.domain.errors import AccessDenied
from vault.domain.grants import Access, GrantAction
from vault.oauth.record_jws import RecordRefused
from vault.services import citizens, grants, issued, issued_batch, registry
from vault.services.context import VaultContext
from vault.services.group_commit import GroupCommitWriter, WriteAsk
from vault.services.issued import RecordInvalidValue, RecordJtiReused, Written
from vault.storage.database import read_only
from vault.storage.tables import CitizenRow, RecordJtiRow, RecordRow
from wallet.passkeys.software import SoftAuthenticator

AA = "benefits.attendance_allowance"
THREAD = "group-commit-writer"


def award(level: str) -> dict[str, Any]:
    return {"award": level, "since": "2026-01-05", "awarded_by": "Benefits agency"}


@dataclass(frozen=True)
class Issuer:
    key: ServiceKey
    service_id: str


@dataclass(frozen=True)
class Linked:
    """A citizen, their passkey, and the issuer's approved write grant for them."""

    citizen_id: str
    device: SoftAuthenticator
    grant_id: str


def issuer(ctx: VaultContext, name: str = "Benefits agency") -> Issuer:
    key = ServiceKey.generate()
    return Issuer(key, registry.register_service(ctx, registry.Registration(
        name=name, description="Awards benefits", purposes=["eligibility_assessment"],
        categories=[], jwks=key.public_jwks(), redirect_uris=["https://b.example.gov/cb"],
        privacy_notice_url="https://b.example.gov/privacy", issues=[AA])))


def linked(ctx: VaultContext, who: Issuer) -> Linked:
    citizen = citizens.enrol_citizen(ctx)
    device = add_passkey(ctx, citizen.id)
    g = grants.request_grant(
        ctx, service_id=who.service_id, citizen_id=citizen.id,
        purpose="eligibility_assessment", categories=[AA], derived=[],
        access=Access("one_time"), data_life="P30D", justification="To award benefits.",
        duration=timedelta(days=30), actions=("write",))
    grants.approve_grant(ctx, g.id, citizen_id=citizen.id,
                         proof=device.proof(challenge=g.terms_hash))
    return Linked(citizen.id, device, g.id)


def revoke(ctx: VaultContext, link: Linked) -> None:
    challenge = grants.signing_challenge(ctx, link.grant_id, citizen_id=link.citizen_id,
                                         action=GrantAction.REVOKE)
    grants.revoke_grant(ctx, link.grant_id, citizen_id=link.citizen_id,
                        proof=link.device.proof(challenge=challenge))


def ask(who: Issuer, link: Linked, record: str) -> WriteAsk:
    return WriteAsk(who.service_id, link.grant_id, None, AA, record)


def one_batch(ctx: VaultContext, asks: Sequence[WriteAsk], *, batched: bool = True
              ) -> list[Written | Exception]:
    """The writes as ONE batch, in this order: the writer waits until all are queued.
    `batched=False`: on the safe path, each write in its own savepoint."""
    writer = GroupCommitWriter(ctx, max_batch=len(asks), max_wait=60, batched=batched)
    with writer:
        futures = [writer.submit(a) for a in asks]
        outcomes = [outcome(lambda f=f: f.result(timeout=120)) for f in futures]
    stats = writer.stats()
    assert (stats.batches, stats.largest) == (1, len(asks))
    return outcomes


def one_by_one(ctx: VaultContext, asks: Sequence[WriteAsk]) -> list[Written | Exception]:
    return [outcome(lambda a=a: issued.write_issued(
        ctx, service_id=a.service_id, grant_id=a.grant_id, token_family=a.token_family,
        category=a.category, record=a.record)) for a in asks]


def outcome(call: Any) -> Written | Exception:
    try:
        result: Written = call()
        return result
    except Exception as exc:
        return exc


def stored(ctx: VaultContext, citizen_id: str) -> list[tuple[int, Any]]:
    """(version, value) of each of the citizen's records, the values unsealed."""
    with Session(read_only(ctx.engine)) as s:
        c = s.get(CitizenRow, citizen_id)
        assert c is not None
        rows = s.exec(select(RecordRow).where(col(RecordRow.citizen_id) == citizen_id)
                      .order_by(col(RecordRow.version))).all()
    key = ctx.keyring.unwrap(c.kek_id, c.wrapped_key, citizen_id=c.id)
    return [(r.version, orjson.loads(envelope.open_sealed(key, r.ciphertext, ad=envelope.record_ad(
        citizen_id=r.citizen_id, record_id=r.id, category=r.category, version=r.version))))
        for r in rows]


def written_entries(ctx: VaultContext) -> list[tuple[int, dict[str, Any]]]:
    """(ledger index, body) of every record.written entry."""
    with read_only(ctx.engine).begin() as conn:
        return [(entry["seq"], entry["body"]) for entry in full_entries(conn)
                if entry["kind"] == "record.written"]


def jtis(ctx: VaultContext) -> int:
    with Session(read_only(ctx.engine)) as s:
        return len(s.exec(select(RecordJtiRow)).all())


@pytest.fixture(autouse=True)
def no_writer_left() -> Iterator[None]:
    yield
    assert not [t for t in threading.enumerate() if t.name == THREAD], "a writer thread leaked"


# -- one batch, each write its own answer ---------------------------------------------------


def test_a_batch_answers_each_write_alone_and_keeps_only_the_good(
        ctx: VaultContext, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Good writes, a repeat and a reuse of one jti, a refused signature, a refused value,
    a revoked grant and a write failing unexpectedly, in ONE transaction on the safe
    path: each gets what it would get alone, and only the good ones are written, logged
    and remembered."""
    agency = issuer(ctx)
    ada, bob, gone = linked(ctx, agency), linked(ctx, agency), linked(ctx, agency)
    revoke(ctx, gone)
    stranger = ServiceKey.generate()
    iat = int(clock().timestamp())

    def sign(value: Any, jti: str, key: ServiceKey = agency.key) -> str:
        return key.sign_record(AA, value, issuer=agency.service_id, jti=jti, iat=iat)

    real_remember = issued.remember_jti

    def remember(work: Any, grant: Any, record: Any, answer: Any) -> None:
        # After its record, its ledger entry and its change are written: the savepoint
        # must take them all back.
        if record.value["awarded_by"] == "boom":
            raise RuntimeError("the disk caught fire")
        real_remember(work, grant, record, answer)

    monkeypatch.setattr(issued, "remember_jti", remember)
    first = sign(award("higher"), "j1")
    asks = [
        ask(agency, ada, first),                              # 0 written: version 1
        ask(agency, ada, sign(award("higher"), "j1")),        # 1 same payload: answer of 0
        ask(agency, ada, sign(award("lower"), "j1")),         # 2 same jti, other payload
        ask(agency, bob, first),                              # 3 same JWS, other citizen
        ask(agency, ada, sign(award("lower"), "j2", stranger)),  # 4 not the issuer's key
        ask(agency, bob, sign("not an award", "j3")),         # 5 fails the schema
        ask(agency, bob, sign({**award("lower"), "awarded_by": "boom"}, "j4")),  # 6 fails
        ask(agency, gone, sign(award("lower"), "j5")),        # 7 revoked grant
        ask(agency, ada, sign(award("lower"), "j6")),         # 8 written: version 2
        ask(agency, bob, sign(award("lower"), "j7")),         # 9 written: version 1
    ]
    start = len(written_entries(ctx))
    out = one_batch(ctx, asks, batched=False)

    assert isinstance(out[0], Written) and out[0].version == 1
    assert out[1] == out[0]
    assert isinstance(out[2], RecordJtiReused) and isinstance(out[3], RecordJtiReused)
    assert isinstance(out[4], RecordRefused) and out[4].reason == "unknown_key"
    assert isinstance(out[5], RecordInvalidValue)
    assert isinstance(out[6], RuntimeError)
    assert isinstance(out[7], AccessDenied)
    assert isinstance(out[8], Written) and out[8].version == 2
    assert isinstance(out[9], Written) and out[9].version == 1

    assert stored(ctx, ada.citizen_id) == [(1, award("higher")), (2, award("lower"))]
    assert stored(ctx, bob.citizen_id) == [(1, award("lower"))]
    assert stored(ctx, gone.citizen_id) == []
    entries = written_entries(ctx)[start:]
    good = [out[0], out[8], out[9]]
    assert [seq for seq, _ in entries] == [w.ledger_index for w in good]  # type: ignore[union-attr]
    assert [(e["grant_id"], e["version"]) for _, e in entries] == [
        (ada.grant_id, 1), (ada.grant_id, 2), (bob.grant_id, 1)]
    assert jtis(ctx) == 3


def test_a_batch_of_writes_commits_once(ctx: VaultContext, clock: Clock) -> None:
    """One commit, so one nudge of the publisher, teller and dispatcher, per batch."""
    agency = issuer(ctx)
    links = [linked(ctx, agency) for _ in range(3)]
    nudges: list[int] = []
    nudged = replace(ctx, after_commit=lambda: nudges.append(1))
    iat = int(clock().timestamp())
    out = one_batch(nudged, [ask(agency, link, agency.key.sign_record(
        AA, award("higher"), issuer=agency.service_id, iat=iat)) for link in links])
    assert all(isinstance(o, Written) for o in out)
    assert nudges == [1]


def test_a_write_in_a_batch_that_lost_a_race_is_made_again(
        ctx: VaultContext, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    """On the safe path, as when another grant's write for the citizen commits between
    our reading the newest version and our insert (PostgreSQL): the insert fails, only
    its savepoint is rolled back, and the write is made once more above the other; the
    batch commits."""
    agency = issuer(ctx)
    ada, bob = linked(ctx, agency), linked(ctx, agency)
    iat = int(clock().timestamp())

    def sign(level: str) -> str:
        return agency.key.sign_record(AA, award(level), issuer=agency.service_id, iat=iat)

    issued.write_issued(ctx, service_id=agency.service_id, grant_id=ada.grant_id,
                        token_family=None, category=AA, record=sign("higher"))
    real = issued._next_version
    stale = [True]

    def next_version(work: Any, citizen_id: str, category: str) -> int:
        if stale.pop() if stale else False:
            return 1  # what it was before the other write committed
        return real(work, citizen_id, category)

    monkeypatch.setattr(issued, "_next_version", next_version)
    start, kept = len(written_entries(ctx)), jtis(ctx)
    out = one_batch(ctx, [ask(agency, ada, sign("lower")), ask(agency, bob, sign("lower"))],
                    batched=False)
    assert [(o.version if isinstance(o, Written) else o) for o in out] == [2, 1]
    assert stored(ctx, ada.citizen_id) == [(1, award("higher")), (2, award("lower"))]
    assert len(written_entries(ctx)) - start == 2 and jtis(ctx) - kept == 2


def test_a_batch_made_at_once_answers_each_write_alone(ctx: VaultContext,
                                                       clock: Clock) -> None:
    """The same mix as above, made all at once (a fixed number of statements): the same
    answers, and only the good writes are written, logged and remembered."""
    agency = issuer(ctx)
    ada, bob, gone = linked(ctx, agency), linked(ctx, agency), linked(ctx, agency)
    revoke(ctx, gone)
    stranger = ServiceKey.generate()
    iat = int(clock().timestamp())

    def sign(value: Any, jti: str, key: ServiceKey = agency.key) -> str:
        return key.sign_record(AA, value, issuer=agency.service_id, jti=jti, iat=iat)

    first = sign(award("higher"), "j1")
    asks = [
        ask(agency, ada, first),                              # 0 written: version 1
        ask(agency, ada, sign(award("higher"), "j1")),        # 1 same payload: answer of 0
        ask(agency, ada, sign(award("lower"), "j1")),         # 2 same jti, other payload
        ask(agency, bob, first),                              # 3 same JWS, other citizen
        ask(agency, ada, sign(award("lower"), "j2", stranger)),  # 4 not the issuer's key
        ask(agency, bob, sign("not an award", "j3")),         # 5 fails the schema
        ask(agency, bob, sign(award("higher"), "j3")),        # 6 j3 unused: written, v1
        ask(agency, gone, sign(award("lower"), "j5")),        # 7 revoked grant
        ask(agency, ada, sign(award("lower"), "j6")),         # 8 written: version 2
        WriteAsk(agency.service_id, "gr_nonesuch", None, AA, sign(award("lower"), "j8")),
        WriteAsk(agency.service_id, ada.grant_id, None, "health.observations",
                 sign(award("lower"), "j9")),                 # 10 a series: refused
    ]
    start, kept = len(written_entries(ctx)), jtis(ctx)
    out = one_batch(ctx, asks)
    assert isinstance(out[0], Written) and out[0].version == 1
    assert out[1] == out[0]
    assert isinstance(out[2], RecordJtiReused) and isinstance(out[3], RecordJtiReused)
    assert isinstance(out[4], RecordRefused) and out[4].reason == "unknown_key"
    assert isinstance(out[5], RecordInvalidValue)
    assert isinstance(out[6], Written) and out[6].version == 1
    assert isinstance(out[7], AccessDenied)
    assert isinstance(out[8], Written) and out[8].version == 2
    assert type(out[9]).__name__ == "NotFound" and type(out[10]).__name__ == "IsASeries"
    assert stored(ctx, ada.citizen_id) == [(1, award("higher")), (2, award("lower"))]
    assert stored(ctx, bob.citizen_id) == [(1, award("higher"))]
    entries = written_entries(ctx)[start:]
    assert [seq for seq, _ in entries] == [o.ledger_index for o in (out[0], out[6], out[8])
                                           if isinstance(o, Written)]
    assert [(e["grant_id"], e["version"]) for _, e in entries] == [
        (ada.grant_id, 1), (bob.grant_id, 1), (ada.grant_id, 2)]
    assert jtis(ctx) - kept == 3
    # The same jti again, in a later batch: the answer it got, nothing written.
    again = one_batch(ctx, [ask(agency, ada, sign(award("higher"), "j1"))])
    assert again == [out[0]] and jtis(ctx) - kept == 3


def test_a_batch_that_lost_a_race_is_made_again_one_by_one(
        ctx: VaultContext, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    """As when another transaction's write for the citizen commits between the batch's
    reading the newest versions and its insert (PostgreSQL): the batch's insert fails,
    the whole batch is rolled back and made on the safe path, above the other write."""
    agency = issuer(ctx)
    ada, bob = linked(ctx, agency), linked(ctx, agency)
    iat = int(clock().timestamp())

    def sign(level: str) -> str:
        return agency.key.sign_record(AA, award(level), issuer=agency.service_id, iat=iat)

    issued.write_issued(ctx, service_id=agency.service_id, grant_id=ada.grant_id,
                        token_family=None, category=AA, record=sign("higher"))
    stale = [True]
    real = issued_batch._highest

    def highest(work: Any, places: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
        if stale:
            stale.pop()
            return {}  # what they were before the other write committed
        return real(work, places)

    monkeypatch.setattr(issued_batch, "_highest", highest)
    start, kept = len(written_entries(ctx)), jtis(ctx)
    writer = GroupCommitWriter(ctx, max_batch=2, max_wait=60)
    with writer:
        futures = [writer.submit(ask(agency, ada, sign("lower"))),
                   writer.submit(ask(agency, bob, sign("lower")))]
        out = [outcome(lambda f=f: f.result(timeout=120)) for f in futures]
    assert not stale  # the stale versions were used, and the insert failed
    assert [(o.version if isinstance(o, Written) else o) for o in out] == [2, 1]
    assert stored(ctx, ada.citizen_id) == [(1, award("higher")), (2, award("lower"))]
    assert len(written_entries(ctx)) - start == 2 and jtis(ctx) - kept == 2


def test_writes_racing_revocations_never_deadlock(ctx: VaultContext, clock: Clock) -> None:
    """Batches lock their grants in id order before the ledger head, as a revocation
    locks its grant first: on PostgreSQL neither waits for the other forever. A write
    is written, or refused because its grant was revoked first; nothing else."""
    agency = issuer(ctx)
    links = [linked(ctx, agency) for _ in range(6)]
    iat = int(clock().timestamp())
    asks = [ask(agency, links[i % 6], agency.key.sign_record(
        AA, award("higher"), issuer=agency.service_id, iat=iat)) for i in range(36)]
    with GroupCommitWriter(ctx, max_batch=8) as writer:
        revoker = threading.Thread(target=lambda: [revoke(ctx, link) for link in links[::2]])
        futures = [writer.submit(a) for a in asks[:18]]
        revoker.start()
        futures += [writer.submit(a) for a in asks[18:]]
        revoker.join(timeout=120)
        out = [outcome(lambda f=f: f.result(timeout=120)) for f in futures]
    assert not revoker.is_alive()
    assert all(isinstance(o, Written | AccessDenied) for o in out), out
    written = [a for a, o in zip(asks, out, strict=True) if isinstance(o, Written)]
    for link in links:
        assert len(stored(ctx, link.citizen_id)) == sum(a.grant_id == link.grant_id
                                                        for a in written)


# -- any batch: the same answers as one by one ----------------------------------------------

#: A write: (which citizen, which jti, which value, signed by the issuer's key or not).
WRITES = st.tuples(st.integers(0, 1), st.integers(0, 2),
                   st.sampled_from(["higher", "lower", "not an award"]), st.booleans())


def _answer(o: Written | Exception) -> Any:
    if isinstance(o, Written):
        return o.category, o.version
    return type(o).__name__, getattr(o, "reason", None)


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(writes=st.lists(WRITES, min_size=1, max_size=8))
def test_any_batch_answers_and_writes_as_one_by_one(
        ctx: VaultContext, clock: Clock,
        writes: list[tuple[int, int, str, bool]]) -> None:
    """The same writes (the same payloads, signed by twin issuers) made as one batch and
    one by one: the same answers, the same records and the same number of jtis kept."""
    iat = int(clock().timestamp())
    stranger = ServiceKey.generate()
    sides = []
    for _ in range(2):
        who = issuer(ctx)
        people = [linked(ctx, who), linked(ctx, who)]
        asks = [ask(who, people[c], (who.key if own else stranger).sign_record(
            AA, award(v) if v != "not an award" else v, issuer=who.service_id,
            jti=f"j{j}", iat=iat)) for c, j, v, own in writes]
        sides.append((who, people, asks))
    before = jtis(ctx)
    batched = one_batch(ctx, sides[0][2])
    middle = jtis(ctx)
    alone = one_by_one(ctx, sides[1][2])
    assert [_answer(o) for o in batched] == [_answer(o) for o in alone]
    for a, b in zip(sides[0][1], sides[1][1], strict=True):
        assert stored(ctx, a.citizen_id) == stored(ctx, b.citizen_id)
    assert middle - before == jtis(ctx) - middle
