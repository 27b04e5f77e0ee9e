"""Errors raised by `vault.oauth`, one per OAuth error code.

VaultError (vault.errors)
└── OAuthError                        base; `error` is the code, `description` the detail
    ├── InvalidRequestError           invalid_request            RFC 6749 §5.2
    ├── InvalidClientError            invalid_client             RFC 6749 §5.2
    ├── InvalidGrantError             invalid_grant              RFC 6749 §5.2
    │   └── ReplayDetected            a code or refresh token used twice
    ├── UnauthorizedClientError       unauthorized_client        RFC 6749 §5.2
    ├── UnsupportedGrantTypeError     unsupported_grant_type     RFC 6749 §5.2
    ├── InvalidScopeError             invalid_scope              RFC 6749 §5.2
    ├── AccessDeniedError             access_denied              RFC 6749 §4.1.2.1
    │   └── RequestDeniedError        a CIBA request refused when it is made (CIBA §13)
    ├── UnsupportedResponseTypeError  unsupported_response_type  RFC 6749 §4.1.2.1
    ├── ServerError                   server_error               RFC 6749 §4.1.2.1
    ├── TemporarilyUnavailableError   temporarily_unavailable    RFC 6749 §4.1.2.1
    │   └── RateLimitedError          over the client's request rate; `retry_after` seconds
    ├── InvalidTokenError             invalid_token              RFC 6750 §3.1
    ├── InsufficientScopeError        insufficient_scope         RFC 6750 §3.1
    ├── InvalidAuthorizationDetailsError  invalid_authorization_details  RFC 9396 §5
    ├── InvalidRequestUriError        invalid_request_uri        RFC 9126 §2.2 / OIDC Core
    ├── AuthorizationPendingError     authorization_pending      CIBA §11
    ├── SlowDownError                 slow_down                  CIBA §11
    ├── ExpiredTokenError             expired_token              CIBA §11
    └── UnknownUserIdError            unknown_user_id            CIBA §13

The names follow oauthlib's (`...Error`), which also keeps them apart from
`vault.errors.InvalidRequest` and `vault.domain.errors.AccessDenied`. None of them knows
about HTTP: `vault/api/errors.py` maps `error` to a status (400; 401 for invalid_client
and invalid_token; 403 for insufficient_scope and RequestDeniedError; 429 with
Retry-After for RateLimitedError) and the RFC 6749 §5.2 JSON body
`{"error": ..., "error_description": ...}`.

`extra` holds further members of the error JSON: `grant_state` when a token request
fails because of the grant's state (revoked, expired, ...), so a client can tell "the
citizen said stop" from "your refresh token is bad" without parsing prose.

Descriptions are short, plain English and safe to send to the client: they never
quote a token, a key or a claim value, only which rule failed.
"""

from __future__ import annotations

from typing import ClassVar

from vault.errors import VaultError

__all__ = [
    "ERRORS_BY_CODE",
    "AccessDeniedError",
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
    "OAuthError",
    "RateLimitedError",
    "ReplayDetected",
    "RequestDeniedError",
    "ServerError",
    "SlowDownError",
    "TemporarilyUnavailableError",
    "UnauthorizedClientError",
    "UnknownUserIdError",
    "UnsupportedGrantTypeError",
    "UnsupportedResponseTypeError",
]


class OAuthError(VaultError):
    """Base of every OAuth error; `error` is the registered error code."""

    error: ClassVar[str] = "invalid_request"

    def __init__(self, description: str, **extra: str) -> None:
        super().__init__(description)
        self.description = description
        self.extra: dict[str, str] = extra

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description!r})"


class InvalidRequestError(OAuthError):
    """A parameter is missing, repeated, malformed or unsupported."""

    error = "invalid_request"


class InvalidClientError(OAuthError):
    """Client authentication failed (unknown client, bad or replayed assertion)."""

    error = "invalid_client"


class InvalidGrantError(OAuthError):
    """The code, refresh token or grant is invalid, expired, revoked or not this client's."""

    error = "invalid_grant"


class ReplayDetected(InvalidGrantError):
    """A code or refresh token presented a second time: every token it issued has been
    revoked (that revocation commits although the request fails)."""


class UnauthorizedClientError(OAuthError):
    """The client may not use this grant type."""

    error = "unauthorized_client"


class UnsupportedGrantTypeError(OAuthError):
    error = "unsupported_grant_type"


class InvalidScopeError(OAuthError):
    error = "invalid_scope"


class AccessDeniedError(OAuthError):
    """The citizen (or the vault's policy) said no."""

    error = "access_denied"


class RequestDeniedError(AccessDeniedError):
    """CIBA §13: the backchannel authentication request itself is refused (the citizen
    stopped the service asking, or has too many of its requests waiting)."""


class UnsupportedResponseTypeError(OAuthError):
    error = "unsupported_response_type"


class ServerError(OAuthError):
    error = "server_error"


class TemporarilyUnavailableError(OAuthError):
    error = "temporarily_unavailable"


class RateLimitedError(TemporarilyUnavailableError):
    """The client sent requests faster than its limit allows; it may send the next one
    in `retry_after` whole seconds (at least 1). Nothing was done.

    `temporarily_unavailable` rather than a code of our own: it is the registered code
    (RFC 6749 §4.1.2.1) that tells a generic client "try again later", which is what
    this means; the 429 status and Retry-After say how much later."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(f"too many requests from this client; try again in "
                         f"{retry_after} s")


class InvalidTokenError(OAuthError):
    """The access token is malformed, forged, expired or not for this resource."""

    error = "invalid_token"


class InsufficientScopeError(OAuthError):
    error = "insufficient_scope"


class InvalidAuthorizationDetailsError(OAuthError):
    error = "invalid_authorization_details"


class InvalidRequestUriError(OAuthError):
    error = "invalid_request_uri"


class AuthorizationPendingError(OAuthError):
    error = "authorization_pending"


class SlowDownError(OAuthError):
    error = "slow_down"


class ExpiredTokenError(OAuthError):
    """CIBA: the auth_req_id has expired (not an expired access token: that is invalid_token)."""

    error = "expired_token"


class UnknownUserIdError(OAuthError):
    """CIBA: the login_hint names nobody this client knows."""

    error = "unknown_user_id"


#: Each error code and the exception class that carries it.
ERRORS_BY_CODE: dict[str, type[OAuthError]] = {
    cls.error: cls
    for cls in (
        InvalidRequestError, InvalidClientError, InvalidGrantError, UnauthorizedClientError,
        UnsupportedGrantTypeError, InvalidScopeError, AccessDeniedError,
        UnsupportedResponseTypeError, ServerError, TemporarilyUnavailableError,
        InvalidTokenError, InsufficientScopeError, InvalidAuthorizationDetailsError,
        InvalidRequestUriError, AuthorizationPendingError, SlowDownError, ExpiredTokenError,
        UnknownUserIdError,
    )
}
