"""The HTTP messages of the SDK, without doing any HTTP: what to send, and what an answer
means. `core` builds requests with these and reads answers with them; the sync and async
clients only carry the bytes (this is the sans-IO half).

Errors are read in one place each: `oauth_error` for RFC 6749 JSON (`/oauth/*`) and
`problem_error` for RFC 9457 problem details (`/v1/*`), both down to the typed
exceptions of `clients.service.errors`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from clients.service.errors import (
    GrantDenied,
    GrantExhausted,
    GrantExpired,
    GrantNotYetValid,
    GrantPaused,
    GrantPending,
    GrantRevoked,
    ProtocolError,
    RateLimited,
    RecordRefused,
    ServiceSuspended,
    TooSoon,
    VaultClientError,
    VaultUnavailable,
)
from clients.service.results import Grant, from_timestamp

__all__ = [
    "FORM_TYPE",
    "HttpRequest",
    "HttpResponse",
    "bearer_error",
    "json_object",
    "oauth_error",
    "problem_error",
    "refusal",
    "token_grant",
    "unreachable",
]

FORM_TYPE = "application/x-www-form-urlencoded"
_JSON = "application/json"
_PROBLEM_PREFIX = "urn:citizen-vault:problem:"
_ERROR_IN_CHALLENGE = re.compile(r'\berror="([^"]*)"')

#: A 403 `reason` or a token error's `grant_state`, and what the app is told.
_REFUSALS: dict[str, type[VaultClientError]] = {
    "revoked": GrantRevoked,
    "paused": GrantPaused,
    "expired": GrantExpired,
    "exhausted": GrantExhausted,
    "not_yet_valid": GrantNotYetValid,
    "too_soon": TooSoon,
    "service_suspended": ServiceSuspended,
    "denied": GrantDenied,
    "cancelled": GrantDenied,
    "lapsed": GrantDenied,
    "not_approved": GrantDenied,
    "requested": GrantPending,
}


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One request for a client to send, exactly as built here."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None

    @classmethod
    def form(cls, url: str, fields: Iterable[tuple[str, str | None]]) -> HttpRequest:
        """An RFC 6749 form POST (fields left at None are not sent)."""
        body = urlencode([(k, v) for k, v in fields if v is not None]).encode("ascii")
        return cls("POST", url, (("Content-Type", FORM_TYPE), ("Accept", _JSON)), body)

    @classmethod
    def get(cls, url: str, *, bearer: str | None = None) -> HttpRequest:
        headers = [("Accept", _JSON)]
        if bearer is not None:
            headers.append(("Authorization", f"Bearer {bearer}"))  # RFC 6750 §2.1
        return cls("GET", url, tuple(headers))

    @classmethod
    def json(cls, method: str, url: str, body: Mapping[str, Any] | None, *,
             bearer: str) -> HttpRequest:
        """A request to the resource server with a JSON body (or none), as `bearer`."""
        headers = [("Accept", _JSON), ("Authorization", f"Bearer {bearer}")]
        content = None
        if body is not None:
            headers.append(("Content-Type", _JSON))
            content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        return cls(method, url, tuple(headers), content)

    def form_fields(self) -> dict[str, str]:
        """The form this request carries (for tests and logs)."""
        return dict(parse_qsl((self.body or b"").decode("ascii"), keep_blank_values=True))


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """One answer as received: status, headers (any case), body bytes."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers.items():
            if key.lower() == name:
                return value
        return None

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            raise ProtocolError(f"the vault answered {self.status} with a body that is not "
                                "JSON", status=self.status) from None


def json_object(response: HttpResponse, what: str) -> Mapping[str, Any]:
    doc = response.json()
    if not isinstance(doc, dict):
        raise ProtocolError(f"{what}: the answer is not a JSON object", status=response.status)
    return doc


def retry_after(response: HttpResponse, now: float) -> float | None:
    """Retry-After (RFC 9110 §10.2.3) in seconds: delay-seconds or an HTTP date."""
    value = (response.header("retry-after") or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def refusal(reason: str, message: str, *, status: int | None,
            retry: float | None = None) -> VaultClientError:
    """The typed error for a grant refusal (`reason` or `grant_state`); a reason this SDK
    does not know is a ProtocolError carrying it as `code`."""
    cls = _REFUSALS.get(reason)
    if cls is None:
        return ProtocolError(message, code=reason, status=status)
    if cls is TooSoon:
        return TooSoon(message, code=reason, status=status, retry_after=retry)
    return cls(message, code=reason, status=status)


def _busy(response: HttpResponse, message: str, code: str | None, now: float
          ) -> VaultClientError | None:
    """429 and 503 mean the same on every endpoint."""
    if response.status == 429:
        return RateLimited(message, code=code or "rate_limited", status=429,
                           retry_after=retry_after(response, now))
    if response.status == 503:
        return VaultUnavailable(message, code=code or "unavailable", status=503,
                                retry_after=retry_after(response, now))
    return None


def _loads(response: HttpResponse) -> Mapping[str, Any]:
    try:
        doc = json.loads(response.body)
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def oauth_error(response: HttpResponse, what: str, *, now: float) -> VaultClientError:
    """The error of an RFC 6749 §5.2 error answer (`{"error", "error_description"}`).

    CIBA's `expired_token` (the request expired unanswered) is GrantExpired; then a
    `grant_state` (the grant ended, or was never approved) becomes its typed error, with
    the state as `code`; then `access_denied` is GrantDenied. Everything else is a
    ProtocolError with the error code.
    """
    doc = _loads(response)
    error = doc.get("error") if isinstance(doc.get("error"), str) else None
    description = doc.get("error_description")
    message = f"{what}: {error or f'HTTP {response.status}'}"
    if isinstance(description, str) and description:
        message += f" ({description})"
    busy = _busy(response, message, error, now)
    if busy is not None:
        return busy
    if error == "expired_token":
        return GrantExpired(message, code=error, status=response.status)
    grant_state = doc.get("grant_state")
    if isinstance(grant_state, str) and grant_state in _REFUSALS:
        return refusal(grant_state, message, status=response.status)
    if error == "access_denied":
        return GrantDenied(message, code=error, status=response.status)
    return ProtocolError(message, code=error, status=response.status)


def bearer_error(response: HttpResponse) -> str | None:
    """The RFC 6750 §3 error code of a 401's Bearer challenge (None when it names none)."""
    challenge = response.header("www-authenticate") or ""
    found = _ERROR_IN_CHALLENGE.search(challenge)
    return found.group(1) if found else None


def problem_error(response: HttpResponse, what: str, *, now: float) -> VaultClientError:
    """The error of an RFC 9457 problem answer from the resource server (`/v1/*`)."""
    doc = _loads(response)
    kind = doc.get("type")
    kind = kind if isinstance(kind, str) else ""
    slug = kind.removeprefix(_PROBLEM_PREFIX) if kind.startswith(_PROBLEM_PREFIX) else None
    detail = doc.get("detail") if isinstance(doc.get("detail"), str) else None
    message = f"{what}: {detail or slug or f'HTTP {response.status}'}"
    busy = _busy(response, message, slug, now)
    if busy is not None:
        return busy
    reason = doc.get("reason")
    if slug is not None and slug.startswith("record-refused:") and isinstance(reason, str):
        return RecordRefused(message, code=reason, status=response.status)
    if response.status == 403 and isinstance(reason, str):
        return refusal(reason, message, status=403, retry=retry_after(response, now))
    if response.status == 401:
        return ProtocolError(message, code=bearer_error(response) or "unauthorized",
                             status=401)
    return ProtocolError(message, code=slug, status=response.status)


# -- token answers ------------------------------------------------------------------------


def _text(doc: Mapping[str, Any], name: str) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or not value:
        raise ProtocolError(f"the token answer has no '{name}'")
    return value


def token_grant(doc: Mapping[str, Any], *, now: float, previous: Grant | None = None
                ) -> Grant:
    """The grant of a successful token answer (RFC 6749 §5.1 plus the vault's `grant_id`
    and `sub`). For a refresh, `previous` supplies what the answer may leave out (a
    refresh token the server did not rotate) and must agree with what it says."""
    if str(doc.get("token_type", "")).lower() != "bearer":
        raise ProtocolError("the token answer is not a Bearer token")
    access_token = _text(doc, "access_token")
    expires_in = doc.get("expires_in")
    if isinstance(expires_in, bool) or not isinstance(expires_in, int | float) or expires_in <= 0:
        raise ProtocolError("the token answer has no usable 'expires_in'")
    refresh = doc.get("refresh_token")
    if refresh is not None and not isinstance(refresh, str):
        raise ProtocolError("the token answer's 'refresh_token' is not text")
    details = doc.get("authorization_details")
    if details is not None and (not isinstance(details, list)
                                or not all(isinstance(d, dict) for d in details)):
        raise ProtocolError("the token answer's 'authorization_details' is not a list")
    if previous is None:
        grant_id, sub = _text(doc, "grant_id"), _text(doc, "sub")
    else:
        grant_id = doc.get("grant_id", previous.grant_id)
        sub = doc.get("sub", previous.sub)
        if (grant_id, sub) != (previous.grant_id, previous.sub):
            raise ProtocolError("the refreshed token is for another grant or subject")
        refresh = refresh or previous.refresh_token
        details = details if details is not None else previous.authorization_details
    expires_at: datetime = from_timestamp(now + float(expires_in))
    return Grant(grant_id=grant_id, sub=sub, access_token=access_token,
                 refresh_token=refresh or None, expires_at=expires_at,
                 authorization_details=[dict(d) for d in details or []])


def unreachable(request: HttpRequest, exc: Exception) -> VaultUnavailable:
    """The error for a request that got no answer at all (connection, TLS, timeout)."""
    where = urlsplit(request.url)
    return VaultUnavailable(f"could not reach the vault at {where.scheme}://{where.netloc}: "
                            f"{type(exc).__name__}: {exc}", code="unreachable")
