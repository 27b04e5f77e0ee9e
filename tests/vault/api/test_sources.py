"""Held at source over real sockets (ARCHITECTURE §8): the vault asks the reference
register (clients/examples/register) on each read, and refuses every bad answer.

The vault and the sources are uvicorn servers on loopback. A happy read releases the
register's signed record (and a derived answer over it) and logs `data.accessed` with
`"sources"`; a source that is slow (503 source_unavailable + Retry-After), answers 5xx,
garbage, a bad signature, another category or another issuer (502) releases nothing,
logs nothing and leaves the grant's read count as it was.
"""

from __future__ import annotations

import asyncio
import importlib.abc
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from livevault import LiveVault, free_port, serve, serve_app
from sqlmodel import Session
from support.ledgerview import full_entries
from support.vaultworld import add_passkey

from clients.auditor.story import StoryChecker
from clients.examples.register import Register, RegisterConfig, create_app
from clients.service import ServiceKey, verify_record
from vault.api.deps import AppState
from vault.api.resource_routes import resource_audience
from vault.config import Settings
from vault.domain.grants import Access
from vault.oauth import issue_access_token, pairwise_sub
from vault.services import citizens, grants, records, registry
from vault.storage.database import read_only
from vault.storage.tables import GrantRow, OAuthTokenFamilyRow
from wallet.passkeys.software import SoftAuthenticator

PROBLEM = "urn:citizen-vault:problem:"
ADDRESS = {"lines": ["1 Guildhall Yard"], "town": "London", "postcode": "EC2V 5AE",
           "local_authority": "City of London"}


@dataclass
class Federation:
    live: LiveVault
    register: Register
    register_id: str
    register_key: ServiceKey
    reader_id: str
    citizen_id: str
    grant_id: str
    terms: dict[str, Any]

    @property
    def state(self) -> AppState:
        assert self.live.app is not None
        state: AppState = self.live.app.state.vault
        return state

    def token(self) -> str:
        now = datetime.now(UTC)
        return issue_access_token(
            self.state.token_keys.current, issuer=self.live.url,
            audience=resource_audience(self.live.url), client_id=self.reader_id,
            grant_id=self.grant_id,
            sub=pairwise_sub(self.state.app_secret, self.reader_id, self.citizen_id),
            authorization_details=[{"type": "personal_data", **self.terms}], now=now,
            grant_expires_at=now + timedelta(days=1))[0]

    def read(self) -> httpx.Response:
        return httpx.get(f"{self.live.url}/v1/data", timeout=10,
                         headers={"Authorization": f"Bearer {self.token()}"})

    def entries(self) -> list[dict[str, Any]]:
        with read_only(self.state.engine).begin() as conn:
            return full_entries(conn)

    def reads(self) -> int:
        return grants.get_grant(self.state.ctx, self.grant_id).reads


def _register_source(state: AppState, url: str, key: ServiceKey) -> str:
    return registry.register_service(state.ctx, registry.Registration(
        name="City electoral register", description="Who lives where, for elections",
        purposes=["service_provision"], categories=[], issues=["address.home"],
        jwks=key.public_jwks(), redirect_uris=["https://register.example.gov/cb"],
        privacy_notice_url="https://register.example.gov/privacy", source_url=url))


def _reader_with_grant(state: AppState, citizen_id: str) -> tuple[str, str, dict[str, Any]]:
    reader = registry.register_service(state.ctx, registry.Registration(
        name="Blue Badge team", description="Decides Blue Badge applications",
        purposes=["eligibility_assessment"], categories=["address.home"],
        derived=["resident_in:City of London"], jwk=ServiceKey.generate().public_jwk(),
        redirect_uris=["https://badges.example.gov/cb"],
        privacy_notice_url="https://badges.example.gov/privacy"))
    device = add_passkey(state.ctx, citizen_id, SoftAuthenticator(origin=state.settings.base_url))
    g = grants.request_grant(
        state.ctx, service_id=reader, citizen_id=citizen_id, purpose="eligibility_assessment",
        categories=["address.home"], derived=["resident_in:City of London"],
        access=Access("periodic", max_reads=20), data_life="P30D",
        justification="To check you can have a Blue Badge.", duration=timedelta(days=30))
    grants.approve_grant(state.ctx, g.id, citizen_id=citizen_id,
                         proof=device.proof(challenge=g.terms_hash))
    return reader, g.id, g.terms.to_json()


@pytest.fixture
def federation(tmp_path: Path) -> Iterator[Federation]:
    """A vault whose address.home is held by the reference register; a citizen on the
    register; a reader with an approved grant over address.home and resident_in:."""
    # Generous: the register's first answer fetches the vault's JWKS (a loaded CI box).
    settings = Settings(data_dir=tmp_path / "v", ledger_public=True, source_timeout=10)
    with serve(settings) as live:
        assert live.app is not None
        state: AppState = live.app.state.vault
        port = free_port()
        key = ServiceKey.generate()
        register_id = _register_source(state, f"http://localhost:{port}/source", key)
        citizen = citizens.enrol_citizen(state.ctx)
        held = Register()
        held.enrol(pairwise_sub(state.app_secret, register_id, citizen.id), "address.home",
                   ADDRESS)
        config = RegisterConfig(vault_url=live.url, client_id=register_id, key=key,
                                public_url=f"http://localhost:{port}")
        reader, grant_id, terms = _reader_with_grant(state, citizen.id)
        with serve_app(create_app(config, held), port, what="the register"):
            yield Federation(live, held, register_id, key, reader, citizen.id, grant_id, terms)


def test_a_read_asks_the_register_and_releases_its_signed_record(
        federation: Federation) -> None:
    f = federation
    r = f.read()
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["data"] == {"address.home": ADDRESS}
    assert doc["derived"] == {"resident_in:City of London": True}
    # Provenance: the register's own signature, checkable with its JWKS alone.
    prov = doc["provenance"]["address.home"]
    assert prov["source"] == "issuer" and prov["issuer"] == f.register_id
    assert prov["version"] is None
    jwks = httpx.get(f"{f.live.url}/services/{f.register_id}/jwks").json()
    signed = verify_record(prov["record"], jwks, issuer=f.register_id, category="address.home")
    assert signed.value == ADDRESS
    # The register was asked once, by the subject IT knows the citizen by, for the
    # grant's purpose, and learnt only a hash of the grant id.
    [(sub, category, purpose, ref)] = f.register.answered
    assert sub == pairwise_sub(f.state.app_secret, f.register_id, f.citizen_id)
    assert sub != pairwise_sub(f.state.app_secret, f.reader_id, f.citizen_id)
    assert (category, purpose) == ("address.home", "eligibility_assessment")
    assert len(ref) == 64 and f.grant_id not in ref
    entry = f.entries()[doc["ledger_index"]]
    assert entry["kind"] == "data.accessed"
    assert entry["body"]["categories"] == ["address.home"]
    assert entry["body"]["sources"] == {"address.home": f.register_id}
    assert "issuers" not in entry["body"]  # fetched, not an issued record stored here
    assert "Guildhall" not in orjson.dumps(entry).decode()  # names, never values
    assert f.reads() == 1
    # Nothing of it was stored: the citizen's records hold no address.
    assert "address.home" not in records.read_records(f.state.ctx, f.citizen_id)
    # The auditor accepts the story: a read from a registered source of that category.
    checker = StoryChecker(rp_id="localhost", origins=[f.live.url])
    for i, e in enumerate(f.entries()):
        checker.feed(i, e)
    checker.finish()
    assert [(x.index, x.rule, x.detail) for x in checker.failures] == []


def test_a_citizen_not_on_the_register_reads_as_no_value(federation: Federation) -> None:
    f = federation
    f.register.entries.clear()
    r = f.read()
    assert r.status_code == 200, r.text
    # As a category with no record: left out, and the answer over it unknown.
    assert r.json()["data"] == {} and r.json()["derived"] == {
        "resident_in:City of London": None}
    entry = f.entries()[r.json()["ledger_index"]]
    assert "sources" not in entry["body"]  # nothing was fetched


def test_writes_of_a_category_held_at_source_are_refused(federation: Federation) -> None:
    f = federation
    with pytest.raises(Exception, match="held at source by City electoral register"):
        records.write_record(f.state.ctx, f.citizen_id, "address.home", ADDRESS)


# -- failures: nothing released, logged or counted ------------------------------------------


class BadSource:
    """A source that answers as told: slowly, 5xx, garbage, or a record that lies."""

    def __init__(self, key: ServiceKey, client_id: str) -> None:
        self.key, self.client_id = key, client_id
        self.mode = "ok"
        self.app = FastAPI()
        self.app.post("/source")(self.answer)

    async def answer(self, request: Request) -> Response:
        await request.body()
        mine = self.key.sign_record("address.home", ADDRESS, issuer=self.client_id)
        match self.mode:
            case "slow":
                await asyncio.sleep(4)  # past the vault's 1 s
                return JSONResponse({"record": mine})
            case "5xx":
                return JSONResponse({"error": "down"}, status_code=500)
            case "garbage":
                return Response(b"<html>not json", media_type="text/html")
            case "bad_signature":
                head, body, sig = mine.split(".")
                flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
                return JSONResponse({"record": f"{head}.{body}.{flipped}"})
            case "wrong_category":
                return JSONResponse({"record": self.key.sign_record(
                    "identity.name", {"given": "A", "family": "B"}, issuer=self.client_id)})
            case "wrong_issuer":
                return JSONResponse({"record": self.key.sign_record(
                    "address.home", ADDRESS, issuer="svc_someone_else")})
            case "bad_value":
                return JSONResponse({"record": self.key.sign_record(
                    "address.home", {"lines": []}, issuer=self.client_id)})
        return JSONResponse({"record": mine})


@pytest.fixture
def bad(tmp_path: Path) -> Iterator[tuple[Federation, BadSource]]:
    settings = Settings(data_dir=tmp_path / "v", ledger_public=True, source_timeout=1.0)
    with serve(settings) as live:
        assert live.app is not None
        state: AppState = live.app.state.vault
        port = free_port()
        key = ServiceKey.generate()
        source_id = _register_source(state, f"http://localhost:{port}/source", key)
        citizen = citizens.enrol_citizen(state.ctx)
        reader, grant_id, terms = _reader_with_grant(state, citizen.id)
        source = BadSource(key, source_id)
        with serve_app(source.app, port, what="the bad source"):
            yield (Federation(live, Register(), source_id, key, reader, citizen.id, grant_id,
                              terms), source)


@pytest.mark.parametrize(("mode", "status", "reason"), [
    ("slow", 503, None),
    ("5xx", 502, "source_error"),
    ("garbage", 502, "malformed"),
    ("bad_signature", 502, "bad_signature"),
    ("wrong_category", 502, "wrong_category"),
    ("wrong_issuer", 502, "wrong_issuer"),
    ("bad_value", 502, "invalid_value"),
])
def test_a_bad_source_releases_logs_and_counts_nothing(
        bad: tuple[Federation, BadSource], mode: str, status: int, reason: str | None) -> None:
    f, source = bad
    assert f.read().status_code == 200  # the source works: one read counted and logged
    before = (len(f.entries()), f.reads())
    source.mode = mode
    r = f.read()
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    doc = r.json()
    assert "data" not in doc and "Guildhall" not in r.text
    if status == 503:
        assert doc["type"] == f"{PROBLEM}source_unavailable"
        assert int(r.headers["retry-after"]) > 0
    else:
        assert doc["type"] == f"{PROBLEM}source_bad_answer:{reason}"
        assert doc["reason"] == reason
    assert (len(f.entries()), f.reads()) == before  # nothing logged, nothing counted
    source.mode = "ok"
    assert f.read().status_code == 200 and f.reads() == before[1] + 1


def test_a_read_at_source_tries_no_import(federation: Federation,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """httpcore's async client asks `import sniffio` for every lock it makes: without it
    installed, each failed import walks sys.path (about 3 ms of a read at source)."""
    assert federation.read().status_code == 200  # anything imported lazily is now in

    tried: list[str] = []

    class Spy(importlib.abc.MetaPathFinder):
        def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
            tried.append(name)
            return None

    monkeypatch.setattr(sys, "meta_path", [Spy(), *sys.meta_path])
    assert federation.read().status_code == 200
    assert tried == []


def test_a_read_the_grant_refuses_never_reaches_the_source(federation: Federation) -> None:
    """The unlocked pre-check (one query: the grant, its service, the token's family)
    stops a refused read before any source hears of it; the locked read refuses it."""
    f = federation
    now = datetime.now(UTC)
    with Session(f.state.engine) as session, session.begin():
        for family, revoked in (("fam_live", None), ("fam_revoked", now)):
            session.add(OAuthTokenFamilyRow(id=family, client_id=f.reader_id,
                                            grant_id=f.grant_id, created_at=now,
                                            revoked_at=revoked))

    def read(family: str | None) -> httpx.Response:
        token = issue_access_token(
            f.state.token_keys.current, issuer=f.live.url,
            audience=resource_audience(f.live.url), client_id=f.reader_id,
            grant_id=f.grant_id, sub="psub_x", token_family=family,
            authorization_details=[{"type": "personal_data", **f.terms}], now=now,
            grant_expires_at=now + timedelta(days=1))[0]
        return httpx.get(f"{f.live.url}/v1/data", timeout=10,
                         headers={"Authorization": f"Bearer {token}"})

    before = len(f.entries())
    assert read("fam_revoked").status_code == 401
    assert read("fam_unknown").status_code == 401
    with Session(f.state.engine) as session, session.begin():
        session.get_one(GrantRow, f.grant_id).state = "paused"
    r = read("fam_live")
    assert r.status_code == 403 and r.json()["reason"] == "paused"
    assert f.register.answered == []  # the source never heard of any of them
    assert (len(f.entries()), f.reads()) == (before, 0)
    with Session(f.state.engine) as session, session.begin():
        session.get_one(GrantRow, f.grant_id).state = "approved"
    assert read("fam_live").status_code == 200 and len(f.register.answered) == 1
