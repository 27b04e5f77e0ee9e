"""A helper at a counter (assisted digital, issue 14 §3): one visit, agreed by two passkeys.

At a library or council counter the helper, signed in on the counter's computer, chooses
what they may do for the citizen in front of them (view, and perhaps edit, approve,
revoke) and for how long (at most a day). The helper does not know in advance who the
citizen is, and the terms both sign name the citizen (`DelegationTerms.principal`), so
the visit takes three touches, each a WebAuthn assertion:

1. the citizen's security key or phone answers a *discoverable* assertion (no
   allowCredentials) over a one-time ceremony challenge: its user handle says whose
   passkey it is, checked as at sign in (`verify_sign_in`). That identifies the citizen
   and proposes the relationship (kind helper, origin counter) in one transaction;
2. the citizen signs that relationship's terms hash (discoverable again: the counter's
   computer never learns their credential ids), checked against their own passkeys;
3. the helper signs the same hash with their own passkey, and it goes live.

So both people sign exactly the terms the ledger's `delegation.granted` carries, as for
any other relationship. The citizen sees the visit on their People page and can end it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from vault.domain.relationships import Kind, RelationshipRefused, check_terms
from vault.errors import NotFound
from vault.services import delegations
from vault.services.approvals import ApprovalProof
from vault.services.context import VaultContext, unit_of_work
from vault.storage.tables import RelationshipRow
from wallet.errors import PasskeyRejected
from wallet.passkeys.authentication import verify_sign_in
from wallet.passkeys.challenges import Ceremony
from wallet.passkeys.relying_party import RelyingParty

__all__ = ["DEFAULT_HOURS", "HOURS", "ORIGIN", "check_visit", "identify", "sign",
           "visit_of"]

ORIGIN = "counter"
#: How long a visit may last, in hours (a helper: at most a day), and the usual one.
HOURS = range(1, 25)
DEFAULT_HOURS = 2
_VIEW_ONLY = ("view",)


def _not_acting(acting_for: str | None) -> None:
    # A delegate may not delegate further: a helper acting for someone sets nothing up.
    if acting_for is not None:
        raise RelationshipRefused("further")


def check_visit(actions: list[str], hours: int, *, now: datetime,
                acting_for: str | None = None) -> tuple[list[str], datetime]:
    """The visit's actions (view always) and end, or RelationshipRefused saying why:
    over a day, no time at all, an unknown action, or a helper acting for someone."""
    _not_acting(acting_for)
    chosen = sorted({*actions, *_VIEW_ONLY})
    until = now + timedelta(hours=hours)
    check_terms(Kind.HELPER, chosen, until, now=now)
    return chosen, until


def identify(ctx: VaultContext, rp: RelyingParty, *, helper_id: str, ceremony: Ceremony,
             credential: Mapping[str, Any], actions: list[str], hours: int,
             acting_for: str | None = None) -> str:
    """Step 1: whose passkey answered the counter's ceremony, and the visit proposed for
    them (its id). Refused with nothing written: a ceremony another helper started, a
    passkey the vault does not know, the helper themself, over a day, while acting."""
    if ceremony.citizen_id != helper_id:
        raise PasskeyRejected("challenge_unknown", "this passkey request was started by "
                              "someone else; start again")
    with unit_of_work(ctx) as work:
        chosen, until = check_visit(actions, hours, now=work.now, acting_for=acting_for)
        citizen_id = verify_sign_in(work.session, rp, credential=credential,
                                    expected_challenge=ceremony.challenge, now=work.now)
        row = delegations.propose(work, principal_id=citizen_id, delegate_id=helper_id,
                                  kind=Kind.HELPER, actions=chosen, until=until,
                                  origin=ORIGIN)
        return row.id


def visit_of(session: Session, helper_id: str, visit_id: str) -> RelationshipRow:
    """A counter visit of this helper's (NotFound for anyone else's: one answer for both)."""
    row = session.get(RelationshipRow, visit_id)
    if row is None or row.delegate_id != helper_id or row.origin != ORIGIN:
        raise NotFound("no such visit")
    return row


def sign(ctx: VaultContext, *, helper_id: str, visit_id: str, side: delegations.Side,
         proof: ApprovalProof, acting_for: str | None = None) -> str:
    """Steps 2 and 3: the citizen's or the helper's signature over the visit's terms
    hash; the visit's state after it ("live" once both signed)."""
    _not_acting(acting_for)
    with unit_of_work(ctx) as work:
        visit_of(work.session, helper_id, visit_id)
        row = delegations.lock(work, visit_id)
        if side == "delegate" and row.principal_assertion is None:
            raise RelationshipRefused("not_live", "the citizen signs the terms first")
        delegations.sign(work, row, side=side, proof=proof, verifier=ctx.approvals)
        return row.state
