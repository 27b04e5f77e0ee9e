"""Children's vaults in the wallet (issue 14 §2): the plan the parent signs, and the page.

A parent signs terms that name ids chosen before anything is written
(`vault.services.dependants.plan_child`). Between the page that shows those terms and
the passkey answer the plan travels in the form's hidden fields, under an HMAC of the
wallet's secret over the plan, the parent's id and the time, so nobody can change the
terms under the signature or use another person's plan, and a plan left on a page goes
stale after 30 minutes.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import orjson
from sqlmodel import Session, col, select

from vault.domain.relationships import DelegatedAction, Kind
from vault.services import delegations, dependants
from vault.services.context import VaultContext
from vault.services.dependants import ChildPlan
from vault.storage.tables import RelationshipRow
from wallet.errors import StalePlan

__all__ = ["PLAN_LIFETIME", "ChildCard", "children_cards", "open_plan", "seal_plan"]

PLAN_LIFETIME = timedelta(minutes=30)


#: The child's details as typed: each travels in a field of its own (the wallet's script
#: posts fields of at most 500 characters), beside `plan`: the chosen ids and the times,
#: with the MAC over those, the details and the parent.
_DETAILS = ("given", "family", "date_of_birth")


def _mac(secret: bytes, parent_id: str, ids: str, details: list[str]) -> str:
    return hmac.new(secret, b"child-plan\x00" + orjson.dumps([parent_id, ids, *details]),
                    hashlib.sha256).hexdigest()


def seal_plan(secret: bytes, plan: ChildPlan, *, now: datetime) -> dict[str, str]:
    """The form fields that carry `plan` to the parent's signature and back."""
    details = [plan.given, plan.family, plan.date_of_birth.isoformat()]
    ids = ".".join([plan.child_id, plan.child_subject, plan.relationship_id,
                    str(int(plan.until.timestamp())), str(int(now.timestamp()))])
    return {"plan": f"{ids}.{_mac(secret, plan.parent_id, ids, details)}",
            **dict(zip(_DETAILS, details, strict=True))}


def open_plan(secret: bytes, fields: Mapping[str, Any], *, parent_id: str,
              now: datetime) -> ChildPlan:
    """The plan `seal_plan` put in these fields for `parent_id` less than 30 minutes
    ago, or StalePlan."""
    stale = StalePlan("this page is out of date: start the child's vault again")
    token, details = fields.get("plan"), [fields.get(k) for k in _DETAILS]
    if not isinstance(token, str) or not all(isinstance(d, str) for d in details):
        raise stale
    *parts, mac = token.split(".")
    if len(parts) != 5 or not hmac.compare_digest(mac.encode(), _mac(
            secret, parent_id, ".".join(parts), cast("list[str]", details)).encode()):
        raise stale
    child_id, subject, relationship_id, until, made = parts
    at = datetime.fromtimestamp(int(made), UTC)
    if not timedelta(minutes=-1) <= now - at <= PLAN_LIFETIME:
        raise stale
    given, family, born = cast("list[str]", details)
    return ChildPlan(parent_id=parent_id, child_id=child_id, child_subject=subject,
                     relationship_id=relationship_id, given=given, family=family,
                     date_of_birth=date.fromisoformat(born),
                     until=datetime.fromtimestamp(int(until), UTC))


@dataclass(frozen=True, slots=True)
class Actor:
    name: str
    kind: str
    until: datetime
    everything: bool


@dataclass(frozen=True, slots=True)
class ChildCard:
    child_id: str
    name: str
    until: datetime
    handed_over: bool
    #: Everyone who can act in the child's vault now (the vault lists them).
    actors: list[Actor]


def children_cards(ctx: VaultContext, session: Session, parent_id: str) -> list[ChildCard]:
    """The vaults `parent_id` made for children and can still act in, each with who can
    act in it now."""
    now = ctx.clock()
    children = dependants.children_of(session, parent_id, now=now)
    ids = [c.child_id for c in children]
    rows = session.execute(select(RelationshipRow).where(
        col(RelationshipRow.principal_id).in_(ids),
        col(RelationshipRow.state) == delegations.LIVE,
        col(RelationshipRow.until) > now).order_by(col(RelationshipRow.created_at))
    ).scalars().all() if ids else []
    names = delegations.display_names(ctx, session, ids + [r.delegate_id for r in rows])
    cards = []
    for child in children:
        actors = [Actor("You" if r.delegate_id == parent_id else names[r.delegate_id],
                        Kind(r.kind).value, r.until,
                        delegations.actions_of(r) == frozenset(DelegatedAction))
                  for r in rows if r.principal_id == child.child_id]
        cards.append(ChildCard(child.child_id, names[child.child_id], child.until,
                               child.handed_over, actors))
    return cards
