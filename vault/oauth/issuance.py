"""Issuing tokens for a grant: token families, rotated refresh tokens, pairwise subjects.

Every authorization (a redeemed code, an answered CIBA request) starts one token family.
The family's id is in each access token it issues (`token_family`) and owns each
refresh token. Revoking the family stops both: the resource server refuses its access
tokens on the next read, the token endpoint its refresh tokens.

Refresh tokens are random 256-bit strings stored only as their SHA-256. Each is used
once: using it issues the next (rotation, RFC 9700 §4.14.2); presenting one already used
means two parties hold it, so the whole family is revoked (reuse detection). A refresh
token works while its grant is approved or paused, never past the grant's end.

All functions here run inside the caller's transaction (`Session`), so a token and the
rows behind it commit together or not at all.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from vault.crypto.token_key import TokenKey
from vault.domain.grants import GrantState, GrantTerms
from vault.oauth.errors import InvalidGrantError, ReplayDetected
from vault.oauth.metadata import AUTHORIZATION_DETAILS_TYPE
from vault.oauth.pairwise import pairwise_sub
from vault.oauth.tokens import issue_access_token
from vault.services.context import new_id
from vault.storage.tables import (
    GrantRow,
    OAuthRefreshTokenRow,
    OAuthSubjectRow,
    OAuthTokenFamilyRow,
)

__all__ = [
    "REUSE_MEMORY",
    "TOKEN_USABLE_STATES",
    "Issuer",
    "granted_details",
    "handle_hash",
    "issue_tokens",
    "new_family",
    "new_handle",
    "revoke_family",
    "rotate_refresh_token",
]

#: A grant in these states may have tokens issued (a paused grant's reads are refused
#: by the resource server, but the service keeps its tokens until the citizen resumes).
TOKEN_USABLE_STATES = frozenset({GrantState.APPROVED, GrantState.PAUSED})
#: How long a used refresh token is kept to detect its reuse. A periodic service that
#: refreshes every five minutes would otherwise leave 288 rows a day per grant.
REUSE_MEMORY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Issuer:
    """What the token endpoint signs with and for: configuration, passed in."""

    issuer: str
    #: The resource server's audience (`<issuer>/v1`).
    audience: str
    key: TokenKey
    #: The secret behind pairwise subjects (never rotated: it would change every `sub`).
    pairwise_secret: bytes


def new_handle() -> tuple[str, bytes]:
    """A fresh secret for a client (code, refresh token, auth_req_id) and its stored hash."""
    text = secrets.token_urlsafe(32)
    return text, handle_hash(text)


def handle_hash(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def granted_details(grant: GrantRow) -> list[dict[str, Any]]:
    """The grant's terms as RFC 9396 authorization details: what was granted, with the
    grant id and exact times (which may differ from what was asked: a duration became
    an end)."""
    terms = orjson.loads(grant.terms)
    return [{"type": AUTHORIZATION_DETAILS_TYPE, **terms}]


def _refused_by_state(grant: GrantRow) -> InvalidGrantError:
    state = grant.state
    return InvalidGrantError(f"the grant is {state}: no tokens can be issued for it",
                             grant_state=state)


def new_family(session: Session, *, client_id: str, grant_id: str, now: datetime) -> str:
    family = OAuthTokenFamilyRow(id=new_id("tf"), client_id=client_id, grant_id=grant_id,
                                 created_at=now)
    session.add(family)
    session.flush()
    return family.id


def revoke_family(session: Session, family_id: str, *, now: datetime, because: str) -> bool:
    """Revoke every token of the family; False if it was revoked already (or unknown)."""
    done = session.execute(
        update(OAuthTokenFamilyRow)
        .where(col(OAuthTokenFamilyRow.id) == family_id,
               col(OAuthTokenFamilyRow.revoked_at).is_(None))
        .values(revoked_at=now, revoked_because=because[:40]))
    return bool(done.rowcount)  # type: ignore[attr-defined]


def _remember_subject(session: Session, *, service_id: str, sub: str, citizen_id: str) -> None:
    if session.get(OAuthSubjectRow, (service_id, sub)) is None:
        session.add(OAuthSubjectRow(service_id=service_id, sub=sub, citizen_id=citizen_id))
        session.flush()


def issue_tokens(
    session: Session, issuer: Issuer, *, grant: GrantRow, family_id: str, now: datetime
) -> dict[str, Any]:
    """The token response (RFC 6749 §5.1 plus `grant_id`, `sub` and
    `authorization_details`) for a usable grant: an access token of the family and the
    family's next refresh token."""
    if GrantState(grant.state) not in TOKEN_USABLE_STATES:
        raise _refused_by_state(grant)
    terms = GrantTerms.from_json(orjson.loads(grant.terms))
    sub = pairwise_sub(issuer.pairwise_secret, grant.service_id, grant.citizen_id)
    _remember_subject(session, service_id=grant.service_id, sub=sub,
                      citizen_id=grant.citizen_id)
    details = granted_details(grant)
    token, claims = issue_access_token(
        issuer.key, issuer=issuer.issuer, audience=issuer.audience,
        client_id=grant.service_id, sub=sub, grant_id=grant.id,
        authorization_details=details, now=now, grant_expires_at=terms.ends,
        token_family=family_id)
    refresh, refresh_hash = new_handle()
    session.add(OAuthRefreshTokenRow(hash=refresh_hash, family_id=family_id, created_at=now))
    session.flush()
    return {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": claims.expires_in(now),
        "refresh_token": refresh,
        "grant_id": grant.id,
        "sub": sub,
        "authorization_details": details,
    }


def rotate_refresh_token(
    session: Session, issuer: Issuer, refresh_token: str, *, client_id: str, now: datetime
) -> dict[str, Any]:
    """Use a refresh token (RFC 6749 §6): the next tokens of its family, or
    InvalidGrantError. A used token presented again revokes the family and raises
    ReplayDetected, which the caller commits (see `token_endpoint`)."""
    row = session.execute(
        select(OAuthRefreshTokenRow, OAuthTokenFamilyRow)
        .join(OAuthTokenFamilyRow,
              col(OAuthTokenFamilyRow.id) == col(OAuthRefreshTokenRow.family_id))
        .where(col(OAuthRefreshTokenRow.hash) == handle_hash(refresh_token))
        .with_for_update()
    ).first()
    if row is None:
        raise InvalidGrantError("the refresh token is not valid")
    token, family = row
    if family.client_id != client_id:
        raise InvalidGrantError("the refresh token was issued to another client")
    if family.revoked_at is not None:
        raise InvalidGrantError("the refresh token has been revoked")
    if token.used_at is not None:
        revoke_family(session, family.id, now=now, because="refresh_token_reused")
        raise ReplayDetected("the refresh token was already used: every token issued "
                             "with it has been revoked; ask the citizen again")
    grant = session.execute(
        select(GrantRow).where(col(GrantRow.id) == family.grant_id).with_for_update()
    ).scalar_one()
    if GrantState(grant.state) not in TOKEN_USABLE_STATES:
        raise _refused_by_state(grant)
    token.used_at = now
    session.add(token)
    session.execute(delete(OAuthRefreshTokenRow).where(
        col(OAuthRefreshTokenRow.family_id) == family.id,
        col(OAuthRefreshTokenRow.used_at) < now - REUSE_MEMORY))
    return issue_tokens(session, issuer, grant=grant, family_id=family.id, now=now)

