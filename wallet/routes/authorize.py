"""The authorization endpoint (`GET /oauth/authorize`, ARCHITECTURE §4): a service sends
the citizen's browser here with its pushed request; the wallet signs them in (or up),
shows the consent screen, and sends them back with a code or `error=access_denied`.

1. `/oauth/authorize?client_id&request_uri` takes the pushed request and goes on to
   `/wallet/authorize/{id}`. A bad link is explained to the person and never redirected
   to the service (its redirect URI is not trusted until the request is).
2. `/wallet/authorize/{id}` needs a signed-in citizen (the sign-in page comes back here),
   requests the grant for them, and shows its consent screen.
3. After Approve or Decline the wallet goes to `/wallet/authorize/{id}/return`, which
   sends the browser back to the service. Approve gets there by script. Decline is a
   plain form, and the CSP's `form-action 'self'` also covers where its answer
   redirects, so a 303 to the service would be blocked: it lands first on
   `/wallet/authorize/{id}/back`, a page of ours ("Taking you back to ..."), whose link
   the script follows at once and the person can follow too.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from vault.domain.asking import MAX_WAITING
from vault.domain.relationships import DelegatedAction
from vault.oauth.authorize import (
    AskingNotAllowed,
    NotAnswered,
    answer_authorization,
    asking_service,
    attach_citizen,
    begin_authorization,
)
from vault.oauth.errors import InvalidRequestUriError, OAuthError
from vault.oauth.metadata import AUTHORIZATION_PATH
from vault.services import delegations
from vault.services.context import reading
from wallet.routes.deps import Subject, Wallet, csrf_guard, render

__all__ = ["back_path", "return_path", "router"]

router = APIRouter(dependencies=[Depends(csrf_guard)], include_in_schema=False)

_WHY = {
    "expired": "This link from a service has expired or has already been used. Go back "
               "to the service and start again.",
    "invalid": "This link from a service is not complete or names a service the vault "
               "does not know. Go back to the service and start again.",
    "answered": "You have already answered this request, or it has expired. Go back to "
                "the service and start again.",
}
Why = Literal["expired", "invalid", "answered"]
_SAID = {"declined": "You said no. Nothing of yours has been shared with them."}


def return_path(request_id: str) -> str:
    """Where the wallet goes once the citizen has answered an authorization."""
    return f"/wallet/authorize/{request_id}/return"


def back_path(request_id: str, *, done: Literal["declined"]) -> str:
    """The page of ours that takes the browser back to the service after a form."""
    return f"/wallet/authorize/{request_id}/back?done={done}"


@router.get(AUTHORIZATION_PATH)
def authorize(wallet: Wallet, client_id: Annotated[str | None, Query(max_length=200)] = None,
              request_uri: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    try:
        started = begin_authorization(wallet.ctx, client_id=client_id,
                                      request_uri=request_uri)
    except InvalidRequestUriError:
        return RedirectResponse("/wallet/authorize/problem?why=expired", 303)
    except OAuthError:
        return RedirectResponse("/wallet/authorize/problem?why=invalid", 303)
    return RedirectResponse(f"/wallet/authorize/{started.id}", 303)


@router.get("/wallet/authorize/problem", response_class=HTMLResponse)
def problem_page(request: Request, why: Why = "invalid") -> Response:
    return render(request, "error.html", status_code=400,
                  title="That link did not work", detail=_WHY[why].rstrip("."))


@router.get("/wallet/authorize/{request_id}")
def consent(request: Request, wallet: Wallet, acting: Subject, request_id: str
            ) -> Response:
    citizen_id = acting.subject_id
    if acting.for_someone:
        # A service's request put in someone else's vault is one to answer for them (a
        # service linked for them): it needs `approve`, and is refused before anything is
        # put there.
        with reading(wallet.ctx) as session:
            delegations.authorize(session, actor_id=acting.actor_id, subject_id=citizen_id,
                                  action=DelegatedAction.APPROVE, now=wallet.ctx.clock())
    try:
        started = attach_citizen(wallet.ctx, request_id, citizen_id=citizen_id)
    except AskingNotAllowed as refused:
        # Nothing was put in the wallet; going back tells the service access_denied.
        return render(request, "asking_refused.html", status_code=403, refused=refused,
                      request_id=request_id, back=return_path(request_id),
                      max_waiting=MAX_WAITING)
    except OAuthError:
        return RedirectResponse("/wallet/authorize/problem?why=answered", 303)
    return RedirectResponse(f"/wallet/grants/{started.grant_id}", 303)


@router.get("/wallet/authorize/{request_id}/return")
def back_to_service(wallet: Wallet, acting: Subject, request_id: str) -> Response:
    citizen_id = acting.subject_id
    try:
        target = answer_authorization(wallet.ctx, request_id, citizen_id=citizen_id,
                                      issuer=wallet.issuer)
    except NotAnswered:
        return RedirectResponse(f"/wallet/authorize/{request_id}", 303)
    except OAuthError:
        return RedirectResponse("/wallet/authorize/problem?why=answered", 303)
    return RedirectResponse(target, 303)


@router.get("/wallet/authorize/{request_id}/back", response_class=HTMLResponse)
def taking_you_back(request: Request, wallet: Wallet, acting: Subject, request_id: str,
                    done: Literal["declined"] | None = None) -> Response:
    citizen_id = acting.subject_id
    with reading(wallet.ctx) as session:
        service_name = asking_service(session, request_id, now=wallet.ctx.clock(),
                                      citizen_id=citizen_id)
    if service_name is None:
        return RedirectResponse("/wallet/authorize/problem?why=answered", 303)
    return render(request, "taking_back.html", service_name=service_name,
                  said=_SAID.get(done or ""), back=return_path(request_id))
