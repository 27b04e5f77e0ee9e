"""The "Acting for" switch (issue 14 §3): choose whose vault the wallet shows and acts in.

A plain form in every page's header (no script): `for` is the id of someone the
signed-in person may act for now, or empty for their own vault. The choice lives in the
server-side session and is checked again on every request (`wallet.acting`). A request
waiting for someone else's answer is opened through here too (`next`), so acting on it
always happens in their vault, with the switch's check.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form
from fastapi.responses import RedirectResponse, Response

from wallet.acting import choose
from wallet.next_path import safe_next
from wallet.routes.deps import Actor, VisitorDep, Wallet, csrf_guard

__all__ = ["router"]

router = APIRouter(prefix="/wallet", dependencies=[Depends(csrf_guard)],
                   include_in_schema=False)


@router.post("/acting")
def switch(wallet: Wallet, actor_id: Actor, visitor: VisitorDep,
           for_: Annotated[str, Form(alias="for", max_length=40)] = "",
           next_: Annotated[str, Form(alias="next", max_length=500)] = "/wallet") -> Response:
    choose(wallet, actor_id=actor_id, principal_id=for_ or None,
           token=visitor.session_token)
    return RedirectResponse(safe_next(next_), 303)
