"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter
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


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(state: State) -> Response:
    return Response(generate_latest(state.metrics), media_type=CONTENT_TYPE_LATEST)
