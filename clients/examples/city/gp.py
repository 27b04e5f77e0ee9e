"""A GP practice told of concern, never of readings (issue 12 §6, wearable to GP).

The citizen gives the practice a periodic grant on two derived answers only:
`observations_of_concern` (was any reading of the last 24 hours outside its usual
range?) and `observations_of_concern:heart_rate` (was a heart rate?). The vault computes
them over the series the wearable writes; the practice never receives a value. It reads
once linked, and again each time the vault says the series changed (`record.changed`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import Response

from clients.examples.city.config import GP, CityConfig
from clients.examples.city.site import Account, Clock, Site, build_site, read_into, utcnow
from clients.service import Access, PersonalData, RecordChanged, Release, WebhookEvent

__all__ = ["ANY", "MEASURES", "TERMS", "concern", "create_app"]

ANY = "observations_of_concern"
#: The measures the practice asks about, by name as the practice words them.
MEASURES = {"heart_rate": "heart rate"}
TERMS = PersonalData(
    purpose="health_monitoring", derived=[ANY, *(f"{ANY}:{m}" for m in MEASURES)],
    # A yes/no each time the monitor sends readings (a few a day for six months).
    duration="P180D", access=Access.periodic(max_reads=1000), data_life="P30D",
    justification="So your practice is told when a reading from your heart monitor is "
                  "outside its usual range. We are never sent the readings themselves.")


def concern(derived: Mapping[str, Any]) -> tuple[str, str]:
    """(status, why) from the derived answers of one read: yes, no or unknown each."""
    which = [words for m, words in MEASURES.items() if derived.get(f"{ANY}:{m}") is True]
    if derived.get(ANY) is True:
        return (f"Concern: {', '.join(which) or 'a reading'}",
                "A reading in the last 24 hours was outside its usual range. A nurse will "
                "call you.")
    if derived.get(ANY) is False:
        return "No concern", "Every reading in the last 24 hours was in its usual range."
    return "Nothing to go on", "No readings in the last 24 hours."


def _decide(release: Release, before: str) -> tuple[str, str]:
    return concern(release.derived)


async def _linked(site: Site, account: Account) -> None:
    await read_into(site, account, "We asked your vault", _decide)


async def _told(site: Site, event: WebhookEvent) -> None:
    if isinstance(event, RecordChanged):
        account = site.accounts.get(event.grant_id)
        if account is not None:
            await read_into(site, account, "Your vault told us of new readings", _decide)


def _home(site: Site, request: Request) -> Response:
    return site.render("gp.html", account=site.account(request))


def create_app(config: CityConfig, *, transport: httpx.AsyncBaseTransport | None = None,
               clock: Clock = utcnow) -> FastAPI:
    return build_site(config, slug=GP.slug, title="Riverside GP practice", terms=TERMS,
                      home=_home, on_linked=_linked, on_event=_told, transport=transport,
                      clock=clock).app
