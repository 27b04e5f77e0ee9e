"""The Benefits Agency: awards Attendance Allowance and writes the award into the
citizen's vault (issue 12 §6, council tax; the ISSUER).

    POST /award      write the award (SDK: write_record, signed with the agency's key)
    POST /withdraw   withdraw it: the award ended (SDK: withdraw_record)

The citizen links the agency with a grant to WRITE benefits.attendance_allowance; the
agency sees nothing of the vault. Every service that relies on the award (the council
tax team) is told by the vault when it is written or withdrawn.
"""

from __future__ import annotations

from datetime import date

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import Response

from clients.examples.city.config import AGENCY, CityConfig
from clients.examples.city.site import Clock, Site, build_site, utcnow
from clients.service import Access, PersonalData, VaultClientError, WebhookEvent

__all__ = ["CATEGORY", "TERMS", "award_value", "create_app"]

CATEGORY = "benefits.attendance_allowance"
TERMS = PersonalData(
    purpose="service_provision", categories=[CATEGORY], actions=["write"],
    duration="P365D", access=Access.one_time(), data_life="P365D",
    justification="To put your Attendance Allowance award in your vault, signed by us, "
                  "so the services you choose can rely on it without asking for a letter.")


def award_value(since: date) -> dict[str, str]:
    """The award the example agency makes (lower rate, from `since`)."""
    return {"award": "lower", "since": since.isoformat(), "awarded_by": AGENCY.name}


def _home(site: Site, request: Request) -> Response:
    return site.render("agency.html", account=site.account(request))


async def _disputed(site: Site, event: WebhookEvent) -> None:
    account = site.accounts.get(str(event.data.get("grant_id", "")))
    if account is not None and event.type == "record.disputed":
        account.note(site.clock(), "You told us the award in your vault is wrong: "
                                   "we will look at it again.")


def create_app(config: CityConfig, *, transport: httpx.AsyncBaseTransport | None = None,
               clock: Clock = utcnow) -> FastAPI:
    site = build_site(config, slug=AGENCY.slug, title="Benefits Agency", terms=TERMS,
                      home=_home, on_event=_disputed, transport=transport, clock=clock)
    app = site.app

    @app.post("/award")
    async def award(request: Request) -> Response:
        account = site.account(request)
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
        account = site.account(request)
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

    return app
