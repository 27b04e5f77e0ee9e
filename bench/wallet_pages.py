"""The wallet: dashboard render time for a busy citizen, and passkey verification.

Measured: GET /wallet (the dashboard) and GET /wallet/activity for a citizen with 200
grants and 10,000 access events, through the whole ASGI app in process (routing,
session lookup, queries, template), goal <= 50 ms server-side; the same app's
/healthz through the same client is the floor (what the client and the app's
middleware cost on their own). Passkey verification: a sign-in assertion checked
end to end (client data, authenticator data, ES256 signature, counter
compare-and-set, rolled back), goal <= 2 ms.
"""

from __future__ import annotations

import logging
import statistics
import time
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import Session

from bench.report import Goal, Result
from vault.app import create_app
from vault.config import Settings
from vault.domain.grants import Access, GrantAction
from vault.services import grants, records, registry
from vault.services.access import read_in
from vault.services.context import VaultContext, unit_of_work
from wallet.passkeys import authentication_options, verify_sign_in
from wallet.passkeys.software import SoftAuthenticator
from wallet.web import WalletState

__all__ = ["bench_dashboard", "bench_passkey_verify", "fill_busy_citizen", "sign_up", "times_ms"]

_ORIGIN = "http://localhost:8000"
_JWK = {"kty": "EC", "crv": "P-256", "x": "axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY",
        "y": "T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU"}


def _csrf(client: TestClient) -> str:
    text: str = client.get("/wallet/signup").text
    token: str = text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
    return token


def sign_up(client: TestClient, device: SoftAuthenticator) -> None:
    headers = {"x-csrf-token": _csrf(client), "origin": _ORIGIN}
    got = client.post("/wallet/signup/options", json={}, headers=headers).json()
    done = client.post("/wallet/signup", headers=headers, json={
        "credential": device.create(got["publicKey"]), "ceremony": got["ceremony"]})
    done.raise_for_status()


def fill_busy_citizen(ctx: VaultContext, citizen_id: str, device: SoftAuthenticator, *,
                      grants_n: int, accesses_n: int) -> None:
    """grants_n grants (10% waiting, 15% ended, the rest active) and accesses_n reads."""
    services = [registry.register_service(ctx, registry.Registration(
        name=f"Service {i}", description="A council service", purposes=["service_provision"],
        categories=["address.home"], derived=["age_over_18"], jwk=_JWK,
        redirect_uris=["https://example.gov/cb"],
        privacy_notice_url="https://example.gov/privacy")) for i in range(10)]
    records.write_record(ctx, citizen_id, "identity.date_of_birth", "1980-01-02")
    records.write_record(ctx, citizen_id, "address.home", {
        "lines": ["1 High Street"], "town": "Leeds", "postcode": "LS1 1AA",
        "local_authority": "Leeds"})
    active: list[tuple[str, str]] = []
    for i in range(grants_n):
        # The waiting ones (every tenth) spread over the services: each service may have
        # only MAX_WAITING requests waiting for one citizen.
        service = services[(i // 10 if i % 10 == 0 else i) % len(services)]
        g = grants.request_grant(
            ctx, service_id=service, citizen_id=citizen_id, purpose="service_provision",
            categories=["address.home"], derived=["age_over_18"],
            access=Access("periodic", max_reads=100_000), duration=timedelta(days=60),
            data_life="P1D", justification="To serve you.")
        if i % 10 == 0:
            continue  # waiting for an answer
        grants.approve_grant(ctx, g.id, citizen_id=citizen_id,
                             proof=device.proof(challenge=g.terms_hash))
        if i % 7 == 0:
            challenge = grants.signing_challenge(ctx, g.id, citizen_id=citizen_id,
                                                 action=GrantAction.REVOKE)
            grants.revoke_grant(ctx, g.id, citizen_id=citizen_id,
                                proof=device.proof(challenge=challenge))
            continue
        active.append((service, g.id))
    for start in range(0, accesses_n, 500):  # group-committed: setup, not measured
        with unit_of_work(ctx) as work:
            for i in range(start, min(start + 500, accesses_n)):
                service, gid = active[i % len(active)]
                read_in(ctx, work, service_id=service, grant_id=gid)


def times_ms(client: TestClient, path: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = client.get(path, headers={"accept": "text/html"})
        out.append((time.perf_counter() - t0) * 1000)
        if r.status_code != 200:
            raise RuntimeError(f"{path} answered {r.status_code}")
    return out


def bench_dashboard(workdir: Path, *, grants_n: int, accesses_n: int, n: int) -> list[Result]:
    logging.disable(logging.INFO)  # the request log would be most of the work measured
    try:
        settings = Settings(data_dir=workdir / "wallet-bench", sweep_interval=3600)
        app = create_app(settings)
        with TestClient(app, base_url=_ORIGIN) as client:
            state = app.state.wallet
            device = SoftAuthenticator(origin=_ORIGIN)
            sign_up(client, device)
            citizen_id = state.sessions.resolve(client.cookies.get(state.cookies.session),
                                                now=state.ctx.clock())
            assert citizen_id is not None
            fill_busy_citizen(state.ctx, citizen_id, device, grants_n=grants_n,
                              accesses_n=accesses_n)
            times_ms(client, "/wallet", 20)  # warm up: templates compiled, caches filled
            floor = statistics.median(times_ms(client, "/healthz", n))
            out = []
            for path, what in (("/wallet", "dashboard"), ("/wallet/activity", "activity page"),
                               ("/wallet/grants", "grants page")):
                samples = sorted(times_ms(client, path, n))
                p95 = samples[int(len(samples) * 0.95) - 1]
                out.append(Result(
                    f"wallet {what}, {grants_n} grants, {accesses_n:,} accesses", "ms",
                    statistics.median(samples), floor, "/healthz through the same client",
                    Goal("<=", 50.0), f"median of {n}", None,
                    [f"p95 {p95:.1f} ms; paginated (5 on the dashboard, 50 a page)"]))
            return out
    finally:
        logging.disable(logging.NOTSET)


def bench_passkey_verify(workdir: Path, *, n: int) -> Result:
    logging.disable(logging.INFO)
    try:
        app = create_app(Settings(data_dir=workdir / "passkey-bench", sweep_interval=3600))
        with TestClient(app, base_url=_ORIGIN) as client:
            state: WalletState = app.state.wallet
            device = SoftAuthenticator(origin=_ORIGIN)
            sign_up(client, device)
            samples = []
            for _ in range(n):
                options, challenge = authentication_options(state.rp)
                answer = device.get(options)
                with Session(state.ctx.engine) as session, session.begin():
                    t0 = time.perf_counter()
                    verify_sign_in(session, state.rp, credential=answer,
                                   expected_challenge=challenge, now=state.ctx.clock())
                    samples.append((time.perf_counter() - t0) * 1000)
                    # Keep nothing: the stored counter stays put, the device's goes up.
                    session.rollback()
            return Result("passkey sign-in verification (ES256)", "ms",
                          statistics.median(samples), None, "", Goal("<=", 2.0),
                          f"median of {n}", None,
                          ["client data, authenticator data, signature, counter CAS"])
    finally:
        logging.disable(logging.NOTSET)

