"""Series ingest over HTTP: `POST /v1/records/health.observations/items`, batches of 1,000.

Measured: items appended per second end to end, each batch one request carrying one
ES256 JWS over `{"items": [1,000 readings]}`: the bearer token checked, the write grant
locked and checked, the JWS verified once, every item checked against the catalog's item
schema (`vault.domain.categories.validate_batch`: jsonschema-rs, compiled once), the
batch sealed as one version with its JWS, `record.written` committed before the 201.
Goals (issue 12 §8): >= 20,000 items/s on PostgreSQL, >= 10,000 items/s on SQLite.

Served as in production (`bench.servers`): uvicorn with 2 workers, VAULT_* settings, on
SQLite (WAL, synchronous=FULL) and on a throwaway PostgreSQL cluster (skipped with a note
when initdb is not found). Load: 8 threads of keep-alive httpx clients for a timed window
after a warm-up, on the same 2 cores as the server. Set-up (not measured): one device
service registered to issue health.observations and 16 citizens who each approved its
write grant (a device service writes for many people; each batch takes its citizen's next
version under the grant's lock, so spread over citizens, as in life). Every batch is
signed before the window with a jti of its own and sent once: no write is a repeat.

Also reported, in process: checking one batch of 1,000 items with each validator the
brief asked to compare (jsonschema with the vault's strict rules, which the vault uses
only to say what is wrong; jsonschema-rs, which it uses; fastjsonschema when installed).

`python -m bench.series_ingest [--quick]`.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.report import Failure, Goal, Result, print_table
from bench.servers import Uvicorn, create_vault_app, free_port, throwaway_postgres, vault_env
from bench.vault_setup import access_token, approved_grant, citizen_with_passkey
from bench.workload import progress
from clients.service.keys import ServiceKey
from vault.api.deps import AppState
from vault.app import build_state
from vault.config import Settings
from vault.domain.categories import categories, is_rfc3339_datetime, validate_batch
from vault.domain.grants import Access
from vault.services import registry

__all__ = ["FULL_INGEST", "QUICK_INGEST", "IngestScale", "bench_series_ingest", "main"]

OBS = "health.observations"
BATCH = 1000
_FACTORY = f"{create_vault_app.__module__}:{create_vault_app.__name__}"


@dataclass(frozen=True, slots=True)
class IngestScale:
    threads: int = 8
    citizens: int = 16
    warmup: float = 2.0
    window: float = 10.0
    batches: int = 400  # signed ahead: enough for warm-up and window at the goal's rate
    postgres: bool = True


FULL_INGEST = IngestScale()
QUICK_INGEST = IngestScale(threads=4, citizens=4, warmup=0.5, window=2.0, batches=60,
                           postgres=False)


def _items(n: int, seed: int) -> list[dict[str, Any]]:
    start = datetime.now(UTC) - timedelta(hours=2)
    return [{"kind": ("heart_rate", "oxygen_saturation", "steps")[i % 3],
             "value": 60 + (seed + i) % 60, "unit": ("bpm", "%", "steps")[i % 3],
             "at": (start + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ")}
            for i in range(n)]


@dataclass
class _Device:
    client_id: str
    key: ServiceKey
    tokens: list[str]  # one per citizen, its write grant


def _prepare(settings: Settings, scale: IngestScale) -> _Device:
    state: AppState = build_state(settings)
    ctx, base = state.ctx, settings.base_url
    key = ServiceKey.generate()
    client_id = registry.register_service(ctx, registry.Registration(
        name="Heart monitor", description="A wearable's service", purposes=["health_monitoring"],
        categories=[], jwks=key.public_jwks(), redirect_uris=["https://watch.example/cb"],
        privacy_notice_url="https://watch.example/privacy", issues=(OBS,)))
    tokens = []
    for i in range(scale.citizens):
        citizen_id, device = citizen_with_passkey(ctx, base, f"citizen{i}")
        g = approved_grant(
            ctx, device, service_id=client_id, citizen_id=citizen_id,
            purpose="health_monitoring", categories=[OBS], access=Access("one_time"),
            duration=timedelta(days=365), data_life="P0D", justification="Your heart.",
            actions=("write",))
        tokens.append(access_token(state, client_id, citizen_id, g)[0])
    state.engine.dispose()  # the workers open their own
    return _Device(client_id, key, tokens)


def _ingest(url: str, device: _Device, scale: IngestScale) -> tuple[float, int]:
    """Items/s over the window, and the batches answered 201 in it."""
    progress(f"signing {scale.batches} batches of {BATCH} items")
    jobs = [(device.tokens[i % len(device.tokens)],
             device.key.sign_record(OBS, {"items": _items(BATCH, i)}, issuer=device.client_id))
            for i in range(scale.batches)]
    lock = threading.Lock()
    done: list[float] = []
    errors: list[str] = []
    t0 = time.monotonic()
    stop = t0 + scale.warmup + scale.window

    def worker() -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            while time.monotonic() < stop:
                with lock:
                    if not jobs:
                        return
                    token, jws = jobs.pop()
                r = client.post(f"/v1/records/{OBS}/items", json={"record": jws},
                                headers={"Authorization": f"Bearer {token}"})
                if r.status_code != 201:
                    errors.append(f"{r.status_code}: {r.text[:200]}")
                    return
                with lock:
                    done.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(scale.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"a batch was refused: {errors[0]}")
    start = t0 + scale.warmup
    timed = [t for t in done if t >= start]
    if not timed:
        raise RuntimeError("no batch answered in the window: sign more batches")
    elapsed = (timed[-1] - start) if jobs == [] and timed[-1] < stop else scale.window
    return len(timed) * BATCH / max(elapsed, 1e-9), len(timed)


def _measure(db: str, database_url: str | None, workdir: Path, scale: IngestScale,
             goal: float) -> Result:
    port = free_port()
    settings = Settings(
        data_dir=workdir / f"series-{db.lower()}-vault", database_url=database_url, port=port,
        public_url=f"http://localhost:{port}", client_rate_limit=100_000.0,
        client_rate_burst=1_000_000, demo=False, log_level="WARNING")
    settings.data_dir.mkdir(parents=True)
    progress(f"{db}: setting up the device service and {scale.citizens} citizens")
    device = _prepare(settings, scale)
    with Uvicorn(_FACTORY, port=port, env=vault_env(settings),
                 log=workdir / f"series-{db.lower()}-vault.log") as vault:
        vault.wait_ready()
        progress(f"{db}: POST .../items, {scale.threads} connections")
        cpu0 = vault.cpu_seconds()
        rate, batches = _ingest(f"http://127.0.0.1:{port}", device, scale)
        cpu = vault.cpu_seconds() - cpu0
    return Result(f"series ingest, {db} (items/s)", "/s", rate, None, "", Goal(">=", goal),
                  f"{batches} batches of {BATCH} in {scale.window:.0f} s",
                  notes=[f"{db}: server CPU {cpu / max(batches, 1) * 1000:.1f} ms per batch "
                         f"(all batches incl. warm-up)"])


def _validators(repeats: int = 20) -> list[str]:
    """One batch checked by each validator: the evidence for the choice."""
    import jsonschema_rs

    from vault.domain.categories import validate_value
    items = _items(BATCH, 0)
    schema = dict(categories()[OBS].schema)

    def timed(check: Any) -> float:
        check()
        t = time.perf_counter()
        for _ in range(repeats):
            check()
        return (time.perf_counter() - t) / repeats

    lines = {"jsonschema (strict, the vault's reasons)":
             timed(lambda: validate_value(OBS, items)),
             "jsonschema-rs (compiled, the vault's check)":
             timed(lambda: jsonschema_rs.validator_for(
                 schema, validate_formats=True,
                 formats={"date-time": is_rfc3339_datetime}).is_valid(items)),
             "validate_batch (jsonschema-rs + the vault's strict screens)":
             timed(lambda: validate_batch(OBS, {"items": items}))}
    try:
        import fastjsonschema  # type: ignore[import-untyped, unused-ignore]
        fast = fastjsonschema.compile(schema, formats={"date-time": is_rfc3339_datetime})
        lines["fastjsonschema (compiled)"] = timed(lambda: fast(items))
    except ImportError:
        lines["fastjsonschema"] = float("nan")
    return [f"{name}: {'not installed' if s != s else f'{BATCH / s:,.0f} items/s'}"
            for name, s in lines.items()]


def bench_series_ingest(workdir: Path, scale: IngestScale = FULL_INGEST) -> list[Result]:
    """The items/s on SQLite and (when it can be started) PostgreSQL; the validators'
    figures (and a PostgreSQL skipped) are notes of the first row."""
    notes = _validators()
    results = [_measure("SQLite", None, workdir, scale, 10_000)]
    if scale.postgres:
        with throwaway_postgres() as (url, why):
            if url is None:
                notes.append(f"PostgreSQL skipped: {why}")
            else:
                results.append(_measure("PostgreSQL", url, workdir, scale, 20_000))
    results[0].notes[:0] = notes
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run at small scale")
    args = parser.parse_args()
    failures: list[Failure] = []
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-series-") as tmp:
        try:
            results = bench_series_ingest(Path(tmp), QUICK_INGEST if args.quick else FULL_INGEST)
        except Exception as exc:  # reported as a row, like the other benchmarks
            failures.append(Failure("series ingest", f"{type(exc).__name__}: {exc}"))
    print_table(results, failures, title="Series ingest (POST .../items, batches of 1,000)")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
