"""The wallet of someone acting for others (issue 14 §7): dashboard and activity page times.

Setup (not measured): a person who can act for `people` others, each with `grants_n`
grants and `accesses_n` reads (as `bench.wallet_pages` fills one busy citizen), in
relationships signed by both people's passkeys. Measured, through the whole ASGI app in
process as for one person: GET /wallet in one's own vault (the header's "Acting for"
switch names every person, each name decrypted from their own vault), and GET /wallet
and /wallet/activity after switching to one of them (the choice checked against the
live relationship on every request, the banner, the page of their vault, and on the
activity page what was done on their behalf). Goal <= 50 ms server-side median, as for
one person; /healthz through the same client is the floor.
"""

from __future__ import annotations

import logging
import statistics
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from bench.report import Goal, Result
from bench.wallet_pages import fill_busy_citizen, sign_up, times_ms
from vault.app import create_app
from vault.config import Settings
from vault.services import citizens, delegations, records
from vault.services.context import VaultContext, unit_of_work
from wallet.passkeys import RelyingParty, add_passkey, registration_options, user_handle
from wallet.passkeys.software import SoftAuthenticator

__all__ = ["bench_acting_pages"]

_ORIGIN = "http://localhost:8000"


def _principal(ctx: VaultContext, actor_id: str, actor_device: SoftAuthenticator, i: int,
               *, grants_n: int, accesses_n: int) -> str:
    """One busy person the actor acts for (view, approve and revoke, a year)."""
    citizen = citizens.enrol_citizen(ctx)
    device = SoftAuthenticator(origin=_ORIGIN)
    rp = RelyingParty.from_public_url(_ORIGIN)
    options, challenge = registration_options(rp, user_id=user_handle(citizen.id),
                                              user_name="citizen", exclude=[])
    add_passkey(ctx, rp, citizen_id=citizen.id, credential=device.create(options),
                expected_challenge=challenge, label="Their phone")
    records.write_record(ctx, citizen.id, "identity.name",
                         {"given": f"Person {i}", "family": "Example"})
    fill_busy_citizen(ctx, citizen.id, device, grants_n=grants_n, accesses_n=accesses_n)
    with unit_of_work(ctx) as work:
        row = delegations.propose(
            work, principal_id=citizen.id, delegate_id=actor_id, kind="attorney",
            actions=["view", "approve", "revoke"], until=work.now + timedelta(days=365),
            origin="invited")
        delegations.sign(work, row, side="principal", verifier=ctx.approvals,
                         proof=device.proof(challenge=row.terms_hash))
        delegations.sign(work, row, side="delegate", verifier=ctx.approvals,
                         proof=actor_device.proof(challenge=row.terms_hash))
    return citizen.id


def bench_acting_pages(workdir: Path, *, people: int, grants_n: int, accesses_n: int,
                       n: int) -> list[Result]:
    logging.disable(logging.INFO)  # the request log would be most of the work measured
    try:
        app = create_app(Settings(data_dir=workdir / "acting-bench", sweep_interval=3600))
        with TestClient(app, base_url=_ORIGIN) as client:
            state = app.state.wallet
            device = SoftAuthenticator(origin=_ORIGIN)
            sign_up(client, device)
            actor_id = state.sessions.resolve(client.cookies.get(state.cookies.session),
                                              now=state.ctx.clock())
            assert actor_id is not None
            principals = [_principal(state.ctx, actor_id, device, i, grants_n=grants_n,
                                     accesses_n=accesses_n) for i in range(people)]
            times_ms(client, "/wallet", 20)  # warm up: templates compiled, caches filled
            floor = statistics.median(times_ms(client, "/healthz", n))
            scale = f"acting for {people}, each {grants_n} grants, {accesses_n:,} accesses"
            out = [_result(f"wallet dashboard, own vault, {scale}",
                           times_ms(client, "/wallet", n), floor, n)]
            token = client.get("/wallet").text.split(
                'name="csrf-token" content="', 1)[1].split('"', 1)[0]
            switched = client.post("/wallet/acting", data={"csrf": token,
                                                           "for": principals[0]},
                                   follow_redirects=False)
            if switched.status_code != 303:
                raise RuntimeError(f"the switch answered {switched.status_code}")
            for path, what in (("/wallet", "dashboard"), ("/wallet/activity", "activity page")):
                page = client.get(path, headers={"accept": "text/html"}).text
                if "You are acting for Person 0 Example" not in page:
                    raise RuntimeError(f"{path} does not say whose vault it shows")
                out.append(_result(f"wallet {what}, acting for 1 of {people} ({scale})",
                                   times_ms(client, path, n), floor, n))
            return out
    finally:
        logging.disable(logging.NOTSET)


def _result(name: str, samples: list[float], floor: float, n: int) -> Result:
    ordered = sorted(samples)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return Result(name, "ms", statistics.median(ordered), floor,
                  "/healthz through the same client", Goal("<=", 50.0), f"median of {n}",
                  None, [f"p95 {p95:.1f} ms; the relationship checked on every request"])


def main() -> int:
    """`python -m bench.wallet_acting`: this benchmark alone, at the full scale."""
    import tempfile

    from bench.report import print_table

    with tempfile.TemporaryDirectory(prefix="acting-bench-") as tmp:
        results = bench_acting_pages(Path(tmp), people=5, grants_n=200, accesses_n=10_000,
                                     n=200)
    print_table(results, [], title="The wallet of someone acting for 5 others")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
