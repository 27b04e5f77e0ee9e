"""The authorization endpoint's work (RFC 6749 §4.1, RFC 9126 §4), apart from its pages.

1. `begin_authorization`: the browser arrives with `client_id` and `request_uri`; the
   pushed request is taken (once) and now has `AUTHORIZE_WINDOW` for the citizen to sign
   in or sign up and answer. Until this succeeds the redirect URI is not trusted, so its
   errors are shown to the person, never redirected (RFC 6749 §4.1.2.1).
2. `attach_citizen`: once someone is signed in, the grant is requested for them
   (`grant.requested` on the ledger), once; the wallet shows its consent screen. If the
   service may not ask them now (they stopped it asking, or it has too many requests
   waiting: AskingNotAllowed), nothing is recorded and the wallet says why.
3. `answer_authorization`: after the citizen approved or declined, the browser is sent
   back to the service: `code` (single use, `CODE_LIFETIME`), `state` and `iss` (RFC
   9207), or `error=access_denied`. The code is kept only as its SHA-256.

Redeeming the code is the token endpoint's business (`vault.oauth.token_endpoint`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode, urlsplit, urlunsplit

from sqlmodel import Session, col, select

from vault.domain.errors import AskingRefused
from vault.domain.grants import GrantState
from vault.errors import NotFound
from vault.oauth.errors import AccessDeniedError, InvalidRequestError
from vault.oauth.issuance import new_handle
from vault.oauth.par import MAX_STATE_LENGTH, PersonalDataRequest, take_request_in
from vault.services.context import VaultContext, unit_of_work
from vault.services.grants import asking_refusal, request_grant_in
from vault.storage.tables import GrantRow, OAuthRequestRow, ServiceRow

__all__ = [
    "AUTHORIZE_WINDOW",
    "CODE_LIFETIME",
    "AskingNotAllowed",
    "Authorization",
    "NotAnswered",
    "answer_authorization",
    "asking_service",
    "attach_citizen",
    "begin_authorization",
    "open_authorization",
]

#: How long a citizen has, from the authorize endpoint, to sign in (or up) and answer.
AUTHORIZE_WINDOW = timedelta(minutes=30)
#: RFC 6749 §4.1.2 recommends at most ten minutes; a redirect takes a second.
CODE_LIFETIME = timedelta(seconds=60)
_MAX_CLIENT_ID = 40


class NotAnswered(InvalidRequestError):
    """The citizen has not approved or declined yet: show the consent screen."""


class AskingNotAllowed(AccessDeniedError):
    """The service may not ask this citizen now (`reason`: "blocked" or
    "too_many_waiting", as AskingRefused says): nothing was recorded. The wallet tells
    the citizen why; going back (`answer_authorization`) tells the service access_denied."""

    def __init__(self, refused: AskingRefused, *, client_id: str, service_name: str) -> None:
        super().__init__(str(refused))
        self.reason = refused.reason
        self.client_id = client_id
        self.service_name = service_name


@dataclass(frozen=True, slots=True)
class Authorization:
    """An authorization in the wallet: whose request, for whom, and for which grant."""

    id: str
    client_id: str
    service_name: str
    grant_id: str | None
    details: PersonalDataRequest


def begin_authorization(
    ctx: VaultContext, *, client_id: str | None, request_uri: str | None,
    now: datetime | None = None,
) -> Authorization:
    """Take the pushed request `request_uri` for `client_id`: InvalidRequestError or
    InvalidRequestUriError (to show to the person) if either is missing or wrong."""
    if not client_id or not request_uri:
        raise InvalidRequestError(
            "this link is incomplete: the service must send client_id and request_uri "
            "(from its pushed authorization request)")
    if len(client_id) > _MAX_CLIENT_ID:
        raise InvalidRequestError("this link names a service the vault does not know")
    with unit_of_work(ctx) as work:
        service = work.session.get(ServiceRow, client_id)
        if service is None or not service.active:
            raise InvalidRequestError("this link names a service the vault does not know, "
                                      "or one that is suspended")
        pushed = take_request_in(work.session, request_uri, client_id=client_id,
                                 now=now or work.now)
        row = work.session.get(OAuthRequestRow, pushed.id)
        assert row is not None  # just taken, under lock
        row.expires_at = (now or work.now) + AUTHORIZE_WINDOW
        work.session.add(row)
        return Authorization(pushed.id, client_id, service.name, None, pushed.details)


def _locked(session: Session, request_id: str) -> OAuthRequestRow:
    row = session.execute(
        select(OAuthRequestRow).where(col(OAuthRequestRow.id) == request_id[:64])
        .with_for_update()).scalar_one_or_none()
    if row is None or row.used_at is None:
        raise NotFound("there is no such request from a service (it may have expired)")
    return row  # type: ignore[no-any-return]


def _mine(session: Session, row: OAuthRequestRow, citizen_id: str) -> None:
    if row.grant_id is not None:
        grant = session.get(GrantRow, row.grant_id)
        if grant is None or grant.citizen_id != citizen_id:
            raise NotFound("there is no such request from a service in your wallet")


def attach_citizen(
    ctx: VaultContext, request_id: str, *, citizen_id: str
) -> Authorization:
    """The authorization, with its grant requested for `citizen_id` (the first time).

    NotFound if it is unknown, or being answered by another citizen; InvalidRequestError
    once expired or answered; AskingNotAllowed (nothing recorded) if the service may
    not ask this citizen now.
    """
    with unit_of_work(ctx) as work:
        row = _locked(work.session, request_id)
        _mine(work.session, row, citizen_id)
        if row.answered_at is not None:
            raise InvalidRequestError("you have already answered this request; go back to "
                                      "the service")
        if row.expires_at <= work.now:
            raise InvalidRequestError("this request has expired: go back to the service "
                                      "and start again")
        details = PersonalDataRequest.from_json(row.authorization_details[0])
        service = work.session.get(ServiceRow, row.client_id)
        assert service is not None  # a foreign key
        if row.grant_id is None:
            try:
                grant = request_grant_in(work, service_id=row.client_id,
                                         citizen_id=citizen_id, **details.grant_arguments())
            except AskingRefused as refused:  # raised on: the transaction rolls back
                raise AskingNotAllowed(refused, client_id=service.id,
                                       service_name=service.name) from None
            row.grant_id = grant.id
            work.session.add(row)
        return Authorization(row.id, row.client_id, service.name, row.grant_id, details)


def open_authorization(session: Session, grant_id: str, *, now: datetime) -> str | None:
    """The id of the unanswered authorization that asked for `grant_id`, if any: where
    the wallet sends the browser once the citizen has answered."""
    return session.execute(
        select(OAuthRequestRow.id).where(
            col(OAuthRequestRow.grant_id) == grant_id,
            col(OAuthRequestRow.answered_at).is_(None),
            col(OAuthRequestRow.expires_at) > now)
    ).scalar_one_or_none()


def asking_service(
    session: Session, request_id: str, *, now: datetime, citizen_id: str | None = None
) -> str | None:
    """The name of the service whose authorization `request_id` is on its way through
    the wallet (taken at the authorize endpoint, not yet sent back, not expired): for
    the pages that say who is asking. With `citizen_id`, only once its grant is theirs.
    """
    row = session.get(OAuthRequestRow, request_id) if len(request_id) <= 64 else None
    if row is None or row.used_at is None or row.answered_at is not None \
            or row.expires_at <= now:
        return None
    if citizen_id is not None:
        grant = None if row.grant_id is None else session.get(GrantRow, row.grant_id)
        if grant is None or grant.citizen_id != citizen_id:
            return None
    service = session.get(ServiceRow, row.client_id)
    return None if service is None else service.name


def _back_to(redirect_uri: str, params: dict[str, str]) -> str:
    """`redirect_uri` with `params` added to its query (RFC 6749 §3.1.2: keep its own)."""
    parts = urlsplit(redirect_uri)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def answer_authorization(
    ctx: VaultContext, request_id: str, *, citizen_id: str, issuer: str
) -> str:
    """Where to send the browser now that the citizen answered: the service's redirect
    URI with a code, or with `error=access_denied`, also when the service may not ask
    this citizen now (no grant was requested). NotAnswered while the grant is still
    requested; InvalidRequestError if already answered or expired."""
    with unit_of_work(ctx) as work:
        row = _locked(work.session, request_id)
        _mine(work.session, row, citizen_id)
        if row.answered_at is not None:
            raise InvalidRequestError("you have already answered this request")
        if row.expires_at <= work.now:
            raise InvalidRequestError("this request has expired: go back to the service "
                                      "and start again")
        params: dict[str, str]
        if row.grant_id is None:
            refused = asking_refusal(work.session, service_id=row.client_id,
                                     citizen_id=citizen_id, now=work.now)
            if refused is None:
                raise NotAnswered("please answer the request first")
            # A block is told as a plain "declined": the service learns no more.
            why = str(refused) if refused.reason == "too_many_waiting" \
                else "the citizen declined"
            return _answered(row, {"error": "access_denied", "error_description": why},
                             issuer=issuer, now=work.now, session=work.session)
        grant = work.session.get(GrantRow, row.grant_id)
        assert grant is not None  # the foreign key cascades
        state = GrantState(grant.state)
        if state is GrantState.REQUESTED:
            raise NotAnswered("please answer the request first")
        if state is GrantState.APPROVED:
            code, code_hash = new_handle()
            row.code_hash = code_hash
            row.code_expires_at = work.now + CODE_LIFETIME
            params = {"code": code}
        else:
            why = ("the citizen declined" if state is GrantState.DENIED
                   else f"the request was {state.value} before it was approved")
            params = {"error": "access_denied", "error_description": why}
        return _answered(row, params, issuer=issuer, now=work.now, session=work.session)


def _answered(row: OAuthRequestRow, params: dict[str, str], *, issuer: str, now: datetime,
              session: Session) -> str:
    """Mark the authorization answered; the redirect URI with `params`, `state` and `iss`."""
    if row.state is not None:
        params["state"] = row.state[:MAX_STATE_LENGTH]
    params["iss"] = issuer
    row.answered_at = now
    session.add(row)
    return _back_to(row.redirect_uri, params)

