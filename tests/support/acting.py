"""Relationships made live for tests of acting for someone (issue 14 part B): proposed and
signed by both people's passkeys, as the wallet's invitation pages do."""

from __future__ import annotations

from datetime import timedelta

from vault.services import delegations
from vault.services.context import VaultContext, unit_of_work
from wallet.passkeys.software import SoftAuthenticator

__all__ = ["end_relationship", "live_relationship"]


def live_relationship(
    ctx: VaultContext, *, principal: str, delegate: str, principal_device: SoftAuthenticator,
    delegate_device: SoftAuthenticator, actions: tuple[str, ...] = ("view",),
    kind: str = "attorney", days: float = 30,
) -> str:
    """A live relationship letting `delegate` take `actions` in `principal`'s vault; its id."""
    with unit_of_work(ctx) as work:
        row = delegations.propose(
            work, principal_id=principal, delegate_id=delegate, kind=kind,
            actions=list(actions), until=work.now + timedelta(days=days), origin="invited")
        for side, device in (("principal", principal_device), ("delegate", delegate_device)):
            delegations.sign(work, row, side=side,  # type: ignore[arg-type]
                             proof=device.proof(challenge=row.terms_hash),
                             verifier=ctx.approvals)
        assert row.state == "live"
        return row.id


def end_relationship(ctx: VaultContext, relationship_id: str, *, by: str = "principal"
                     ) -> None:
    with unit_of_work(ctx) as work:
        delegations.end(work, delegations.lock(work, relationship_id), by=by)
