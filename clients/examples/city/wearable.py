"""A wearable heart monitor: appends batches of readings to the citizen's series
(issue 12 §6, wearable to GP; the ISSUER of health.observations).

    POST /readings            send a batch of ordinary readings (SDK: append_items)
    POST /readings/unusual    send one reading outside the usual range (a heart rate of
                              150 bpm: the GP practice is told there is a concern)

The citizen links the monitor with a grant to WRITE health.observations; each batch is
signed once, whole. The monitor sees nothing of the vault.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import Response

from clients.examples.city.config import WEARABLE, CityConfig
from clients.examples.city.site import Clock, Site, build_site, utcnow
from clients.service import Access, PersonalData, VaultClientError

__all__ = ["CATEGORY", "TERMS", "create_app", "readings", "unusual_reading"]

CATEGORY = "health.observations"
TERMS = PersonalData(
    purpose="health_monitoring", categories=[CATEGORY], actions=["write"],
    duration="P180D", access=Access.one_time(), data_life="P1D",
    justification="To add your heart monitor's readings to your vault, so the people "
                  "you choose can be told when something looks wrong.")
#: An ordinary resting heart rate, and one well above the usual band (40 to 130 bpm).
_USUAL, _UNUSUAL = (64, 68, 71, 66), 150


def _at(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def readings(now: datetime) -> list[dict[str, Any]]:
    """The last few minutes' heart rate, one reading a minute, all in the usual range."""
    return [{"kind": "heart_rate", "value": bpm, "unit": "bpm",
             "at": _at(now - timedelta(minutes=len(_USUAL) - i))}
            for i, bpm in enumerate(_USUAL)]


def unusual_reading(now: datetime) -> list[dict[str, Any]]:
    return [{"kind": "heart_rate", "value": _UNUSUAL, "unit": "bpm", "at": _at(now)}]


def _home(site: Site, request: Request) -> Response:
    return site.render("wearable.html", account=site.account(request))


def create_app(config: CityConfig, *, transport: httpx.AsyncBaseTransport | None = None,
               clock: Clock = utcnow) -> FastAPI:
    site = build_site(config, slug=WEARABLE.slug, title="Heart monitor", terms=TERMS,
                      home=_home, transport=transport, clock=clock)
    app = site.app

    async def send(request: Request, items: list[dict[str, Any]], what: str) -> Response:
        account = site.account(request)
        if account is None:
            return site.back_home()
        async with account.lock:
            try:
                written = await site.vault().append_items(account.grant, CATEGORY, items)
            except VaultClientError as exc:
                return site.trouble(exc)
        account.note(site.clock(), f"Sent {what} to your vault (batch {written.version}, "
                                   f"ledger entry {written.ledger_index}).")
        return site.back_home()

    @app.post("/readings")
    async def send_readings(request: Request) -> Response:
        return await send(request, readings(site.clock()), f"{len(_USUAL)} readings")

    @app.post("/readings/unusual")
    async def send_unusual(request: Request) -> Response:
        return await send(request, unusual_reading(site.clock()),
                          f"a heart rate of {_UNUSUAL} bpm")

    return app
