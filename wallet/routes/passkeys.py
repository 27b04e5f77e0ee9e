"""The Passkeys page: a citizen's passkeys (add, rename, remove) and recovery codes.

Adding runs the usual two-step passkey form: POST /wallet/passkeys/options keeps a
"register" ceremony bound to the signed-in citizen, POST /wallet/passkeys/add claims
it. Rename is a plain form.

Removing is asked like deleting the account: GET /wallet/passkeys/{credential_id}/remove
says what it means (for the only passkey: from now on you sign in with a recovery
code), then its passkey form (POST .../remove/options, then .../remove) asks one of
the citizen's passkeys to sign a "remove_passkey" ceremony's nonce bound to that
passkey (`removal_challenge`), checked in the removal's own transaction. The last
passkey goes only while unused recovery codes remain (`LastPasskey` otherwise): they
are a working way back in, and the page then offers to add a passkey; without them the
citizen would be locked out, with nobody to let them back in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from vault.errors import NotFound
from vault.services.citizens import get_citizen
from vault.services.context import VaultContext, reading, unit_of_work
from vault.services.records import data_key
from wallet.accounts import codes_left
from wallet.errors import InvalidLabel, LastPasskey, PasskeyRejected
from wallet.next_path import MAX_NEXT_LENGTH
from wallet.passkeys.authentication import approval_options, proof_from_browser
from wallet.passkeys.challenges import new_challenge
from wallet.passkeys.manage import (
    PasskeyView,
    list_passkeys,
    removal_challenge,
    remove_confirmed,
    rename_passkey,
)
from wallet.passkeys.registration import (
    MAX_LABEL_LENGTH,
    add_passkey,
    check_label,
    registration_options,
    user_handle,
)
from wallet.routes.auth import Answer
from wallet.routes.deps import Actor, Wallet, csrf_guard, render
from wallet.views import when

__all__ = ["DONE_NOTICES", "PasskeyLine", "citizen_passkeys", "router"]

router = APIRouter(prefix="/wallet", dependencies=[Depends(csrf_guard)],
                   include_in_schema=False)

#: What `?done=` on the Passkeys page says; anything else shows nothing.
DONE_NOTICES = {
    "added": "Your new passkey is saved. You can use it to sign in.",
    "renamed": "The passkey has its new name.",
    "removed": "The passkey is removed. Nobody can sign in with it any more.",
    "recovered": "You are signed in with a recovery code, and that code will not work "
                 "again. Add a passkey on this device now, so you can sign in next time.",
}

# The credential id of a passkey is base64url of at most 1023 bytes.
_MAX_CREDENTIAL_ID = 1400
_CREDENTIAL_ID = Annotated[str, Form(min_length=1, max_length=_MAX_CREDENTIAL_ID)]


@dataclass(frozen=True, slots=True)
class PasskeyLine:
    """One passkey as the page shows it."""

    credential_id: str
    name: str | None
    added: str
    last_used: str | None


def _line(view: PasskeyView) -> PasskeyLine:
    return PasskeyLine(view.credential_id, view.label, when(view.created_at),
                       None if view.last_used_at is None else when(view.last_used_at))


def citizen_passkeys(ctx: VaultContext, citizen_id: str) -> tuple[list[PasskeyView], int]:
    """The citizen's passkeys (names opened) and how many recovery codes are unused."""
    with reading(ctx) as session:
        key = data_key(ctx, get_citizen(session, citizen_id))
        return (list_passkeys(session, citizen_id, data_key=key),
                codes_left(session, citizen_id))


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


def _page(request: Request, citizen_id: str, *, status_code: int = 200,
          **context: Any) -> Response:
    wallet = request.app.state.wallet
    views, codes = citizen_passkeys(wallet.ctx, citizen_id)
    return render(request, "passkeys.html", status_code=status_code, nav="passkeys",
                  passkeys=[_line(v) for v in views],
                  codes_left=codes, max_label=MAX_LABEL_LENGTH, **context)


@router.get("/passkeys", response_class=HTMLResponse)
def passkeys_page(request: Request, citizen_id: Actor, done: str = "") -> Response:
    return _page(request, citizen_id, notice=DONE_NOTICES.get(done),
                 recovered=done == "recovered")


@router.post("/passkeys/rename")
def rename(request: Request, wallet: Wallet, citizen_id: Actor,
           credential_id: _CREDENTIAL_ID,
           label: Annotated[str, Form(max_length=200)] = "") -> Response:
    try:
        with unit_of_work(wallet.ctx) as work:
            key = data_key(wallet.ctx, get_citizen(work.session, citizen_id))
            rename_passkey(work, citizen_id=citizen_id, credential_id=credential_id,
                           label=label, data_key=key)
    except InvalidLabel as exc:
        why = _sentence(str(exc))
        return _page(request, citizen_id, status_code=400,
                     error=f"The passkey was not renamed. {why}",
                     rename_error=(credential_id, why))
    return RedirectResponse("/wallet/passkeys?done=renamed", 303)


#: A credential id in a path: base64url of at most 1023 bytes.
_CREDENTIAL_PATH = Annotated[str, Path(min_length=1, max_length=_MAX_CREDENTIAL_ID,
                                       pattern=r"^[A-Za-z0-9_-]+$")]

_LAST = ("this is your only passkey and you have no recovery codes, so it was not "
         "removed: without it you could not sign in. First add another passkey, or "
         "make recovery codes")


@router.get("/passkeys/{credential_id}/remove", response_class=HTMLResponse)
def remove_page(request: Request, wallet: Wallet, citizen_id: Actor,
                credential_id: _CREDENTIAL_PATH) -> Response:
    """What removing this passkey means, then the passkey check (or, for the only
    passkey without recovery codes, why it cannot go)."""
    views, codes = citizen_passkeys(wallet.ctx, citizen_id)
    view = next((v for v in views if v.credential_id == credential_id), None)
    if view is None:
        raise NotFound("no such passkey")  # never reveal another citizen's passkey
    here = f"/wallet/passkeys/{credential_id}/remove"
    return render(request, "passkey_remove.html", nav="passkeys", passkey=_line(view),
                  others=len(views) - 1, codes_left=codes,
                  back_here=here if len(here) <= MAX_NEXT_LENGTH else "/wallet/passkeys")


@router.post("/passkeys/{credential_id}/remove/options")
def remove_options(wallet: Wallet, citizen_id: Actor, credential_id: _CREDENTIAL_PATH
                   ) -> dict[str, Any]:
    views, codes = citizen_passkeys(wallet.ctx, citizen_id)
    if credential_id not in {v.credential_id for v in views}:
        raise NotFound("no such passkey")
    if len(views) == 1 and codes == 0:  # refused before the device is asked
        raise LastPasskey(_LAST)
    nonce = new_challenge()
    options = approval_options(wallet.rp, challenge=removal_challenge(nonce, credential_id),
                               allow=[v.credential_id for v in views])
    ceremony = wallet.challenges.put(nonce, purpose="remove_passkey",
                                     now=wallet.ctx.clock(), citizen_id=citizen_id)
    return {"publicKey": options, "ceremony": ceremony}


@router.post("/passkeys/{credential_id}/remove")
def remove(wallet: Wallet, citizen_id: Actor, credential_id: _CREDENTIAL_PATH,
           answer: Answer) -> dict[str, str]:
    ceremony = wallet.challenges.claim(answer.ceremony or "", purpose="remove_passkey",
                                       now=wallet.ctx.clock())
    if ceremony.citizen_id != citizen_id:
        raise PasskeyRejected("challenge_unknown",
                              "this passkey request was not started here; start again")
    proof = proof_from_browser(answer.credential)
    with unit_of_work(wallet.ctx) as work:
        remove_confirmed(work, wallet.ctx.approvals, citizen_id=citizen_id,
                         credential_id=credential_id, nonce=ceremony.challenge, proof=proof,
                         can_recover=codes_left(work.session, citizen_id) > 0)
    return {"redirect": "/wallet/passkeys?done=removed"}


class _AddFields(BaseModel):
    model_config = ConfigDict(extra="ignore")
    label: str = Field(default="", max_length=200)


@router.post("/passkeys/options")
def add_options(wallet: Wallet, citizen_id: Actor, fields: _AddFields) -> dict[str, Any]:
    check_label(fields.label)  # a name we cannot keep fails before the device is asked
    views, _ = citizen_passkeys(wallet.ctx, citizen_id)
    options, challenge = registration_options(
        wallet.rp, user_id=user_handle(citizen_id), user_name="Citizen Data Vault account",
        exclude=[v.credential_id for v in views])
    ceremony = wallet.challenges.put(challenge, purpose="register", now=wallet.ctx.clock(),
                                     citizen_id=citizen_id)
    return {"publicKey": options, "ceremony": ceremony}


@router.post("/passkeys/add")
def add(wallet: Wallet, citizen_id: Actor, answer: Answer) -> dict[str, str]:
    ceremony = wallet.challenges.claim(answer.ceremony or "", purpose="register",
                                       now=wallet.ctx.clock())
    if ceremony.citizen_id != citizen_id:
        # Started by someone else's session: a passkey for them must not land here.
        raise PasskeyRejected("challenge_unknown",
                              "this passkey request was not started here; start again")
    add_passkey(wallet.ctx, wallet.rp, citizen_id=citizen_id, credential=answer.credential,
                expected_challenge=ceremony.challenge, label=answer.fields.get("label", ""))
    return {"redirect": "/wallet/passkeys?done=added"}
