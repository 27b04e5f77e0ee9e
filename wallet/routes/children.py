"""Children's vaults: a parent makes one and hands it over; the child takes it over.

Making one is two steps: a form (name, date of birth, end date) whose answer is the
terms in words, then the parent's passkey over those terms' hash, after which the vault,
the relationship and the first records are written in one transaction
(`vault.services.dependants`). Both are the parent's own doing, never while acting for
someone (a delegate may not delegate further).

Taking it over is for the child, signed out: the handover code, a choice about the
parent, and the child's first passkey, all in one transaction (`wallet.accounts.take_over`).
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import segno
from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from vault.domain.errors import InvalidValue
from vault.domain.relationships import RelationshipRefused
from vault.errors import NotFound
from vault.services import delegations, dependants
from vault.services.context import reading
from wallet.accounts import take_over
from wallet.children import children_cards, open_plan, seal_plan
from wallet.passkeys.authentication import approval_options, proof_from_browser
from wallet.passkeys.manage import credential_ids
from wallet.passkeys.registration import registration_options, user_handle
from wallet.routes.auth import Answer, signed_in
from wallet.routes.deps import (
    Actor,
    Wallet,
    client_key,
    csrf_guard,
    get_subject,
    get_visitor,
    render,
)
from wallet.web import WalletState

__all__ = ["acting_for", "router"]

router = APIRouter(prefix="/wallet", dependencies=[Depends(csrf_guard)],
                   include_in_schema=False)

LONDON = ZoneInfo("Europe/London")
ChildId = Annotated[str, Path(min_length=1, max_length=40)]
Code = Annotated[str, Query(max_length=40)]
_DONE = {"made": "Done. The child's vault is made, and you can act for them now."}


def acting_for(request: Request, wallet: WalletState) -> str | None:
    """Whose vault the signed-in person is in, if not their own (the Acting for switch,
    checked against a live relationship as on every page)."""
    acting = get_subject(request, wallet, get_visitor(request, wallet))
    return acting.subject_id if acting.for_someone else None


def _not_acting(request: Request, wallet: WalletState) -> None:
    if acting_for(request, wallet) is not None:
        raise RelationshipRefused("further")


def _page(request: Request, wallet: WalletState, citizen_id: str, *, status_code: int = 200,
          error: str | None = None, values: dict[str, str] | None = None,
          notice: str | None = None) -> Response:
    with reading(wallet.ctx) as session:
        cards = children_cards(wallet.ctx, session, citizen_id)
    return render(request, "children.html", status_code=status_code, nav="children",
                  children=cards, error=error, notice=notice,
                  values=values or {"given": "", "family": "", "date_of_birth": "",
                                    "until": ""})


@router.get("/children", response_class=HTMLResponse)
def children_page(request: Request, wallet: Wallet, citizen_id: Actor, done: str = ""
                  ) -> Response:
    return _page(request, wallet, citizen_id, notice=_DONE.get(done))


def _until(text: str) -> datetime | None:
    """The end date the form asks for: the end of that day on London's clock."""
    if not text:
        return None
    try:
        day = datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise InvalidValue("the end date is not a date such as 2030-08-31") from None
    return datetime(day.year, day.month, day.day, tzinfo=LONDON) + timedelta(days=1)


Field = Annotated[str, Form(max_length=100)]


@router.post("/children/new", response_class=HTMLResponse)
def plan(request: Request, wallet: Wallet, citizen_id: Actor, given: Field = "",
         family: Field = "", date_of_birth: Field = "", until: Field = "") -> Response:
    values = {"given": given, "family": family, "date_of_birth": date_of_birth,
              "until": until}
    now = wallet.ctx.clock()
    try:
        _not_acting(request, wallet)
        made = dependants.plan_child(parent_id=citizen_id, given=given, family=family,
                                     date_of_birth=date_of_birth, until=_until(until),
                                     now=now)
    except (InvalidValue, RelationshipRefused) as exc:
        return _page(request, wallet, citizen_id, status_code=400, values=values,
                     error=f"Please check the form: {exc}.")
    return render(request, "children_check.html", nav="children", plan=made,
                  hidden=seal_plan(wallet.secret, made, now=now))


def _plan_of(wallet: WalletState, citizen_id: str, fields: dict[str, Any]
             ) -> dependants.ChildPlan:
    return open_plan(wallet.secret, fields, parent_id=citizen_id, now=wallet.ctx.clock())


@router.post("/children/create/options")
def create_options(request: Request, wallet: Wallet, citizen_id: Actor,
                   body: dict[str, Any]) -> dict[str, Any]:
    _not_acting(request, wallet)
    made = _plan_of(wallet, citizen_id, body)
    with reading(wallet.ctx) as session:
        challenge = dependants.child_terms(session, made).terms_hash()
        allow = credential_ids(session, citizen_id)
    return {"publicKey": approval_options(wallet.rp, challenge=challenge, allow=allow)}


@router.post("/children/create")
def create(request: Request, wallet: Wallet, citizen_id: Actor, answer: Answer
           ) -> JSONResponse:
    _not_acting(request, wallet)
    made = _plan_of(wallet, citizen_id, answer.fields)
    dependants.create_child(wallet.ctx, made, proof=proof_from_browser(answer.credential),
                            verifier=wallet.ctx.approvals)
    return JSONResponse({"redirect": "/wallet/children?done=made"})


def handover_qr(url: str) -> str:
    """The handover link as an inline SVG QR code (no script, no style: fit for the CSP)."""
    out = io.BytesIO()
    segno.make(url, error="m", micro=False).save(
        out, kind="svg", scale=4, border=4, xmldecl=False, nl=False, light="#fff",
        svgclass="qr", lineclass=None, title="QR code of the handover link")
    return out.getvalue().decode("utf-8")


@router.post("/children/{child_id}/handover", response_class=HTMLResponse)
def handover_code(request: Request, wallet: Wallet, citizen_id: Actor, child_id: ChildId
                  ) -> Response:
    _not_acting(request, wallet)
    issued = dependants.issue_handover(wallet.ctx, wallet.secret, parent_id=citizen_id,
                                       child_id=child_id)
    with reading(wallet.ctx) as session:
        name = delegations.display_names(wallet.ctx, session, [child_id])[child_id]
    link = f"{wallet.issuer}/wallet/handover?code={quote(issued.code)}"
    return render(request, "children_handover.html", nav="children", name=name,
                  code=issued.code, link=link, qr=handover_qr(link),
                  expires_at=issued.expires_at)


# -- the child's side, signed out ------------------------------------------------------

def _handover(wallet: WalletState, code: str) -> dependants.Handover:
    with reading(wallet.ctx) as session:
        return dependants.check_handover(session, wallet.secret, code,
                                         now=wallet.ctx.clock())


@router.get("/handover", response_class=HTMLResponse)
def handover_page(request: Request, wallet: Wallet, code: Code = "") -> Response:
    if get_visitor(request, wallet).citizen_id is not None:
        return render(request, "handover.html", status_code=409, code=code, found=None,
                      field_error="You are signed in. Sign out first: this page makes a "
                                  "passkey for the person taking their vault over.")
    if not code:
        return render(request, "handover.html", code="", found=None)
    try:
        found = _handover(wallet, code)
    except (NotFound, RelationshipRefused) as exc:
        status = 404 if isinstance(exc, NotFound) else 409
        return render(request, "handover.html", status_code=status, code=code, found=None,
                      field_error=str(exc).capitalize() + ".")
    with reading(wallet.ctx) as session:
        names = delegations.display_names(
            wallet.ctx, session, [found.child_id, *([found.parent_id] if found.parent_id
                                                    else [])])
    return render(request, "handover.html", code=code, found=found,
                  name=names[found.child_id],
                  parent=names.get(found.parent_id or "", "the person who made it"))


def _code_of(fields: dict[str, Any]) -> str:
    code = fields.get("code")
    if not isinstance(code, str) or len(code) > 40:
        raise NotFound("the handover code is missing")
    return code


@router.post("/handover/options")
def handover_options(request: Request, wallet: Wallet, body: dict[str, Any]
                     ) -> dict[str, Any]:
    wallet.sign_in_limit.hit(client_key(request), what="sign-up")
    found = _handover(wallet, _code_of(body))
    options, challenge = registration_options(
        wallet.rp, user_id=user_handle(found.child_id),
        user_name="Citizen Data Vault account", exclude=[])
    ceremony = wallet.challenges.put(challenge, purpose="handover", now=wallet.ctx.clock(),
                                     citizen_id=found.child_id)
    return {"publicKey": options, "ceremony": ceremony}


@router.post("/handover")
def handover(request: Request, wallet: Wallet, answer: Answer) -> JSONResponse:
    wallet.sign_in_limit.hit(client_key(request), what="sign-up")
    ceremony = wallet.challenges.claim(answer.ceremony or "", purpose="handover",
                                       now=wallet.ctx.clock())
    done = take_over(wallet.ctx, wallet.rp, wallet.sessions, wallet.secret,
                     ceremony=ceremony, credential=answer.credential,
                     label=answer.fields.get("label", ""), code=_code_of(answer.fields),
                     keep=answer.fields.get("parent") == "keep")
    return signed_in(wallet, done.token, "/wallet/welcome?next=/wallet/people")
