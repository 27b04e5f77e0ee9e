"""Pushed authorization requests (RFC 9126) carrying the grant terms (RFC 9396).

A service POSTs its whole authorization request to the PAR endpoint, authenticated by
`private_key_jwt`, and gets back a `request_uri` (`urn:ietf:params:oauth:request_uri:<id>`)
that lives `REQUEST_LIFETIME` (60 s) and is used once, by the authorize endpoint, for
the client that pushed it (`take_request`). Nothing is on the ledger yet: the grant is
requested (`grant.requested`) once the citizen is known, at the authorize endpoint.

`push_request` checks, in this order, and raises the `vault.oauth.errors` class named:

1. the form: no `request_uri` (RFC 9126 §2.1) and no request object (`request`: not
   supported), and a `client_id`                                       invalid_request
2. the client (`authenticate_client`): a private_key_jwt assertion (RFC 7523 §2.2) signed
   by the key registered for `client_id`, for this server (`aud` is the issuer, the token
   endpoint or the PAR endpoint, RFC 9126 §2), never seen before (jti); an unknown or
   suspended service fails here too                                     invalid_client
   ... and within its rate of requests (`hold_to_limit`)  temporarily_unavailable (429)
3. `response_type` is `code`                     invalid_request / unsupported_response_type
4. `redirect_uri` is exactly one the service registered (simple string comparison)
5. PKCE: `code_challenge_method` is S256 (plain is refused) and `code_challenge` is a
   BASE64URL(SHA-256) value, 43 characters (RFC 7636 §4.2)              invalid_request
6. `state`, when given: at most `MAX_STATE_LENGTH` printable ASCII characters (RFC 6749
   Appendix A.5)                                                        invalid_request
7. no `scope`: what a service may do is said by authorization_details alone  invalid_scope
8. `authorization_details`: a JSON array holding exactly one object of type
   `personal_data` (`PersonalDataRequest`) whose terms the service's registration allows,
   checked by building them exactly as a grant request does
   (`vault.domain.grants.request_terms`): with `actions` ["write"], only categories it
   is registered to issue          invalid_authorization_details (missing:
                                                                        invalid_request)
"""

from __future__ import annotations

import base64
import json
import math
import re
import secrets
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import delete
from sqlmodel import Session, col, select

from vault.domain.durations import format_duration, parse_duration
from vault.domain.errors import DomainError
from vault.domain.grants import Access, GrantTerms, parse_utc, request_terms
from vault.domain.terms import READ_ONLY, check_actions
from vault.oauth.client_auth import (
    CLIENT_ASSERTION_TYPE,
    MAX_CLIENT_ID_LENGTH,
    JtiStore,
    unverified_client_id,
    verify_client_assertion,
)
from vault.oauth.errors import (
    InvalidAuthorizationDetailsError,
    InvalidClientError,
    InvalidRequestError,
    InvalidRequestUriError,
    InvalidScopeError,
    RateLimitedError,
    UnsupportedResponseTypeError,
)
from vault.oauth.metadata import AUTHORIZATION_DETAILS_TYPE
from vault.services.context import VaultContext, reading
from vault.services.registry import service_profile
from vault.storage.tables import OAuthRequestRow, ServiceRow

__all__ = [
    "MAX_AUTHORIZATION_DETAILS_LENGTH",
    "MAX_STATE_LENGTH",
    "PURGE_AFTER",
    "REQUEST_LIFETIME",
    "REQUEST_URI_PREFIX",
    "PersonalDataRequest",
    "PushedRequest",
    "RequestLimit",
    "authenticate_client",
    "hold_to_limit",
    "parse_authorization_details",
    "push_request",
    "take_request",
    "take_request_in",
    "validate_request",
]

REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
#: RFC 9126 §2.2: short-lived; a minute is enough to redirect a browser.
REQUEST_LIFETIME = timedelta(seconds=60)
#: Expired requests are deleted this long after they expired (by the next push).
PURGE_AFTER = timedelta(minutes=10)
MAX_STATE_LENGTH = 512
MAX_AUTHORIZATION_DETAILS_LENGTH = 8192

_S256_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
_REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
_VSCHAR = re.compile(r"[\x20-\x7e]+")  # RFC 6749 Appendix A.5
#: request_terms wants a grant id; the probe's is never stored or shown.
_PROBE_GRANT_ID = "gr_pushed_request"


def _aware(now: datetime) -> datetime:
    if not isinstance(now, datetime) or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    return now.astimezone(UTC)


# -- the personal_data authorization details object ----------------------------------------

_DETAIL_KEYS = ("type", "actions", "purpose", "categories", "derived", "duration",
                "not_before", "expires_at", "access", "data_life", "justification")
_REQUIRED_KEYS = ("purpose", "access", "data_life", "justification")


def _details_error(why: str) -> InvalidAuthorizationDetailsError:
    return InvalidAuthorizationDetailsError(f"authorization_details: {why}")


def _text(obj: Mapping[str, Any], name: str) -> str:
    value = obj[name]
    if not isinstance(value, str):
        raise _details_error(f"{name} must be text")
    return value


def _text_list(obj: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = obj.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _details_error(f"{name} must be a JSON array of text")
    return tuple(value)


@dataclass(frozen=True, slots=True)
class PersonalDataRequest:
    """An RFC 9396 authorization details object of type `personal_data`: the terms a
    service asks for, before the citizen is known.

    The grant id, and (for a `duration`) the start, are fixed when the grant is
    requested; the end is given as `duration` (ISO 8601, days or less) or as
    `expires_at` (`2026-03-01T09:00:00Z`), exactly one of them. JSON form::

        {"type": "personal_data", "purpose": "eligibility_assessment",
         "categories": ["address.home"], "derived": ["age_over_65"], "duration": "P30D",
         "access": {"mode": "periodic", "max_reads": 3, "min_interval": null},
         "data_life": "P30D", "justification": "To check you can have a Blue Badge."}

    `not_before` is optional; `categories` and `derived` default to empty (one of them
    must not be); `access.max_reads` and `access.min_interval` may be left out.
    `actions` (RFC 9396 §2.2) is ["read"] when left out; ["write"] asks to add the
    categories to the citizen's vault (an issuer: ARCHITECTURE §8), ["read", "write"]
    both. It is written out only when it is not ["read"].
    """

    purpose: str
    categories: tuple[str, ...]
    derived: tuple[str, ...]
    access: Access
    data_life: str
    justification: str
    duration: str | None = None
    not_before: str | None = None
    expires_at: str | None = None
    actions: tuple[str, ...] = READ_ONLY

    @classmethod
    def from_json(cls, obj: Any) -> PersonalDataRequest:
        """The object's shape and syntax; InvalidAuthorizationDetailsError if wrong.
        (What the service may ask for is `checked_against`'s business.)"""
        if not isinstance(obj, Mapping):
            raise _details_error("each entry must be a JSON object")
        kind = obj.get("type")
        if not isinstance(kind, str):
            raise _details_error(f"each object needs a type ('{AUTHORIZATION_DETAILS_TYPE}')")
        if kind != AUTHORIZATION_DETAILS_TYPE:
            raise _details_error(f"the type '{kind[:40]}' is not supported; this server "
                                 f"supports only '{AUTHORIZATION_DETAILS_TYPE}'")
        unexpected = sorted(str(k)[:40] for k in obj if k not in _DETAIL_KEYS)
        if unexpected:
            raise _details_error(f"unexpected field(s): {', '.join(unexpected)[:200]}")
        missing = [k for k in _REQUIRED_KEYS if k not in obj]
        if missing:
            raise _details_error(f"missing {', '.join(missing)}")
        if ("duration" in obj) == ("expires_at" in obj):
            raise _details_error("give either a duration or an expires_at (exactly one)")
        try:
            duration = not_before = expires_at = None
            if "duration" in obj:
                duration = format_duration(parse_duration(_text(obj, "duration")))
            if "not_before" in obj:
                not_before = _text(obj, "not_before")
                parse_utc(not_before)
            if "expires_at" in obj:
                expires_at = _text(obj, "expires_at")
                parse_utc(expires_at)
            access = Access.from_json(obj["access"])
            data_life = format_duration(parse_duration(_text(obj, "data_life")))
            actions = check_actions(obj.get("actions", READ_ONLY))
        except DomainError as exc:  # InvalidDuration, GrantRefused
            raise _details_error(str(exc)) from None
        return cls(purpose=_text(obj, "purpose"), categories=_text_list(obj, "categories"),
                   derived=_text_list(obj, "derived"), access=access, data_life=data_life,
                   justification=_text(obj, "justification"), duration=duration,
                   not_before=not_before, expires_at=expires_at, actions=actions)

    def to_json(self) -> dict[str, Any]:
        """The RFC 9396 object (the end as it was given: duration or expires_at)."""
        obj: dict[str, Any] = {"type": AUTHORIZATION_DETAILS_TYPE}
        if self.actions != READ_ONLY:
            obj["actions"] = list(self.actions)
        obj.update(purpose=self.purpose, categories=list(self.categories),
                   derived=list(self.derived))
        for name in ("duration", "not_before", "expires_at"):
            if (value := getattr(self, name)) is not None:
                obj[name] = value
        obj.update(access=self.access.to_json(), data_life=self.data_life,
                   justification=self.justification)
        return obj

    def grant_arguments(self) -> dict[str, Any]:
        """The keyword arguments of `vault.services.grants.request_grant` (besides
        service_id and citizen_id) that ask for exactly these terms."""
        return {
            "purpose": self.purpose, "categories": list(self.categories),
            "derived": list(self.derived),
            "duration": None if self.duration is None else parse_duration(self.duration),
            "not_before": None if self.not_before is None else parse_utc(self.not_before),
            "expires_at": None if self.expires_at is None else parse_utc(self.expires_at),
            "access": self.access, "data_life": self.data_life,
            "justification": self.justification, "actions": self.actions,
        }

    def checked_against(self, service: ServiceRow, *, now: datetime) -> PersonalDataRequest:
        """These terms, normalised as a grant would hold them, if `service`'s registration
        allows them at `now`; else InvalidAuthorizationDetailsError saying what is outside
        it. Built by `request_terms`, as `request_grant` does, so the two never disagree
        (and nothing is written)."""
        try:
            terms: GrantTerms = request_terms(
                service_profile(service), grant_id=_PROBE_GRANT_ID, now=_aware(now),
                **self.grant_arguments())
        except DomainError as exc:  # GrantRefused, InvalidDuration
            raise _details_error(str(exc)) from None
        return replace(self, categories=terms.categories, derived=terms.derived,
                       access=terms.access, data_life=terms.data_life, actions=terms.actions)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("a JSON object names a field twice")
    return obj


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_authorization_details(text: str | None) -> PersonalDataRequest:
    """The one `personal_data` object of an `authorization_details` parameter (RFC 9396 §2):
    a JSON array holding exactly one such object."""
    if text is None:
        raise InvalidRequestError(
            "authorization_details is required: a JSON array with one object of type "
            f"'{AUTHORIZATION_DETAILS_TYPE}' (RFC 9396)")
    if len(text) > MAX_AUTHORIZATION_DETAILS_LENGTH:
        raise _details_error(f"at most {MAX_AUTHORIZATION_DETAILS_LENGTH} characters")
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicate_keys,
                           parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise _details_error("not valid JSON (a JSON array is expected)") from None
    if not isinstance(value, list):
        raise _details_error("must be a JSON array")
    if len(value) != 1:
        raise _details_error(f"must hold exactly one object of type "
                             f"'{AUTHORIZATION_DETAILS_TYPE}', not {len(value)}")
    return PersonalDataRequest.from_json(value[0])


# -- the pushed request -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PushedRequest:
    """An authorization request as pushed (times aware UTC); PKCE is always S256."""

    id: str
    client_id: str
    redirect_uri: str
    state: str | None
    code_challenge: str
    details: PersonalDataRequest
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None

    @property
    def request_uri(self) -> str:
        return REQUEST_URI_PREFIX + self.id

    @property
    def authorization_details(self) -> list[dict[str, Any]]:
        """The RFC 9396 array, as stored."""
        return [self.details.to_json()]

    def expires_in(self, now: datetime) -> int:
        """Whole seconds left (RFC 9126 §2.2 `expires_in`), never negative."""
        return max(0, math.floor((self.expires_at - _aware(now)).total_seconds()))


def _row(pushed: PushedRequest) -> OAuthRequestRow:
    return OAuthRequestRow(
        id=pushed.id, client_id=pushed.client_id, redirect_uri=pushed.redirect_uri,
        state=pushed.state, code_challenge=pushed.code_challenge,
        authorization_details=pushed.authorization_details, created_at=pushed.created_at,
        expires_at=pushed.expires_at, used_at=pushed.used_at)


def _view(row: OAuthRequestRow) -> PushedRequest:
    return PushedRequest(
        id=row.id, client_id=row.client_id, redirect_uri=row.redirect_uri, state=row.state,
        code_challenge=row.code_challenge,
        details=PersonalDataRequest.from_json(row.authorization_details[0]),
        created_at=row.created_at, expires_at=row.expires_at, used_at=row.used_at)


def _refused(why: str) -> InvalidClientError:
    return InvalidClientError(f"client authentication failed: {why}")


def authenticate_client(
    ctx: VaultContext,
    params: Mapping[str, str],
    *,
    audience: Collection[str],
    seen: JtiStore,
    now: datetime,
) -> ServiceRow:
    """The active registered service that the private_key_jwt assertion in `params`
    authenticates (RFC 7523 §2.2), or InvalidClientError.

    The service is the form's `client_id`, or else the assertion's (unverified) `iss`;
    a key of its registered JWK Set must verify the assertion (`verify_client_assertion`). A
    suspended service is refused only after its assertion verified, so nobody learns a
    service's standing without holding its key.
    """
    assertion_type = params.get("client_assertion_type")
    assertion = params.get("client_assertion")
    if assertion_type is None or assertion is None:
        raise _refused("send client_assertion_type and client_assertion (private_key_jwt)")
    if assertion_type != CLIENT_ASSERTION_TYPE:
        raise _refused(f"client_assertion_type must be {CLIENT_ASSERTION_TYPE}")
    client_id = params.get("client_id")
    claimed = client_id if client_id is not None else unverified_client_id(assertion)
    if len(claimed) > MAX_CLIENT_ID_LENGTH:
        raise _refused("unknown client")
    with reading(ctx) as session:
        service = session.get(ServiceRow, claimed)
    if service is None:
        raise _refused("unknown client")
    verify_client_assertion(assertion, client_id=client_id, jwks=service.jwks,
                            audience=audience, now=now, seen=seen)
    if not service.active:
        raise _refused("this service is suspended")
    return service


class RequestLimit(Protocol):
    """A client's rate of requests that ask citizens (PAR, CIBA). `wait` counts one
    request for `client_id` and answers 0.0, or answers the seconds until it may make
    the next one (counting nothing). `vault.api.ratelimit.ClientRateLimiter` is one."""

    def wait(self, client_id: str) -> float: ...


def hold_to_limit(limit: RequestLimit | None, client_id: str) -> None:
    """RateLimitedError if `client_id`, already authenticated (so nobody can spend
    another client's allowance), is over its rate; else the request is counted."""
    if limit is None:
        return
    wait = limit.wait(client_id)
    if wait > 0:
        raise RateLimitedError(max(1, math.ceil(wait)))


def _pkce_challenge(params: Mapping[str, str]) -> str:
    method, challenge = params.get("code_challenge_method"), params.get("code_challenge")
    if challenge is None:
        raise InvalidRequestError("code_challenge is required (PKCE, RFC 7636)")
    if method != "S256":
        raise InvalidRequestError(
            "code_challenge_method must be S256 (PKCE with plain is not accepted)")
    if _S256_CHALLENGE.fullmatch(challenge):
        raw = base64.urlsafe_b64decode(challenge + "=")
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == challenge:
            return challenge
    raise InvalidRequestError(
        "code_challenge must be BASE64URL(SHA-256(code_verifier)): 43 characters")


def validate_request(
    params: Mapping[str, str], service: ServiceRow, *, now: datetime
) -> PushedRequest:
    """Steps 3-8 of the module docstring for an authenticated `service`: the request to
    store (a new random id), or the OAuthError saying which rule failed."""
    now = _aware(now)
    response_type = params.get("response_type")
    if response_type is None:
        raise InvalidRequestError("response_type is required (code)")
    if response_type != "code":
        raise UnsupportedResponseTypeError("the only response_type is code")
    redirect_uri = params.get("redirect_uri")
    if redirect_uri is None:
        raise InvalidRequestError("redirect_uri is required")
    if redirect_uri not in service.redirect_uris:
        raise InvalidRequestError("redirect_uri is not one registered for this service")
    code_challenge = _pkce_challenge(params)
    state = params.get("state")
    if state is not None and (len(state) > MAX_STATE_LENGTH or not _VSCHAR.fullmatch(state)):
        raise InvalidRequestError(
            f"state must be at most {MAX_STATE_LENGTH} printable ASCII characters")
    if "scope" in params:
        raise InvalidScopeError(
            "this server has no scopes: ask with authorization_details (RFC 9396)")
    details = parse_authorization_details(params.get("authorization_details"))
    details = details.checked_against(service, now=now)
    now = now.replace(microsecond=0)
    return PushedRequest(
        id=secrets.token_urlsafe(32), client_id=service.id, redirect_uri=redirect_uri,
        state=state, code_challenge=code_challenge, details=details, created_at=now,
        expires_at=now + REQUEST_LIFETIME)


def push_request(
    ctx: VaultContext,
    params: Mapping[str, str],
    *,
    audience: Collection[str],
    seen: JtiStore,
    limit: RequestLimit | None = None,
    now: datetime | None = None,
) -> PushedRequest:
    """Authenticate the client, check and store its authorization request (RFC 9126 §2).

    `params` is the form, one value per name (repeated names were already refused);
    `audience` every value a client assertion may name (`Endpoints.par_audience`);
    `limit` the clients' rate of such requests (None: unlimited).
    """
    now = _aware(now if now is not None else ctx.clock())
    if "request_uri" in params:
        raise InvalidRequestError("request_uri must not be sent to the PAR endpoint")
    if "request" in params:
        raise InvalidRequestError("request objects are not supported: send the parameters")
    if "client_id" not in params:
        raise InvalidRequestError("client_id is required")
    service = authenticate_client(ctx, params, audience=audience, seen=seen, now=now)
    hold_to_limit(limit, service.id)
    pushed = validate_request(params, service, now=now)
    with Session(ctx.engine, expire_on_commit=False) as session, session.begin():
        session.execute(delete(OAuthRequestRow).where(
            col(OAuthRequestRow.expires_at) <= now - PURGE_AFTER))
        session.add(_row(pushed))
    return pushed


# -- the authorize endpoint's side ----------------------------------------------------------


def take_request_in(
    session: Session, request_uri: str, *, client_id: str, now: datetime
) -> PushedRequest:
    """Use the pushed request `request_uri` for `client_id` at `now`, in the caller's
    transaction: it must exist, belong to `client_id`, not be used and not be expired;
    else InvalidRequestUriError. A refusal leaves the request as it was.

    The row is locked first (PostgreSQL: FOR UPDATE; SQLite: the transaction's write
    lock), so of two concurrent takes exactly one succeeds.
    """
    now = _aware(now)
    known_form = isinstance(request_uri, str) and request_uri.startswith(REQUEST_URI_PREFIX)
    request_id = request_uri[len(REQUEST_URI_PREFIX):] if known_form else ""
    if not _REQUEST_ID.fullmatch(request_id):
        raise InvalidRequestUriError(
            f"request_uri must be one the PAR endpoint gave ({REQUEST_URI_PREFIX}...)")
    row = session.execute(
        select(OAuthRequestRow).where(OAuthRequestRow.id == request_id).with_for_update()
    ).scalar_one_or_none()
    if row is None:
        raise InvalidRequestUriError("the request_uri is unknown (or long expired)")
    if row.client_id != client_id:
        raise InvalidRequestUriError("the request_uri was pushed by another client")
    if row.used_at is not None:
        raise InvalidRequestUriError("the request_uri has already been used")
    if row.expires_at <= now:
        raise InvalidRequestUriError("the request_uri has expired: push the request again")
    row.used_at = now
    session.add(row)
    session.flush()
    return _view(row)


def take_request(
    ctx: VaultContext, request_uri: str, *, client_id: str, now: datetime | None = None
) -> PushedRequest:
    """`take_request_in` in a transaction of its own."""
    now = _aware(now if now is not None else ctx.clock())
    with Session(ctx.engine, expire_on_commit=False) as session, session.begin():
        return take_request_in(session, request_uri, client_id=client_id, now=now)
