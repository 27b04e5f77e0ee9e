"""Run every ledger benchmark and print the table: ``python -m bench [--quick] [--json F]``.

Each row is measured beside a floor taken in the same run (see each module's
docstring). The full run builds a 1,000,000-entry ledger as setup (not measured) in a
temporary directory removed at the end, and takes about two minutes on 2 cores, plus
about a minute and a half for the service load over HTTP (uvicorn on SQLite and on a
throwaway PostgreSQL cluster; `python -m bench.service_load` runs that one alone), and
about a minute for the `record.changed` fan-out to 10,000 grants on both databases
(`python -m bench.record_changes` alone).
`--quick` is a smoke run of a few seconds at small scale: its numbers are not
comparable with the goals. The exit code is 0 when every benchmark ran, whether or not
it met its goal (look for FAIL), and 1 when one raised.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.audit_full import bench_full_audit
from bench.audit_watch import FULL_WATCH, QUICK_WATCH, WatchScale, bench_watch
from bench.ledger_append import bench_batched_appends, bench_single_appends
from bench.ledger_proofs import bench_proofs
from bench.ledger_verify import bench_audit, bench_proof_checks
from bench.record_changes import FULL_CHANGES, QUICK_CHANGES, ChangeScale, bench_record_changes
from bench.report import Failure, Result, print_table, write_json
from bench.series_ingest import FULL_INGEST, QUICK_INGEST, IngestScale, bench_series_ingest
from bench.service_load import FULL_LOAD, QUICK_LOAD, LoadScale, bench_service_load
from bench.source_read import FULL_SOURCE, QUICK_SOURCE, SourceScale, bench_source_read
from bench.transparency_count import bench_count_vs_reads, bench_transparency_count
from bench.vault_access import bench_erasure, bench_group_commit, bench_reads
from bench.vault_crypto import bench_envelope
from bench.vault_tokens import bench_tokens
from bench.wallet_acting import bench_acting_pages
from bench.wallet_pages import bench_dashboard, bench_passkey_verify
from bench.witness_quorum import bench_witness_quorum
from bench.workload import BigLedger, build_big_ledger, progress


@dataclass(frozen=True, slots=True)
class Scale:
    batched: int  # entries appended per repeat, 100 per transaction
    single: int  # entries appended per repeat, one per transaction
    append_repeats: int
    big: int  # size of the ledger for proofs and the audit
    proofs: int  # random proofs built / checked
    check_repeats: int
    audit_repeats: int
    envelope: int  # 1 KiB values sealed/opened per repeat
    envelope_repeats: int
    reads: int  # reads under a grant per repeat
    erase_records: int  # records of the citizen erased
    vault_repeats: int
    wallet_grants: int  # grants of the busy citizen on the dashboard
    wallet_accesses: int  # their access events
    page_loads: int  # page renders timed per page
    passkey_checks: int
    tokens: int  # access tokens issued / verified per repeat
    token_repeats: int
    load: LoadScale  # /v1/data over HTTP beside its floors
    watch: WatchScale = FULL_WATCH  # vault-audit watch: one poll of new entries
    ingest: IngestScale = FULL_INGEST  # series batches of 1,000 over HTTP
    source: SourceScale = FULL_SOURCE  # a read of a category held at source (20 ms source)
    changes: ChangeScale = FULL_CHANGES  # record.changed fan-out to 10,000 grants
    witness_rounds: int = 200  # checkpoints taken to a quorum of 3 local witnesses
    acting_people: int = 5  # people someone acts for, each as busy as `wallet_grants` says


FULL = Scale(batched=20_000, single=1_000, append_repeats=5, big=1_000_000, proofs=1_000,
             check_repeats=5, audit_repeats=3, envelope=20_000, envelope_repeats=5,
             reads=1_000, erase_records=1_000, vault_repeats=3,
             wallet_grants=200, wallet_accesses=10_000, page_loads=200, passkey_checks=1_000,
             tokens=2_000, token_repeats=3, load=FULL_LOAD)
QUICK = Scale(batched=2_000, single=100, append_repeats=2, big=20_000, proofs=200,
              check_repeats=3, audit_repeats=1, envelope=2_000, envelope_repeats=2,
              reads=100, erase_records=100, vault_repeats=1,
              wallet_grants=20, wallet_accesses=200, page_loads=20, passkey_checks=50,
              tokens=200, token_repeats=1, load=QUICK_LOAD, ingest=QUICK_INGEST,
              source=QUICK_SOURCE, watch=QUICK_WATCH,
              changes=QUICK_CHANGES, witness_rounds=20, acting_people=2)


def _run(
    name: str,
    fn: Callable[[], Result | list[Result]],
    results: list[Result],
    failures: list[Failure],
) -> None:
    progress(f"{name} ...")
    t0 = time.perf_counter()
    try:
        out = fn()
    except Exception as exc:
        traceback.print_exc()
        failures.append(Failure(name, f"{type(exc).__name__}: {exc}"))
        return
    results.extend(out if isinstance(out, list) else [out])
    progress(f"{name} done in {time.perf_counter() - t0:.1f} s")


def run_all(scale: Scale, workdir: Path) -> tuple[list[Result], list[Failure]]:
    results: list[Result] = []
    failures: list[Failure] = []
    s = scale
    _run("append, 100 per transaction",
         lambda: bench_batched_appends(workdir, n=s.batched, repeats=s.append_repeats),
         results, failures)
    _run("append, 1 per transaction",
         lambda: bench_single_appends(workdir, n=s.single, repeats=s.append_repeats),
         results, failures)
    _run("transparency counting",
         lambda: [bench_transparency_count(workdir, n=s.batched, repeats=s.append_repeats),
                  bench_count_vs_reads(workdir, n=s.reads * 5, repeats=s.vault_repeats)],
         results, failures)
    _run("envelope seal/open, 1 KiB",
         lambda: bench_envelope(n=s.envelope, repeats=s.envelope_repeats), results, failures)
    _run("reads under a grant",
         lambda: bench_reads(workdir, n=s.reads, repeats=s.vault_repeats), results, failures)
    _run("reads under a grant, 32 threads",
         lambda: bench_group_commit(workdir, n=s.reads, repeats=s.vault_repeats),
         results, failures)
    _run("erasure",
         lambda: bench_erasure(workdir, records_per_citizen=s.erase_records,
                               repeats=s.vault_repeats), results, failures)
    _run("wallet pages",
         lambda: bench_dashboard(workdir, grants_n=s.wallet_grants,
                                 accesses_n=s.wallet_accesses, n=s.page_loads),
         results, failures)
    _run("wallet pages, acting for others",
         lambda: bench_acting_pages(workdir, people=s.acting_people, grants_n=s.wallet_grants,
                                    accesses_n=s.wallet_accesses, n=s.page_loads),
         results, failures)
    _run("passkey verification",
         lambda: bench_passkey_verify(workdir, n=s.passkey_checks), results, failures)
    _run("access tokens",
         lambda: bench_tokens(workdir, n=s.tokens, repeats=s.token_repeats), results, failures)
    _run("service load over HTTP",
         lambda: bench_service_load(workdir, s.load), results, failures)
    _run("series ingest over HTTP",
         lambda: bench_series_ingest(workdir, s.ingest), results, failures)
    _run("record.changed fan-out",
         lambda: bench_record_changes(workdir, s.changes), results, failures)
    _run("read of a category held at source",
         lambda: bench_source_read(workdir, s.source), results, failures)
    _run("vault-audit watch, one poll",
         lambda: bench_watch(workdir, s.watch), results, failures)
    _run("checkpoint to a quorum of 3 witnesses",
         lambda: bench_witness_quorum(workdir, rounds=s.witness_rounds), results, failures)
    progress(f"setup: building a {s.big:,}-entry ledger (not measured)")
    try:
        big: BigLedger | None = build_big_ledger(workdir, s.big)
    except Exception as exc:
        traceback.print_exc()
        failures.append(Failure("setup: big ledger", f"{type(exc).__name__}: {exc}"))
        big = None
    if big is not None:
        b = big
        _run("proof building", lambda: bench_proofs(b, count=s.proofs), results, failures)
        _run("proof checks",
             lambda: bench_proof_checks(b, count=s.proofs, repeats=s.check_repeats),
             results, failures)
        _run("audit of the export",
             lambda: bench_audit(b, workdir, repeats=s.audit_repeats), results, failures)
    _run("full audit (stories, signatures, personal data)",
         lambda: bench_full_audit(workdir, size=s.big, repeats=s.audit_repeats),
         results, failures)
    return results, failures


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small-scale smoke run (seconds)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write results as JSON")
    args = parser.parse_args()
    scale = QUICK if args.quick else FULL
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as tmp:
        results, failures = run_all(scale, Path(tmp))
    elapsed = time.perf_counter() - t0
    mode = "QUICK smoke run: small scale, not comparable with the goals" if args.quick else "full"
    print_table(results, failures,
                title=f"Ledger benchmarks ({mode}); {elapsed:.0f} s; "
                      f"load average at start {load_before:.2f}")
    if args.json:
        write_json(args.json, results, failures,
                   {"quick": args.quick, "seconds": elapsed, "load_before": load_before})
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
