"""A citizen stops a service asking them, and lets it ask again.

While a block stands, every request that service makes for the citizen is refused before
anything is recorded (`vault.services.grants.asking_refusal`: a CIBA request answers
access_denied, an authorization sends the browser back with access_denied). Blocking
also declines the service's waiting requests, each exactly as if the citizen had pressed
Decline (a `grant.denied` entry and webhook). Grants already approved are not touched:
the citizen revokes those one by one, with their passkey.

Blocks are not on the ledger, by design: `grant.*` entries name the service and the
citizen's pseudonym, so a service reading a public ledger could match a block entry to
its own grants and learn that this citizen blocked it. All it may learn is
access_denied, which it also gets when a citizen simply declines.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from vault.domain.grants import GrantAction, GrantState
from vault.domain.relationships import DelegatedAction
from vault.services import behalf
from vault.services.citizens import get_citizen
from vault.services.context import VaultContext, unit_of_work
from vault.services.grants import DELEGATED, acted_transition
from vault.services.registry import get_service
from vault.storage.tables import GrantRow, ServiceBlockRow, ServiceRow

__all__ = ["AskingStatus", "BlockedService", "asking_status", "block_service",
           "blocked_services", "is_blocked", "unblock_service"]


@dataclass(frozen=True, slots=True)
class BlockedService:
    service_id: str
    name: str
    since: datetime


@dataclass(frozen=True, slots=True)
class AskingStatus:
    """A service as one citizen sees it: may it ask them, and how much is waiting."""

    service_id: str
    name: str
    blocked: bool
    #: Its requests waiting for this citizen's answer (what blocking would decline).
    waiting: int


def block_service(ctx: VaultContext, *, citizen_id: str, service_id: str,
                  actor_id: str | None = None) -> list[str]:
    """Stop `service_id` asking `citizen_id`, and decline its waiting requests; the ids
    of the grants declined. Blocking a blocked service again only declines (none).
    Someone acting for the citizen needs `revoke`, and `approve` too if there are
    requests to decline (declining is answering them)."""
    with unit_of_work(ctx) as work:
        get_citizen(work.session, citizen_id)
        get_service(work.session, service_id)  # NotFound for a made-up id
        behalf.check(work, actor_id=actor_id, subject_id=citizen_id,
                     action=DelegatedAction.REVOKE)
        if work.session.get(ServiceBlockRow, (citizen_id, service_id)) is None:
            work.session.add(ServiceBlockRow(citizen_id=citizen_id, service_id=service_id,
                                             created_at=work.now))
        # Every waiting grant locked before the first entry (as erasure does: grants,
        # then the ledger head), so this cannot deadlock with a read on PostgreSQL.
        waiting = work.session.execute(
            select(GrantRow).where(
                col(GrantRow.citizen_id) == citizen_id,
                col(GrantRow.service_id) == service_id,
                col(GrantRow.state) == GrantState.REQUESTED.value)
            .order_by(col(GrantRow.id)).with_for_update()).scalars().all()
        who = behalf.check(work, actor_id=actor_id, subject_id=citizen_id,
                           action=DELEGATED[GrantAction.DENY]) if waiting else None
        for row in waiting:
            acted_transition(work, row, GrantAction.DENY, who)
        return [row.id for row in waiting]


def unblock_service(ctx: VaultContext, *, citizen_id: str, service_id: str,
                    actor_id: str | None = None) -> bool:
    """Let `service_id` ask `citizen_id` again; False if it was not blocked. Someone
    acting for the citizen needs `approve` (the service may then ask again)."""
    with unit_of_work(ctx) as work:
        behalf.check(work, actor_id=actor_id, subject_id=citizen_id,
                     action=DelegatedAction.APPROVE)
        row = work.session.get(ServiceBlockRow, (citizen_id, service_id))
        if row is None:
            return False
        work.session.delete(row)
        return True


def is_blocked(session: Session, *, citizen_id: str, service_id: str) -> bool:
    return session.get(ServiceBlockRow, (citizen_id, service_id)) is not None


def asking_status(session: Session, *, citizen_id: str, service_id: str) -> AskingStatus:
    """Whether `citizen_id` has stopped `service_id` asking, and how many of its requests
    wait for them; NotFound for a service that does not exist."""
    service = get_service(session, service_id)
    waiting = session.execute(
        select(func.count()).select_from(GrantRow).where(
            col(GrantRow.citizen_id) == citizen_id, col(GrantRow.service_id) == service_id,
            col(GrantRow.state) == GrantState.REQUESTED.value)).scalar_one()
    return AskingStatus(service.id, service.name,
                        is_blocked(session, citizen_id=citizen_id, service_id=service_id),
                        int(waiting))


def blocked_services(session: Session, citizen_id: str) -> list[BlockedService]:
    """The services `citizen_id` has stopped asking, most recent first."""
    rows = session.execute(
        select(ServiceBlockRow.service_id, ServiceRow.name, ServiceBlockRow.created_at)
        .join(ServiceRow, col(ServiceRow.id) == col(ServiceBlockRow.service_id))
        .where(col(ServiceBlockRow.citizen_id) == citizen_id)
        .order_by(col(ServiceBlockRow.created_at).desc(), col(ServiceBlockRow.service_id))
    ).all()
    return [BlockedService(sid, name, since) for sid, name, since in rows]
