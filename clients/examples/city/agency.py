"""The Benefits Agency: awards Attendance Allowance and writes the award into the
citizen's vault (issue 12 §6, council tax; the ISSUER); and writes a household's
Universal Credit award into a child's vault (issue 14 §5, free school meals).

    POST /award            write the Attendance Allowance award (SDK: write_record,
                           signed with the agency's key)
    POST /withdraw         withdraw it: the award ended (SDK: withdraw_record)
    POST /household/award  write the household's Universal Credit award (receiving, since
                           today) into the vault linked with the `household` offer
    POST /household/end    write that the award ended (receiving: false): a change, so
                           whoever relies on it (the school) is told and reads "no"

The citizen links the agency with a grant to WRITE benefits.attendance_allowance; the
agency sees nothing of the vault. For free school meals a parent, acting for their child
in the wallet, links the agency to the CHILD's vault with the `household` offer (a grant
to write household.universal_credit): the award stays the parent's claim, and the
child's vault holds the fact the school's answer needs. Every service that relies on an
award (the council tax team, the school) is told by the vault when it changes.
"""

from __future__ import annotations

from datetime import date

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import Response

from clients.examples.city.config import AGENCY, CityConfig
from clients.examples.city.site import Clock, Site, build_site, utcnow
from clients.service import Access, PersonalData, VaultClientError, WebhookEvent

__all__ = ["CATEGORY", "HOUSEHOLD", "HOUSEHOLD_TERMS", "TERMS", "award_value", "create_app",
           "household_value"]

CATEGORY = "benefits.attendance_allowance"
TERMS = PersonalData(
    purpose="service_provision", categories=[CATEGORY], actions=["write"],
    duration="P365D", access=Access.one_time(), data_life="P365D",
    justification="To put your Attendance Allowance award in your vault, signed by us, "
                  "so the services you choose can rely on it without asking for a letter.")
#: The household's Universal Credit, written into a child's vault (the `household` offer).
HOUSEHOLD = "household.universal_credit"
HOUSEHOLD_TERMS = PersonalData(
    purpose="service_provision", categories=[HOUSEHOLD], actions=["write"],
    duration="P365D", access=Access.one_time(), data_life="P365D",
    justification="To put your household's Universal Credit award in your child's vault, "
                  "signed by us, so your child's school can give free school meals without "
                  "asking you for proof, and is told if the award ends.")


def award_value(since: date) -> dict[str, str]:
    """The award the example agency makes (lower rate, from `since`)."""
    return {"award": "lower", "since": since.isoformat(), "awarded_by": AGENCY.name}


def household_value(receiving: bool, since: date) -> dict[str, object]:
    """The household's Universal Credit as the example agency states it."""
    return {"receiving": True, "since": since.isoformat()} if receiving \
        else {"receiving": False}


def _home(site: Site, request: Request) -> Response:
    return site.render("agency.html", account=site.account(request, ""),
                       household=site.account(request, "household"))


async def _disputed(site: Site, event: WebhookEvent) -> None:
    account = site.accounts.get(str(event.data.get("grant_id", "")))
    if account is not None and event.type == "record.disputed":
        account.note(site.clock(), "You told us the award in your vault is wrong: "
                                   "we will look at it again.")


def create_app(config: CityConfig, *, transport: httpx.AsyncBaseTransport | None = None,
               clock: Clock = utcnow) -> FastAPI:
    site = build_site(config, slug=AGENCY.slug, title="Benefits Agency", terms=TERMS,
                      home=_home, on_event=_disputed, transport=transport, clock=clock,
                      offers={"household": HOUSEHOLD_TERMS})
    app = site.app

    @app.post("/award")
    async def award(request: Request) -> Response:
        account = site.account(request, "")
        if account is None:
            return site.back_home()
        async with account.lock:
            try:
                written = await site.vault().write_record(
                    account.grant, CATEGORY, award_value(site.clock().date()))
            except VaultClientError as exc:
                return site.trouble(exc)
        account.status = "Attendance Allowance awarded"
        account.note(site.clock(), f"We added your award to your vault (version "
                                   f"{written.version}, ledger entry {written.ledger_index}).")
        return site.back_home()

    @app.post("/withdraw")
    async def withdraw(request: Request) -> Response:
        account = site.account(request, "")
        if account is None:
            return site.back_home()
        async with account.lock:
            try:
                done = await site.vault().withdraw_record(account.grant, CATEGORY)
            except VaultClientError as exc:
                return site.trouble(exc)
        account.status = "Award ended"
        account.note(site.clock(), f"We withdrew your award from your vault (ledger entry "
                                   f"{done.ledger_index}).")
        return site.back_home()

    async def household(request: Request, receiving: bool) -> Response:
        account = site.account(request, "household")
        if account is None:
            return site.back_home()
        async with account.lock:
            try:
                written = await site.vault().write_record(
                    account.grant, HOUSEHOLD, household_value(receiving, site.clock().date()))
            except VaultClientError as exc:
                return site.trouble(exc)
        account.status = "Universal Credit awarded" if receiving else "Universal Credit ended"
        account.note(site.clock(), f"We {'added' if receiving else 'changed'} the household's "
                                   f"award in your child's vault (version {written.version}, "
                                   f"ledger entry {written.ledger_index}).")
        return site.back_home()

    @app.post("/household/award")
    async def household_award(request: Request) -> Response:
        return await household(request, True)

    @app.post("/household/end")
    async def household_end(request: Request) -> Response:
        return await household(request, False)

    return app
