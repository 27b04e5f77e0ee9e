"""OpenID CIBA, poll mode: a service asks a citizen it already knows (by its pairwise
`sub`) for a grant, without a browser. The request waits in the citizen's wallet; the
service polls the token endpoint with the `auth_req_id`.

`backchannel_request` checks, in order (CIBA §7.1, §13):

1. the form: no `request`/`request_uri`, a `client_id`                invalid_request
2. the client: private_key_jwt, as at the PAR endpoint                 invalid_client
   ... within its rate of requests, as at the PAR endpoint   temporarily_unavailable (429)
3. exactly one hint, `login_hint` (the `sub`; id_token_hint and login_hint_token are not
   supported)                                                           invalid_request
4. no `scope`                                                           invalid_scope
5. `binding_message`: at most 40 printable characters                   invalid_binding_message
6. `requested_expiry`: whole seconds, 60 to `MAX_EXPIRY`               invalid_request
7. `authorization_details`, as at the PAR endpoint   invalid_authorization_details
8. the `sub` names a citizen this client has been told about          unknown_user_id
9. the service may ask this citizen now (`vault.domain.asking`): they have not stopped it
   asking, and it has fewer than MAX_WAITING requests waiting for them  access_denied
   (HTTP 403, CIBA §13; nothing is recorded)

`poll` answers the token endpoint (CIBA §11): `authorization_pending` while the citizen
has not answered, `slow_down` (and 5 s more interval) when polled faster than the
interval, `access_denied` once declined, `expired_token` once the request expired;
tokens once approved, once. `auth_req_id` is stored only as its SHA-256.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from vault.domain.errors import AskingRefused
from vault.domain.grants import GrantState
from vault.oauth.client_auth import JtiStore
from vault.oauth.errors import (
    AccessDeniedError,
    AuthorizationPendingError,
    ExpiredTokenError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuthError,
    RequestDeniedError,
    SlowDownError,
    UnknownUserIdError,
)
from vault.oauth.issuance import Issuer, handle_hash, issue_tokens, new_family, new_handle
from vault.oauth.par import (
    RequestLimit,
    authenticate_client,
    hold_to_limit,
    parse_authorization_details,
)
from vault.services.context import VaultContext, unit_of_work
from vault.services.grants import request_grant_in
from vault.storage.tables import GrantRow, OAuthBackchannelRow, OAuthSubjectRow

__all__ = [
    "DEFAULT_EXPIRY",
    "INTERVAL",
    "MAX_EXPIRY",
    "InvalidBindingMessageError",
    "backchannel_request",
    "binding_message",
    "poll",
]

#: How long the citizen has to answer unless the service asks otherwise.
DEFAULT_EXPIRY = timedelta(minutes=10)
MAX_EXPIRY = timedelta(hours=24)
_MIN_EXPIRY = 60
#: Seconds between polls (CIBA §7.3 `interval`); slow_down adds `_SLOW_DOWN`.
INTERVAL = 5
_SLOW_DOWN = 5
_MAX_SUB = 40
_BINDING = re.compile(r"[\x20-\x7e]{1,40}")


class InvalidBindingMessageError(OAuthError):
    """CIBA §13: the binding message is too long or has characters it cannot show."""

    error = "invalid_binding_message"


def _expiry(params: Mapping[str, str]) -> timedelta:
    text = params.get("requested_expiry")
    if text is None:
        return DEFAULT_EXPIRY
    if not text.isdigit() or len(text) > 6 or not (
            _MIN_EXPIRY <= int(text) <= MAX_EXPIRY.total_seconds()):
        raise InvalidRequestError(
            f"requested_expiry must be whole seconds from {_MIN_EXPIRY} to "
            f"{int(MAX_EXPIRY.total_seconds())}")
    return timedelta(seconds=int(text))


def backchannel_request(
    ctx: VaultContext,
    params: Mapping[str, str],
    *,
    audience: Collection[str],
    seen: JtiStore,
    limit: RequestLimit | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Check and record a CIBA request; the successful response (CIBA §7.3). `limit`
    is the clients' rate of requests that ask citizens (None: unlimited)."""
    now = now or ctx.clock()
    if "request" in params or "request_uri" in params:
        raise InvalidRequestError("signed request objects are not supported: send the "
                                  "parameters")
    if "client_id" not in params:
        raise InvalidRequestError("client_id is required")
    service = authenticate_client(ctx, params, audience=audience, seen=seen, now=now)
    hold_to_limit(limit, service.id)
    if "id_token_hint" in params or "login_hint_token" in params:
        raise InvalidRequestError("only login_hint (the citizen's sub) is supported")
    sub = params.get("login_hint")
    if not sub:
        raise InvalidRequestError("login_hint is required: the citizen's sub, from an "
                                  "earlier token response")
    if "scope" in params:
        raise InvalidScopeError("this server has no scopes: ask with authorization_details")
    binding = params.get("binding_message")
    if binding is not None and not _BINDING.fullmatch(binding):
        raise InvalidBindingMessageError(
            "binding_message must be 1 to 40 printable ASCII characters")
    expiry = _expiry(params)
    details = parse_authorization_details(params.get("authorization_details"))
    details = details.checked_against(service, now=now)
    try:
        with unit_of_work(ctx) as work:
            known = work.session.get(OAuthSubjectRow, (service.id, sub[:_MAX_SUB])) \
                if len(sub) <= _MAX_SUB else None
            if known is None:
                raise UnknownUserIdError("this sub names nobody who has shared data with "
                                         "this service")
            grant = request_grant_in(work, service_id=service.id,
                                     citizen_id=known.citizen_id, **details.grant_arguments())
            auth_req_id, digest = new_handle()
            work.session.add(OAuthBackchannelRow(
                hash=digest, client_id=service.id, grant_id=grant.id, created_at=work.now,
                expires_at=work.now + expiry, interval=INTERVAL, binding_message=binding))
    except AskingRefused as refused:  # rolled back: nothing recorded
        raise _denied(refused) from None
    return {"auth_req_id": auth_req_id, "expires_in": int(expiry.total_seconds()),
            "interval": INTERVAL}


def _denied(refused: AskingRefused) -> RequestDeniedError:
    if refused.reason == "too_many_waiting":
        return RequestDeniedError(str(refused))
    # A block is told to the service as nothing more than a refusal (CIBA §13 allows no
    # more), in the words it would get for any other "no".
    return RequestDeniedError("the citizen did not allow this request")


def binding_message(session: Session, grant_id: str) -> str | None:
    """The binding message a CIBA request for `grant_id` asked the wallet to show."""
    return session.execute(
        select(OAuthBackchannelRow.binding_message)
        .where(col(OAuthBackchannelRow.grant_id) == grant_id)).scalar_one_or_none()


_STATE_ERRORS: dict[GrantState, type[OAuthError]] = {
    GrantState.DENIED: AccessDeniedError,
    GrantState.CANCELLED: AccessDeniedError,
    GrantState.LAPSED: ExpiredTokenError,
}


def poll(
    session: Session, issuer: Issuer, auth_req_id: str, *, client_id: str, now: datetime
) -> dict[str, Any] | OAuthError:
    """The token endpoint's answer to a CIBA poll, in the caller's transaction.

    Pending and slow-down answers are returned (not raised) because the poll's time
    must commit with them; invalid requests are raised.
    """
    row = session.execute(
        select(OAuthBackchannelRow)
        .where(col(OAuthBackchannelRow.hash) == handle_hash(auth_req_id))
        .with_for_update()).scalar_one_or_none()
    if row is None or row.client_id != client_id:
        raise InvalidGrantError("auth_req_id is not valid")
    if row.used_at is not None:
        raise InvalidGrantError("auth_req_id has already been used")
    if now >= row.expires_at:
        raise ExpiredTokenError("the request expired before the citizen answered")
    last, row.polled_at = row.polled_at, now
    session.add(row)
    if last is not None and now - last < timedelta(seconds=row.interval):
        row.interval += _SLOW_DOWN
        return SlowDownError(f"poll at most every {row.interval} seconds")
    grant = session.execute(
        select(GrantRow).where(col(GrantRow.id) == row.grant_id).with_for_update()
    ).scalar_one()
    state = GrantState(grant.state)
    if state is GrantState.REQUESTED:
        return AuthorizationPendingError("the citizen has not answered yet")
    if state not in (GrantState.APPROVED, GrantState.PAUSED):
        error = _STATE_ERRORS.get(state, AccessDeniedError)
        return error(f"the grant is {state.value}", grant_state=state.value)
    row.used_at = now
    family = new_family(session, client_id=client_id, grant_id=grant.id, now=now)
    return issue_tokens(session, issuer, grant=grant, family_id=family, now=now)
