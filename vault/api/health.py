"""Liveness, readiness and Prometheus metrics.

/metrics tells exact counts of citizens and grants, so it is not public: it answers a
bearer token the operator set (`VAULT_METRICS_TOKEN`) and, unless turned off
(`VAULT_METRICS_LOOPBACK=false`), peers on loopback. Behind a reverse proxy on the same
machine every peer is loopback (`vault serve` does not trust forwarded headers), so turn
the loopback allowance off there, or keep /metrics out of what the proxy forwards.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import select

from ledger.sqlstore import SqlLedger
from vault.api.deps import State
from vault.api.errors import problem, problem_response
from vault.storage.database import read_only
from vault.storage.schema import current_revision, head_revision
from vault.storage.tables import CitizenRow, GrantRow, ServiceRow

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: the database answers and is migrated",
            responses={503: problem_response("Not ready: the database is not reachable or "
                                             "not migrated")})
def readyz(state: State) -> Response:
    try:
        revision = current_revision(state.engine)
    except Exception:  # any database failure means "not ready"
        return problem(503, "the database is not reachable", slug="not-ready")
    if revision != head_revision():
        return problem(503, f"the database schema is at {revision}, not {head_revision()}",
                       slug="not-ready")
    return JSONResponse({"status": "ready", "schema": revision})


class VaultCollector(Collector):
    """Counts read from the database at scrape time: nothing is kept in memory."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with read_only(self._engine).begin() as conn:
            head = SqlLedger(conn).tree_head()
            latest = SqlLedger(conn).latest_checkpoint()
            citizens = conn.execute(select(func.count()).select_from(CitizenRow)).scalar()
            services = conn.execute(select(func.count()).select_from(ServiceRow)).scalar()
            by_state = conn.execute(
                select(GrantRow.state, func.count()).group_by(GrantRow.state)).all()
        yield GaugeMetricFamily("vault_ledger_entries", "Entries in the ledger", head.size)
        yield GaugeMetricFamily("vault_ledger_checkpoint_size", "Size the latest checkpoint covers",
                                latest[0] if latest else 0)
        yield GaugeMetricFamily("vault_citizens", "Enrolled citizens", citizens or 0)
        yield GaugeMetricFamily("vault_services", "Registered services", services or 0)
        grants = GaugeMetricFamily("vault_grants", "Grants by state", labels=["state"])
        for grant_state, count in by_state:
            grants.add_metric([grant_state], count)
        yield grants


def metrics_registry(engine: Engine) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(VaultCollector(engine))
    return registry


def is_loopback(host: str | None) -> bool:
    """An IP address on loopback: 127.0.0.0/8, ::1, or 127.x mapped into IPv6."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False  # no peer address (a Unix socket), or a name: not known to be local
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


@dataclass(frozen=True, slots=True)
class MetricsAccess:
    """Whether a request may read /metrics, and why: "token" or "loopback" when it may;
    "bad-token" (a token is configured and was not presented) or "not-loopback" when not."""

    allowed: bool
    reason: str


def check_metrics_access(*, peer: str | None, authorization: str | None,
                         expected_token: str | None, allow_loopback: bool) -> MetricsAccess:
    if expected_token:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
                token.strip().encode(), expected_token.encode()):
            return MetricsAccess(True, "token")
    if allow_loopback and is_loopback(peer):
        return MetricsAccess(True, "loopback")
    return MetricsAccess(False, "bad-token" if expected_token else "not-loopback")


@router.get("/metrics", summary="Prometheus metrics (to the metrics token, or loopback)",
            response_class=Response, responses={
                401: problem_response("A metrics token is configured and was not presented "
                                      "(Authorization: Bearer ...)"),
                403: problem_response("Not a loopback peer, and no metrics token is "
                                      "configured")})
def metrics(request: Request, state: State) -> Response:
    token = state.settings.metrics_token
    access = check_metrics_access(
        peer=request.client.host if request.client else None,
        authorization=request.headers.get("authorization"),
        expected_token=token.get_secret_value() if token is not None else None,
        allow_loopback=state.settings.metrics_loopback)
    if access.reason == "bad-token":
        return problem(401, "/metrics needs the metrics token (Authorization: Bearer ...)",
                       slug="unauthorized", headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    if not access.allowed:
        return problem(403, "/metrics is served only to loopback peers or with the metrics "
                            "token (VAULT_METRICS_TOKEN)", slug="forbidden")
    return Response(generate_latest(state.metrics), media_type=CONTENT_TYPE_LATEST)
