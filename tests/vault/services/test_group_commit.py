"""Group commit: concurrent reads share transactions. Each caller still gets exactly its
own answer, and only after the commit. A refused or failing read leaves nothing behind
and spoils nothing for the others.

Every test runs on SQLite and on PostgreSQL (the `ctx` fixture). After each test, the
whole ledger is audited (chain, leaf hashes, and the root from the entries, the head row
and the stored nodes must agree), and every reader thread must be gone.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from support.ledgerview import full_entries
from support.vaultworld import Clock, World, add_passkey, ask, world

from ledger.audit import audit_log
from ledger.sqlstore import SqlLedger
from vault.domain.errors import AccessDenied
from vault.domain.grants import Access, GrantAction, exhausted_after
from vault.errors import NotFound
from vault.services import access as access_module
from vault.services import grants
from vault.services.access import Release, TokensRevoked, read_in
from vault.services.context import VaultContext, Work
from vault.services.group_commit import (
    BatchStats,
    GroupCommitReader,
    Overloaded,
    ReaderStopped,
)
from vault.storage.database import read_only
from vault.storage.tables import AccessRow, GrantEventRow, GrantRow
from wallet.passkeys.software import SoftAuthenticator

MANY = Access("periodic", max_reads=100_000)
THREAD = "group-commit-reader"



@dataclass(frozen=True)
class Granted:
    world: World
    device: SoftAuthenticator
    grant_id: str

    @property
    def ask(self) -> tuple[str, str]:
        return self.world.service_id, self.grant_id


def granted(ctx: VaultContext, access: Access = MANY) -> Granted:
    """A new citizen with data, a passkey, and an approved grant for a new service."""
    w = world(ctx)
    device = add_passkey(ctx, w.citizen_id)
    g = ask(ctx, w, access=access)
    grants.approve_grant(ctx, g.id, citizen_id=w.citizen_id,
                         proof=device.proof(challenge=g.terms_hash))
    return Granted(w, device, g.id)


def revoke(ctx: VaultContext, g: Granted) -> None:
    challenge = grants.signing_challenge(ctx, g.grant_id, citizen_id=g.world.citizen_id,
                                         action=GrantAction.REVOKE)
    grants.revoke_grant(ctx, g.grant_id, citizen_id=g.world.citizen_id,
                        proof=g.device.proof(challenge=challenge))


def ledger(ctx: VaultContext) -> list[dict[str, Any]]:
    """Every entry, after auditing the whole ledger: the root recomputed from the
    entries must be the head row's and the one the stored tree nodes give."""
    with read_only(ctx.engine).begin() as conn:
        store = SqlLedger(conn)
        rows = list(store.iter_entries())
        verified = audit_log((d, h) for _, h, d in rows)
        head = store.tree_head()
        assert verified.head.size == head.size == len(rows)
        assert verified.head.root == head.root == store.root_at(head.size)
        return full_entries(conn)


def logged_reads(ctx: VaultContext, since: int = 0) -> dict[int, str]:
    """ledger index -> grant id of every `data.accessed` entry from `since` on."""
    return {i: e["body"]["grant_id"] for i, e in enumerate(ledger(ctx))
            if i >= since and e["kind"] == "data.accessed"}


def access_rows(ctx: VaultContext) -> dict[int, str]:
    with read_only(ctx.engine).begin() as conn:
        return {seq: gid for seq, gid in conn.execute(select(AccessRow.seq,  # type: ignore[call-overload]
                                                             AccessRow.grant_id))}


def reads_counted(ctx: VaultContext, grant_id: str) -> int:
    with read_only(ctx.engine).begin() as conn:
        return int(conn.execute(select(GrantRow.reads).where(  # type: ignore[call-overload]
            GrantRow.id == grant_id)).scalar_one())


def outcome(future: Future[Release]) -> Release | Exception:
    try:
        return future.result(timeout=120)
    except Exception as exc:
        return exc


def one_batch(ctx: VaultContext, plan: Sequence[tuple[str, str]], *, batched: bool = True
              ) -> tuple[list[Release | Exception], BatchStats]:
    """Run the reads of `plan` (service id, grant id) as one batch, in that order: the
    writer waits (up to a minute) until all of them are queued. `batched=False`: on the
    safe path (each read by `read_in` in its own savepoint)."""
    reader = GroupCommitReader(ctx, max_batch=len(plan), max_wait=60, batched=batched)
    with reader:
        futures = [reader.submit(service_id=s, grant_id=g) for s, g in plan]
        outcomes = [outcome(f) for f in futures]
    return outcomes, reader.stats()


def is_release(o: object, g: Granted) -> bool:
    return (isinstance(o, Release) and o.grant_id == g.grant_id
            and o.subject == g.world.subject
            and o.data["address.home"]["postcode"] == "SW1Y 4JH")


@pytest.fixture(autouse=True)
def no_reader_left() -> Iterator[None]:
    yield
    assert not [t for t in threading.enumerate() if t.name == THREAD], "a reader thread leaked"


# -- many callers at once -----------------------------------------------------------------


def test_concurrent_callers_each_get_their_own_answer(ctx: VaultContext) -> None:
    many = [granted(ctx) for _ in range(4)]
    few = granted(ctx, Access("periodic", max_reads=5))  # used up part-way, inside batches
    grants_ = [*many, few]
    start = len(ledger(ctx))
    threads, each = 32, 8
    results: list[list[tuple[Granted, Release | Exception]]] = [[] for _ in range(threads)]
    gate = threading.Barrier(threads)

    def caller(t: int, reader: GroupCommitReader) -> None:
        gate.wait()
        for i in range(each):
            g = grants_[(t + i) % len(grants_)]
            try:
                results[t].append((g, reader.read(service_id=g.world.service_id,
                                                  grant_id=g.grant_id)))
            except Exception as exc:
                results[t].append((g, exc))

    with GroupCommitReader(ctx) as reader:
        pool = [threading.Thread(target=caller, args=(t, reader)) for t in range(threads)]
        for th in pool:
            th.start()
        for th in pool:
            th.join()
        stats = reader.stats()

    done = [r for rs in results for r in rs]
    assert len(done) == threads * each
    released = [o for g, o in done if isinstance(o, Release)]
    for g, o in done:
        if g is few and not isinstance(o, Release):
            assert isinstance(o, AccessDenied) and o.reason == "exhausted"
        else:
            assert is_release(o, g), o  # its own grant, citizen and data: nobody else's
    assert sum(1 for g, o in done if g is few and isinstance(o, Release)) == 5
    assert stats.reads == threads * each
    assert stats.batches < stats.reads, "reads were not grouped"

    # Exactly one entry and one accesses row per released read, at the index it was given.
    logged = logged_reads(ctx, start)
    assert logged == {r.ledger_index: r.grant_id for r in released}
    assert len(logged) == len(released)
    assert {s: g for s, g in access_rows(ctx).items() if s >= start} == logged
    per_grant = Counter(r.grant_id for r in released)
    for g in grants_:
        assert reads_counted(ctx, g.grant_id) == per_grant[g.grant_id]
    exhausted = [e for e in ledger(ctx) if e["kind"] == "grant.exhausted"]
    assert [e["body"]["grant_id"] for e in exhausted] == [few.grant_id]


# -- failures inside a batch ----------------------------------------------------------------


def test_refused_reads_in_a_batch_leave_nothing_and_spoil_nothing(ctx: VaultContext) -> None:
    ok = granted(ctx)
    gone = granted(ctx)
    revoke(ctx, gone)
    other = granted(ctx)  # another service's grant
    start = len(ledger(ctx))
    service = ok.world.service_id
    outcomes, stats = one_batch(ctx, [
        ok.ask, gone.ask, ok.ask, (service, "grant_nosuch"), (service, other.grant_id), ok.ask])

    assert stats == BatchStats(batches=1, reads=6, largest=6)
    first, revoked, second, missing, not_ours, third = outcomes
    assert isinstance(revoked, AccessDenied) and revoked.reason == "revoked"
    assert isinstance(missing, NotFound) and isinstance(not_ours, NotFound)
    releases = [first, second, third]
    assert all(is_release(r, ok) for r in releases)
    # The refused reads took no index: the ledger has no gap and no entry of theirs.
    indexes = [r.ledger_index for r in releases]  # type: ignore[union-attr]
    assert indexes == [start, start + 1, start + 2]
    assert logged_reads(ctx, start) == dict.fromkeys(indexes, ok.grant_id)
    assert len(ledger(ctx)) == start + 3
    assert {s: g for s, g in access_rows(ctx).items() if s >= start} == logged_reads(ctx, start)
    assert (reads_counted(ctx, ok.grant_id), reads_counted(ctx, gone.grant_id),
            reads_counted(ctx, other.grant_id)) == (3, 0, 0)


def only_the_third_failed(ctx: VaultContext, g: Any, outcomes: list[Any], start: int) -> None:
    """Of five reads the third raised, and left nothing behind: the other four were
    released, logged and counted, and took the ledger indexes one after another."""
    assert isinstance(outcomes[2], RuntimeError)
    releases = [o for i, o in enumerate(outcomes) if i != 2]
    assert all(is_release(r, g) for r in releases)
    assert [r.ledger_index for r in releases] == list(range(start, start + 4))
    assert len(ledger(ctx)) == start + 4
    assert len(access_rows(ctx)) == 4
    assert reads_counted(ctx, g.grant_id) == 4


def test_a_read_failing_after_its_writes_is_undone_alone(
    ctx: VaultContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the safe path: the third read fails after its count and ledger entry were
    written; its savepoint takes them back and the others commit."""
    g = granted(ctx)
    start = len(ledger(ctx))
    real = access_module._append_reads
    calls = itertools.count()

    def fails_third(work: Work, allowed: Any) -> list[int]:
        seqs = real(work, allowed)
        if next(calls) == 2:
            raise RuntimeError("unexpected failure")
        return seqs

    monkeypatch.setattr("vault.services.access._append_reads", fails_third)
    outcomes, stats = one_batch(ctx, [g.ask] * 5, batched=False)

    assert stats.batches == 1
    only_the_third_failed(ctx, g, outcomes, start)


def test_a_read_failing_in_its_checks_is_refused_alone(
    ctx: VaultContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a batch: the third read fails while it is checked, before anything is
    written; the batch's writes go on without it."""
    g = granted(ctx)
    start = len(ledger(ctx))
    calls = itertools.count()

    def fails_third(*args: Any) -> bool:
        if next(calls) == 2:
            raise RuntimeError("unexpected failure")
        return exhausted_after(*args)

    monkeypatch.setattr("vault.services.access.exhausted_after", fails_third)
    outcomes, stats = one_batch(ctx, [g.ask] * 5)

    assert stats == BatchStats(batches=1, reads=5, largest=5)
    only_the_third_failed(ctx, g, outcomes, start)


def test_a_database_error_in_one_read_is_contained(
    ctx: VaultContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL a failed statement aborts the whole transaction until it is rolled
    back to a savepoint; the reads after it must still run and commit."""
    g = granted(ctx)
    start = len(ledger(ctx))
    calls = itertools.count()

    def bad_sql(ctx_: VaultContext, work: Work, **kw: str) -> Release:
        release = read_in(ctx_, work, **kw)
        if next(calls) == 1:
            work.session.connection().exec_driver_sql("SELECT * FROM no_such_table")
        return release

    monkeypatch.setattr("vault.services.group_commit.read_in", bad_sql)
    outcomes, stats = one_batch(ctx, [g.ask] * 4, batched=False)

    assert isinstance(outcomes[1], DBAPIError)
    releases = [o for i, o in enumerate(outcomes) if i != 1]
    assert all(is_release(r, g) for r in releases)
    assert [r.ledger_index for r in releases] == list(range(start, start + 3))  # type: ignore[union-attr]
    assert stats == BatchStats(batches=1, reads=4, largest=4)
    assert reads_counted(ctx, g.grant_id) == 3


def test_a_read_that_breaks_the_transaction_is_dropped_and_the_rest_rerun(
    ctx: VaultContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    g = granted(ctx)
    with read_only(ctx.engine).begin() as conn:
        taken = conn.execute(select(GrantEventRow.seq)).scalars().first()  # type: ignore[call-overload]
    assert taken is not None
    start = len(ledger(ctx))
    calls = itertools.count()

    def clashing(ctx_: VaultContext, work: Work, **kw: str) -> Release:
        release = read_in(ctx_, work, **kw)
        if next(calls) == 2:
            # An ORM write that cannot flush (a key already taken). SQLAlchemy then rolls
            # back the whole transaction, which no savepoint can contain.
            work.session.add(GrantEventRow(seq=taken, grant_id=kw["grant_id"],
                                           kind="grant.approved", at=work.now))
        return release

    monkeypatch.setattr("vault.services.group_commit.read_in", clashing)
    outcomes, stats = one_batch(ctx, [g.ask] * 5, batched=False)

    assert isinstance(outcomes[2], IntegrityError)
    releases = [o for i, o in enumerate(outcomes) if i != 2]
    assert all(is_release(r, g) for r in releases)
    # Answers come from the transaction that committed (the rerun), none from the first.
    assert [r.ledger_index for r in releases] == list(range(start, start + 4))  # type: ignore[union-attr]
    assert stats == BatchStats(batches=1, reads=4, largest=4)
    assert logged_reads(ctx, start) == dict.fromkeys(range(start, start + 4), g.grant_id)
    assert reads_counted(ctx, g.grant_id) == 4


def test_a_failed_commit_fails_every_read_of_the_batch(ctx: VaultContext) -> None:
    g = granted(ctx)
    before = ledger(ctx)

    def refuse(_conn: object) -> None:
        raise RuntimeError("the commit failed")

    event.listen(ctx.engine, "commit", refuse)
    try:
        outcomes, stats = one_batch(ctx, [g.ask] * 4)
    finally:
        event.remove(ctx.engine, "commit", refuse)
    assert all(isinstance(o, RuntimeError) and str(o) == "the commit failed"
               for o in outcomes)
    assert stats.batches == 0
    assert ledger(ctx) == before and not access_rows(ctx)
    assert reads_counted(ctx, g.grant_id) == 0
    # Nothing stuck: the next batch commits.
    outcomes, _ = one_batch(ctx, [g.ask] * 2)
    assert all(is_release(o, g) for o in outcomes)


def test_after_commit_failing_is_reported_and_the_reads_stay_logged(ctx: VaultContext) -> None:
    """As with `read_under_grant`: logged but not released, which is the safe way to
    be wrong."""
    g = granted(ctx)
    start = len(ledger(ctx))

    def nudge() -> None:
        raise RuntimeError("nudge failed")

    outcomes, _ = one_batch(replace(ctx, after_commit=nudge), [g.ask] * 3)
    assert all(isinstance(o, RuntimeError) for o in outcomes)
    assert len(logged_reads(ctx, start)) == 3


# -- the batched path ------------------------------------------------------------------------


def test_reads_of_one_grant_in_a_batch_see_each_others_count(ctx: VaultContext) -> None:
    """Used up mid-batch: later reads of it are refused; its `grant.exhausted` entry
    follows its last read at once, and reads of other grants come after, in batch order."""
    few = granted(ctx, Access("periodic", max_reads=3))
    ok = granted(ctx)
    start = len(ledger(ctx))
    outcomes, stats = one_batch(ctx, [few.ask, ok.ask, few.ask, few.ask, ok.ask, few.ask])

    assert stats == BatchStats(batches=1, reads=6, largest=6)
    assert [is_release(o, g) for o, g in zip(outcomes, [few, ok, few, few, ok], strict=False)
            ] == [True] * 5
    last = outcomes[5]
    assert isinstance(last, AccessDenied) and last.reason == "exhausted"
    kinds = [(e["kind"], e["body"]["grant_id"]) for e in ledger(ctx)[start:]]
    assert kinds == [("data.accessed", few.grant_id), ("data.accessed", ok.grant_id),
                     ("data.accessed", few.grant_id), ("data.accessed", few.grant_id),
                     ("grant.exhausted", few.grant_id), ("data.accessed", ok.grant_id)]
    assert [o.ledger_index for o in outcomes[:5]] == [  # type: ignore[union-attr]
        start, start + 1, start + 2, start + 3, start + 5]
    assert (reads_counted(ctx, few.grant_id), reads_counted(ctx, ok.grant_id)) == (3, 2)
    assert {s: g for s, g in access_rows(ctx).items() if s >= start} == logged_reads(ctx, start)
    with read_only(ctx.engine).begin() as conn:
        state = conn.execute(select(GrantRow.state).where(  # type: ignore[call-overload]
            GrantRow.id == few.grant_id)).scalar_one()
    assert state == "exhausted"


def test_min_interval_holds_within_a_batch(ctx: VaultContext, clock: Clock) -> None:
    g = granted(ctx, Access("periodic", min_interval="PT1H"))
    outcomes, _ = one_batch(ctx, [g.ask] * 3)
    assert is_release(outcomes[0], g)
    assert all(isinstance(o, AccessDenied) and o.reason == "too_soon" for o in outcomes[1:])
    assert reads_counted(ctx, g.grant_id) == 1
    clock.advance(hours=1)
    outcomes, _ = one_batch(ctx, [g.ask] * 2)
    assert is_release(outcomes[0], g)
    assert isinstance(outcomes[1], AccessDenied) and outcomes[1].reason == "too_soon"
    assert reads_counted(ctx, g.grant_id) == 2


def test_a_revoked_token_family_is_refused_alone(ctx: VaultContext) -> None:
    g = granted(ctx)
    start = len(ledger(ctx))
    reader = GroupCommitReader(ctx, max_batch=3, max_wait=60)
    with reader:
        futures = [reader.submit(service_id=g.world.service_id, grant_id=g.grant_id,
                                 token_family=family)
                   for family in (None, "fam_nosuch", None)]
        first, revoked, second = (outcome(f) for f in futures)
    assert isinstance(revoked, TokensRevoked)
    assert is_release(first, g) and is_release(second, g)
    assert len(logged_reads(ctx, start)) == 2 == reads_counted(ctx, g.grant_id)


def test_failed_batched_writes_fall_back_to_one_read_at_a_time(
    ctx: VaultContext, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A database error in the bulk writes (on PostgreSQL it aborts the transaction):
    the batch is rolled back and rerun on the safe path, with the same answers."""
    g, few = granted(ctx), granted(ctx, Access("periodic", max_reads=2))
    gone = granted(ctx)
    revoke(ctx, gone)
    start = len(ledger(ctx))
    real = access_module._append_reads
    calls = itertools.count()

    def broken(work: Work, allowed: Any) -> list[int]:
        seqs = real(work, allowed)
        if next(calls) == 0:
            work.session.connection().exec_driver_sql("SELECT * FROM no_such_table")
        return seqs

    monkeypatch.setattr("vault.services.access._append_reads", broken)
    with caplog.at_level("WARNING", logger="vault.services.group_commit"):
        outcomes, stats = one_batch(ctx, [g.ask, few.ask, gone.ask, few.ask, few.ask, g.ask])

    assert "running them one by one" in caplog.text
    assert stats == BatchStats(batches=1, reads=6, largest=6)
    assert [is_release(o, x) for o, x in zip(outcomes, [g, few], strict=False)] == [True] * 2
    assert isinstance(outcomes[2], AccessDenied) and outcomes[2].reason == "revoked"
    assert is_release(outcomes[3], few)
    assert isinstance(outcomes[4], AccessDenied) and outcomes[4].reason == "exhausted"
    assert is_release(outcomes[5], g)
    released = [o for o in outcomes if isinstance(o, Release)]
    # Only the rerun's writes are left: no gap, nothing twice.
    kinds = [(e["kind"], e["body"]["grant_id"]) for e in ledger(ctx)[start:]]
    assert kinds == [("data.accessed", g.grant_id), ("data.accessed", few.grant_id),
                     ("data.accessed", few.grant_id), ("grant.exhausted", few.grant_id),
                     ("data.accessed", g.grant_id)]
    assert [r.ledger_index for r in released] == [start, start + 1, start + 2, start + 4]
    assert (reads_counted(ctx, g.grant_id), reads_counted(ctx, few.grant_id)) == (2, 2)
    assert {s: x for s, x in access_rows(ctx).items() if s >= start} == logged_reads(ctx, start)


# -- ordering -----------------------------------------------------------------------------


def test_no_read_made_after_a_revocation_returns_data(ctx: VaultContext) -> None:
    target, bystander = granted(ctx), granted(ctx)
    stop = threading.Event()
    revoked_at: list[float] = []
    log: list[tuple[Granted, float, Release | Exception]] = []
    lock = threading.Lock()

    def caller(g: Granted, reader: GroupCommitReader) -> None:
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                o: Release | Exception = reader.read(service_id=g.world.service_id,
                                                     grant_id=g.grant_id)
            except Exception as exc:
                o = exc
            with lock:
                log.append((g, t0, o))

    def successes(g: Granted) -> int:
        with lock:
            return sum(1 for x, _, o in log if x is g and isinstance(o, Release))

    def wait_for(condition: Any) -> None:
        deadline = time.monotonic() + 60
        while not condition():
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.005)

    with GroupCommitReader(ctx) as reader:
        pool = [threading.Thread(target=caller, args=(g, reader))
                for g in [target] * 6 + [bystander] * 2]
        for th in pool:
            th.start()
        wait_for(lambda: successes(target) >= 20)
        revoke(ctx, target)  # a real passkey-signed revocation, racing the reads
        revoked_at.append(time.monotonic())
        after = successes(bystander)
        wait_for(lambda: successes(bystander) >= after + 20)
        stop.set()
        for th in pool:
            th.join()

    t_revoked = revoked_at[0]
    late = [o for g, t0, o in log if g is target and t0 > t_revoked]
    assert late, "no read started after the revocation"
    assert all(isinstance(o, AccessDenied) and o.reason == "revoked" for o in late)
    assert all(is_release(o, bystander) for g, _, o in log if g is bystander)
    # In the ledger too: every read of the grant comes before its revocation.
    entries = ledger(ctx)
    revoked_seq = next(i for i, e in enumerate(entries) if e["kind"] == "grant.revoked")
    reads = [i for i, e in enumerate(entries) if e["kind"] == "data.accessed"
             and e["body"]["grant_id"] == target.grant_id]
    assert reads and max(reads) < revoked_seq
    assert sorted(reads) == sorted(o.ledger_index for g, _, o in log
                                   if g is target and isinstance(o, Release))


def test_a_batch_and_a_revocation_never_deadlock(ctx: VaultContext) -> None:
    """A revocation locks its grant, then appends. A batch that appended for another
    grant first, and only then waited for this one, would hold the ledger head that the
    revocation waits for: a deadlock on PostgreSQL. The batch locks its grants first."""
    target, bystander = granted(ctx), granted(ctx)
    locked, go = threading.Event(), threading.Event()
    errors: list[Exception] = []

    class Slow:
        """The passkey check, called with the grant locked and before the append."""

        def verify(self, *args: Any, **kw: Any) -> Any:
            locked.set()
            go.wait(60)
            return ctx.approvals.verify(*args, **kw)

    def revoking() -> None:
        try:
            revoke(replace(ctx, approvals=Slow()), target)
        except Exception as exc:
            errors.append(exc)

    revoker = threading.Thread(target=revoking)
    revoker.start()
    assert locked.wait(60)
    with GroupCommitReader(ctx, max_batch=2, max_wait=60) as reader:
        futures = [reader.submit(service_id=s, grant_id=gid)
                   for s, gid in (bystander.ask, target.ask)]
        time.sleep(0.3)  # the batch now waits for the target grant (or SQLite's lock)
        go.set()
        revoker.join()
        first, second = (outcome(f) for f in futures)
    assert errors == []
    assert is_release(first, bystander)
    assert isinstance(second, AccessDenied) and second.reason == "revoked"


# -- lifecycle and backpressure -------------------------------------------------------------


def test_stop_drains_queued_reads_then_refuses_new_ones(ctx: VaultContext) -> None:
    g = granted(ctx)
    reader = GroupCommitReader(ctx, max_batch=100, max_wait=60)  # waits for company
    with pytest.raises(ReaderStopped):
        reader.read(service_id=g.world.service_id, grant_id=g.grant_id)  # not started
    reader.start()
    with pytest.raises(RuntimeError):
        reader.start()
    futures = [reader.submit(service_id=g.world.service_id, grant_id=g.grant_id)
               for _ in range(3)]
    t0 = time.monotonic()
    reader.stop()  # drain: the queued reads run now, without waiting out max_wait
    assert time.monotonic() - t0 < 30
    assert all(is_release(outcome(f), g) for f in futures)
    assert not reader.running
    with pytest.raises(ReaderStopped):
        reader.read(service_id=g.world.service_id, grant_id=g.grant_id)
    reader.stop()  # twice is fine


def test_stop_without_draining_fails_queued_reads_unrun(ctx: VaultContext) -> None:
    g = granted(ctx)
    start = len(ledger(ctx))
    reader = GroupCommitReader(ctx, max_batch=100, max_wait=60)
    reader.start()
    futures = [reader.submit(service_id=g.world.service_id, grant_id=g.grant_id)
               for _ in range(3)]
    reader.stop(drain=False)
    assert all(isinstance(outcome(f), ReaderStopped) for f in futures)
    assert len(ledger(ctx)) == start
    assert reads_counted(ctx, g.grant_id) == 0


def test_a_full_queue_refuses_at_once(ctx: VaultContext) -> None:
    g = granted(ctx)
    with GroupCommitReader(ctx, max_batch=100, max_wait=60, max_pending=2) as reader:
        queued = [reader.submit(service_id=g.world.service_id, grant_id=g.grant_id)
                  for _ in range(2)]
        with pytest.raises(Overloaded):
            reader.read(service_id=g.world.service_id, grant_id=g.grant_id)
    assert all(is_release(outcome(f), g) for f in queued)  # drained on stop
    assert reads_counted(ctx, g.grant_id) == 2


def test_settings_are_checked(ctx: VaultContext) -> None:
    for bad in ({"max_batch": 0}, {"max_pending": 0}, {"max_wait": -1.0}):
        with pytest.raises(ValueError):
            GroupCommitReader(ctx, **bad)


# -- asyncio --------------------------------------------------------------------------------


def test_async_reads_do_not_block_the_event_loop(ctx: VaultContext) -> None:
    g = granted(ctx)
    gone = granted(ctx)
    revoke(ctx, gone)

    async def main(reader: GroupCommitReader) -> list[Release | BaseException]:
        tasks = [asyncio.create_task(reader.aread(service_id=s, grant_id=gid))
                 for s, gid in [g.ask, gone.ask, g.ask]]
        # The writer waits for a fourth read; meanwhile the loop must keep running.
        await asyncio.sleep(0.05)
        assert not any(t.done() for t in tasks)
        tasks.append(asyncio.create_task(reader.aread(service_id=g.world.service_id,
                                                      grant_id=g.grant_id)))
        return await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 60)

    with GroupCommitReader(ctx, max_batch=4, max_wait=60) as reader:
        first, refused, *rest = asyncio.run(main(reader))
    assert isinstance(refused, AccessDenied) and refused.reason == "revoked"
    assert all(is_release(o, g) for o in [first, *rest])
    assert reads_counted(ctx, g.grant_id) == 3


def test_a_cancelled_async_read_is_never_made(ctx: VaultContext) -> None:
    g = granted(ctx)
    start = len(ledger(ctx))

    async def main(reader: GroupCommitReader) -> tuple[Release, Release]:
        def read() -> asyncio.Task[Release]:
            return asyncio.create_task(reader.aread(service_id=g.world.service_id,
                                                    grant_id=g.grant_id))

        abandoned = read()
        await asyncio.sleep(0.05)  # queued; the writer waits for a batch of 3
        abandoned.cancel()
        with pytest.raises(asyncio.CancelledError):
            await abandoned
        return await asyncio.wait_for(asyncio.gather(read(), read()), 60)

    with GroupCommitReader(ctx, max_batch=3, max_wait=60) as reader:
        results = asyncio.run(main(reader))
        stats = reader.stats()
    assert all(is_release(o, g) for o in results)
    assert stats == BatchStats(batches=1, reads=2, largest=2)
    assert len(ledger(ctx)) == start + 2
    assert reads_counted(ctx, g.grant_id) == 2
