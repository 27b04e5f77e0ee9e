"""The electoral register, holding addresses at source (issue 12 §6, federation).

The vault never keeps a copy of what the register holds. The operator registers it with
`--issues address.home --source-url <its URL>/source`; when a service reads
`address.home`, or a derived answer over it such as the council tax team's
`resident_in:Riverside`, under a citizen's grant, the vault asks the register, which
answers a record it signs. The endpoint the vault asks is the reference register of
clients.examples.register, served beneath this site.

The citizen links the register with the ordinary flow: a one-time read of their name, by
which the register finds them, and the subject the vault will name them by when it asks
for their address. (A grant to write `address.home` would say "linked" better, but the
vault refuses write grants of a category the catalog lets no one issue, even to its
source.) In this example everyone is found, at a fictional Riverside address.
"""

from __future__ import annotations

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import Response

from clients.examples.city.config import REGISTER, CityConfig
from clients.examples.city.site import Account, Clock, Site, build_site, utcnow
from clients.examples.register import Register, RegisterConfig
from clients.examples.register import create_app as source_app
from clients.service import Access, PersonalData, VaultClientError

__all__ = ["CATEGORY", "HOME", "TERMS", "create_app"]

CATEGORY = "address.home"
#: The register's entry for whoever links it (fictional, in Riverside).
HOME = {"lines": ["4 Willow Lane"], "town": "Riverside", "postcode": "RV1 2AB",
        "local_authority": "Riverside"}
TERMS = PersonalData(
    purpose="identity_verification", categories=["identity.name"], duration="P1D",
    access=Access.one_time(), data_life="P365D",
    justification="To find you on the electoral register, so that your vault can ask us "
                  "for your address when a service you chose needs it. We keep your "
                  "address; your vault keeps no copy.")


def create_app(config: CityConfig, *, transport: httpx.AsyncBaseTransport | None = None,
               clock: Clock = utcnow, register: Register | None = None) -> FastAPI:
    held = register if register is not None else Register()
    source = source_app(RegisterConfig(vault_url=config.vault_url, client_id=config.client_id,
                                       key=config.key, public_url=config.public_url),
                        held, transport=transport, clock=lambda: clock().timestamp())

    def home(site: Site, request: Request) -> Response:
        account = site.account(request)
        asked = ([purpose for sub, _, purpose, _ in held.answered
                  if sub == account.grant.sub] if account is not None else [])
        return site.render("register.html", account=account, asked=asked, home=HOME)

    async def linked(site: Site, account: Account) -> None:
        async with account.lock:
            try:
                release = await site.vault().read(account.grant)
            except VaultClientError as exc:
                account.note(site.clock(), f"We could not read your name: {exc}")
                return
        name = release.data.get("identity.name") or {}
        held.enrol(account.grant.sub, CATEGORY, HOME)
        account.status = "You are on the register"
        account.detail = " ".join(str(name.get(k, "")) for k in ("given", "family")).strip()
        account.note(site.clock(), "We found you on the register. Your vault will ask us "
                                   "for your address when a service you chose needs it.")

    site = build_site(config, slug=REGISTER.slug, title="Electoral register", terms=TERMS,
                      home=home, on_linked=linked, transport=transport, clock=clock,
                      beneath=source)
    return site.app
