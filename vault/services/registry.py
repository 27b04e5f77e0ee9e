"""Services registered by the operator: who may ask for what, for which purposes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from vault.domain.services import ServiceProfile, validate_registration
from vault.errors import NotFound
from vault.services.context import VaultContext, new_id, reading, unit_of_work
from vault.storage.tables import ServiceRow

__all__ = [
    "Registration",
    "get_service",
    "list_services",
    "register_service",
    "service_profile",
    "suspend_service",
]


@dataclass(frozen=True)
class Registration:
    name: str
    description: str
    purposes: Sequence[str]
    categories: Sequence[str]
    jwk: Mapping[str, Any]
    redirect_uris: Sequence[str]
    privacy_notice_url: str
    derived: Sequence[str] = field(default_factory=tuple)
    max_days: int = 365
    webhook_url: str | None = None
    dpia_url: str | None = None


def register_service(ctx: VaultContext, reg: Registration) -> str:
    """Validate and register a service; returns its client_id (the service id)."""
    validate_registration(
        name=reg.name, description=reg.description, purposes=reg.purposes,
        categories=reg.categories, derived=reg.derived, max_days=reg.max_days, jwk=reg.jwk,
        redirect_uris=reg.redirect_uris, webhook_url=reg.webhook_url,
        privacy_notice_url=reg.privacy_notice_url, dpia_url=reg.dpia_url)
    service_id = new_id("svc")
    purposes, categories, derived = (sorted(set(x)) for x in
                                     (reg.purposes, reg.categories, reg.derived))
    with unit_of_work(ctx) as work:
        work.session.add(ServiceRow(
            id=service_id, name=reg.name, description=reg.description, purposes=purposes,
            categories=categories, derived=derived, max_days=reg.max_days, jwk=dict(reg.jwk),
            redirect_uris=list(reg.redirect_uris), webhook_url=reg.webhook_url,
            privacy_notice_url=reg.privacy_notice_url, dpia_url=reg.dpia_url, active=True,
            created_at=work.now))
        # Public facts about the service: what anyone may know it is allowed to ask.
        work.ledger.append("service.registered", {
            "service_id": service_id, "name": reg.name, "purposes": purposes,
            "categories": categories, "derived": derived, "max_days": reg.max_days})
    return service_id


def get_service(session: Session, service_id: str) -> ServiceRow:
    row = session.get(ServiceRow, service_id)
    if row is None:
        raise NotFound(f"no service {service_id}")
    return row


def service_profile(row: ServiceRow) -> ServiceProfile:
    return ServiceProfile(id=row.id, name=row.name, description=row.description,
                          purposes=frozenset(row.purposes), categories=frozenset(row.categories),
                          derived=frozenset(row.derived), max_days=row.max_days,
                          active=row.active)


def suspend_service(ctx: VaultContext, service_id: str) -> None:
    """Stop a service at once: its grants stay, but no read succeeds while suspended."""
    with unit_of_work(ctx) as work:
        row = get_service(work.session, service_id)
        if not row.active:
            return
        row.active = False
        work.session.add(row)
        # No free-text reason: the ledger holds only ids and codes.
        work.ledger.append("service.suspended", {"service_id": service_id})


def list_services(ctx: VaultContext) -> list[ServiceRow]:
    with reading(ctx) as session:
        return list(session.execute(select(ServiceRow).order_by(col(ServiceRow.created_at)))
                    .scalars())
