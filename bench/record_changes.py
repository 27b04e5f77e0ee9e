"""`record.changed` fan-out: one change to a category that 10,000 live grants read.

Measured, on SQLite and on a throwaway PostgreSQL cluster (when one can be made), in
process, as the app runs it: a citizen whose 10,000 approved grants (of 100 services,
each with a webhook URL) read `benefits.attendance_allowance`; the citizen's own write
of that category (`records.write_record`) with a `ChangeTeller` thread running, nudged
after the write's commit as the app nudges it.
- the write's own time (validate, seal, one transaction with its ledger entry and one
  pending-change row), goal <= 100 ms; floor: the same write by a citizen with no grants;
- the time from the write's call until the teller has committed all 10,000
  `record.changed` messages to the webhook outbox, goal <= 1 s; floor: inserting the
  same 10,000 message rows with one bare executemany in one transaction.
The note gives what fanning out inside the write's own transaction would have cost it
(the write plus the teller's transaction), which is why the vault does not.

The grants are inserted directly (setup, not measured): approving 10,000 grants with a
passkey each would take minutes and measure nothing of the fan-out.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import delete, func, insert, select
from sqlmodel import col

from bench.report import Goal, Result, print_table, spread
from bench.servers import throwaway_postgres
from bench.workload import progress
from vault.crypto import load_keyring
from vault.domain.terms import Access, GrantTerms, format_utc
from vault.services import citizens, records, registry
from vault.services.changes import ChangeTeller, tell_pending
from vault.services.changes import _queue as queue_messages
from vault.services.context import VaultContext, new_id, unit_of_work
from vault.storage.database import make_engine
from vault.storage.schema import migrate
from vault.storage.tables import GrantRow, WebhookMessageRow
from wallet.passkeys import PasskeyApprovalVerifier, RelyingParty

__all__ = ["FULL_CHANGES", "QUICK_CHANGES", "ChangeScale", "bench_record_changes", "main"]

_CATEGORY = "benefits.attendance_allowance"
_VALUE = {"award": "higher", "since": "2026-01-05", "awarded_by": "Benefits agency"}
_JWK = {"kty": "EC", "crv": "P-256", "x": "axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY",
        "y": "T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU"}


@dataclass(frozen=True, slots=True)
class ChangeScale:
    grants: int  # live grants reading the changed category
    services: int  # the services holding them
    repeats: int
    postgres: bool = True


FULL_CHANGES = ChangeScale(grants=10_000, services=100, repeats=5)
QUICK_CHANGES = ChangeScale(grants=500, services=10, repeats=2, postgres=False)

_MESSAGES = WebhookMessageRow.__table__  # type: ignore[attr-defined]
_GRANTS = GrantRow.__table__  # type: ignore[attr-defined]


def _vault(url: str, keys: Path) -> VaultContext:
    engine = make_engine(url)
    migrate(engine)
    return VaultContext(engine=engine,
                        keyring=load_keyring(keys, master_key=None, production=False),
                        approvals=PasskeyApprovalVerifier(
                            RelyingParty.from_public_url("http://localhost:8000")))


def _grant_rows(ctx: VaultContext, scale: ChangeScale, citizen_id: str) -> None:
    """`scale.grants` approved grants of the citizen over the category, spread over
    `scale.services` services that have webhook URLs."""
    services = [registry.register_service(ctx, registry.Registration(
        name=f"Council tax team {i}", description="Council tax reductions",
        purposes=["eligibility_assessment"], categories=[_CATEGORY],
        derived=["receives:attendance_allowance"], jwk=_JWK,
        redirect_uris=["https://ct.example.gov/cb"],
        privacy_notice_url="https://ct.example.gov/privacy",
        webhook_url=f"https://ct{i}.example.gov/hooks")) for i in range(scale.services)]
    now = ctx.clock()
    rows: list[dict[str, Any]] = []
    for i in range(scale.grants):
        gid = new_id("gr")
        terms = GrantTerms(
            grant_id=gid, service_id=services[i % len(services)],
            purpose="eligibility_assessment", categories=(_CATEGORY,),
            derived=("receives:attendance_allowance",) if i % 2 else (),
            not_before=format_utc(now - timedelta(minutes=1)),
            expires_at=format_utc(now + timedelta(days=30)),
            access=Access("periodic", min_interval="P1D"), data_life="P30D",
            justification="To apply your council tax reduction.")
        rows.append({"id": gid, "service_id": terms.service_id, "citizen_id": citizen_id,
                     "terms": orjson.dumps(terms.to_json(),
                                           option=orjson.OPT_SORT_KEYS).decode(),
                     "terms_hash": terms.terms_hash(), "state": "approved", "reads": 0,
                     "requested_at": now, "updated_at": now,
                     "due_at": now + timedelta(days=30), "last_seq": 0})
    with unit_of_work(ctx) as work:
        work.session.connection().execute(insert(_GRANTS), rows)


def _clear_messages(ctx: VaultContext) -> None:
    with unit_of_work(ctx) as work:
        work.session.execute(delete(WebhookMessageRow))


def _count_messages(ctx: VaultContext) -> int:
    with unit_of_work(ctx) as work:
        return int(work.session.execute(select(func.count()).select_from(_MESSAGES))
                   .scalar_one())


def _bare_insert_ms(ctx: VaultContext, n: int) -> float:
    """The teller's own INSERT of n ready-made messages in one transaction: the floor of
    queuing them (what is left is finding the grants and making the bodies)."""
    body = orjson.dumps({"type": "record.changed", "timestamp": "2026-12-07T18:00:00.000Z",
                         "data": {"grant_id": "gr_" + "x" * 22, "categories": [_CATEGORY],
                                  "derived": [], "ledger_index": 123456}}).decode()
    with unit_of_work(ctx) as work:
        service = work.session.execute(select(col(GrantRow.service_id)).limit(1)).scalar_one()
    messages = [(service, body)] * n
    t0 = time.perf_counter()
    with unit_of_work(ctx) as work:
        queue_messages(work, messages)
    took = (time.perf_counter() - t0) * 1000
    _clear_messages(ctx)
    return took


@dataclass(frozen=True, slots=True)
class _Run:
    write_ms: float
    enqueued_ms: float
    teller_ms: float  # the teller's own transaction
    cpu_ms: float  # this process's CPU time from the write's call until all were queued


def _one_change(ctx: VaultContext, citizen_id: str, n: int) -> _Run:
    done = threading.Event()
    told_at: list[float] = []

    def then() -> None:
        told_at.extend((time.perf_counter(), time.process_time()))
        done.set()

    teller = ChangeTeller(ctx, then=then, interval=60)
    live = replace(ctx, after_queue=lambda queued: teller.nudge())  # as the app wires it
    teller.start()
    try:
        t0, cpu0 = time.perf_counter(), time.process_time()
        records.write_record(live, citizen_id, _CATEGORY, _VALUE)
        t1 = time.perf_counter()
        if not done.wait(60):
            raise RuntimeError("the teller did not queue the messages within 60 s")
    finally:
        teller.stop()
    if (count := _count_messages(ctx)) != n:
        raise RuntimeError(f"{count} messages queued, not {n}")
    _clear_messages(ctx)
    # The teller's transaction alone, as it would sit inside the write if fanned out there.
    records.write_record(ctx, citizen_id, _CATEGORY, _VALUE)
    t2 = time.perf_counter()
    tell_pending(ctx)
    teller_ms = (time.perf_counter() - t2) * 1000
    _clear_messages(ctx)
    return _Run((t1 - t0) * 1000, (told_at[0] - t0) * 1000, teller_ms,
                (told_at[1] - cpu0) * 1000)


def _measure(label: str, url: str, keys: Path, scale: ChangeScale) -> list[Result]:
    ctx = _vault(url, keys)
    try:
        lonely = citizens.enrol_citizen(ctx)
        busy = citizens.enrol_citizen(ctx)
        progress(f"{label}: {scale.grants:,} grants (setup, not measured)")
        _grant_rows(ctx, scale, busy.id)
        _one_change(ctx, busy.id, scale.grants)  # warm up
        runs = [_one_change(ctx, busy.id, scale.grants) for _ in range(scale.repeats)]
        floors = []
        for _ in range(scale.repeats):
            t0 = time.perf_counter()
            records.write_record(ctx, lonely.id, _CATEGORY, _VALUE)
            floors.append((time.perf_counter() - t0) * 1000)
        tell_pending(ctx)
        bare = [_bare_insert_ms(ctx, scale.grants) for _ in range(scale.repeats)]
    finally:
        ctx.engine.dispose()
    writes = [r.write_ms for r in runs]
    enqueued = [r.enqueued_ms for r in runs]
    inline = statistics.median(r.write_ms + r.teller_ms for r in runs)
    stat = f"median of {scale.repeats}"
    return [
        Result(f"write that changes a category {scale.grants:,} grants read ({label})", "ms",
               statistics.median(writes), statistics.median(floors),
               "same write, no grants", Goal("<=", 100.0), stat, spread(writes),
               [f"worst {max(writes):.1f} ms; the write adds one pending-change row; "
                f"fanning out inside it would make it answer in about {inline:.0f} ms"]),
        Result(f"  all {scale.grants:,} record.changed queued, from the write's call "
               f"({label})", "ms", statistics.median(enqueued), statistics.median(bare),
               "the INSERT alone", Goal("<=", 1000.0), stat, spread(enqueued),
               [f"worst {max(enqueued):.0f} ms; the teller's transaction alone: "
                f"{statistics.median(r.teller_ms for r in runs):.0f} ms; CPU time of this "
                f"process meanwhile {statistics.median(r.cpu_ms for r in runs):.0f} ms "
                f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores: what "
                "other processes take stretches the wall time)"]),
    ]


def bench_record_changes(workdir: Path, scale: ChangeScale = FULL_CHANGES) -> list[Result]:
    """SQLite, then PostgreSQL when a throwaway cluster can be made."""
    db = workdir / "changes.db"
    for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        p.unlink(missing_ok=True)
    results = _measure("SQLite", f"sqlite:///{db}", workdir / "changes-keys", scale)
    if scale.postgres:
        with throwaway_postgres() as (url, why):
            if url is None:
                progress(f"PostgreSQL skipped: {why}")
                results[0].notes.append(f"PostgreSQL skipped: {why}")
            else:
                results += _measure("PostgreSQL", url, workdir / "changes-pg-keys", scale)
    return results


def main() -> int:
    """`python -m bench.record_changes [--quick] [--no-postgres]`."""
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m bench.record_changes",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small smoke run on SQLite")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args()
    scale = QUICK_CHANGES if args.quick else FULL_CHANGES
    if args.no_postgres:
        scale = replace(scale, postgres=False)
    with tempfile.TemporaryDirectory(prefix="changes-bench-") as tmp:
        results = bench_record_changes(Path(tmp), scale)
    print_table(results, [], title="record.changed fan-out")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
