"""Isolation of acting for someone (issue 14 §6, part B), over every wallet route the app has
(enumerated as the CSRF test does): a delegate with only `view` is refused every action in
the principal's vault and nothing changes; people with no relationship, or one that has
ended, see nothing of the principal on any page even with the choice forced into their
session, and act nowhere; pages about one's own account never show the principal's."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from sqlalchemy import inspect, text, update
from sqlmodel import Session
from support.acting import end_relationship, live_relationship
from support.vaultworld import ask
from support.webwallet import Browser, WebWallet

from vault.domain.grants import GrantAction
from vault.services import grants, records
from vault.storage.tables import WalletSessionRow
from wallet.passkeys.software import SoftAuthenticator
from wallet.security import csrf_token

#: Actions in the subject's vault, each needing more than `view` (edit, approve or revoke).
SUBJECT_POSTS = {
    "/wallet/grants/{grant_id}/decline", "/wallet/grants/{grant_id}/{action}",
    "/wallet/grants/{grant_id}/{action}/options", "/wallet/data/{code}",
    "/wallet/data/{code}/delete", "/wallet/data/{code}/wrong",
    "/wallet/services/{service_id}/stop", "/wallet/services/{service_id}/allow",
}
#: Actions on the signed-in person's own account, or (parts A and C) relationships they
#: set up for their own vault: never the subject's.
ACTOR_POSTS = re.compile(
    r"/wallet/(account/|acting$|passkeys/|recovery-codes$|recover$|sign(in|up|out)|"
    r"people/|children/|counter/|handover)")
#: Pages about the signed-in person themself (the principal's must never appear there).
ACTOR_PAGES = re.compile(r"/wallet/(account|passkeys|welcome|people|children|counter|"
                         r"handover|recover|goodbye)")
_SKIP = frozenset({"ledger_checkpoints", "record_changes", "transparency_atoms",
                   "transparency_grants", "transparency_cursor", "wallet_sessions",
                   "ceremonies"})


def _routes(routes: Iterable[Any], prefix: str = "") -> Iterator[tuple[str, set[str]]]:
    for route in routes:
        inner = getattr(route, "original_router", None)  # FastAPI's included routers
        if inner is not None:
            context = getattr(route, "include_context", None)
            yield from _routes(inner.routes, prefix + getattr(context, "prefix", ""))
            continue
        path, methods = getattr(route, "path", None), getattr(route, "methods", None)
        if isinstance(path, str) and methods and path.startswith("/wallet"):
            yield prefix + path, set(methods)


def _snapshot(web: WebWallet) -> dict[str, list[str]]:
    engine = web.ctx.engine
    tables = sorted(set(inspect(engine).get_table_names()) - _SKIP)
    with engine.connect() as conn:
        return {t: sorted(repr(tuple(r)) for r in conn.execute(text(f'SELECT * FROM "{t}"')))
                for t in tables}


class Principal:
    def __init__(self, web: WebWallet) -> None:
        self.browser = web.sign_up("Grace's security key")
        assert self.browser.citizen_id is not None
        self.id = self.browser.citizen_id
        records.write_record(web.ctx, self.id, "identity.name",
                             {"given": "Grace", "family": "Hopper"})
        records.write_record(web.ctx, self.id, "contact.email", "grace@example.org")
        world = web.world_for(self.browser)
        self.service_id = world.service_id
        self.waiting = ask(web.ctx, world).id
        self.approved = ask(web.ctx, world).id
        r = self.browser.passkey_post(f"/wallet/grants/{self.approved}/approve")
        assert r.status_code == 200, r.text
        #: What only the principal's vault holds (the name is shown to their delegates).
        self.secrets = ("grace@example.org", self.waiting, self.approved,
                        "Grace&#39;s security key", "Grace's security key")


def _fill(path: str, p: Principal, action: str = "approve") -> str:
    values = {"grant_id": p.approved if action != "approve" else p.waiting,
              "action": action, "code": "contact.email", "service_id": p.service_id,
              "request_id": "x" * 43}
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: values.get(m.group(1), "x"), path)


def _attempts(web: WebWallet, who: Browser, p: Principal, path: str,
              csrf: str | None = None) -> Iterator[tuple[str, Any]]:
    """Each way to post `path` that would succeed if the relationship allowed it (with
    the CSRF token of the page the browser gets, or `csrf`)."""
    if path.endswith("{action}"):
        for action in ("approve", "pause", "resume", "revoke"):
            url = _fill(path, p, action)
            challenge = grants.signing_challenge(
                web.ctx, p.waiting if action == "approve" else p.approved,
                citizen_id=p.id, action=GrantAction(action))
            device: SoftAuthenticator = who.device
            yield url, lambda url=url, c=challenge: who.json(
                url, {"credential": device.get(challenge=c)}, csrf=csrf)
    elif path.endswith("/options"):
        for action in ("approve", "pause", "resume", "revoke"):
            url = _fill(path, p, action)
            yield url, lambda url=url: who.json(url, {}, csrf=csrf)
    else:
        url = _fill(path, p)
        body = {"value": "evil@example.org", "version": "1", "reason": "other"}
        yield url, lambda url=url: who.form(url, body, csrf=csrf)


def _all_routes(web: WebWallet) -> tuple[list[str], list[str]]:
    gets, posts = [], []
    for path, methods in _routes(web.app.routes):
        if "GET" in methods:
            gets.append(path)
        if methods - {"GET", "HEAD", "OPTIONS"}:
            posts.append(path)
    unknown = [p for p in posts if p not in SUBJECT_POSTS and not ACTOR_POSTS.match(p)]
    assert unknown == [], f"say whose vault these act in: {unknown}"
    assert set(posts) >= SUBJECT_POSTS
    return sorted(set(gets)), sorted(p for p in set(posts) if p in SUBJECT_POSTS)


def test_a_delegate_with_only_view_is_refused_every_action_and_own_pages_stay_own(
        web: WebWallet) -> None:
    p = Principal(web)
    viewer = web.sign_up()
    assert viewer.citizen_id
    live_relationship(web.ctx, principal=p.id, delegate=viewer.citizen_id,
                      principal_device=p.browser.device, delegate_device=viewer.device,
                      actions=("view",))
    gets, posts = _all_routes(web)
    assert viewer.form("/wallet/acting", {"for": p.id}).status_code == 303
    before = _snapshot(web)
    for path in posts:
        for url, attempt in _attempts(web, viewer, p, path):
            r = attempt()
            assert r.status_code == 403, (url, r.status_code, r.text[:300])
    assert _snapshot(web) == before  # nothing changed anywhere
    for path in gets:
        url = _fill(path, p)
        r = viewer.get(url, follow_redirects=False)
        assert r.status_code < 500, (url, r.status_code)
        if ACTOR_PAGES.match(path):
            for secret in p.secrets:
                assert secret not in r.text, (url, secret)
    # What `view` allows, it shows: the principal's data, in their vault.
    assert "grace@example.org" in viewer.get("/wallet/data").text


@pytest.mark.parametrize("relation", ["none", "ended"])
def test_without_a_live_relationship_nothing_of_the_principal_shows_or_changes(
        web: WebWallet, relation: str) -> None:
    p = Principal(web)
    outsider = web.sign_up()
    assert outsider.citizen_id
    if relation == "ended":
        rid = live_relationship(web.ctx, principal=p.id, delegate=outsider.citizen_id,
                                principal_device=p.browser.device,
                                delegate_device=outsider.device,
                                actions=("view", "edit", "approve", "revoke"))
        assert outsider.form("/wallet/acting", {"for": p.id}).status_code == 303
        end_relationship(web.ctx, rid)
    assert outsider.form("/wallet/acting", {"for": p.id}).status_code == 403
    gets, posts = _all_routes(web)
    before = _snapshot(web)

    def force() -> None:
        """The choice as if it had been made (or tampered with) in the session."""
        with Session(web.ctx.engine) as s:
            s.execute(update(WalletSessionRow)
                      .where(WalletSessionRow.citizen_id == outsider.citizen_id)
                      .values(acting_for=p.id))
            s.commit()

    own = outsider.csrf()  # a page drawn in their own vault
    # The token a page of the principal's vault would carry: no page ever gave it to
    # them, so it is made here as the wallet makes it (wallet.routes.deps: the session
    # token and whose vault), to show the refusal is the relationship's, not the token's.
    session = outsider.client.cookies.get(web.state.cookies.session)
    theirs = csrf_token(web.state.secret, f"{session}:{p.id}")
    for path in posts:
        for token in (own, theirs):
            for url, attempt in _attempts(web, outsider, p, path, csrf=token):
                force()
                r = attempt()
                assert r.status_code == 403, (url, r.status_code, r.text[:300])
    assert _snapshot(web) == before
    for path in gets:
        force()
        url = _fill(path, p)
        r = outsider.get(url, follow_redirects=False)
        assert r.status_code < 500, (url, r.status_code)
        # The People page lists an ended relationship by name (part A): nothing more.
        named = relation == "ended" and path.startswith("/wallet/people")
        for secret in (*p.secrets, *(() if named else ("Hopper",))):
            assert secret not in r.text, (url, secret)
