"""What counting the transparency figures from the ledger costs, against appending.

Issue 13 §4: "transparency counts ... cost <= 5% of the append rate". Measured on one
fresh, migrated vault database (SQLite file, WAL, synchronous=FULL):

- appending: `SqlLedger.append_many` in transactions of 100 entries, the vault's own
  store, sealed (v2) as the vault writes its entries;
- counting: `count_ledger(..., to_head=True)`, the background counter's whole work
  (read a stretch, decode each entry's public part, look up the grants it names, write
  the atoms, the grants' facts and the cursor), over the same entries.

The workload is the vault's: grants asked for and approved (2% of entries), the rest
reads under them, across services, categories and a month boundary. The cost is
100 x seconds counting / seconds appending, in percent. Best of the repeats (the least
disturbed by other work).

A second row compares counting with what the vault really does to append those
entries: reads under a grant (check, decrypt, derive, `data.accessed`), group-committed
50 a transaction, then counted: the counter's share of the vault's work per entry.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.report import Goal, Result, best, spread
from bench.workload import fresh_db
from ledger.entry import SEALED_VERSION
from ledger.sqlstore import SqlLedger
from ledger.store import EntryItem
from vault.crypto import load_keyring
from vault.services.context import VaultContext
from vault.services.transparency_counts import count_ledger
from vault.storage.database import make_engine
from vault.storage.schema import migrate
from wallet.passkeys import PasskeyApprovalVerifier, RelyingParty

__all__ = ["bench_count_vs_reads", "bench_transparency_count", "make_vault_items"]

_SERVICES = [f"svc_{i:02d}" for i in range(20)]
_CATEGORIES = ["identity.name", "address.home", "health.gp_practice", "tax.council_band",
               "benefits.blue_badge"]
_PURPOSES = ["eligibility_assessment", "service_provision", "identity_verification"]


def make_vault_items(n: int, *, seed: int = 13) -> list[EntryItem]:
    """`n` entries as the vault writes them: per 100, one grant asked for and one
    approved, 98 reads under the live grants."""
    rng = random.Random(seed)
    items: list[EntryItem] = []
    live: list[tuple[str, str]] = []
    for i in range(n):
        subject = f"sub_{rng.randrange(10**9)}"
        if i % 100 == 0 or not live:
            gid, service = f"gr_{i}", rng.choice(_SERVICES)
            items.append(("grant.requested", {
                "grant_id": gid, "service_id": service, "subject": subject,
                "terms": {"purpose": rng.choice(_PURPOSES), "grant_id": gid},
                "terms_hash": "x" * 43}))
            live.append((gid, service))
        elif i % 100 == 1:
            gid, service = live[-1]
            items.append(("grant.approved", {"grant_id": gid, "service_id": service,
                                             "subject": subject}))
        else:
            gid, service = rng.choice(live)
            items.append(("data.accessed", {
                "grant_id": gid, "service_id": service, "subject": subject,
                "categories": sorted(rng.sample(_CATEGORIES, rng.randint(1, 3))),
                "derived": [], "commitment": "c" * 43}))
    return items


def _ctx(path: Path, keys: Path) -> VaultContext:
    engine = make_engine(f"sqlite:///{fresh_db(path)}")
    migrate(engine)
    return VaultContext(engine=engine,
                        keyring=load_keyring(keys, master_key=None, production=False),
                        approvals=PasskeyApprovalVerifier(
                            RelyingParty.from_public_url("http://localhost:8000")))


def _run(workdir: Path, items: list[EntryItem], batch: int) -> tuple[float, float]:
    """(seconds appending, seconds counting) the same entries on a fresh vault."""
    ctx = _ctx(workdir / "transparency-count.db", workdir / "transparency-keys")
    # Half the entries in October, half in November: two months of atoms.
    months = [datetime(2026, 10, 20, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC)]
    try:
        t0 = time.perf_counter()
        for i in range(0, len(items), batch):
            clock = (lambda: months[0]) if i < len(items) // 2 else (lambda: months[1])
            with ctx.engine.begin() as conn:
                SqlLedger(conn, clock=clock, version=SEALED_VERSION).append_many(
                    items[i:i + batch])
        appending = time.perf_counter() - t0
        t0 = time.perf_counter()
        counted = count_ledger(ctx, to_head=True)
        counting = time.perf_counter() - t0
    finally:
        ctx.engine.dispose()
    if counted != len(items):
        raise RuntimeError(f"counted {counted} of {len(items)} entries")
    return appending, counting


def bench_transparency_count(workdir: Path, *, n: int, repeats: int,
                             batch: int = 100) -> Result:
    items = make_vault_items(n)
    costs: list[float] = []
    rates: list[tuple[float, float]] = []
    for _ in range(repeats):
        appending, counting = _run(workdir, items, batch)
        costs.append(100 * counting / appending)
        rates.append((n / appending, n / counting))
    append_rate = max(r[0] for r in rates)
    count_rate = max(r[1] for r in rates)
    notes: list[str] = [f"appends {append_rate:,.0f}/s ({batch}/txn), counted "
                        f"{count_rate:,.0f}/s (best of each)"]
    return Result(
        name="transparency counting, share of append time", unit="%",
        measured=best(costs, higher_is_better=False), floor=None, floor_what="",
        goal=Goal("<=", 5.0), stat=f"best of {repeats} x {n:,}", spread=spread(costs),
        notes=notes)


def bench_count_vs_reads(workdir: Path, *, n: int, repeats: int, batch: int = 50) -> Result:
    """Counting the entries of `n` reads under a grant, against making those reads."""
    from bench.vault_access import _approved_grant, _read_rate, _vault

    costs: list[float] = []
    for i in range(repeats):
        ctx = _vault(workdir, f"count-reads-{i}")
        try:
            service, gid = _approved_grant(ctx)
            count_ledger(ctx, to_head=True)  # the set-up's entries: not measured
            reading = n / _read_rate(ctx, service, gid, n, batch)
            t0 = time.perf_counter()
            count_ledger(ctx, to_head=True)
            costs.append(100 * (time.perf_counter() - t0) / reading)
        finally:
            ctx.engine.dispose()
    return Result(
        name=f"  same, share of reads under a grant ({batch}/txn)", unit="%",
        measured=best(costs, higher_is_better=False), floor=None, floor_what="",
        goal=Goal("<=", 5.0), stat=f"best of {repeats} x {n:,}", spread=spread(costs),
        notes=["counting time / time of the reads that appended the entries"])


def main(argv: list[str] | None = None) -> Any:
    """`python -m bench.transparency_count [N] [REPEATS]`: print the figures."""
    import sys
    import tempfile

    args = sys.argv[1:] if argv is None else argv
    n = int(args[0]) if args else 50_000
    repeats = int(args[1]) if len(args) > 1 else 3
    with tempfile.TemporaryDirectory() as tmp:
        results = [bench_transparency_count(Path(tmp), n=n, repeats=repeats),
                   bench_count_vs_reads(Path(tmp), n=min(n, 5_000), repeats=repeats)]
    for r in results:
        print(f"{r.name}: {r.measured:.2f} % (goal {r.goal.op} {r.goal.value:g} %); "
              f"{'; '.join(r.notes)}; {r.stat}, spread {r.spread or 0:.0%}")
    return results


if __name__ == "__main__":
    main()
