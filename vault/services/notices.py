"""What the vault publishes about each service (ARCHITECTURE §12): its privacy notice and
its data protection impact assessment, made from its registration and the catalogs' words.

Public, like the transparency page: who the service is and who answers for it, why it
may ask and on what lawful basis, what it may ask for, for how long, how to reach it, and
the DPIA the operator gave (as text here, or a link to its own). Nothing about citizens.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from vault.domain.categories import categories as category_catalog
from vault.domain.durations import describe_duration
from vault.domain.errors import InvalidService
from vault.domain.services import contact_link
from vault.services.context import VaultContext, reading
from vault.services.registry import get_service, published_pages
from vault.services.transparency import Named, PurposeInfo, derived_label, purpose_info

__all__ = ["CategoryInfo", "ServiceNotice", "service_notice"]


@dataclass(frozen=True, slots=True)
class CategoryInfo:
    code: str
    label: str
    description: str


@dataclass(frozen=True, slots=True)
class ServiceNotice:
    id: str
    name: str
    description: str
    #: Who answers for the data: the organisation registered as controller, or else the
    #: service itself (`controller_given` False).
    controller: str
    controller_given: bool
    purposes: tuple[PurposeInfo, ...]
    categories: tuple[CategoryInfo, ...]
    derived: tuple[Named, ...]
    max_days: int
    #: `max_days` in words ("90 days").
    longest: str
    contact: str | None
    #: Where the contact links: mailto: or the URL.
    contact_href: str | None
    #: The vault's own pages about the service.
    privacy_page: str
    dpia_page: str
    #: The service's own privacy notice and DPIA, when they are somewhere else.
    own_privacy_notice_url: str | None
    own_dpia_url: str | None
    dpia_text: str | None
    active: bool
    registered_at: datetime

    @property
    def dpia_paragraphs(self) -> list[str]:
        """The DPIA text as the operator wrote it, one item per paragraph."""
        text = (self.dpia_text or "").replace("\r\n", "\n")
        return [p.strip() for p in text.split("\n\n") if p.strip()]


def _category(code: str) -> CategoryInfo:
    found = category_catalog().get(code)
    if found is None:  # a code since dropped from the catalog: say so, do not fail
        return CategoryInfo(code, code, "Not in the vault's catalog any more.")
    return CategoryInfo(code, found.label, found.description)


def service_notice(ctx: VaultContext, service_id: str, *, public_url: str) -> ServiceNotice:
    """Everything the service's public pages show; NotFound for an unknown id."""
    with reading(ctx) as session:
        row = get_service(session, service_id)
    privacy_page, dpia_page = published_pages(public_url, row.id)
    contact_href = None
    if row.contact:
        try:
            contact_href = contact_link(row.contact)
        except InvalidService:  # checked at registration; shown as plain text if not
            contact_href = None
    return ServiceNotice(
        id=row.id, name=row.name, description=row.description,
        controller=row.controller or row.name, controller_given=bool(row.controller),
        purposes=tuple(purpose_info(p) for p in row.purposes),
        categories=tuple(_category(c) for c in row.categories),
        derived=tuple(derived_label(d) for d in row.derived), max_days=row.max_days,
        longest=describe_duration(timedelta(days=row.max_days)),
        contact=row.contact, contact_href=contact_href,
        privacy_page=privacy_page, dpia_page=dpia_page,
        own_privacy_notice_url=(row.privacy_notice_url
                                if row.privacy_notice_url != privacy_page else None),
        own_dpia_url=row.dpia_url if row.dpia_url not in (None, dpia_page) else None,
        dpia_text=row.dpia_text, active=row.active, registered_at=row.created_at)
