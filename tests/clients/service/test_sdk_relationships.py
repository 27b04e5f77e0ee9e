"""Issued relationships through the SDK (issue 14 §1 "Issued", §6).

A registrar registered as issuer of `relationship.parent`, linked by the principal (a
write grant), writes with the SDK's `write_record` a record naming the delegate by the
registrar's own pairwise `sub` for them. The vault proposes the relationship in the
write's transaction; both people see it on their People page and sign it with their
passkeys, and it goes live. Withdrawing the record ends it (by the issuer). An unknown
`sub`, a value outside the schema or terms the vault refuses are RecordRefused with the
reason, and nothing is written. The SDK's write path needs nothing new.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlmodel import Session, select
from support.webwallet import ORIGIN, Browser, WebWallet, open_wallet

from clients.service import Grant, RecordRefused, ServiceKey, VaultClient
from vault.api.deps import AppState
from vault.api.resource_routes import resource_audience
from vault.domain.grants import Access
from vault.oauth import issue_access_token, pairwise_sub
from vault.services import delegations, grants, records, registry
from vault.services.context import unit_of_work
from vault.storage.tables import OAuthSubjectRow, RecordRow, RelationshipRow

PARENT = "relationship.parent"
_SIGN = re.compile(r'action="/wallet/people/(dlg_[A-Za-z0-9_-]+)/sign"')


class Transport(httpx.BaseTransport):
    """The SDK's requests into the app through a started TestClient."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        r = self.client.request(request.method, str(request.url), headers=request.headers,
                                content=request.read(), follow_redirects=False)
        return httpx.Response(r.status_code, headers=r.headers, content=r.content)


@pytest.fixture
def web(tmp_path: Any) -> Iterator[WebWallet]:
    with open_wallet(tmp_path) as w:
        yield w


def _registrar(web: WebWallet, principal: Browser) -> tuple[VaultClient, Grant, str]:
    """The registrar, linked by the principal: a write grant on relationship.parent."""
    state: AppState = web.app.state.vault
    ctx = state.ctx
    key = ServiceKey.generate(kid="registrar-1")
    client_id = registry.register_service(ctx, registry.Registration(
        name="Register Office", description="Births and parents",
        purposes=["eligibility_assessment"], categories=[], jwks=key.public_jwks(),
        redirect_uris=["https://registrar.example.gov/cb"],
        privacy_notice_url="https://registrar.example.gov/privacy", issues=(PARENT,)))
    assert principal.citizen_id is not None
    g = grants.request_grant(
        ctx, service_id=client_id, citizen_id=principal.citizen_id,
        purpose="eligibility_assessment", categories=[PARENT],
        access=Access("periodic", max_reads=20), data_life="P0D",
        duration=timedelta(days=30), justification="Records parents.", actions=("write",))
    grants.approve_grant(ctx, g.id, citizen_id=principal.citizen_id,
                         proof=principal.device.proof(challenge=g.terms_hash))
    now = datetime.now(UTC)
    sub = pairwise_sub(state.app_secret, client_id, principal.citizen_id)
    token = issue_access_token(
        state.token_keys.current, issuer=ORIGIN, audience=resource_audience(ORIGIN),
        client_id=client_id, grant_id=g.id, sub=sub,
        authorization_details=[{"type": "personal_data", **g.terms.to_json()}],
        now=now, grant_expires_at=now + timedelta(days=1))[0]
    client = VaultClient(ORIGIN, client_id=client_id, key=key,
                         transport=Transport(web.browser().client))
    return client, Grant(grant_id=g.id, sub=sub, access_token=token, refresh_token=None,
                         expires_at=now + timedelta(minutes=5)), client_id


def _known_sub(web: WebWallet, client_id: str, citizen_id: str) -> str:
    """The registrar's sub for the delegate, as the vault remembers it once told."""
    state: AppState = web.app.state.vault
    sub = pairwise_sub(state.app_secret, client_id, citizen_id)
    with Session(state.ctx.engine) as s:
        if s.get(OAuthSubjectRow, (client_id, sub)) is None:
            s.add(OAuthSubjectRow(service_id=client_id, sub=sub, citizen_id=citizen_id))
            s.commit()
    return sub


def _value(sub: str, **kw: Any) -> dict[str, Any]:
    until = (datetime.now(UTC) + timedelta(days=3650)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"delegate": sub, "actions": ["view", "edit", "approve", "revoke"],
            "until": until, **kw}


def _sign_from_people_page(b: Browser) -> dict[str, Any]:
    page = b.get("/wallet/people").text
    assert "Recorded by Register Office" in page
    found = _SIGN.search(page)
    assert found is not None, page
    r = b.passkey_post(f"/wallet/people/{found.group(1)}/sign")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _live_between(web: WebWallet, principal: Browser, delegate: Browser) -> None:
    assert principal.citizen_id is not None and delegate.citizen_id is not None
    with unit_of_work(web.ctx) as work:
        row = delegations.propose(
            work, principal_id=principal.citizen_id, delegate_id=delegate.citizen_id,
            kind="helper", actions=["view"], until=work.now + timedelta(hours=2),
            origin="invited")
        for side, b in (("delegate", delegate), ("principal", principal)):
            delegations.sign(work, row, side=side, verifier=web.ctx.approvals,  # type: ignore[arg-type]
                             proof=b.device.proof(challenge=row.terms_hash))
        assert row.state == "live"


def _ledger(web: WebWallet) -> list[dict[str, Any]]:
    with unit_of_work(web.ctx) as work:
        return [orjson.loads(b) for b in work.ledger.entries(0, work.ledger.size())]


def test_an_issued_relationship_is_accepted_by_both_and_ended_by_withdrawal(
        web: WebWallet) -> None:
    child, parent = web.sign_up(), web.sign_up()
    assert parent.citizen_id is not None and child.citizen_id is not None
    registrar, grant, client_id = _registrar(web, child)
    sub = _known_sub(web, client_id, parent.citizen_id)
    written = registrar.write_record(grant, PARENT, _value(sub))
    assert written.category == PARENT
    with Session(web.ctx.engine) as s:
        row = s.exec(select(RelationshipRow)).one()
        assert (row.state, row.origin, row.issuer, row.principal_id, row.delegate_id) == \
            ("proposed", "issued", client_id, child.citizen_id, parent.citizen_id)
    before = child.get("/wallet/people").text  # nobody has signed: nobody "accepted"
    assert "Recorded by Register Office: <strong>Ada Lovelace</strong> to act for you" \
        in before and "accepted: confirm" not in before
    assert "Recorded by Register Office: you to act for <strong>Ada Lovelace</strong>" \
        in parent.get("/wallet/people").text
    assert _sign_from_people_page(parent) == {"redirect": "/wallet/people?done=signed"}
    assert "Ada Lovelace accepted: confirm" in child.get("/wallet/people").text
    assert _sign_from_people_page(child) == {"redirect": "/wallet/people?done=live"}
    [granted] = [e for e in _ledger(web) if e["kind"] == "delegation.granted"]
    assert granted["public"] == {"relationship": "parent", "issuer": client_id}

    registrar.withdraw_record(grant, PARENT)
    registrar.close()
    with Session(web.ctx.engine) as s:
        row = s.exec(select(RelationshipRow)).one()
        assert (row.state, row.ended_by) == ("ended", "issuer")
    [revoked] = [e for e in _ledger(web) if e["kind"] == "delegation.revoked"]
    assert revoked["public"] == {"by": "issuer"}


def test_a_newer_record_replaces_the_relationship_of_the_older(web: WebWallet) -> None:
    child, parent = web.sign_up(), web.sign_up()
    assert parent.citizen_id is not None
    registrar, grant, client_id = _registrar(web, child)
    sub = _known_sub(web, client_id, parent.citizen_id)
    with registrar:
        registrar.write_record(grant, PARENT, _value(sub, actions=["view"]))
        registrar.write_record(grant, PARENT, _value(sub))
    with Session(web.ctx.engine) as s:
        states = sorted((r.state, r.actions) for r in s.exec(select(RelationshipRow)))
    assert states == [("ended", "view"), ("proposed", "approve,edit,revoke,view")]


@pytest.mark.parametrize(("case", "reason"), [
    ("unknown sub", "unknown_delegate"),
    ("no view", "invalid_value"),
    ("oneself", "bad_relationship"),
    ("ended already", "bad_relationship"),
    ("already live", "bad_relationship"),
])
def test_refused_records_write_nothing(web: WebWallet, case: str, reason: str,
                                       caplog: pytest.LogCaptureFixture) -> None:
    child, parent = web.sign_up(), web.sign_up()
    assert parent.citizen_id is not None and child.citizen_id is not None
    registrar, grant, client_id = _registrar(web, child)
    value = {
        "unknown sub": _value("psub_" + "A" * 22),
        "no view": _value(_known_sub(web, client_id, parent.citizen_id),
                          actions=["approve"]),
        "oneself": _value(_known_sub(web, client_id, child.citizen_id)),
        "ended already": _value(_known_sub(web, client_id, parent.citizen_id),
                                until="2020-01-01T00:00:00Z"),
        "already live": _value(_known_sub(web, client_id, parent.citizen_id)),
    }[case]
    if case == "already live":  # they agreed one between them before
        _live_between(web, child, parent)
    with registrar, pytest.raises(RecordRefused) as refused:
        registrar.write_record(grant, PARENT, value)
    assert refused.value.code == reason
    assert refused.value.status == 400
    with Session(web.ctx.engine) as s:
        assert [r.origin for r in s.exec(select(RelationshipRow))] == \
            (["invited"] if case == "already live" else [])
        assert s.exec(select(RecordRow).where(RecordRow.category == PARENT)).first() is None
    assert PARENT not in records.read_records(web.ctx, child.citizen_id)
    # Refused by the batch's own checks, before anything was stored: not by a batch
    # that failed and was made again one write at a time.
    assert not [r for r in caplog.records if "batched writes" in r.getMessage()]
