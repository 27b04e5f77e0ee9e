"""Children's vaults in the wallet (issue 14 §2): the plan the parent signs, and the page.

A parent signs terms that name ids chosen before anything is written
(`vault.services.dependants.plan_child`). Between the page that shows those terms and
the passkey answer the plan travels in the form, sealed with an HMAC under the wallet's
secret and the parent's id and time, so nobody can change the terms under the signature
or use another person's plan, and a plan left on a page goes stale after 30 minutes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
from sqlmodel import Session, col, select

from vault.domain.relationships import DelegatedAction, Kind
from vault.services import delegations, dependants
from vault.services.context import VaultContext
from vault.services.dependants import ChildPlan
from vault.storage.tables import RelationshipRow
from wallet.errors import WalletError

__all__ = ["PLAN_LIFETIME", "ChildCard", "StalePlan", "children_cards", "open_plan",
           "seal_plan"]

PLAN_LIFETIME = timedelta(minutes=30)


class StalePlan(WalletError):
    """A child's-vault plan that was changed, is someone else's, or is too old."""


def _mac(secret: bytes, payload: bytes) -> str:
    return hmac.new(secret, b"child-plan\x00" + payload, hashlib.sha256).hexdigest()


def seal_plan(secret: bytes, plan: ChildPlan, *, now: datetime) -> str:
    payload = orjson.dumps({"plan": plan.to_json(), "at": now.isoformat()})
    return base64.urlsafe_b64encode(payload).decode() + "." + _mac(secret, payload)


def open_plan(secret: bytes, token: str, *, parent_id: str, now: datetime) -> ChildPlan:
    """The plan sealed in `token` for `parent_id` less than 30 minutes ago, or StalePlan."""
    stale = StalePlan("this page is out of date: start the child's vault again")
    encoded, _, mac = token.partition(".")
    try:
        payload = base64.urlsafe_b64decode(encoded.encode("ascii"))
    except (binascii.Error, ValueError):
        raise stale from None
    if not hmac.compare_digest(mac, _mac(secret, payload)):
        raise stale
    body = orjson.loads(payload)
    plan = ChildPlan.from_json(body["plan"])
    if plan.parent_id != parent_id or now - datetime.fromisoformat(body["at"]) > PLAN_LIFETIME:
        raise stale
    return plan


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
