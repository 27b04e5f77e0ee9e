"""Stop a service asking, and let it ask again (issue 11: a service must not be able to
flood a wallet).

`/wallet/services/{id}/stop` says what stopping means and asks the citizen to confirm;
posting it (a CSRF-protected form) declines the service's waiting requests and refuses
its new ones until the citizen posts `/wallet/services/{id}/allow`. Neither needs a
passkey: stopping only ever says no, and allowing only lets the service ask (every grant
still needs the citizen's passkey).
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from vault.oauth.authorize import open_authorization
from vault.services import blocks
from vault.services.context import reading
from wallet.routes.authorize import back_path
from wallet.routes.deps import Subject, Wallet, csrf_guard, render

__all__ = ["router"]

router = APIRouter(prefix="/wallet", dependencies=[Depends(csrf_guard)],
                   include_in_schema=False)

ServiceId = Annotated[str, Path(max_length=40)]
#: A waiting request of this service, when the citizen came from its consent screen.
_GRANT = Annotated[str, Form(max_length=40)]
#: An authorization (its id) that this service's block stopped, to go back to.
_AUTHORIZATION = Annotated[str, Form(max_length=64)]
_REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{43}")
_GRANT_ID = re.compile(r"gr_[A-Za-z0-9_-]{1,37}")


@router.get("/services/{service_id}/stop", response_class=HTMLResponse)
def stop_asking_page(request: Request, wallet: Wallet, acting: Subject,
                     service_id: ServiceId,
                     grant: Annotated[str, Query(max_length=40)] = "") -> Response:
    citizen_id = acting.subject_id
    with reading(wallet.ctx) as session:
        status = blocks.asking_status(session, citizen_id=citizen_id, service_id=service_id)
    # The grant only makes the page's links and form lead back to it: a grant id or nothing.
    return render(request, "stop_asking.html", status=status,
                  grant=grant if _GRANT_ID.fullmatch(grant) else "")


@router.post("/services/{service_id}/stop")
def stop_asking(wallet: Wallet, acting: Subject, service_id: ServiceId,
                grant: _GRANT = "") -> Response:
    citizen_id = acting.subject_id
    declined = blocks.block_service(wallet.ctx, citizen_id=citizen_id, service_id=service_id,
                                    actor_id=acting.actor_id)
    if grant and grant in declined:  # so only this citizen's request of this service
        with reading(wallet.ctx) as session:
            waiting = open_authorization(session, grant, now=wallet.ctx.clock())
        if waiting is not None:
            # Declined with the others: back to the service as after Decline (through a
            # page of ours: this answers a form, see wallet.routes.authorize).
            return RedirectResponse(back_path(waiting, done="declined"), 303)
    return RedirectResponse("/wallet/requests?done=stopped", 303)


@router.post("/services/{service_id}/allow")
def allow_asking(wallet: Wallet, acting: Subject, service_id: ServiceId,
                 authorization: _AUTHORIZATION = "") -> Response:
    citizen_id = acting.subject_id
    blocks.unblock_service(wallet.ctx, citizen_id=citizen_id, service_id=service_id,
                           actor_id=acting.actor_id)
    if _REQUEST_ID.fullmatch(authorization):
        # Back to the request it was refused, which can now be put to the citizen.
        return RedirectResponse(f"/wallet/authorize/{authorization}", 303)
    return RedirectResponse("/wallet/requests?done=allowed", 303)
