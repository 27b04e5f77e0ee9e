"""What can go wrong when a service talks to the vault: one base class, flat subclasses.

    VaultClientError           base; `code` (RFC 6749 error, problem reason or grant state)
    ├── ProtocolError          the vault refused the request (`code`: the RFC 6749 error,
    │                          e.g. invalid_request, invalid_client, invalid_grant) or
    │                          answered something this SDK does not understand
    ├── AuthorizationFailed    the redirect back from the wallet is not a good answer:
    │                          wrong state or issuer, no code, or an error other than
    │                          access_denied
    ├── GrantPending           the citizen has not answered yet (`wait` timed out)
    ├── GrantDenied            declined, cancelled, lapsed or never approved
    ├── GrantRevoked           the citizen revoked the grant
    ├── GrantPaused            the citizen paused the grant (it may be resumed)
    ├── GrantExpired           the grant, or the backchannel request, has expired
    ├── GrantExhausted         every read the grant allows has been made
    ├── GrantNotYetValid       the grant starts later (not_before)
    ├── TooSoon                min_interval has not passed since the last read
    ├── ServiceSuspended       the vault operator suspended this service
    ├── RateLimited            over the service's rate limit; `retry_after` seconds
    ├── VaultUnavailable       the vault could not be reached, or is busy (503)
    ├── WebhookInvalid         a webhook delivery that must not be trusted
    ├── RecordInvalid          an issuer's signed record that must not be trusted
    │                          (`code`: too_large, malformed, unknown_key, ...)
    ├── RecordRefused          the vault refused a record this service wrote, and
    │                          stored nothing (`code`: the reason: bad_signature,
    │                          invalid_value, jti_reused, too_large, ...)
    └── SourceRequestInvalid   a request to a source that must not be answered
                               (`code`: bad_signature, wrong_audience, replayed, ...)

Configuration mistakes (a key that is not P-256, terms with both `duration` and
`expires_at`) raise ValueError or TypeError when they are made, not these.
"""

from __future__ import annotations

__all__ = [
    "AuthorizationFailed",
    "GrantDenied",
    "GrantExhausted",
    "GrantExpired",
    "GrantNotYetValid",
    "GrantPaused",
    "GrantPending",
    "GrantRevoked",
    "ProtocolError",
    "RateLimited",
    "RecordInvalid",
    "RecordRefused",
    "ServiceSuspended",
    "SourceRequestInvalid",
    "TooSoon",
    "VaultClientError",
    "VaultUnavailable",
    "WebhookInvalid",
]


class VaultClientError(Exception):
    """Base of every error the SDK raises about the vault's answers.

    `code` is the machine-readable cause when the vault gave one: the RFC 6749 `error`,
    the 403 problem's `reason`, or the token endpoint's `grant_state`. `status` is the
    HTTP status of the answer, when there was one.
    """

    def __init__(self, message: str, *, code: str | None = None,
                 status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class ProtocolError(VaultClientError):
    """The vault refused the request, or its answer breaks the contract."""


class AuthorizationFailed(VaultClientError):
    """The authorization response cannot be used (see `code`); start again."""


class GrantPending(VaultClientError):
    """The citizen has not answered yet; `wait` again with the same request."""


class GrantDenied(VaultClientError):
    """The citizen declined (or cancelled, or let the request lapse)."""


class GrantRevoked(VaultClientError):
    """The citizen revoked the grant: nothing more can be read under it."""


class GrantPaused(VaultClientError):
    """The citizen paused the grant; reads work again if they resume it."""


class GrantExpired(VaultClientError):
    """The grant's time is over, or a backchannel request expired unanswered."""


class GrantExhausted(VaultClientError):
    """The grant allowed a number of reads and all have been made."""


class GrantNotYetValid(VaultClientError):
    """The grant's not_before is still in the future."""


class TooSoon(VaultClientError):
    """The grant's min_interval has not passed since the last read.

    `retry_after` is in seconds when the vault said (Retry-After), else None."""

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message, code=code, status=status)
        self.retry_after = retry_after


class ServiceSuspended(VaultClientError):
    """The vault operator suspended this service: every request is refused."""


class RateLimited(VaultClientError):
    """Over the service's rate limit; try again after `retry_after` seconds (None: unsaid)."""

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message, code=code, status=status)
        self.retry_after = retry_after


class VaultUnavailable(VaultClientError):
    """The vault is busy (503, `retry_after` seconds) or could not be reached at all
    (the transport error is the `__cause__`)."""

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message, code=code, status=status)
        self.retry_after = retry_after


class WebhookInvalid(VaultClientError):
    """A webhook whose signature, timestamp or body does not check out: ignore it."""


class RecordInvalid(VaultClientError):
    """An issuer's record (`clients.service.records.verify_record`) whose signature or
    claims do not check out; `code` says which rule it broke."""


class RecordRefused(VaultClientError):
    """The vault refused a record this service wrote (PUT /v1/records/{category}) and
    stored nothing; `code` is the rule it broke (the problem's `reason`)."""


class SourceRequestInvalid(VaultClientError):
    """A request the vault sent a source (`clients.service.sources`) that must not be
    answered; `code` says which rule it broke."""
