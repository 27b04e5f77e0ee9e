"""Access tokens: RFC 9068 JWTs, ES256, at most five minutes and never past their grant.

A token's header is `{"alg": "ES256", "kid": <RFC 7638 thumbprint>, "typ": "at+jwt"}`
and its claims are `iss aud sub client_id iat exp jti grant_id authorization_details`
(ARCHITECTURE §4), and `token_family` when the token endpoint issued it: the family of
tokens from one authorization, which the resource server checks is not revoked (RFC
7009, a replayed code, a reused refresh token). `sub` is the citizen's pairwise subject
for this service (`vault.oauth.pairwise`).

Verification pins everything before python-jose runs (RFC 8725 §3.1, RFC 9068 §4): the
header's `alg` must be exactly ES256 and its `typ` at+jwt, the `kid` must name one of
our keys, and jose is handed that EC key with `algorithms=["ES256"]`. Then every claim
above is required and checked against the expected issuer, audience and time.

Clock skew: `LEEWAY` (30 s) is granted to the expiry, `iat` and `nbf` checks, the usual
allowance between the vault's workers and hosts; a token is never accepted more than
30 s after its `exp`, so a token lives at most 5 min 30 s.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from vault.crypto.token_key import TokenKey
from vault.oauth._jws import numeric_date, parse_jws, verify_es256
from vault.oauth.errors import InvalidGrantError, InvalidTokenError

__all__ = [
    "ACCESS_TOKEN_TYP",
    "LEEWAY",
    "MAX_LIFETIME",
    "AccessTokenClaims",
    "VerificationKeys",
    "VerifiedTokens",
    "issue_access_token",
    "jwks",
    "verify_access_token",
]

ACCESS_TOKEN_TYP = "at+jwt"  # noqa: S105 (a media type, not a secret)
#: RFC 9068 §4: "at+jwt" or "application/at+jwt" (media types compare case-insensitively).
_TYP_ACCEPTED = frozenset({"at+jwt", "application/at+jwt"})
MAX_LIFETIME = timedelta(minutes=5)
LEEWAY = timedelta(seconds=30)
_WHAT = "access token"
_STRING_CLAIMS = ("iss", "sub", "client_id", "grant_id", "jti")


class VerificationKeys(Protocol):
    """Public JWKs by kid: a `dict[str, dict]`, or a `vault.crypto.TokenKeys`."""

    def get(self, kid: str, /) -> Mapping[str, Any] | None: ...


@dataclass(frozen=True, slots=True)
class AccessTokenClaims:
    """The claims of an access token we issued or verified (times are aware UTC)."""

    iss: str
    aud: tuple[str, ...]
    sub: str
    client_id: str
    grant_id: str
    jti: str
    iat: datetime
    exp: datetime
    authorization_details: tuple[dict[str, Any], ...]
    #: The key that signed it.
    kid: str
    #: The token family (vault.oauth.families), None for tokens minted outside one.
    token_family: str | None = None

    def expires_in(self, now: datetime) -> int:
        """Whole seconds left (for the token response's `expires_in`), never negative."""
        return max(0, math.floor((self.exp - now).total_seconds()))


def _aware(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValueError(f"{name} must be an aware datetime")
    return value.astimezone(UTC)


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be non-empty text")
    return value


def issue_access_token(
    key: TokenKey,
    *,
    issuer: str,
    audience: str,
    client_id: str,
    sub: str,
    grant_id: str,
    authorization_details: Sequence[Mapping[str, Any]],
    now: datetime,
    grant_expires_at: datetime,
    lifetime: timedelta = MAX_LIFETIME,
    token_family: str | None = None,
) -> tuple[str, AccessTokenClaims]:
    """A signed access token and its claims; `exp` = min(now + lifetime, the grant's end).

    Times are whole seconds rounded down, so `exp` is never after `grant_expires_at`.
    InvalidGrantError when the grant has (all but) ended: no token can be issued for it.
    """
    now = _aware(now, "now")
    grant_expires_at = _aware(grant_expires_at, "grant_expires_at")
    if not timedelta(0) < lifetime <= MAX_LIFETIME:
        raise ValueError(f"an access token lives more than 0 and at most {MAX_LIFETIME}")
    for name, value in (("issuer", issuer), ("audience", audience), ("client_id", client_id),
                        ("sub", sub), ("grant_id", grant_id)):
        _text(value, name)
    details = tuple(dict(d) for d in authorization_details)
    iat = math.floor(now.timestamp())
    exp = math.floor(min(now + lifetime, grant_expires_at).timestamp())
    if exp <= iat:
        raise InvalidGrantError("the grant has expired")
    jti = secrets.token_urlsafe(24)
    payload = {
        "iss": issuer,
        "aud": audience,
        "sub": sub,
        "client_id": client_id,
        "iat": iat,
        "exp": exp,
        "jti": jti,
        "grant_id": grant_id,
        "authorization_details": list(details),
    }
    if token_family is not None:
        payload["token_family"] = _text(token_family, "token_family")
    token = key.sign(payload, typ=ACCESS_TOKEN_TYP)
    claims = AccessTokenClaims(
        iss=issuer, aud=(audience,), sub=sub, client_id=client_id, grant_id=grant_id, jti=jti,
        iat=datetime.fromtimestamp(iat, UTC), exp=datetime.fromtimestamp(exp, UTC),
        authorization_details=details, kid=key.kid, token_family=token_family,
    )
    return token, claims


class VerifiedTokens:
    """The claims of tokens already verified, by their exact text: a service presents the
    same token for up to five minutes, and an ES256 verification costs about 0.1-0.3 ms,
    most of the resource server's token check.

    A hit is only the signature and claim parsing saved: the time window, the expected
    issuer, audience and client, and that the signing key is still published are checked
    again on every use. At most `size` tokens are kept (the oldest go first).
    """

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._claims: dict[str, tuple[str, str, AccessTokenClaims]] = {}

    def get(self, token: str, *, issuer: str, audience: str) -> AccessTokenClaims | None:
        hit = self._claims.get(token)
        if hit is None or hit[0] != issuer or hit[1] != audience:
            return None
        return hit[2]

    def put(self, token: str, *, issuer: str, audience: str,
            claims: AccessTokenClaims) -> None:
        if len(self._claims) >= self._size:
            self._claims.pop(next(iter(self._claims)), None)
        self._claims[token] = (issuer, audience, claims)


def _still_valid(claims: AccessTokenClaims, keys: VerificationKeys, now: datetime,
                 client_id: str | None) -> AccessTokenClaims:
    """The checks that depend on time, key and presenter, for cached claims."""
    if keys.get(claims.kid) is None:
        raise InvalidTokenError("the access token was not signed by a key of this server")
    if client_id is not None and claims.client_id != client_id:
        raise InvalidTokenError("the access token was issued to another client")
    t, leeway = now.timestamp(), LEEWAY.total_seconds()
    if claims.exp.timestamp() <= t - leeway:
        raise InvalidTokenError("the access token has expired")
    if claims.iat.timestamp() > t + leeway:
        raise InvalidTokenError("the access token is not valid yet")
    return claims


def verify_access_token(
    token: str,
    *,
    keys: VerificationKeys,
    issuer: str,
    audience: str,
    now: datetime,
    client_id: str | None = None,
    cache: VerifiedTokens | None = None,
) -> AccessTokenClaims:
    """The claims of `token` if it is one of ours, for `audience`, and valid at `now`.

    `client_id`, when the caller knows which service presents the token, must be the
    one it was issued to (a token of service A is refused from service B).
    Anything else raises InvalidTokenError (RFC 6750 `invalid_token`). With `cache`,
    a token verified before skips its signature check (`VerifiedTokens`).
    """
    now = _aware(now, "now")
    if cache is not None:
        known = cache.get(token, issuer=issuer, audience=audience)
        if known is not None:
            return _still_valid(known, keys, now, client_id)
        claims = _verify(token, keys=keys, issuer=issuer, audience=audience, now=now,
                         client_id=client_id)
        cache.put(token, issuer=issuer, audience=audience, claims=claims)
        return claims
    return _verify(token, keys=keys, issuer=issuer, audience=audience, now=now,
                   client_id=client_id)


def _verify(
    token: str,
    *,
    keys: VerificationKeys,
    issuer: str,
    audience: str,
    now: datetime,
    client_id: str | None,
) -> AccessTokenClaims:
    parsed = parse_jws(token, InvalidTokenError, _WHAT)  # alg is exactly ES256
    typ, kid = parsed.header.get("typ"), parsed.header.get("kid")
    if not isinstance(typ, str) or typ.lower() not in _TYP_ACCEPTED:
        raise InvalidTokenError("the token is not an access token (typ must be at+jwt)")
    jwk = keys.get(kid) if isinstance(kid, str) and kid else None
    if jwk is None:
        raise InvalidTokenError("the access token was not signed by a key of this server")
    verify_es256(parsed, jwk, InvalidTokenError, _WHAT)
    claims = parsed.claims

    for name in _STRING_CLAIMS:
        if not isinstance(claims.get(name), str) or not claims[name]:
            raise InvalidTokenError(f"the access token lacks its '{name}' claim")
    aud = claims.get("aud")
    auds = (aud,) if isinstance(aud, str) else aud
    if not isinstance(auds, list | tuple) or not all(isinstance(a, str) for a in auds):
        raise InvalidTokenError("the access token lacks its 'aud' claim")
    family = claims.get("token_family")
    if family is not None and (not isinstance(family, str) or not family):
        raise InvalidTokenError("the access token's token_family must be text")
    details = claims.get("authorization_details", [])
    if not isinstance(details, list) or not all(isinstance(d, dict) for d in details):
        raise InvalidTokenError("the access token's authorization_details must be objects")
    try:
        iat, exp, nbf = (numeric_date(claims, n) for n in ("iat", "exp", "nbf"))
    except ValueError as exc:
        raise InvalidTokenError(f"the access token's '{exc}' is not a NumericDate") from None
    if iat is None or exp is None:
        raise InvalidTokenError("the access token lacks its 'iat' or 'exp' claim")

    if claims["iss"] != issuer:
        raise InvalidTokenError("the access token was issued by another server")
    if audience not in auds:
        raise InvalidTokenError("the access token is not for this resource")
    if client_id is not None and claims["client_id"] != client_id:
        raise InvalidTokenError("the access token was issued to another client")
    t, leeway = now.timestamp(), LEEWAY.total_seconds()
    if exp <= t - leeway:
        raise InvalidTokenError("the access token has expired")
    if iat > t + leeway or (nbf is not None and nbf > t + leeway):
        raise InvalidTokenError("the access token is not valid yet")
    if exp - iat > MAX_LIFETIME.total_seconds():
        raise InvalidTokenError("the access token claims a longer life than this server gives")

    return AccessTokenClaims(
        iss=claims["iss"], aud=tuple(auds), sub=claims["sub"], client_id=claims["client_id"],
        grant_id=claims["grant_id"], jti=claims["jti"],
        iat=datetime.fromtimestamp(iat, UTC), exp=datetime.fromtimestamp(exp, UTC),
        authorization_details=tuple(details), kid=str(kid), token_family=family,
    )


def jwks(keys: Iterable[TokenKey]) -> dict[str, list[dict[str, str]]]:
    """The JWK Set for `GET /oauth/jwks` (RFC 7517 §5): every key, current first."""
    return {"keys": [key.public_jwk() for key in keys]}
