"""The vault as an OAuth 2.0 authorization server: the token layer (ARCHITECTURE §4).

Access tokens (`issue_access_token`, `verify_access_token`, `jwks`): RFC 9068 JWTs,
ES256 pinned, at most five minutes and never past their grant. Pairwise subjects
(`pairwise_sub`): each service knows a citizen by its own `sub`. Client
authentication (`verify_client_assertion`): `private_key_jwt` (RFC 7523), ES256, with
jti replay protection (`SqlJtiStore`, `MemoryJtiStore`). Errors: `OAuthError` and one
subclass per RFC 6749 error code (`vault.oauth.errors`).

The signing keys themselves live in `vault.crypto.token_key`.
"""

from vault.oauth.client_auth import (
    CLIENT_ASSERTION_TYPE,
    MAX_ASSERTION_LIFETIME,
    JtiStore,
    MemoryJtiStore,
    SqlJtiStore,
    unverified_client_id,
    verify_client_assertion,
)
from vault.oauth.errors import (
    ERRORS_BY_CODE,
    AccessDeniedError,
    AuthorizationPendingError,
    ExpiredTokenError,
    InsufficientScopeError,
    InvalidAuthorizationDetailsError,
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidRequestUriError,
    InvalidScopeError,
    InvalidTokenError,
    OAuthError,
    ServerError,
    SlowDownError,
    TemporarilyUnavailableError,
    UnauthorizedClientError,
    UnsupportedGrantTypeError,
    UnsupportedResponseTypeError,
)
from vault.oauth.pairwise import PAIRWISE_PREFIX, pairwise_sub
from vault.oauth.tokens import (
    ACCESS_TOKEN_TYP,
    LEEWAY,
    MAX_LIFETIME,
    AccessTokenClaims,
    VerificationKeys,
    issue_access_token,
    jwks,
    verify_access_token,
)

__all__ = [
    "ACCESS_TOKEN_TYP",
    "CLIENT_ASSERTION_TYPE",
    "ERRORS_BY_CODE",
    "LEEWAY",
    "MAX_ASSERTION_LIFETIME",
    "MAX_LIFETIME",
    "PAIRWISE_PREFIX",
    "AccessDeniedError",
    "AccessTokenClaims",
    "AuthorizationPendingError",
    "ExpiredTokenError",
    "InsufficientScopeError",
    "InvalidAuthorizationDetailsError",
    "InvalidClientError",
    "InvalidGrantError",
    "InvalidRequestError",
    "InvalidRequestUriError",
    "InvalidScopeError",
    "InvalidTokenError",
    "JtiStore",
    "MemoryJtiStore",
    "OAuthError",
    "ServerError",
    "SlowDownError",
    "SqlJtiStore",
    "TemporarilyUnavailableError",
    "UnauthorizedClientError",
    "UnsupportedGrantTypeError",
    "UnsupportedResponseTypeError",
    "VerificationKeys",
    "issue_access_token",
    "jwks",
    "pairwise_sub",
    "unverified_client_id",
    "verify_access_token",
    "verify_client_assertion",
]
