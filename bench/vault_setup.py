"""Set-up the HTTP benchmarks share (never measured): a citizen with a passkey, a grant
approved with it, and an access token as the token endpoint would issue it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from vault.api.deps import AppState
from vault.api.resource_routes import resource_audience
from vault.oauth import issue_access_token, pairwise_sub
from vault.services import citizens, grants
from vault.services.context import VaultContext
from wallet.passkeys import RelyingParty, add_passkey, registration_options, user_handle
from wallet.passkeys.software import SoftAuthenticator

__all__ = ["access_token", "approved_grant", "citizen_with_passkey"]


def citizen_with_passkey(ctx: VaultContext, base_url: str,
                         user_name: str) -> tuple[str, SoftAuthenticator]:
    """A new citizen's id, and the software authenticator holding their passkey."""
    c = citizens.enrol_citizen(ctx)
    device = SoftAuthenticator(origin=base_url)
    rp = RelyingParty.from_public_url(base_url)
    options, challenge = registration_options(rp, user_id=user_handle(c.id),
                                              user_name=user_name, exclude=[])
    add_passkey(ctx, rp, citizen_id=c.id, credential=device.create(options),
                expected_challenge=challenge, label="bench")
    return c.id, device


def approved_grant(ctx: VaultContext, device: SoftAuthenticator, *, service_id: str,
                   citizen_id: str, **request: Any) -> grants.GrantView:
    """`grants.request_grant(**request)`, approved with the citizen's passkey."""
    g = grants.request_grant(ctx, service_id=service_id, citizen_id=citizen_id, **request)
    return grants.approve_grant(ctx, g.id, citizen_id=citizen_id,
                                proof=device.proof(challenge=g.terms_hash))


def access_token(state: AppState, service_id: str, citizen_id: str,
                 grant: grants.GrantView, *, sub: str | None = None) -> tuple[str, datetime]:
    """A fresh access token for `grant`, as the token endpoint issues it, and its expiry;
    `sub` defaults to the service's pairwise subject of the citizen."""
    base = state.settings.base_url
    token, claims = issue_access_token(
        state.token_keys.current, issuer=base, audience=resource_audience(base),
        client_id=service_id, grant_id=grant.id,
        sub=sub or pairwise_sub(state.app_secret, service_id, citizen_id),
        authorization_details=[{"type": "personal_data", **grant.terms.to_json()}],
        now=datetime.now(UTC), grant_expires_at=grant.terms.ends)
    return token, claims.exp
