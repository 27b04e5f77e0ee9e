"""Services reading under load: `GET /v1/data` over HTTP, beside floors served alike.

Measured: `GET /v1/data` with a bearer token (ES256 verification, the client's rate
limit, the live grant check, decryption, the derived answer and the `data.accessed`
ledger entry, committed before the answer; reads are group-committed), at 32 and at
64 concurrent keep-alive connections, on SQLite (WAL, synchronous=FULL) and on a
throwaway PostgreSQL cluster (initdb and pg_ctl in a temporary directory, fsync on;
skipped with a note when initdb is not found). Goals: at least half the PK-read
floor's rate, and p99 <= 100 ms.

Served as in production: uvicorn with 2 workers, a real subprocess configured by
VAULT_* variables (`bench.servers.create_vault_app`: `vault.app.create_app()`, see there
why it re-installs the rate limiter), the data directory in a temporary directory,
demo data off. The service's rate limit is raised (VAULT_CLIENT_RATE_LIMIT/BURST) so
it does not cap the load.

Floors (`bench.floor_app`), served the same way (uvicorn, 2 workers, the same database)
just before the vault, at the same concurrencies: a bare `async def` JSON endpoint, and
a sync endpoint reading the grant's row by primary key. The vault is not running while
the floors are timed (its background threads would take CPU from them).

Load: `bench.loadgen` in its own process on loopback: closed loop, a fixed number of
keep-alive connections, a warm-up, then a timed window; req/s, p50 and p99 of the
per-request latency. The CPU the uvicorn workers spend per request is reported too: on
a machine shared with other work every rate drops, but the CPU per request hardly
moves, so it is the figure to compare between runs. So is the generator's: on 2 cores
it and the two workers share the cores, and every rate here is lower than with a
separate load host.

Set-up (not measured) goes through the vault's own services on the data directory and
database the server then uses: one registered service, one citizen with a name, a date
of birth and a home address, a passkey on a software authenticator, and a grant
approved with it: periodic access, max_reads 1,000,000 (the domain's largest: periodic
access needs max_reads or min_interval), no min_interval, 365 days. Access tokens are
minted with `issue_access_token` by the token key that `build_state` (what each worker
runs) loads from that data directory, a fresh one (<= 5 min) for each window.

Issuer writes (ARCHITECTURE §8 "Writing"), in the same run and server as `/v1/data`, after
its windows: `PUT /v1/records/benefits.attendance_allowance` at 32 connections, each write
a new record (one ES256 JWS verified, the value and the JWS sealed, `record.written`
committed before the 201). Goal: at least half the rate of `/v1/data` at the same
concurrency in the same run. Set-up (not measured): an issuer registered with `--issues`
that category, and 256 citizens, each with a passkey and an approved write grant (one
time, 365 days): a benefits agency writes awards for many people, and every write locks
its grant's row and takes its citizen's next version, so writes spread over 256 citizens
(requests assigned round robin, 32 in flight) never queue on one citizen, as they would
not in life. The requests are prepared as raw bytes before the window
(`bench.loadgen.write_requests`): each with its citizen's access token and a record
signed ahead of time with a jti of its own, each sent once, so no write is an idempotent
repeat; enough for 1.5x the `/v1/data` rate over warm-up and window. Afterwards the
issuer's records in the database must number the 201 answers.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import traceback
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
from sqlalchemy import func
from sqlmodel import col, select

from bench.floor_app import DATABASE_ENV
from bench.loadgen import LoadResult, LoadSpec, raw_request, run_load, write_requests
from bench.report import Failure, Goal, Result, print_table
from bench.servers import (
    WORKERS,
    Uvicorn,
    create_vault_app,
    free_port,
    limit_applied,
    throwaway_postgres,
    vault_env,
)
from bench.vault_setup import access_token, approved_grant, citizen_with_passkey
from bench.workload import progress
from clients.service.keys import ServiceKey
from vault.api.deps import AppState
from vault.app import build_state, create_app
from vault.config import Settings
from vault.domain.grants import Access
from vault.services import grants, records, registry
from vault.storage.database import make_engine, read_only
from vault.storage.tables import GrantRow, RecordRow

__all__ = ["FULL_LOAD", "QUICK_LOAD", "LoadScale", "bench_service_load", "main"]

#: Far above what 2 workers can serve, so the per-client limit never refuses a request.
RATE_LIMIT = 100_000.0
RATE_BURST = 1_000_000
_MAX_READS = 1_000_000
_JWK = {"kty": "EC", "crv": "P-256", "x": "axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY",
        "y": "T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU"}
_VAULT_FACTORY = f"{create_vault_app.__module__}:{create_vault_app.__name__}"
_FLOOR_FACTORY = "bench.floor_app:create_floor_app"
ISSUED = "benefits.attendance_allowance"
_AWARD = {"award": "higher", "since": "2026-01-05", "awarded_by": "DWP"}


@dataclass(frozen=True, slots=True)
class LoadScale:
    concurrency: tuple[int, ...] = (32, 64)
    warmup: float = 1.0  # seconds, per window
    window: float = 5.0  # seconds, per window
    max_requests: int | None = None  # end each window after this many answers
    processes: int = 1  # generator processes
    postgres: bool = True
    writes: int | None = 32  # connections of the issuer-writes window (one of concurrency)
    write_citizens: int = 256  # citizens the issuer writes for, each with a write grant

    def __post_init__(self) -> None:
        # The write goal is a ratio to /v1/data at the same concurrency in the same run.
        if self.writes is not None and self.writes not in self.concurrency:
            raise ValueError("writes must be one of the concurrencies /v1/data is run at")


FULL_LOAD = LoadScale()
QUICK_LOAD = LoadScale(concurrency=(8,), warmup=0.3, window=2.0, max_requests=300,
                       postgres=False, writes=8, write_citizens=16)


# -- the vault's side -----------------------------------------------------------------------


@dataclass
class _Issuer:
    """The issuer, its signing key, and the citizens who gave it a write grant."""

    client_id: str
    key: ServiceKey
    links: list[tuple[str, grants.GrantView]]  # (citizen_id, write grant)


@dataclass
class _Granted:
    """The set-up of one database: state loaded as a worker loads it, and the grant."""

    state: AppState
    service_id: str
    citizen_id: str
    grant: grants.GrantView
    issuer: _Issuer | None = None

    def token(self) -> tuple[str, datetime]:
        """A fresh access token for the reading service's grant, and its expiry."""
        return access_token(self.state, self.service_id, self.citizen_id, self.grant)


def _prepare_issuer(state: AppState, citizens_n: int) -> _Issuer:
    """An issuer of ISSUED and `citizens_n` citizens who approved its write grant."""
    ctx, base = state.ctx, state.settings.base_url
    key = ServiceKey.generate()
    client_id = registry.register_service(ctx, registry.Registration(
        name="Benefits agency", description="Awards Attendance Allowance",
        purposes=["eligibility_assessment"], categories=[], derived=[],
        jwks=key.public_jwks(), redirect_uris=["https://benefits.example.gov/cb"],
        privacy_notice_url="https://benefits.example.gov/privacy", issues=(ISSUED,)))
    links: list[tuple[str, grants.GrantView]] = []
    for i in range(citizens_n):
        citizen_id, device = citizen_with_passkey(ctx, base, f"citizen{i}")
        links.append((citizen_id, approved_grant(
            ctx, device, service_id=client_id, citizen_id=citizen_id,
            purpose="eligibility_assessment", categories=[ISSUED], access=Access("one_time"),
            duration=timedelta(days=365), data_life="P0D",
            justification="To record your award.", actions=("write",))))
    return _Issuer(client_id, key, links)


def _prepare(settings: Settings, scale: LoadScale) -> _Granted:
    """Migrate, load the keys and set up the service, citizen and grant (not measured)."""
    state = build_state(settings)
    ctx = state.ctx
    service = registry.register_service(ctx, registry.Registration(
        name="Blue Badge team", description="Decides Blue Badge applications",
        purposes=["eligibility_assessment"], categories=["address.home"],
        derived=["age_over_65"], jwk=_JWK, redirect_uris=["https://badges.example.gov/cb"],
        privacy_notice_url="https://badges.example.gov/privacy"))
    citizen_id, device = citizen_with_passkey(ctx, settings.base_url, "ada")
    records.write_record(ctx, citizen_id, "identity.name",
                         {"given": "Ada", "family": "Lovelace"})
    records.write_record(ctx, citizen_id, "identity.date_of_birth", "1950-12-10")
    records.write_record(ctx, citizen_id, "address.home", {
        "lines": ["12 St James's Square"], "town": "London", "postcode": "SW1Y 4JH",
        "local_authority": "Westminster"})
    g = approved_grant(
        ctx, device, service_id=service, citizen_id=citizen_id,
        purpose="eligibility_assessment", categories=["address.home"],
        derived=["age_over_65"], access=Access("periodic", max_reads=_MAX_READS),
        duration=timedelta(days=365), data_life="P1D",
        justification="To check you can have a Blue Badge.")
    issuer = (_prepare_issuer(state, scale.write_citizens) if scale.writes is not None
              else None)
    state.engine.dispose()  # the workers open their own
    return _Granted(state, service, citizen_id, g, issuer)


def _issued_records(database_url: str, issuer: str) -> int:
    engine = make_engine(database_url, pool_size=1)
    try:
        with read_only(engine).connect() as conn:
            return int(conn.execute(select(func.count()).select_from(RecordRow)
                                    .where(col(RecordRow.source) == issuer)).scalar_one())
    finally:
        engine.dispose()


def _reads_logged(database_url: str, grant_id: str) -> int:
    engine = make_engine(database_url, pool_size=1)
    try:
        with read_only(engine).connect() as conn:
            reads = conn.execute(select(GrantRow.reads)
                                 .where(col(GrantRow.id) == grant_id)).scalar_one()
            return int(reads)
    finally:
        engine.dispose()


# -- measuring ------------------------------------------------------------------------------


@dataclass
class _Window:
    """One timed window, and the server's CPU per answer over it and its warm-up."""

    load: LoadResult
    cpu_ms: float  # the uvicorn workers' CPU per answer (not the database server's)


@dataclass
class _Figures:
    """The three windows at one concurrency."""

    bare: _Window
    row: _Window
    data: _Window


@dataclass
class _Run:
    db: str
    granted: _Granted
    scale: LoadScale
    figures: dict[int, _Figures] = field(default_factory=dict)
    data_answers: int = 0  # 200 answers to /v1/data, warm-ups included
    writes: _Window | None = None  # issuer writes at scale.writes connections
    write_answers: int = 0  # 201 answers to PUT /v1/records, warm-ups included
    writes_prepared: int = 0

    def load(self, server: Uvicorn, path: str, connections: int,
             headers: dict[str, str] | None = None) -> _Window:
        s = self.scale
        spec = LoadSpec(host="127.0.0.1", port=server.port, path=path,
                        connections=connections, warmup=s.warmup, duration=s.window,
                        host_header=f"localhost:{server.port}", headers=headers or {},
                        max_requests=s.max_requests)
        cpu = server.cpu_seconds()
        result = run_load(spec, processes=s.processes)
        cpu = server.cpu_seconds() - cpu
        if result.failed or result.ok == 0:
            raise RuntimeError(f"{path} at {connections} connections on {self.db}: "
                               f"answers by status {result.statuses}; the first refusal:\n"
                               f"{result.refused}")
        return _Window(result, cpu * 1000 / sum(result.statuses.values()))

    def data(self, vault: Uvicorn, connections: int) -> _Window:
        token, exp = self.granted.token()
        s = self.scale
        ends = datetime.now(UTC) + timedelta(seconds=s.warmup + s.window + 5)
        if ends >= exp:
            raise RuntimeError("the window would outlive its access token (<= 5 min)")
        window = self.load(vault, "/v1/data", connections,
                           {"Authorization": f"Bearer {token}"})
        self.data_answers += window.load.statuses.get(200, 0)
        return window

    def issuer_writes(self, vault: Uvicorn, connections: int, workdir: Path) -> _Window:
        """Writes at `connections`, from requests prepared here (not measured): enough
        for 1.5x the rate /v1/data reached at that concurrency."""
        issuer, s = self.granted.issuer, self.scale
        assert issuer is not None
        data_rate = self.figures[connections].data.load.rate
        count = int(max(data_rate, 100) * (s.warmup + s.window) * 1.5) + 4 * connections
        if s.max_requests is not None:
            count = min(count, 2 * s.max_requests + 4 * connections)
        path = workdir / f"{self.db.lower()}-writes.requests"
        self.writes_prepared = write_requests(path, _write_requests(
            self.granted.state, issuer, count, host=f"localhost:{vault.port}"))
        spec = LoadSpec(host="127.0.0.1", port=vault.port, path=f"/v1/records/{ISSUED}",
                        connections=connections, warmup=s.warmup, duration=s.window,
                        max_requests=s.max_requests, ok_status=201, requests_file=str(path))
        cpu = vault.cpu_seconds()
        result = run_load(spec, processes=s.processes)
        cpu = vault.cpu_seconds() - cpu
        path.unlink()  # it holds bearer tokens
        self.write_answers += result.statuses.get(201, 0)
        if result.failed or result.ok == 0:
            raise RuntimeError(f"PUT /v1/records at {connections} connections on {self.db}: "
                               f"answers by status {result.statuses}; the first refusal:\n"
                               f"{result.refused}")
        return _Window(result, cpu * 1000 / sum(result.statuses.values()))


def _write_requests(state: AppState, issuer: _Issuer, count: int, *,
                    host: str) -> list[bytes]:
    """`count` raw PUTs, round robin over the issuer's citizens, each a record signed now
    with a jti of its own under its citizen's token (fresh: <= 5 min)."""
    path = f"/v1/records/{ISSUED}"
    headers = []
    for citizen_id, grant in issuer.links:
        token, _ = access_token(state, issuer.client_id, citizen_id, grant)
        headers.append({"Authorization": f"Bearer {token}",
                        "Content-Type": "application/json"})
    out = []
    for i in range(count):
        jws = issuer.key.sign_record(ISSUED, _AWARD, issuer=issuer.client_id,
                                     jti=f"bench-{i}")
        out.append(raw_request("PUT", path, host=host, headers=headers[i % len(headers)],
                               body=orjson.dumps({"record": jws})))
    return out


def _check_floors(floor: Uvicorn, grant_id: str) -> None:
    """Each floor answers as it should before anything is timed."""
    row = httpx.get(f"http://localhost:{floor.port}/row/{grant_id}", timeout=10)
    if row.status_code != 200 or row.json()["id"] != grant_id:
        raise RuntimeError(f"the PK-read floor answered {row.status_code}: {row.text[:300]}")
    bare = httpx.get(f"http://localhost:{floor.port}/json", timeout=10)
    if bare.status_code != 200:
        raise RuntimeError(f"the bare JSON floor answered {bare.status_code}")


def _check_vault(run: _Run, vault: Uvicorn) -> None:
    """/v1/data releases what the grant allows before anything is timed."""
    token, _ = run.granted.token()
    r = httpx.get(f"http://localhost:{vault.port}/v1/data", timeout=10,
                  headers={"Authorization": f"Bearer {token}"})
    if r.status_code != 200:
        raise RuntimeError(f"/v1/data answered {r.status_code}: {r.text[:300]}")
    doc = r.json()
    if "address.home" not in doc["data"] or doc["derived"] != {"age_over_65": True}:
        raise RuntimeError(f"/v1/data released the wrong data: {sorted(doc['data'])}")
    run.data_answers += 1
    issuer = run.granted.issuer
    if issuer is None:
        return
    citizen_id, grant = issuer.links[0]
    token, _ = access_token(run.granted.state, issuer.client_id, citizen_id, grant)
    jws = issuer.key.sign_record(ISSUED, _AWARD, issuer=issuer.client_id, jti="bench-check")
    r = httpx.put(f"http://localhost:{vault.port}/v1/records/{ISSUED}", timeout=10,
                  headers={"Authorization": f"Bearer {token}"}, json={"record": jws})
    if r.status_code != 201 or r.json()["version"] != 1:
        raise RuntimeError(f"PUT /v1/records answered {r.status_code}: {r.text[:300]}")
    run.write_answers += 1


def _measure(db: str, database_url: str | None, workdir: Path, scale: LoadScale) -> _Run:
    """Floors first, then the vault: the vault is not running while the floors are
    timed, so its background threads take nothing from them."""
    port, floor_port = free_port(), free_port()
    settings = Settings(
        data_dir=workdir / f"{db.lower()}-vault", database_url=database_url, port=port,
        public_url=f"http://localhost:{port}", client_rate_limit=RATE_LIMIT,
        client_rate_burst=RATE_BURST, demo=False, log_level="WARNING")
    settings.data_dir.mkdir(parents=True)
    name = db.lower()
    # The floor starts while the vault is set up; it opens the database lazily.
    with Uvicorn(_FLOOR_FACTORY, port=floor_port, env={DATABASE_ENV: settings.database},
                 log=workdir / f"{name}-floor.log") as floor:
        progress(f"{db}: setting up the service, citizen and grant; starting the floors")
        run = _Run(db, _prepare(settings, scale), scale)
        floor.wait_ready()
        _check_floors(floor, run.granted.grant.id)
        floors = {}
        for c in scale.concurrency:
            progress(f"{db}: floors at {c} connections: bare JSON, PK read")
            floors[c] = (run.load(floor, "/json", c),
                         run.load(floor, f"/row/{run.granted.grant.id}", c))
    progress(f"{db}: starting the vault")
    with Uvicorn(_VAULT_FACTORY, port=port, env=vault_env(settings),
                 log=workdir / f"{name}-vault.log") as vault:
        vault.wait_ready()
        _check_vault(run, vault)
        for c in scale.concurrency:
            progress(f"{db}: /v1/data at {c} connections")
            run.figures[c] = _Figures(*floors[c], run.data(vault, c))
        if scale.writes is not None:
            progress(f"{db}: PUT /v1/records at {scale.writes} connections")
            run.writes = run.issuer_writes(vault, scale.writes, workdir)
    logged = _reads_logged(settings.database, run.granted.grant.id)
    if logged < run.data_answers:
        raise RuntimeError(f"{run.data_answers} reads answered but {logged} logged")
    if run.granted.issuer is not None:
        stored = _issued_records(settings.database, run.granted.issuer.client_id)
        if stored != run.write_answers:
            raise RuntimeError(f"{run.write_answers} writes answered 201 but {stored} stored")
    return run


# -- results --------------------------------------------------------------------------------


def _lat(r: LoadResult) -> str:
    return f"p50 {r.latency_ms(50):.1f} ms, p99 {r.latency_ms(99):.1f} ms"


def _results(run: _Run) -> list[Result]:
    out: list[Result] = []
    for c, f in run.figures.items():
        d, row, bare = f.data.load, f.row.load, f.bare.load
        stat = (f"{d.seconds:.1f} s window, {d.ok:,} reads, "
                f"{d.processes} generator process{'es' if d.processes > 1 else ''}")
        notes = [
            f"{c} connections on {run.db}: /v1/data {d.rate:,.0f}/s ({_lat(d)}); "
            f"PK-read floor {row.rate:,.0f}/s ({_lat(row)}); bare JSON floor "
            f"{bare.rate:,.0f}/s ({_lat(bare)}); /v1/data / bare JSON = "
            f"{d.rate / bare.rate:.2f}",
            f"uvicorn workers' CPU per request (the database server's not counted): /v1/data "
            f"{f.data.cpu_ms:.2f} ms, PK read {f.row.cpu_ms:.2f} ms, bare JSON "
            f"{f.bare.cpu_ms:.2f} ms; the generator's CPU (1.0 = a core): "
            f"{d.generator_cpu:.2f}, {row.generator_cpu:.2f}, {bare.generator_cpu:.2f}",
        ]
        out.append(Result(f"GET /v1/data, {c} connections ({run.db}, uvicorn x{WORKERS})",
                          "/s", d.rate, row.rate, "PK-read floor", Goal(">=", 0.5, "ratio"),
                          stat, None, notes))
        out.append(Result("  same, p99 latency", "ms", d.latency_ms(99), row.latency_ms(99),
                          "PK-read floor p99", Goal("<=", 100.0), stat))
    if run.writes is not None:
        out.append(_write_result(run, run.writes))
    return out


def _write_result(run: _Run, w: _Window) -> Result:
    c = run.scale.writes
    assert c is not None and run.granted.issuer is not None
    f = run.figures[c]
    d, wl = f.data.load, w.load
    stat = (f"{wl.seconds:.1f} s window, {wl.ok:,} writes over "
            f"{len(run.granted.issuer.links)} citizens, {run.writes_prepared:,} prepared")
    notes = [
        f"{c} connections on {run.db}: PUT /v1/records/{ISSUED} {wl.rate:,.0f}/s "
        f"({_lat(wl)}); /v1/data in the same run {d.rate:,.0f}/s ({_lat(d)})",
        f"uvicorn workers' CPU per request: write {w.cpu_ms:.2f} ms, /v1/data "
        f"{f.data.cpu_ms:.2f} ms; the generator's CPU (1.0 = a core): "
        f"{wl.generator_cpu:.2f}",
    ]
    if wl.ran_out:
        notes.append("the prepared writes ran out before the window's end: the window "
                     "ended at the last answer")
    return Result(f"PUT /v1/records (issuer writes), {c} connections ({run.db}, "
                  f"uvicorn x{WORKERS})", "/s", wl.rate, d.rate, "/v1/data (same run)",
                  Goal(">=", 0.5, "ratio"), stat, None, notes)


def _setup_note(scale: LoadScale, vault_keeps_limit: bool) -> str:
    limit = ("" if vault_keeps_limit else
             "; the vault itself drops it (resource_routes.install_resource_api keeps "
             "`limiter or ClientRateLimiter()` and an empty limiter is falsy), so the "
             "bench's factory re-installs it")
    return (f"uvicorn --workers {WORKERS}, load from {scale.processes} generator "
            f"process{'es' if scale.processes > 1 else ''} on loopback, "
            f"{scale.warmup:g} s warm-up per window; the client's rate limit raised to "
            f"{RATE_LIMIT:,.0f}/s, burst {RATE_BURST:,} (VAULT_CLIENT_RATE_LIMIT/BURST) so "
            f"it does not cap the load{limit}; grant: periodic, max_reads {_MAX_READS:,}, "
            "no min_interval")


def bench_service_load(workdir: Path, scale: LoadScale = FULL_LOAD) -> list[Result]:
    """SQLite, then PostgreSQL when a throwaway cluster can be made: the table's rows."""
    results = _results(_measure("SQLite", None, workdir, scale))
    probe = Settings(data_dir=workdir / "probe", client_rate_limit=RATE_LIMIT,
                     client_rate_burst=RATE_BURST)
    results[0].notes.insert(0, _setup_note(scale, limit_applied(create_app(probe), probe)))
    if scale.postgres:
        with throwaway_postgres() as (url, why):
            if url is None:
                progress(f"PostgreSQL skipped: {why}")
                results[0].notes.append(f"PostgreSQL skipped: {why}")
            else:
                results += _results(_measure("PostgreSQL", url, workdir, scale))
    return results


def main() -> int:
    """`python -m bench.service_load [--quick] [--no-postgres] [--processes N]`."""
    parser = argparse.ArgumentParser(prog="python -m bench.service_load",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tiny smoke run on SQLite")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--processes", type=int, default=1, help="load generator processes")
    args = parser.parse_args()
    scale = replace(QUICK_LOAD if args.quick else FULL_LOAD, processes=args.processes)
    if args.no_postgres:
        scale = replace(scale, postgres=False)
    t0 = time.perf_counter()
    results: list[Result] = []
    failures: list[Failure] = []
    with tempfile.TemporaryDirectory(prefix="service-load-") as tmp:
        try:
            results = bench_service_load(Path(tmp), scale)
        except Exception as exc:
            traceback.print_exc()
            failures.append(Failure("service load", f"{type(exc).__name__}: {exc}"))
    mode = "QUICK smoke run, not comparable with the goals" if args.quick else "full"
    print_table(results, failures,
                title=f"Service load ({mode}); {time.perf_counter() - t0:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
