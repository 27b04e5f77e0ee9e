"""Categories held at source in the wallet (ARCHITECTURE §8, issue 12 §5): shown as held
by the issuer and fetched when a service reads, with no value and no form to change them;
a posted form changes nothing."""

from __future__ import annotations

import html
import re

import httpx
from support.webwallet import WebWallet

from clients.service import ServiceKey
from vault.services import records, registry

PAGE = "/wallet/data/health.gp_practice"


def text_of(page: httpx.Response) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page.text)))


def register(web: WebWallet) -> str:
    return registry.register_service(web.ctx, registry.Registration(
        name="NHS patient register", description="Who is registered with which practice",
        purposes=["service_provision"], categories=[], issues=["health.gp_practice"],
        jwks=ServiceKey.generate().public_jwks(),
        redirect_uris=["https://patients.example.nhs/cb"],
        privacy_notice_url="https://patients.example.nhs/privacy",
        source_url="https://patients.example.nhs/source"))


def test_a_category_held_at_source_is_shown_held_with_no_value_or_form(web: WebWallet) -> None:
    b = web.sign_up()
    before = b.get("/wallet/data")
    assert f'href="{PAGE}">Add' in before.text  # an ordinary category until a source holds it
    register(web)
    overview = b.get("/wallet/data")
    words = text_of(overview)
    assert ("Held by NHS patient register, fetched when a service reads. Your vault "
            "keeps no copy of it") in words
    assert f'href="{PAGE}"' not in overview.text  # no link to add or change it
    page = b.get(PAGE)
    assert page.status_code == 400
    assert "held at source by NHS patient register" in text_of(page)
    assert "Save" not in text_of(page)  # no form to change it
    posted = b.form(PAGE, {"name": "Riverside Surgery", "ods_code": "A12345"})
    assert posted.status_code == 400
    assert b.citizen_id is not None
    assert "health.gp_practice" not in records.read_records(web.ctx, b.citizen_id)
