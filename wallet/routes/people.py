"""The People page: who can act for me, whom I act for, invitations, confirming, ending.

Always the signed-in person's own relationships (the actor's), never those of someone
whose vault they are in. Inviting and accepting are refused while acting for someone
(`further`): a delegate may not pass on what they were trusted with.

Accepting an invitation and confirming a relationship are passkey forms like approving
a grant: POST .../options asks one of the person's passkeys to sign the terms' hash,
the answer is checked in the transaction that records it (`vault.services.invitations`,
`wallet.people`). Ending needs only the session and a page that says what it means.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from vault.domain.relationships import DelegatedAction, Kind, RelationshipRefused
from vault.services import delegations, invitations
from vault.services.context import reading
from wallet import people
from wallet.clock import LONDON
from wallet.passkeys.authentication import approval_options, proof_from_browser
from wallet.passkeys.manage import credential_ids
from wallet.routes.auth import Answer
from wallet.routes.deps import Citizen, Wallet, csrf_guard, get_subject, get_visitor, render
from wallet.web import WalletState

__all__ = ["router"]

router = APIRouter(prefix="/wallet", dependencies=[Depends(csrf_guard)],
                   include_in_schema=False)

_DONE = {
    "accepted": "Done. You accepted with your passkey. They confirm next; until then "
                "you cannot act for them.",
    "live": "Done. You both agreed: it starts now.",
    "signed": "Done. You confirmed with your passkey. It starts once the other person "
              "accepts too.",
    "ended": "Ended. From now on nobody can act under it.",
    "cancelled": "The invitation is cancelled. Its code no longer works.",
}

RelationshipId = Annotated[str, Path(min_length=1, max_length=40)]
InviteHash = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")]
Code = Annotated[str, Query(max_length=40)]

_KIND_CHOICES = [(k.value, people.KIND_WORDS[k]) for k in Kind]
_ACTION_CHOICES = [(a.value, people.ACTION_WORDS[a]) for a in DelegatedAction]
#: A helper's visit: how many hours it may last (ARCHITECTURE §9: at most a day).
_HELPER_HOURS = range(1, 25)


def _acting_for(request: Request, wallet: WalletState) -> str | None:
    """Whose vault the signed-in person is in, if not their own (the Acting for switch,
    checked against a live relationship by `get_subject`)."""
    acting = get_subject(request, wallet, get_visitor(request, wallet))
    return acting.subject_id if acting.for_someone else None


@router.get("/people", response_class=HTMLResponse)
def people_page(request: Request, wallet: Wallet, citizen_id: Citizen, done: str = ""
                ) -> Response:
    page = people.people(wallet.ctx, citizen_id)
    return render(request, "people.html", nav="people", page=page, notice=_DONE.get(done),
                  kind_words=people.KIND_WORDS)


def _invite_form(request: Request, *, error: str | None = None, values: dict[str, Any]
                 | None = None, status_code: int = 200) -> Response:
    return render(request, "people_invite.html", status_code=status_code, nav="people",
                  error=error, kinds=_KIND_CHOICES, choices=_ACTION_CHOICES,
                  values=values or {"kind": "", "actions": ["view"], "until": "",
                                    "hours": "2"})


@router.get("/people/invite", response_class=HTMLResponse)
def invite_page(request: Request, citizen_id: Citizen) -> Response:
    return _invite_form(request)


def _until(kind: str, fields: dict[str, Any], now: datetime) -> datetime:
    """The end the form asks for: a helper's visit in hours from now; anyone else's
    the end of the chosen day on London's clock."""
    if kind == Kind.HELPER.value:
        try:
            hours = int(fields.get("hours", ""))
        except ValueError:
            raise ValueError("say for how many hours the helper may act (1 to 24)") from None
        if hours not in _HELPER_HOURS:
            raise RelationshipRefused("too_long", "a helper can act for you for 1 to 24 "
                                                  "hours")
        return now + timedelta(hours=hours)
    try:
        day = datetime.strptime(fields.get("until", ""), "%Y-%m-%d").date()
    except ValueError:
        raise ValueError("give the last day it lasts, as a date such as 2027-03-31") \
            from None
    # The last second of that day in London, in UTC as the vault keeps every time.
    return datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=LONDON).astimezone(UTC)


@router.post("/people/invite", response_class=HTMLResponse)
async def invite(request: Request, wallet: Wallet, citizen_id: Citizen) -> Response:
    form = await request.form()
    kind = str(form.get("kind", ""))[:16]
    chosen = sorted({str(a)[:16] for a in form.getlist("actions")} | {"view"})
    values = {"kind": kind, "actions": chosen, "until": str(form.get("until", ""))[:10],
              "hours": str(form.get("hours", ""))[:2]}
    try:
        if kind not in {k.value for k in Kind}:
            raise ValueError("choose what they will be for you")
        until = _until(kind, values, wallet.ctx.clock())
        made = invitations.invite(wallet.ctx, wallet.secret, principal_id=citizen_id,
                                  kind=kind, actions=chosen, until=until,
                                  acting_for=_acting_for(request, wallet))
    except (ValueError, RelationshipRefused) as exc:
        return _invite_form(request, error=f"Please check the form: {exc}.", values=values,
                            status_code=400)
    link = f"{wallet.issuer}/wallet/people/join?code={quote(made.code)}"
    return render(request, "people_invited.html", nav="people", code=made.code, link=link,
                  qr=people.invitation_qr(link), expires_at=made.expires_at,
                  kind=people.KIND_WORDS[Kind(kind)],
                  actions=[people.ACTION_WORDS[a] for a in DelegatedAction if a in chosen],
                  until=until)


@router.post("/people/invitations/{invite_hash}/cancel")
def cancel_invitation(wallet: Wallet, citizen_id: Citizen, invite_hash: InviteHash
                      ) -> Response:
    invitations.cancel(wallet.ctx, principal_id=citizen_id, invite_hash=invite_hash)
    return RedirectResponse("/wallet/people?done=cancelled", 303)


@router.get("/people/join", response_class=HTMLResponse)
def join_page(request: Request, wallet: Wallet, citizen_id: Citizen, code: Code = ""
              ) -> Response:
    if not code:
        return render(request, "people_join.html", nav="people", invitation=None, code="")
    try:
        found = invitations.find(wallet.ctx, wallet.secret, code, delegate_id=citizen_id)
    except invitations.UnknownInvitation as exc:
        return render(request, "people_join.html", status_code=404, nav="people",
                      invitation=None, code=code, field_error=str(exc))
    except RelationshipRefused as exc:
        return render(request, "people_join.html", status_code=409, nav="people",
                      invitation=None, code=code, field_error=str(exc))
    with reading(wallet.ctx) as session:
        name = delegations.display_names(wallet.ctx, session, [found.principal_id])[
            found.principal_id]
    return render(request, "people_join.html", nav="people", invitation=found, code=code,
                  name=name, kind=people.KIND_WORDS[found.kind],
                  actions=[people.ACTION_WORDS[a] for a in DelegatedAction
                           if a in found.actions])


def _options(wallet: WalletState, citizen_id: str, challenge: bytes) -> dict[str, Any]:
    with reading(wallet.ctx) as session:
        allow = credential_ids(session, citizen_id)
    return {"publicKey": approval_options(wallet.rp, challenge=challenge, allow=allow)}


@router.post("/people/join/options")
def join_options(request: Request, wallet: Wallet, citizen_id: Citizen,
                 body: dict[str, Any]) -> dict[str, Any]:
    terms = invitations.signing_terms(wallet.ctx, wallet.secret, _code_of(body),
                                      delegate_id=citizen_id,
                                      acting_for=_acting_for(request, wallet))
    return _options(wallet, citizen_id, terms.terms_hash())


def _code_of(fields: dict[str, Any]) -> str:
    code = fields.get("code")
    if not isinstance(code, str) or len(code) > 40:
        raise invitations.UnknownInvitation("the invitation code is missing")
    return code


@router.post("/people/join")
def join(request: Request, wallet: Wallet, citizen_id: Citizen, answer: Answer
         ) -> JSONResponse:
    invitations.accept(wallet.ctx, wallet.secret, _code_of(answer.fields),
                       delegate_id=citizen_id, proof=proof_from_browser(answer.credential),
                       acting_for=_acting_for(request, wallet))
    return JSONResponse({"redirect": "/wallet/people?done=accepted"})


@router.post("/people/{relationship_id}/sign/options")
def sign_options(request: Request, wallet: Wallet, citizen_id: Citizen,
                 relationship_id: RelationshipId) -> dict[str, Any]:
    challenge = people.signing_challenge(wallet.ctx, citizen_id, relationship_id,
                                         acting_for=_acting_for(request, wallet))
    return _options(wallet, citizen_id, challenge)


@router.post("/people/{relationship_id}/sign")
def sign(request: Request, wallet: Wallet, citizen_id: Citizen,
         relationship_id: RelationshipId, answer: Answer) -> JSONResponse:
    state = people.sign(wallet.ctx, citizen_id, relationship_id,
                        proof_from_browser(answer.credential),
                        acting_for=_acting_for(request, wallet))
    return JSONResponse({"redirect": "/wallet/people?done="
                                     + ("live" if state == "live" else "signed")})


@router.get("/people/{relationship_id}/end", response_class=HTMLResponse)
def end_page(request: Request, wallet: Wallet, citizen_id: Citizen,
             relationship_id: RelationshipId) -> Response:
    line = people.line_of(wallet.ctx, citizen_id, relationship_id)
    return render(request, "people_end.html", nav="people", line=line)


@router.post("/people/{relationship_id}/end")
def end(wallet: Wallet, citizen_id: Citizen, relationship_id: RelationshipId) -> Response:
    people.end(wallet.ctx, citizen_id, relationship_id)
    return RedirectResponse("/wallet/people?done=ended", 303)
