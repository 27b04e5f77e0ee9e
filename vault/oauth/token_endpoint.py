"""The token endpoint (RFC 6749 §3.2), introspection (RFC 7662) and revocation (RFC 7009).

Every request authenticates its client by private_key_jwt first (`authenticate_client`;
an assertion may name the issuer, the token endpoint or the endpoint it is sent to).

Grant types:

* `authorization_code` (RFC 6749 §4.1.3 with PKCE, RFC 7636 §4.6): the code must be one
  this client was given, unused and at most `CODE_LIFETIME` old, for the same
  `redirect_uri`, with the `code_verifier` whose S256 is the pushed `code_challenge`.
  A code presented a second time revokes the tokens the first use issued (RFC 6749
  §4.1.2, RFC 9700 §4.5).
* `refresh_token` (RFC 6749 §6): rotated on every use, a reused one revokes its family
  (`vault.oauth.issuance.rotate_refresh_token`).
* `urn:openid:params:grant-type:ciba`: `vault.oauth.backchannel.poll`.

Some refusals change state that must stay changed (a replay revokes tokens; a poll
records its time), so each request runs in one transaction that commits before the
error is raised.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from vault.domain.grants import GrantState
from vault.oauth.backchannel import poll
from vault.oauth.client_auth import JtiStore
from vault.oauth.errors import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidTokenError,
    OAuthError,
    ReplayDetected,
    UnsupportedGrantTypeError,
)
from vault.oauth.issuance import (
    TOKEN_USABLE_STATES,
    Issuer,
    handle_hash,
    issue_tokens,
    new_family,
    revoke_family,
    rotate_refresh_token,
)
from vault.oauth.metadata import CIBA_GRANT_TYPE
from vault.oauth.par import authenticate_client
from vault.oauth.tokens import VerificationKeys, verify_access_token
from vault.services.context import VaultContext, reading
from vault.storage.tables import (
    GrantRow,
    OAuthRefreshTokenRow,
    OAuthRequestRow,
    OAuthTokenFamilyRow,
)

__all__ = ["introspect", "revoke", "token_request"]

_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")  # RFC 7636 §4.1
_MAX_HANDLE = 200
_MAX_TOKEN = 4096


def _in_transaction(ctx: VaultContext, work: Callable[[Session], dict[str, Any] | OAuthError]
                    ) -> dict[str, Any]:
    """Run `work` in one transaction that commits whether it answers or refuses with a
    returned error or a ReplayDetected; other errors roll back."""
    failure: OAuthError | None = None
    with Session(ctx.engine, expire_on_commit=False) as session, session.begin():
        try:
            outcome = work(session)
        except ReplayDetected as exc:
            outcome = exc
        if isinstance(outcome, OAuthError):
            failure = outcome
        else:
            answer = outcome
    if failure is not None:
        raise failure
    return answer


def _required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if value is None:
        raise InvalidRequestError(f"{name} is required")
    if len(value) > _MAX_HANDLE and name != "redirect_uri":
        raise InvalidGrantError(f"the {name} is not valid")
    return value


def _pkce_matches(verifier: str, challenge: str) -> bool:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return hmac.compare_digest(computed, challenge)


def _redeem_code(session: Session, issuer: Issuer, params: Mapping[str, str], *,
                 client_id: str, now: datetime) -> dict[str, Any]:
    code = _required(params, "code")
    redirect_uri = _required(params, "redirect_uri")
    verifier = _required(params, "code_verifier")
    row = session.execute(
        select(OAuthRequestRow).where(col(OAuthRequestRow.code_hash) == handle_hash(code))
        .with_for_update()).scalar_one_or_none()
    if row is None or row.client_id != client_id:
        raise InvalidGrantError("the authorization code is not valid")
    if row.code_used_at is not None:
        if row.family_id is not None:
            revoke_family(session, row.family_id, now=now, because="code_replayed")
        raise ReplayDetected("the authorization code was already used: every token "
                             "issued with it has been revoked")
    assert row.code_expires_at is not None and row.grant_id is not None  # set with the code
    if now >= row.code_expires_at:
        raise InvalidGrantError("the authorization code has expired")
    if redirect_uri != row.redirect_uri:
        raise InvalidGrantError("redirect_uri is not the one the code was issued for")
    if not _VERIFIER.fullmatch(verifier) or not _pkce_matches(verifier, row.code_challenge):
        raise InvalidGrantError("code_verifier does not match the code_challenge (PKCE)")
    grant = session.execute(
        select(GrantRow).where(col(GrantRow.id) == row.grant_id).with_for_update()
    ).scalar_one()
    row.code_used_at = now
    row.family_id = new_family(session, client_id=client_id, grant_id=grant.id, now=now)
    session.add(row)
    return issue_tokens(session, issuer, grant=grant, family_id=row.family_id, now=now)


def token_request(
    ctx: VaultContext,
    issuer: Issuer,
    params: Mapping[str, str],
    *,
    audience: Collection[str],
    seen: JtiStore,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Answer a token request: the RFC 6749 §5.1 response, or an OAuthError."""
    now = now or ctx.clock()
    grant_type = params.get("grant_type")
    if grant_type is None:
        raise InvalidRequestError("grant_type is required")
    service = authenticate_client(ctx, params, audience=audience, seen=seen, now=now)
    if grant_type == "authorization_code":
        return _in_transaction(ctx, lambda s: _redeem_code(
            s, issuer, params, client_id=service.id, now=now))
    if grant_type == "refresh_token":
        token = _required(params, "refresh_token")
        if "scope" in params:
            raise InvalidRequestError("scope cannot be narrowed on refresh: there are none")
        return _in_transaction(ctx, lambda s: rotate_refresh_token(
            s, issuer, token, client_id=service.id, now=now))
    if grant_type == CIBA_GRANT_TYPE:
        auth_req_id = _required(params, "auth_req_id")
        return _in_transaction(ctx, lambda s: poll(
            s, issuer, auth_req_id, client_id=service.id, now=now))
    raise UnsupportedGrantTypeError(
        "grant_type must be authorization_code, refresh_token or " + CIBA_GRANT_TYPE)


# -- introspection and revocation ------------------------------------------------------------


def _token(params: Mapping[str, str]) -> str:
    """The `token` to introspect or revoke ("" if too long to be one of ours)."""
    token = params.get("token")
    if token is None:
        raise InvalidRequestError("token is required")
    return token if len(token) <= _MAX_TOKEN else ""


@dataclass(frozen=True, slots=True)
class _Presented:
    """A token a client presented that is one of ours, issued to that client."""

    #: Its family (None for an access token minted outside the token endpoint).
    family_id: str | None
    #: What introspection reports of it (RFC 7662 §2.2 members).
    facts: dict[str, Any]
    #: A refresh token already used: inactive, though revoking with it still works.
    spent: bool = False


def _presented(session: Session, token: str, issuer: Issuer, keys: VerificationKeys,
               client_id: str, now: datetime) -> _Presented | None:
    """What `token` is (an access token if it looks like a JWT, else a refresh token),
    or None if it is not a valid token of `client_id`."""
    if token.count(".") == 2:
        try:
            claims = verify_access_token(token, keys=keys, issuer=issuer.issuer,
                                         audience=issuer.audience, now=now,
                                         client_id=client_id)
        except InvalidTokenError:
            return None
        return _Presented(claims.token_family, {
            "client_id": claims.client_id, "sub": claims.sub, "iss": claims.iss,
            "aud": list(claims.aud), "jti": claims.jti, "grant_id": claims.grant_id,
            "iat": int(claims.iat.timestamp()), "exp": int(claims.exp.timestamp()),
            "token_type": "Bearer",
            "authorization_details": list(claims.authorization_details)})
    refresh = session.get(OAuthRefreshTokenRow, handle_hash(token)) if token else None
    if refresh is None:
        return None
    return _Presented(refresh.family_id, {"token_type": "refresh_token"},
                      spent=refresh.used_at is not None)


def introspect(
    ctx: VaultContext,
    issuer: Issuer,
    keys: VerificationKeys,
    params: Mapping[str, str],
    *,
    audience: Collection[str],
    seen: JtiStore,
    now: datetime | None = None,
) -> dict[str, Any]:
    """RFC 7662 §2.2: `{"active": false}` unless `token` is a live token of this client
    (its own only: another client's token is as good as unknown), whose family is not
    revoked and whose grant is approved or paused; then its claims and `grant_state`."""
    now = now or ctx.clock()
    service = authenticate_client(ctx, params, audience=audience, seen=seen, now=now)
    token = _token(params)
    inactive: dict[str, Any] = {"active": False}
    with reading(ctx) as session:
        found = _presented(session, token, issuer, keys, service.id, now)
        if found is None or found.spent:
            return inactive
        family = session.get(OAuthTokenFamilyRow, found.family_id) if found.family_id else None
        if found.family_id is not None and (family is None or family.revoked_at is not None):
            return inactive
        grant_id = found.facts.get("grant_id") or (family.grant_id if family else None)
        grant = session.get(GrantRow, grant_id) if grant_id else None
        if grant is None or grant.service_id != service.id or \
                GrantState(grant.state) not in TOKEN_USABLE_STATES:
            return inactive
        return {"active": True, "client_id": service.id, "grant_id": grant.id,
                **found.facts, "grant_state": grant.state}


def revoke(
    ctx: VaultContext,
    issuer: Issuer,
    keys: VerificationKeys,
    params: Mapping[str, str],
    *,
    audience: Collection[str],
    seen: JtiStore,
    now: datetime | None = None,
) -> None:
    """RFC 7009 §2: revoke the family of `token` (a refresh or an access token of this
    client). Unknown, invalid or already revoked tokens are not an error (§2.2)."""
    now = now or ctx.clock()
    service = authenticate_client(ctx, params, audience=audience, seen=seen, now=now)
    token = _token(params)
    with Session(ctx.engine, expire_on_commit=False) as session, session.begin():
        found = _presented(session, token, issuer, keys, service.id, now)
        family = session.get(OAuthTokenFamilyRow, found.family_id) \
            if found is not None and found.family_id else None
        if family is not None and family.client_id == service.id:
            revoke_family(session, family.id, now=now, because="revoked_by_client")
