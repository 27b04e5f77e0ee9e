"""Rows of the activity tables, shared by the dashboard, the activity page and a grant;
and the rows of what others did on the citizen's behalf (issue 14 §3)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from sqlmodel import Session, col, select

from vault.domain.purposes import purposes as purpose_catalog
from vault.services import delegations
from vault.services.activity import AccessView, service_names
from vault.services.behalf import DoneForYou
from vault.services.context import VaultContext
from vault.storage.tables import GrantRow
from wallet.views import category_label, derived_label, when

__all__ = ["AccessRow", "DoneRow", "access_rows", "done_rows"]


@dataclass(frozen=True, slots=True)
class AccessRow:
    seq: int
    grant_id: str
    service: str
    what: tuple[str, ...]
    purpose: str
    at: str


def access_rows(session: Session, items: Sequence[AccessView], names: dict[str, str]
                ) -> list[AccessRow]:
    """Accesses in words; one query for the purposes of all their grants."""
    ids = sorted({a.grant_id for a in items})
    purposes: dict[str, str] = {}
    if ids:
        for gid, terms in session.execute(
            select(col(GrantRow.id), col(GrantRow.terms)).where(col(GrantRow.id).in_(ids))
        ).all():
            code = orjson.loads(terms)["purpose"]
            found = purpose_catalog().get(code)
            purposes[gid] = found.text if found is not None else code
    return [
        AccessRow(a.seq, a.grant_id, names.get(a.service_id, "A service"),
                  tuple(category_label(c) for c in a.categories)
                  + tuple(f"Answer only: {derived_label(d)}" for d in a.derived),
                  purposes.get(a.grant_id, ""), when(a.at))
        for a in items
    ]


@dataclass(frozen=True, slots=True)
class DoneRow:
    seq: int
    who: str
    what: str
    at: str


#: What each kind of entry a delegate can cause says, in words ({service}, {what}).
_DONE_WORDS = {
    "grant.approved": "Said yes to {service}",
    "grant.denied": "Said no to {service}",
    "grant.paused": "Paused what {service} can see",
    "grant.resumed": "Turned {service} back on",
    "grant.revoked": "Stopped {service} seeing your information",
    "record.written": "Changed your {what}",
    "record.deleted": "Deleted your {what}",
    "record.disputed": "Told the issuer your {what} is wrong",
}


def done_rows(ctx: VaultContext, session: Session, items: Sequence[DoneForYou]
              ) -> list[DoneRow]:
    """Who did what, when, in words (one query for the grants' services)."""
    grant_ids = sorted({d.grant_id for d in items if d.grant_id})
    services: dict[str, str] = {}
    if grant_ids:
        services = dict(session.execute(
            select(col(GrantRow.id), col(GrantRow.service_id))
            .where(col(GrantRow.id).in_(grant_ids))).all())
    names = service_names(session, list(services.values()))
    people = delegations.display_names(ctx, session,
                                       [d.actor_id for d in items if d.actor_id])
    rows = []
    for d in items:
        service = names.get(services.get(d.grant_id or "", ""), "a service")
        what = category_label(d.category).lower() if d.category else "information"
        words = _DONE_WORDS.get(d.kind, d.kind).format(service=service, what=what)
        who = people.get(d.actor_id, "") if d.actor_id else \
            "Someone who has since left the vault"
        rows.append(DoneRow(d.seq, who, words, when(d.at)))
    return rows
