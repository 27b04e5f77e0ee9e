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
from sqlmodel import col, select

from bench.floor_app import DATABASE_ENV
from bench.loadgen import LoadResult, LoadSpec, run_load
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
from bench.workload import progress
from vault.api.deps import AppState
from vault.api.resource_routes import resource_audience
from vault.app import build_state, create_app
from vault.config import Settings
from vault.domain.grants import Access
from vault.oauth import issue_access_token, pairwise_sub
from vault.services import citizens, grants, records, registry
from vault.storage.database import make_engine, read_only
from vault.storage.tables import GrantRow
from wallet.passkeys import RelyingParty, add_passkey, registration_options, user_handle
from wallet.passkeys.software import SoftAuthenticator

__all__ = ["FULL_LOAD", "QUICK_LOAD", "LoadScale", "bench_service_load", "main"]

#: Far above what 2 workers can serve, so the per-client limit never refuses a request.
RATE_LIMIT = 100_000.0
RATE_BURST = 1_000_000
_MAX_READS = 1_000_000
_JWK = {"kty": "EC", "crv": "P-256", "x": "axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY",
        "y": "T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU"}
_VAULT_FACTORY = f"{create_vault_app.__module__}:{create_vault_app.__name__}"
_FLOOR_FACTORY = "bench.floor_app:create_floor_app"


@dataclass(frozen=True, slots=True)
class LoadScale:
    concurrency: tuple[int, ...] = (32, 64)
    warmup: float = 1.0  # seconds, per window
    window: float = 5.0  # seconds, per window
    max_requests: int | None = None  # end each window after this many answers
    processes: int = 1  # generator processes
    postgres: bool = True


FULL_LOAD = LoadScale()
QUICK_LOAD = LoadScale(concurrency=(8,), warmup=0.3, window=2.0, max_requests=300,
                       postgres=False)


# -- the vault's side -----------------------------------------------------------------------


@dataclass
class _Granted:
    """The set-up of one database: state loaded as a worker loads it, and the grant."""

    state: AppState
    service_id: str
    citizen_id: str
    grant: grants.GrantView

    def token(self) -> tuple[str, datetime]:
        """A fresh access token, as the token endpoint issues it, and its expiry."""
        base = self.state.settings.base_url
        now = datetime.now(UTC)
        token, claims = issue_access_token(
            self.state.token_keys.current, issuer=base, audience=resource_audience(base),
            client_id=self.service_id, grant_id=self.grant.id,
            sub=pairwise_sub(self.state.app_secret, self.service_id, self.citizen_id),
            authorization_details=[{"type": "personal_data", **self.grant.terms.to_json()}],
            now=now, grant_expires_at=self.grant.terms.ends)
        return token, claims.exp


def _prepare(settings: Settings) -> _Granted:
    """Migrate, load the keys and set up the service, citizen and grant (not measured)."""
    state = build_state(settings)
    ctx = state.ctx
    service = registry.register_service(ctx, registry.Registration(
        name="Blue Badge team", description="Decides Blue Badge applications",
        purposes=["eligibility_assessment"], categories=["address.home"],
        derived=["age_over_65"], jwk=_JWK, redirect_uris=["https://badges.example.gov/cb"],
        privacy_notice_url="https://badges.example.gov/privacy"))
    c = citizens.enrol_citizen(ctx)
    records.write_record(ctx, c.id, "identity.name", {"given": "Ada", "family": "Lovelace"})
    records.write_record(ctx, c.id, "identity.date_of_birth", "1950-12-10")
    records.write_record(ctx, c.id, "address.home", {
        "lines": ["12 St James's Square"], "town": "London", "postcode": "SW1Y 4JH",
        "local_authority": "Westminster"})
    device = SoftAuthenticator(origin=settings.base_url)
    rp = RelyingParty.from_public_url(settings.base_url)
    options, challenge = registration_options(rp, user_id=user_handle(c.id), user_name="ada",
                                              exclude=[])
    add_passkey(ctx, rp, citizen_id=c.id, credential=device.create(options),
                expected_challenge=challenge, label="bench")
    g = grants.request_grant(
        ctx, service_id=service, citizen_id=c.id, purpose="eligibility_assessment",
        categories=["address.home"], derived=["age_over_65"],
        access=Access("periodic", max_reads=_MAX_READS), duration=timedelta(days=365),
        data_life="P1D", justification="To check you can have a Blue Badge.")
    g = grants.approve_grant(ctx, g.id, citizen_id=c.id,
                             proof=device.proof(challenge=g.terms_hash))
    state.engine.dispose()  # the workers open their own
    return _Granted(state, service, c.id, g)


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
        run = _Run(db, _prepare(settings), scale)
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
    logged = _reads_logged(settings.database, run.granted.grant.id)
    if logged < run.data_answers:
        raise RuntimeError(f"{run.data_answers} reads answered but {logged} logged")
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
    return out


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
