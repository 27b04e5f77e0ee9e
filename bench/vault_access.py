"""Reading under a grant and erasing a citizen, in-process on SQLite.

Measured: `read_under_grant` (lock + live grant check + decrypt + derived answer +
`data.accessed` entry, one transaction and one fsync per read: `synchronous=FULL`),
goal >= 2,000 reads/s; the same reads group-committed, 10 and 50 to a transaction,
to show what batching ledger writes gives; 32 threads reading at once, each read in
its own transaction and then through a `GroupCommitReader` (one writer thread groups
whatever reads are waiting into one transaction); erasing a citizen with 1,000 records,
goal <= 200 ms.

Floors: bare sqlite3 commits of one small row with the same pragmas (the fsync every
read pays), measured in the same run; for erasure, none (an absolute goal).
"""

from __future__ import annotations

import sqlite3
import statistics
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from pathlib import Path

from bench.report import Goal, Result, best, spread
from vault.crypto import load_keyring
from vault.domain.grants import Access
from vault.services import access, citizens, grants, records, registry
from vault.services.access import read_in
from vault.services.context import VaultContext, unit_of_work
from vault.services.group_commit import GroupCommitReader
from vault.storage.database import make_engine
from vault.storage.schema import migrate
from wallet.passkeys import (
    PasskeyApprovalVerifier,
    RelyingParty,
    register_passkey,
    registration_options,
    user_handle,
)
from wallet.passkeys.software import SoftAuthenticator

__all__ = ["bench_erasure", "bench_group_commit", "bench_reads"]

_ORIGIN = "http://localhost:8000"
_JWK = {"kty": "EC", "crv": "P-256", "x": "axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY",
        "y": "T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU"}


def _vault(workdir: Path, name: str) -> VaultContext:
    db = workdir / f"{name}.db"
    for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        p.unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{db}")
    migrate(engine)
    rp = RelyingParty.from_public_url(_ORIGIN)
    return VaultContext(engine=engine, approvals=PasskeyApprovalVerifier(rp),
                        keyring=load_keyring(workdir / f"{name}-keys", master_key=None,
                                             production=False))


def _approved_grant(ctx: VaultContext) -> tuple[str, str]:
    """A citizen with data, a passkey, and an approved grant: (service id, grant id)."""
    service = registry.register_service(ctx, registry.Registration(
        name="Blue Badge team", description="Blue Badges", purposes=["eligibility_assessment"],
        categories=["address.home"], derived=["age_over_65"], jwk=_JWK,
        redirect_uris=["https://badges.example.gov/cb"],
        privacy_notice_url="https://badges.example.gov/privacy"))
    c = citizens.enrol_citizen(ctx)
    records.write_record(ctx, c.id, "identity.date_of_birth", "1950-12-10")
    records.write_record(ctx, c.id, "address.home", {
        "lines": ["12 St James's Square"], "town": "London", "postcode": "SW1Y 4JH",
        "local_authority": "Westminster"})
    device = SoftAuthenticator(origin=_ORIGIN)
    rp = RelyingParty.from_public_url(_ORIGIN)
    options, challenge = registration_options(rp, user_id=user_handle(c.id), user_name="c",
                                              exclude=[])
    with unit_of_work(ctx) as work:
        key = records.data_key(ctx, citizens.get_citizen(work.session, c.id))
        register_passkey(work, rp, citizen_id=c.id, credential=device.create(options),
                         expected_challenge=challenge, label="bench", data_key=key)
    g = grants.request_grant(ctx, service_id=service, citizen_id=c.id,
                             purpose="eligibility_assessment", categories=["address.home"],
                             derived=["age_over_65"], access=Access("periodic",
                                                                    max_reads=1_000_000),
                             duration=timedelta(days=30), data_life="P1D",
                             justification="benchmark")
    grants.approve_grant(ctx, g.id, citizen_id=c.id, proof=device.proof(challenge=g.terms_hash))
    return service, g.id


def _bare_commits(workdir: Path, n: int) -> float:
    db = workdir / "bare-commits.db"
    db.unlink(missing_ok=True)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, data BLOB)")
    row = b"x" * 300
    t0 = time.perf_counter()
    for i in range(n):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t VALUES (?, ?)", (i, row))
        conn.execute("COMMIT")
    rate = n / (time.perf_counter() - t0)
    conn.close()
    return rate


def _read_rate(ctx: VaultContext, service: str, gid: str, n: int, batch: int) -> float:
    t0 = time.perf_counter()
    if batch == 1:
        for _ in range(n):
            access.read_under_grant(ctx, service_id=service, grant_id=gid)
    else:
        for _ in range(n // batch):
            with unit_of_work(ctx) as work:
                for _ in range(batch):
                    read_in(ctx, work, service_id=service, grant_id=gid)
    return n / (time.perf_counter() - t0)


def bench_reads(workdir: Path, *, n: int, repeats: int) -> list[Result]:
    ctx = _vault(workdir, "reads")
    try:
        service, gid = _approved_grant(ctx)
        _read_rate(ctx, service, gid, min(n, 200), 1)  # warm up
        out: list[Result] = []
        floors = [_bare_commits(workdir, n) for _ in range(repeats)]
        floor = best(floors, higher_is_better=True)
        for batch in (1, 10, 50):
            rates = [_read_rate(ctx, service, gid, n, batch) for _ in range(repeats)]
            name = ("read under a grant, 1 per transaction (SQLite, sync=FULL)" if batch == 1
                    else f"  same, group commit of {batch} reads per transaction")
            out.append(Result(
                name, "/s", best(rates, higher_is_better=True), floor,
                "bare sqlite3 commits", Goal(">=", 2000.0), f"best of {repeats} x {n:,}",
                spread(rates),
                ["check + decrypt + derived answer + data.accessed entry per read"]
                if batch == 1 else ["the ledger entries of a batch share one commit"]))
        return out
    finally:
        ctx.engine.dispose()


def _threaded_rate(read: Callable[[], object], n: int, threads: int) -> float:
    """Reads/s of `threads` threads making n reads between them, all started together."""
    each = n // threads
    gate = threading.Barrier(threads + 1)

    def worker() -> None:
        gate.wait()
        for _ in range(each):
            read()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    gate.wait()
    t0 = time.perf_counter()
    for t in pool:
        t.join()
    return each * threads / (time.perf_counter() - t0)


def bench_group_commit(workdir: Path, *, n: int, repeats: int, threads: int = 32,
                       max_wait: float = 0.0) -> list[Result]:
    """Concurrent reads: `threads` threads, one read per transaction, then the same
    threads through a GroupCommitReader (reads share transactions and one fsync)."""
    ctx = _vault(workdir, "group")
    try:
        service, gid = _approved_grant(ctx)
        _read_rate(ctx, service, gid, min(n, 200), 1)  # warm up
        floor = best([_bare_commits(workdir, n) for _ in range(repeats)],
                     higher_is_better=True)

        def alone() -> object:
            return access.read_under_grant(ctx, service_id=service, grant_id=gid)

        single = [_threaded_rate(alone, n, threads) for _ in range(repeats)]
        grouped: list[float] = []
        sizes: list[float] = []
        for _ in range(repeats):
            with GroupCommitReader(ctx, max_wait=max_wait) as reader:
                grouped.append(_threaded_rate(partial(reader.read, service_id=service,
                                                      grant_id=gid), n, threads))
                sizes.append(reader.stats().mean)
        stat = f"best of {repeats} x {n // threads * threads:,}"
        return [
            Result(f"read under a grant, {threads} threads, 1 per transaction (SQLite)", "/s",
                   best(single, higher_is_better=True), floor, "bare sqlite3 commits",
                   Goal(">=", 2000.0), stat, spread(single),
                   ["each thread waits for the write lock, then its own fsync"]),
            Result(f"  same {threads} threads, group commit (GroupCommitReader)", "/s",
                   best(grouped, higher_is_better=True), floor, "bare sqlite3 commits",
                   Goal(">=", 2000.0), stat, spread(grouped),
                   [f"one writer thread; {statistics.mean(sizes):.1f} reads per commit "
                    f"on average (max_wait {max_wait * 1000:g} ms)"]),
        ]
    finally:
        ctx.engine.dispose()


def bench_erasure(workdir: Path, *, records_per_citizen: int, repeats: int) -> list[Result]:
    ctx = _vault(workdir, "erase")
    try:
        times: list[float] = []
        for _ in range(repeats):
            c = citizens.enrol_citizen(ctx)
            for i in range(records_per_citizen):
                records.write_record(ctx, c.id, "contact.email", f"person{i}@example.org")
            t0 = time.perf_counter()
            citizens.erase_citizen(ctx, c.id)
            times.append((time.perf_counter() - t0) * 1000)
        return [Result(f"erase a citizen with {records_per_citizen:,} records (SQLite)", "ms",
                       best(times, higher_is_better=False), None, "", Goal("<=", 200.0),
                       f"best of {repeats}", spread(times),
                       ["ends live grants, one ledger entry, cascade delete, "
                        "secure_delete + WAL truncate"])]
    finally:
        ctx.engine.dispose()
