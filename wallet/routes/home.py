"""The start page: the landing page for visitors, the dashboard for citizens."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from vault.domain.grants import GrantState
from vault.services.activity import accesses, count_grants, grants_page, service_names
from vault.services.context import reading
from wallet.routes.deps import Wallet, csrf_guard, get_subject, get_visitor, render
from wallet.routes.listing import access_rows
from wallet.views import grant_cards

__all__ = ["router"]

router = APIRouter(prefix="/wallet", dependencies=[Depends(csrf_guard)],
                   include_in_schema=False)


@router.get("", response_class=HTMLResponse)
def home(request: Request, wallet: Wallet) -> Response:
    visitor = get_visitor(request, wallet)
    if visitor.citizen_id is None:
        return render(request, "landing.html")
    # The dashboard of the vault shown: one's own, or that of someone one acts for.
    citizen_id = get_subject(request, wallet, visitor).subject_id
    with reading(wallet.ctx) as session:
        counts = count_grants(session, citizen_id)
        pending = grants_page(session, citizen_id, states=[GrantState.REQUESTED], limit=5)
        recent = accesses(session, citizen_id, limit=5)
        names = service_names(session, [g.service_id for g in pending.items]
                              + [a.service_id for a in recent.items])
        rows = access_rows(session, recent.items, names)
    return render(request, "home.html", nav="home", counts=counts,
                  active=counts.get(GrantState.APPROVED, 0) + counts.get(GrantState.PAUSED, 0),
                  waiting=counts.get(GrantState.REQUESTED, 0),
                  pending=grant_cards(pending.items, names), recent=rows)
