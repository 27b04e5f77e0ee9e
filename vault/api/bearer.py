"""The bearer token of the resource server (/v1/*), as every route under it checks it.

RFC 6750 §2.1: `Authorization: Bearer <token>` only (a token in a query string or a form
body is not looked at). The token is verified (`verify_access_token`: ES256 by one of our
keys, issuer = the vault's base URL, audience = `resource_audience(base_url)`, not
expired, not before its time), then its client is held to its rate limit
(`vault.api.ratelimit`). `vault.api.resource_routes` (reads) and `vault.api.record_routes`
(an issuer's writes) both depend on `Bearer`; the challenges a refusal carries
(RFC 6750 §3) are built here, so a 401 and a 403 for want of scope say the same realm.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from vault.api.deps import get_state
from vault.api.ratelimit import ClientRateLimiter
from vault.errors import NotAuthorized
from vault.oauth.errors import InvalidTokenError
from vault.oauth.tokens import AccessTokenClaims, verify_access_token

__all__ = [
    "BEARER_SCHEME",
    "GRANT_GONE",
    "LIMITER_ATTRIBUTE",
    "NO_STORE",
    "REALM",
    "RESOURCE_PREFIX",
    "Bearer",
    "BearerTokenRejected",
    "bearer_challenge",
    "bearer_claims",
    "resource_audience",
]

#: Where the resource server lives, under the vault's base URL.
RESOURCE_PREFIX = "/v1"
REALM = "vault"
#: `app.state` attribute holding the ClientRateLimiter (tests may replace it).
LIMITER_ATTRIBUTE = "client_rate_limiter"
#: What every answer carrying personal data or a token's verdict is sent with.
NO_STORE = {"Cache-Control": "no-store"}
#: The token names a grant that is gone (erased) or belongs to another client.
GRANT_GONE = "the access token's grant does not exist or is not this client's"
#: RFC 6750 §2.1 b64token, and §3: error_description is printable ASCII without `"` and `\`.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_UNSAFE_IN_CHALLENGE = re.compile(r'[^\x20\x21\x23-\x5b\x5d-\x7e]')

# Documents the scheme in /openapi.json; the header itself is read by `bearer_claims`,
# which tells "no token" from "a bad token" as RFC 6750 §3.1 asks.
BEARER_SCHEME = HTTPBearer(auto_error=False, bearerFormat="JWT",
                           description="An RFC 9068 access token from POST /oauth/token")


def resource_audience(base_url: str) -> str:
    """The `aud` of every access token for this API: `<base_url>/v1` (RFC 8707 style: the
    resource's absolute URI). The token endpoint issues with it; this server demands it."""
    return base_url.rstrip("/") + RESOURCE_PREFIX


def bearer_challenge(error: str | None = None, description: str = "") -> str:
    """A `WWW-Authenticate` value (RFC 6750 §3): the realm, and the error code and its
    description when there is one (characters §3 does not allow in it are left out)."""
    if error is None:
        return f'Bearer realm="{REALM}"'
    text = _UNSAFE_IN_CHALLENGE.sub("", description)
    return f'Bearer realm="{REALM}", error="{error}", error_description="{text}"'


class BearerTokenRejected(NotAuthorized):
    """No usable access token (RFC 6750 §3). `error` is "invalid_token", or None when the
    request carried no bearer token at all (then the challenge names no error)."""

    def __init__(self, description: str, *, error: Literal["invalid_token"] | None =
                 "invalid_token") -> None:
        super().__init__(description)
        self.description = description
        self.error = error

    def challenge(self) -> str:
        """The WWW-Authenticate value: realm, and the error and its description if any."""
        return bearer_challenge(self.error, self.description)


def _bearer_token(request: Request) -> str:
    values = request.headers.getlist("authorization")
    if not values:
        raise BearerTokenRejected("this resource needs an access token "
                                  "(Authorization: Bearer ...)", error=None)
    if len(values) > 1:
        raise BearerTokenRejected("send exactly one Authorization header")
    scheme, _, token = values[0].strip().partition(" ")
    if scheme.lower() != "bearer":
        raise BearerTokenRejected("this resource takes a bearer access token "
                                  "(Authorization: Bearer ...)", error=None)
    token = token.strip()
    if not _B64TOKEN.fullmatch(token):
        raise BearerTokenRejected("the Authorization header does not carry a bearer token")
    return token


async def bearer_claims(request: Request) -> AccessTokenClaims:
    """The verified claims of the request's access token, within its client's rate limit."""
    state = get_state(request)
    base_url = state.settings.base_url
    try:
        claims = verify_access_token(
            _bearer_token(request), keys=state.token_keys, issuer=base_url,
            audience=resource_audience(base_url), now=state.ctx.clock(),
            cache=state.verified_tokens)
    except InvalidTokenError as exc:
        raise BearerTokenRejected(exc.description) from None
    limiter: ClientRateLimiter | None = getattr(request.app.state, LIMITER_ATTRIBUTE, None)
    if limiter is not None:
        limiter.check(claims.client_id)
    return claims


Bearer = Annotated[AccessTokenClaims, Depends(bearer_claims)]
