"""Every category the catalog offers as issuable can be issued, end to end (issue 12 §1).

For each issuable category, a value its schema takes (an object, or a string for
`identity.date_of_birth`: a record's `value` is any JSON value but null) is signed with
the SDK's `ServiceKey.sign_record`, written over HTTP under a write grant (PUT, or POST
.../items for a series), read by another service through `/v1/data`, and its provenance
checked with the SDK's `verify_record` against the issuer's keys as
`GET /services/{client_id}/jwks` serves them: what was signed is what was released.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session
from support.vaultworld import add_passkey

from clients.service.keys import ServiceKey
from clients.service.records import verify_record
from vault.api.deps import AppState
from vault.api.resource_routes import resource_audience
from vault.app import create_app
from vault.config import Settings
from vault.domain.categories import categories, issuable_codes, validate_value
from vault.domain.grants import Access
from vault.oauth import issue_access_token, pairwise_sub
from vault.services import citizens, grants, registry
from vault.storage.tables import OAuthSubjectRow
from wallet.passkeys.software import SoftAuthenticator

ORIGIN = "http://localhost:8000"
_AN_HOUR_AGO = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
#: A value of each issuable category, as its issuer would send it (a series: its items).
#: A category made issuable without an example here fails the first test.
EXAMPLES: dict[str, Any] = {
    "benefits.attendance_allowance": {"award": "lower", "since": "2024-02-01",
                                      "awarded_by": "Benefits Agency"},
    "benefits.universal_credit": {"receiving": True, "since": "2023-09-01"},
    "health.observations": [{"kind": "heart_rate", "value": 72, "unit": "bpm",
                             "at": _AN_HOUR_AGO}],
    "household.universal_credit": {"receiving": True, "since": "2024-09-01"},
    "identity.date_of_birth": "1955-04-02",
    "identity.name": {"given": "Sam", "family": "Rivers"},
    # The delegate is the issuer's sub for someone it knows: the write test puts one in.
    **{f"relationship.{kind}": {"delegate": "psub_" + "A" * 22, "actions": ["view", "approve"],
                                "until": "2035-01-31T00:00:00Z"}
       for kind in ("parent", "attorney", "appointee")},
}


def _token(state: AppState, client_id: str, citizen_id: str, device: SoftAuthenticator,
           **terms: Any) -> str:
    """A token for a grant of `client_id` that the citizen approved."""
    ctx = state.ctx
    g = grants.request_grant(
        ctx, service_id=client_id, citizen_id=citizen_id, purpose="eligibility_assessment",
        access=Access("periodic", max_reads=10), data_life="P0D",
        duration=timedelta(days=30), justification="To see it works.", **terms)
    grants.approve_grant(ctx, g.id, citizen_id=citizen_id,
                         proof=device.proof(challenge=g.terms_hash))
    now = datetime.now(UTC)
    return issue_access_token(
        state.token_keys.current, issuer=ORIGIN, audience=resource_audience(ORIGIN),
        client_id=client_id, grant_id=g.id,
        sub=pairwise_sub(state.app_secret, client_id, citizen_id),
        authorization_details=[{"type": "personal_data", **g.terms.to_json()}],
        now=now, grant_expires_at=now + timedelta(days=1))[0]


def _with_a_delegate(state: AppState, issuer: str) -> dict[str, Any]:
    """EXAMPLES, each relationship.* naming a citizen the issuer knows (by its sub)."""
    delegate = citizens.enrol_citizen(state.ctx).id
    sub = pairwise_sub(state.app_secret, issuer, delegate)
    with Session(state.ctx.engine) as s:
        s.add(OAuthSubjectRow(service_id=issuer, sub=sub, citizen_id=delegate))
        s.commit()
    return {code: {**value, "delegate": sub} if code.startswith("relationship.") else value
            for code, value in EXAMPLES.items()}


def _service(state: AppState, key: ServiceKey, name: str, **kw: Any) -> str:
    return registry.register_service(state.ctx, registry.Registration(
        name=name, description=name, purposes=["eligibility_assessment"],
        jwks=key.public_jwks(), redirect_uris=[f"https://{name}.example.gov/cb"],
        privacy_notice_url=f"https://{name}.example.gov/privacy", **kw))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(data_dir=tmp_path / "v")), base_url=ORIGIN) as c:
        yield c


def test_every_issuable_category_has_an_example_its_schema_takes() -> None:
    assert set(EXAMPLES) == set(issuable_codes())
    for code, value in EXAMPLES.items():
        validate_value(code, value)


def test_every_issuable_category_is_written_read_and_verified(client: TestClient) -> None:
    state: AppState = client.app.state.vault  # type: ignore[attr-defined]
    codes = issuable_codes()
    key, reader_key = ServiceKey.generate(), ServiceKey.generate()
    issuer = _service(state, key, "registrar", categories=[], issues=tuple(codes))
    reader = _service(state, reader_key, "reader", categories=codes)
    citizen = citizens.enrol_citizen(state.ctx).id
    device = add_passkey(state.ctx, citizen, SoftAuthenticator(origin=ORIGIN))
    writes = _token(state, issuer, citizen, device, categories=codes, actions=("write",))
    reads = _token(state, reader, citizen, device, categories=codes)
    examples = _with_a_delegate(state, issuer)

    signed: dict[str, str] = {}
    for code in codes:
        series = categories()[code].series
        value = {"items": examples[code]} if series else examples[code]
        signed[code] = key.sign_record(code, value, issuer=issuer)
        r = (client.post(f"/v1/records/{code}/items", json={"record": signed[code]},
                         headers={"Authorization": f"Bearer {writes}"}) if series else
             client.put(f"/v1/records/{code}", json={"record": signed[code]},
                        headers={"Authorization": f"Bearer {writes}"}))
        assert r.status_code == 201, (code, r.text)

    r = client.get("/v1/data", headers={"Authorization": f"Bearer {reads}"})
    assert r.status_code == 200, r.text
    release = r.json()
    jwks = client.get(f"/services/{issuer}/jwks").json()
    for code in codes:
        p = release["provenance"][code]
        if categories()[code].series:
            [batch] = release["data"][code]["batches"]
            assert batch["items"] == examples[code]
            [record] = [b["record"] for b in p["batches"]]
            value = {"items": batch["items"]}
        else:
            assert release["data"][code] == examples[code]
            assert p["source"] == "issuer" and p["issuer"] == issuer
            record, value = p["record"], release["data"][code]
        assert record == signed[code]
        assert verify_record(record, jwks, issuer=issuer, category=code).value == value
