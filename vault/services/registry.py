"""Services registered by the operator: who may ask for what, for which purposes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from vault.domain.errors import InvalidService
from vault.domain.service_keys import check_service_jwks
from vault.domain.services import ServiceProfile, validate_registration
from vault.errors import NotFound
from vault.services import sources
from vault.services.context import VaultContext, Work, new_id, reading, unit_of_work
from vault.storage.tables import RecordRow, ServiceRow

__all__ = [
    "Registration",
    "adopt_published_pages",
    "get_service",
    "list_services",
    "published_pages",
    "register_service",
    "replace_service_keys",
    "service_jwks",
    "service_profile",
    "suspend_service",
]


@dataclass(frozen=True, kw_only=True)
class Registration:
    name: str
    description: str
    purposes: Sequence[str]
    categories: Sequence[str]
    redirect_uris: Sequence[str]
    #: The service's public keys, a JWK Set (`vault.domain.service_keys`); or `jwk`, one
    #: key, short for a set of one. Exactly one of the two.
    jwks: Mapping[str, Any] | None = None
    jwk: Mapping[str, Any] | None = None
    #: None: the vault's own page about the service (`published_pages`).
    privacy_notice_url: str | None = None
    derived: Sequence[str] = field(default_factory=tuple)
    max_days: int = 365
    webhook_url: str | None = None
    #: None: the vault's own page, showing `dpia_text` if there is one.
    dpia_url: str | None = None
    #: The organisation answerable for the data, when it is not the service itself.
    controller: str | None = None
    #: An email address or an http(s) URL for questions about the data.
    contact: str | None = None
    dpia_text: str | None = None
    #: Categories it may issue (write under a write grant); each one the catalog lets
    #: be issued. `categories` stays what it may read.
    issues: Sequence[str] = field(default_factory=tuple)
    #: Where it holds its `issues` at source (ARCHITECTURE §8): the vault then stores no
    #: value of them for anyone and asks this URL on each read (`vault.services.sources`).
    source_url: str | None = None


def published_pages(public_url: str, service_id: str) -> tuple[str, str]:
    """The privacy notice and DPIA the vault publishes for a service (ARCHITECTURE §12).

    Stored as absolute URLs, like a service's own: every reader (the consent screen,
    signed consent receipts that citizens keep, the transparency JSON) takes the stored
    URL as it is. The public URL is fixed for a vault's life anyway: it is the WebAuthn
    RP ID that every passkey is bound to, and the OAuth issuer.
    """
    base = f"{public_url.rstrip('/')}/services/{service_id}"
    return f"{base}/privacy", f"{base}/dpia"


def register_service(ctx: VaultContext, reg: Registration, *,
                     public_url: str | None = None) -> str:
    """Validate and register a service; returns its client_id (the service id).

    Without a privacy notice or DPIA URL of its own, the service links to the pages the
    vault publishes for it, under `public_url`.
    """
    service_id = new_id("svc")
    if public_url is None and reg.privacy_notice_url is None:
        raise InvalidService("a privacy notice URL is needed, or the vault's public URL "
                             "to publish the vault's own page about the service")
    privacy, dpia = (published_pages(public_url, service_id) if public_url is not None
                     else (None, None))
    privacy = reg.privacy_notice_url or privacy
    dpia = reg.dpia_url or dpia
    assert privacy is not None  # one of the two, as checked above
    if (reg.jwks is None) == (reg.jwk is None):
        raise InvalidService("register the service's public keys: a JWK Set, or one key")
    jwks = check_service_jwks(reg.jwks if reg.jwks is not None else {"keys": [reg.jwk]})
    validate_registration(
        name=reg.name, description=reg.description, purposes=reg.purposes,
        categories=reg.categories, derived=reg.derived, max_days=reg.max_days, jwk=jwks["keys"][0],
        redirect_uris=reg.redirect_uris, webhook_url=reg.webhook_url,
        privacy_notice_url=privacy, dpia_url=dpia, controller=reg.controller,
        contact=reg.contact, dpia_text=reg.dpia_text, issues=reg.issues,
        source_url=reg.source_url)
    purposes, categories, derived, issues = (
        sorted(set(x)) for x in (reg.purposes, reg.categories, reg.derived, reg.issues))
    with unit_of_work(ctx) as work:
        work.session.add(ServiceRow(
            id=service_id, name=reg.name, description=reg.description, purposes=purposes,
            categories=categories, derived=derived, issues=issues, max_days=reg.max_days,
            jwks=jwks,
            redirect_uris=list(reg.redirect_uris), webhook_url=reg.webhook_url,
            privacy_notice_url=privacy, dpia_url=dpia, active=True, created_at=work.now,
            controller=reg.controller, contact=reg.contact, dpia_text=reg.dpia_text))
        # Public facts about the service: what anyone may know it is allowed to ask.
        # `issues` only for an issuer, so a reader's entry is as it always was.
        body: dict[str, Any] = {
            "service_id": service_id, "name": reg.name, "purposes": purposes,
            "categories": categories, "derived": derived, "max_days": reg.max_days}
        if issues:
            body["issues"] = issues
        if reg.source_url is not None:
            _refuse_stored(work, issues)
            sources.hold_at_source(work, service_id=service_id, url=reg.source_url,
                                   categories=issues)
            body["held_at_source"] = issues  # which, not where: the URL is no one's business
        work.ledger.append("service.registered", body)
    return service_id


def _refuse_stored(work: Work, categories: Sequence[str]) -> None:
    """A category held at source has no value in the vault: refuse to register one the
    vault already holds values of (they would be neither released nor erased)."""
    stored = work.session.execute(
        select(RecordRow.category).where(col(RecordRow.category).in_(list(categories)))
        .distinct()).scalars().all()
    if stored:
        raise InvalidService(f"the vault already holds values of {', '.join(sorted(stored))}: "
                             "a category held at source must have none")


def get_service(session: Session, service_id: str) -> ServiceRow:
    row = session.get(ServiceRow, service_id)
    if row is None:
        raise NotFound(f"no service {service_id}")
    return row


def replace_service_keys(ctx: VaultContext, service_id: str, jwks: Mapping[str, Any]) -> None:
    """Replace a service's public keys with `jwks` (key rotation: register the old and
    the new key, then the new one alone). No ledger entry: the keys are on no entry, as
    at registration; the set is public at `/services/{id}/jwks`."""
    stored = check_service_jwks(jwks)
    with unit_of_work(ctx) as work:
        row = get_service(work.session, service_id)
        row.jwks = stored
        work.session.add(row)


def service_jwks(ctx: VaultContext, service_id: str) -> dict[str, Any]:
    """A registered service's public JWK Set, as `/services/{id}/jwks` serves it; NotFound
    for no such service. A suspended service's keys are served too: the records it issued
    before stay checkable."""
    with reading(ctx) as session:
        return dict(get_service(session, service_id).jwks)


def service_profile(row: ServiceRow) -> ServiceProfile:
    return ServiceProfile(id=row.id, name=row.name, description=row.description,
                          purposes=frozenset(row.purposes), categories=frozenset(row.categories),
                          derived=frozenset(row.derived), max_days=row.max_days,
                          active=row.active, issues=frozenset(row.issues))


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


def adopt_published_pages(ctx: VaultContext, public_url: str) -> int:
    """Point registrations made before the vault published pages at them; returns how
    many changed.

    Until then the demo and `vault service add` without `--privacy-notice-url` stored
    `<public URL>/privacy` and `/dpia`, which never answered anything but a 404. Only
    those exact URLs change: a service's own notice, wherever it is, stays. No ledger
    entry: these URLs are on no entry.
    """
    base = public_url.rstrip("/")
    dead = {f"{base}/privacy", f"{base}/dpia"}
    with reading(ctx) as session:
        stale = session.execute(select(ServiceRow.id).where(
            col(ServiceRow.privacy_notice_url).in_(dead) | col(ServiceRow.dpia_url).in_(dead)
        )).scalars().all()
    if not stale:  # the usual case: no write transaction on every start
        return 0
    with unit_of_work(ctx) as work:
        for row in work.session.execute(select(ServiceRow).where(
                col(ServiceRow.id).in_(stale)).with_for_update()).scalars():
            privacy, dpia = published_pages(base, row.id)
            # Registered with no notice of its own: the DPIA defaults too, as it would now.
            defaulted = row.privacy_notice_url == f"{base}/privacy"
            if defaulted:
                row.privacy_notice_url = privacy
            if row.dpia_url == f"{base}/dpia" or (defaulted and row.dpia_url is None):
                row.dpia_url = dpia
            work.session.add(row)
    return len(stale)


def list_services(ctx: VaultContext) -> list[ServiceRow]:
    with reading(ctx) as session:
        return list(session.execute(select(ServiceRow).order_by(col(ServiceRow.created_at)))
                    .scalars())
