"""The council tax team: a reduction while the citizen gets Attendance Allowance
(issue 12 §6, council tax; the READER told of changes).

The citizen gives the team a periodic grant to read benefits.attendance_allowance. The
team reads it once linked, and again each time the vault tells it the award changed
(`record.changed`). It applies the reduction only for an award whose signature checks
out against the Benefits Agency's published keys (the SDK's `verified_issuer`): a value
the citizen typed in, or one signed by anyone else, is not evidence of an award.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import Response

from clients.examples.city.config import AGENCY, COUNCIL_TAX, CityConfig
from clients.examples.city.site import (
    Account,
    Clock,
    Decide,
    Site,
    build_site,
    read_into,
    utcnow,
)
from clients.service import (
    Access,
    PersonalData,
    RecordChanged,
    Release,
    WebhookEvent,
)

__all__ = ["APPLIED", "CATEGORY", "NOT_APPLIED", "REMOVED", "RESIDENT", "TERMS", "create_app",
           "decide", "residence"]

CATEGORY = "benefits.attendance_allowance"
#: Whether the citizen lives in the council's area: the vault asks the electoral
#: register, which holds the address at source; the team gets a yes or no.
RESIDENT = "resident_in:Riverside"
TERMS = PersonalData(
    purpose="eligibility_assessment", categories=[CATEGORY], derived=[RESIDENT],
    duration="P365D",
    # A read when linked and one each time the vault says the award changed: a year
    # of changes is a handful, never a standing feed.
    access=Access.periodic(max_reads=24), data_life="P30D",
    justification="To reduce your council tax while you get Attendance Allowance, and to "
                  "hear from your vault when your award changes; and to know whether you "
                  "live in Riverside, not your address.")
APPLIED = "Reduction applied"
REMOVED = "Reduction removed"
NOT_APPLIED = "No reduction"


def residence(release: Release) -> str:
    """What the read says of where the citizen lives (a yes, a no or unknown)."""
    lives_here = release.derived.get(RESIDENT)
    if lives_here is True:
        return "You live in Riverside."
    if lives_here is False:
        return "You do not live in Riverside."
    return "We could not tell whether you live in Riverside."


def decide(release: Release, *, agency: str | None, before: str) -> tuple[str, str]:
    """The team's decision on one read: (status, why). `before` is the status it
    replaces: a reduction that ends is removed; none was applied before, none is now."""
    status, why = _award(release, agency=agency, before=before)
    return status, f"{why} {residence(release)}"


def _award(release: Release, *, agency: str | None, before: str) -> tuple[str, str]:
    award: Mapping[str, Any] | None = release.data.get(CATEGORY)
    if award is None:
        if before == APPLIED:
            return REMOVED, "Your vault no longer holds an Attendance Allowance award."
        return NOT_APPLIED, "Your vault holds no Attendance Allowance award."
    provenance = release.provenance.get(CATEGORY)
    signer = provenance.verified_issuer if provenance is not None else None
    if agency is None or signer != agency:
        return NOT_APPLIED, ("The award in your vault is not signed by the Benefits Agency, "
                             "so we cannot rely on it.")
    return APPLIED, (f"Attendance Allowance ({award.get('award', '?')} rate) since "
                     f"{award.get('since', '?')}, signed by the Benefits Agency: we checked "
                     "its signature.")


def _decider(site: Site) -> Decide:
    agency = site.config.peers.get(AGENCY.slug)
    return lambda release, before: decide(release, agency=agency, before=before)


async def _linked(site: Site, account: Account) -> None:
    await read_into(site, account, "We read your award", _decider(site))


async def _told(site: Site, event: WebhookEvent) -> None:
    if isinstance(event, RecordChanged):
        account = site.accounts.get(event.grant_id)
        if account is not None:
            await read_into(site, account, "Your vault told us your award changed",
                            _decider(site))


def _home(site: Site, request: Request) -> Response:
    return site.render("counciltax.html", account=site.account(request), applied=APPLIED)


def create_app(config: CityConfig, *, transport: httpx.AsyncBaseTransport | None = None,
               clock: Clock = utcnow) -> FastAPI:
    return build_site(config, slug=COUNCIL_TAX.slug, title="Council Tax", terms=TERMS,
                      home=_home, on_linked=_linked, on_event=_told, transport=transport,
                      clock=clock).app
