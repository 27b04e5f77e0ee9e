"""The public ledger links no one (issue 13 §5, ARCHITECTURE §10).

Through the whole app (the wallet over HTTP, passkey approvals by a software
authenticator): Alice uses three services, Bob one of them. A service knows its own
grant ids; from the public ledger (`GET /ledger/entries`, what anyone may read) it must
not be able to tell which other grants are Alice's. So for every two grants of Alice's
at different services, no string value in the public parts of the one grant's entries
may appear in the other's, but for what is public by nature: service ids, purposes,
categories, derived names, codes and states, and the services' own words (their
registrations, the reasons they give).

The same check on the same entries' full bodies (what a v1 ledger published) finds the
link, Alice's subject: so the check has the power to catch one.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Iterator
from itertools import combinations
from pathlib import Path
from typing import Any

import orjson
from support.ledgerview import full_entries
from support.vaultworld import JWK, World, ask
from support.webwallet import Browser, WebWallet, open_wallet

from vault.domain.grants import Access
from vault.services import registry
from vault.services.access import read_under_grant
from vault.storage.database import read_only

#: Codes (states, modes, actions, purposes, categories, derived names, kinds) and ISO
#: 8601 durations: the same words for every citizen.
_CODE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)*|P(T?[0-9]+[YMWDHS])+")
SERVICES = {  # name: (category, derived, justification)
    "Blue Badge team": ("address.home", "age_over_65", "To decide a Blue Badge."),
    "GP monitoring": ("identity.date_of_birth", "age_over_65", "To book your check-ups."),
    "Council tax": ("address.home", "resident_in:Westminster", "To work out your discount."),
}


def strings(value: Any) -> Iterator[str]:
    """Every string value in `value`, recursively (object keys are names, not values)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def by_grant(bodies: list[tuple[str, dict[str, Any]]]) -> dict[str, set[str]]:
    """The string values of each grant's entries (those naming its grant id)."""
    found: dict[str, set[str]] = defaultdict(set)
    for _, body in bodies:
        grant_id = body.get("grant_id")
        if isinstance(grant_id, str):
            found[grant_id] |= set(strings(body))
    return found


def public_by_nature(bodies: list[tuple[str, dict[str, Any]]]) -> set[str]:
    """What the services say: their registrations (ids, names, purposes, categories, ...)
    and the reasons they give when they ask (a service's words, the same for everyone)."""
    said = {s for kind, body in bodies if kind == "service.registered" for s in strings(body)}
    return said | {body["terms"]["justification"] for kind, body in bodies
                   if kind == "grant.requested"}


def links(grants: dict[str, set[str]], a: str, b: str, allowed: set[str]) -> set[str]:
    return {s for s in grants[a] & grants[b] if s not in allowed and not _CODE.fullmatch(s)}


def _register(web: WebWallet, name: str, category: str, derived: str) -> str:
    slug = name.lower().replace(" ", "-")
    return registry.register_service(web.ctx, registry.Registration(
        name=name, description=f"{name}, a council service",
        purposes=["eligibility_assessment"], categories=[category], derived=[derived],
        jwk=JWK, redirect_uris=[f"https://{slug}.example.gov/cb"],
        privacy_notice_url=f"https://{slug}.example.gov/privacy", max_days=90))


def _use(web: WebWallet, who: Browser, service: str, name: str) -> str:
    """`who` is asked by `service`, approves with a passkey, and is read twice."""
    category, derived, why = SERVICES[name]
    time.sleep(1.02 - time.time() % 1)  # each grant's terms in a second of its own
    assert who.citizen_id is not None
    g = ask(web.ctx, World(service, who.citizen_id, ""), categories=[category],
            derived=[derived], justification=why, access=Access("periodic", max_reads=5)).id
    r = who.passkey_post(f"/wallet/grants/{g}/approve")
    assert r.status_code == 200, r.text
    for _ in range(2):
        read_under_grant(web.ctx, service_id=service, grant_id=g)
    return g


def test_the_public_ledger_ties_no_two_services_grants_to_one_citizen(tmp_path: Path
                                                                      ) -> None:
    with open_wallet(tmp_path, log_level="WARNING") as web:
        alice, bob = web.sign_up(), web.sign_up()
        services = {name: _register(web, name, *SERVICES[name][:2]) for name in SERVICES}
        mine = {name: _use(web, alice, sid, name) for name, sid in services.items()}
        bobs = _use(web, bob, services["Blue Badge team"], "Blue Badge team")
        served = alice.client.get("/ledger/entries", params={"start": 0, "limit": 1000})
        assert served.status_code == 200, served.text
        with read_only(web.ctx.engine).begin() as conn:
            full = [(e["kind"], e["body"]) for e in full_entries(conn)]
        subject = next(body["subject"] for kind, body in full if kind == "grant.requested"
                       and body["grant_id"] == mine["Blue Badge team"])

    entries = [orjson.loads(line) for line in served.content.splitlines()]
    assert len(entries) == len(full) and all(e["v"] == 2 for e in entries)
    public = [(e["kind"], e["public"]) for e in entries]
    assert subject not in set(strings([body for _, body in public]))
    allowed = public_by_nature(public)
    grants = by_grant(public)
    assert set(mine.values()) | {bobs} <= set(grants)  # each grant's entries are found
    for a, b in combinations(mine.values(), 2):
        assert links(grants, a, b, allowed) == set(), (a, b)
    # Two citizens at one service look alike too: nothing but the service's words.
    assert links(grants, mine["Blue Badge team"], bobs, allowed) == set()

    # What a v1 ledger published, the full bodies: the same check finds Alice in every
    # pair, by her subject (and her passkey's credential id).
    whole = by_grant(full)
    for a, b in combinations(mine.values(), 2):
        assert subject in links(whole, a, b, public_by_nature(full)), (a, b)
    assert subject not in whole[bobs]
