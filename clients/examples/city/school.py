"""A school that gives free school meals, told only yes or no (issue 14 §5).

"Not only having an instant decision on eligibility, but knowing your children's school
will be automatically informed": a parent, acting for their child in the wallet, gives
the school a periodic grant on the CHILD's `eligible_free_school_meals` only. The vault
answers it from the household's Universal Credit award the Benefits Agency issued into
the child's vault and the child's date of birth (vault/domain/derived.py, the rule); the
school never sees either. It reads once linked (the decision is there at once) and again
each time the vault says an input changed (`record.changed`): when the award ends the
child is no longer eligible, and the school knows without anyone telling it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import Response

from clients.examples.city.config import SCHOOL, CityConfig
from clients.examples.city.site import Account, Clock, Site, build_site, read_into, utcnow
from clients.service import Access, PersonalData, RecordChanged, Release, WebhookEvent

__all__ = ["ANSWER", "ELIGIBLE", "NOT_ELIGIBLE", "TERMS", "UNKNOWN", "create_app", "meals"]

ANSWER = "eligible_free_school_meals"
TERMS = PersonalData(
    purpose="free_school_meals", derived=[ANSWER], duration="P365D",
    # A read when linked and one each time the vault says the award changed: a school
    # year of changes is a handful.
    access=Access.periodic(max_reads=24), data_life="P365D",
    justification="To give your child free school meals while they can have them, and to "
                  "hear from your child's vault when that changes. We are told only yes or "
                  "no, never the award or your child's date of birth.")
ELIGIBLE = "Eligible for free school meals"
NOT_ELIGIBLE = "Not eligible"
UNKNOWN = "We cannot tell yet"


def meals(derived: Mapping[str, Any]) -> tuple[str, str]:
    """(status, why) from one read's derived answers: yes, no or unknown."""
    answer = derived.get(ANSWER)
    if answer is True:
        return ELIGIBLE, ("Your child's vault says your household gets Universal Credit and "
                          "your child is of school age: meals start today.")
    if answer is False:
        return NOT_ELIGIBLE, ("Your child's vault says your child cannot have free school "
                              "meals now (no Universal Credit award, or not of school "
                              "age). You can still pay for meals.")
    return UNKNOWN, ("Your child's vault holds no Universal Credit award from the Benefits "
                     "Agency, or no date of birth, yet. We will hear when it does.")


def _decide(release: Release, before: str) -> tuple[str, str]:
    return meals(release.derived)


async def _linked(site: Site, account: Account) -> None:
    await read_into(site, account, "We asked your child's vault", _decide)


async def _told(site: Site, event: WebhookEvent) -> None:
    if isinstance(event, RecordChanged):
        account = site.accounts.get(event.grant_id)
        if account is not None:
            await read_into(site, account, "Your child's vault told us something changed",
                            _decide)


def _home(site: Site, request: Request) -> Response:
    return site.render("school.html", account=site.account(request), eligible=ELIGIBLE,
                       not_eligible=NOT_ELIGIBLE)


def create_app(config: CityConfig, *, transport: httpx.AsyncBaseTransport | None = None,
               clock: Clock = utcnow) -> FastAPI:
    return build_site(config, slug=SCHOOL.slug, title="Riverside Primary School",
                      terms=TERMS, home=_home, on_linked=_linked, on_event=_told,
                      transport=transport, clock=clock).app
