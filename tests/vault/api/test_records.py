"""Issuers write and withdraw records over HTTP (ARCHITECTURE §8 "Writing"): PUT and DELETE
/v1/records/{category} under a write grant.

A record that passes every rule is stored (value and JWS sealed, source the issuer) with
its `record.written` entry; the same JWS again is the same answer and nothing new; every
refusal is a problem with its reason and writes nothing at all (no record, no entry, no
jti); a withdrawal makes the category read as absent and keeps the history.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update
from sqlmodel import Session
from support.ledgerview import full_entries
from support.vaultworld import add_passkey, give_ada_data

from clients.service.keys import ServiceKey
from vault.api.deps import AppState
from vault.api.resource_routes import resource_audience
from vault.app import create_app
from vault.config import Settings
from vault.crypto import envelope
from vault.crypto.errors import DecryptionFailed
from vault.domain.grants import Access, GrantAction
from vault.oauth import issue_access_token, pairwise_sub
from vault.services import citizens, grants, issued, records, registry
from vault.services.records import data_key
from vault.storage.database import read_only
from vault.storage.tables import (
    CitizenRow,
    GrantRow,
    OAuthTokenFamilyRow,
    RecordJtiRow,
    RecordRow,
)
from wallet.passkeys.software import SoftAuthenticator

ORIGIN = "http://localhost:8000"
PROBLEM = "urn:citizen-vault:problem:"
AA = "benefits.attendance_allowance"
UC = "benefits.universal_credit"
AWARD = {"award": "higher", "since": "2026-01-05", "awarded_by": "DWP"}


@dataclass
class Issuer:
    client_id: str
    key: ServiceKey

    def sign(self, value: Any = None, *, category: str = AA, **kw: Any) -> str:
        return self.key.sign_record(category, AWARD if value is None else value,
                                    issuer=self.client_id, **kw)


@dataclass
class Link:
    """A citizen who approved an issuer's write grant, and a token for it."""

    issuer: Issuer
    citizen_id: str
    device: SoftAuthenticator
    grant: grants.GrantView
    token: str


@dataclass
class Env:
    client: TestClient
    state: AppState
    #: What a hypothesis test sets up once and reuses across its examples.
    kept: dict[str, Any] = field(default_factory=dict)

    def issuer(self, issues: tuple[str, ...] = (AA, UC),
               categories: tuple[str, ...] = (), derived: tuple[str, ...] = ()) -> Issuer:
        key = ServiceKey.generate()
        client_id = registry.register_service(self.state.ctx, registry.Registration(
            name="Benefits agency", description="Awards benefits",
            purposes=["eligibility_assessment"], categories=list(categories),
            derived=list(derived),
            jwks=key.public_jwks(), redirect_uris=["https://benefits.example.gov/cb"],
            privacy_notice_url="https://benefits.example.gov/privacy", issues=issues))
        return Issuer(client_id, key)

    def link(self, issuer: Issuer, *, categories: tuple[str, ...] = (AA,),
             actions: tuple[str, ...] = ("write",), citizen_id: str | None = None,
             **terms: Any) -> Link:
        ctx = self.state.ctx
        if citizen_id is None:
            citizen_id = citizens.enrol_citizen(ctx).id
            give_ada_data(ctx, citizen_id)
        device = add_passkey(ctx, citizen_id, SoftAuthenticator(origin=ORIGIN))
        args: dict[str, Any] = {
            "purpose": "eligibility_assessment", "categories": list(categories),
            "access": Access("one_time"), "data_life": "P0D", "duration": timedelta(days=30),
            "justification": "To record your award.", "actions": actions}
        args.update(terms)
        g = grants.request_grant(ctx, service_id=issuer.client_id, citizen_id=citizen_id,
                                 **args)
        grants.approve_grant(ctx, g.id, citizen_id=citizen_id,
                             proof=device.proof(challenge=g.terms_hash))
        return Link(issuer, citizen_id, device, g, self.token(issuer.client_id, g, citizen_id))

    def token(self, client_id: str, g: grants.GrantView, citizen_id: str) -> str:
        now = datetime.now(UTC)
        return issue_access_token(
            self.state.token_keys.current, issuer=ORIGIN, audience=resource_audience(ORIGIN),
            client_id=client_id, grant_id=g.id,
            sub=pairwise_sub(self.state.app_secret, client_id, citizen_id),
            authorization_details=[{"type": "personal_data", **g.terms.to_json()}],
            now=now, grant_expires_at=now + timedelta(days=1))[0]

    def put(self, link: Link, jws: Any, category: str = AA,
            token: str | None = None) -> Any:
        return self.client.put(f"/v1/records/{category}", json={"record": jws},
                               headers={"Authorization": f"Bearer {token or link.token}"})

    def delete(self, link: Link, category: str = AA) -> Any:
        return self.client.delete(f"/v1/records/{category}",
                                  headers={"Authorization": f"Bearer {link.token}"})

    def act(self, link: Link, action: GrantAction) -> None:
        ctx, cid = self.state.ctx, link.citizen_id
        challenge = grants.signing_challenge(ctx, link.grant.id, citizen_id=cid, action=action)
        do = {GrantAction.PAUSE: grants.pause_grant, GrantAction.REVOKE: grants.revoke_grant}
        do[action](ctx, link.grant.id, citizen_id=cid,
                   proof=link.device.proof(challenge=challenge))

    def entries(self) -> list[dict[str, Any]]:
        with read_only(self.state.engine).begin() as conn:
            return full_entries(conn)

    def counts(self) -> tuple[int, int, int]:
        """Records, ledger entries and used jtis: what a refused write must not change."""
        with Session(self.state.engine) as s:
            rows = s.execute(select(func.count()).select_from(RecordRow)).scalar_one()
            jtis = s.execute(select(func.count()).select_from(RecordJtiRow)).scalar_one()
        return rows, len(self.entries()), jtis


def _env(settings_: Settings) -> Iterator[Env]:
    app = create_app(settings_)
    with TestClient(app, base_url=ORIGIN) as client:
        yield Env(client, app.state.vault)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    yield from _env(Settings(data_dir=tmp_path / "v", ledger_public=True))


@pytest.fixture
def both(database_url: str, tmp_path: Path) -> Iterator[Env]:
    """On SQLite, then on PostgreSQL."""
    yield from _env(Settings(data_dir=tmp_path / "v", ledger_public=True,
                             database_url=database_url))


def problem(r: Any, status: int, slug: str, reason: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    doc: dict[str, Any] = r.json()
    assert doc["type"] == PROBLEM + slug, doc
    if reason is not None:
        assert doc["reason"] == reason
    return doc


# -- writing --------------------------------------------------------------------------------------


def test_a_record_is_stored_sealed_with_its_jws_and_logged(both: Env) -> None:
    issuer = both.issuer()
    link = both.link(issuer)
    jws = issuer.sign()
    r = both.put(link, jws)
    assert r.status_code == 201, r.text
    doc = r.json()
    assert set(doc) == {"category", "version", "ledger_index"}
    assert doc["category"] == AA and doc["version"] == 1
    entry = both.entries()[doc["ledger_index"]]
    assert entry["kind"] == "record.written"
    body = entry["body"]
    assert body["issuer"] == body["source"] == issuer.client_id
    assert body["grant_id"] == link.grant.id and body["version"] == 1
    assert body["category"] == AA and "value" not in body
    assert "higher" not in orjson.dumps(entry).decode()  # no value on the ledger

    ctx = both.state.ctx
    with Session(both.state.engine) as s:
        row = s.execute(select(RecordRow).where(RecordRow.id == body["record_id"])).scalar_one()
        citizen = s.get(CitizenRow, link.citizen_id)
        assert citizen is not None
        key = data_key(ctx, citizen)
    assert row.source == issuer.client_id and row.withdrawn_at is None
    assert row.record_jws is not None and jws.encode() not in row.record_jws  # sealed
    where = {"citizen_id": row.citizen_id, "record_id": row.id, "category": AA, "version": 1}
    assert envelope.open_sealed(key, row.record_jws,
                                ad=envelope.record_jws_ad(**where)).decode() == jws
    # Its own associated data: the sealed JWS does not open as a value, nor the reverse.
    with pytest.raises(DecryptionFailed):
        envelope.open_sealed(key, row.record_jws, ad=envelope.record_ad(**where))
    assert records.read_records(ctx, link.citizen_id)[AA].value == AWARD


def test_the_same_jws_again_is_the_same_answer_and_writes_nothing(env: Env) -> None:
    issuer = env.issuer()
    link = env.link(issuer)
    jws = issuer.sign()
    first = env.put(link, jws)
    assert first.status_code == 201
    before = env.counts()
    again = env.put(link, jws)
    assert again.status_code == 201 and again.json() == first.json()
    assert env.counts() == before
    # Signed again to retry it: other signature bytes (ES256 is randomised), the same
    # claims: the same record, the same answer.
    claims = {"jti": "award-resigned", "iat": int(datetime.now(UTC).timestamp())}
    once = env.put(link, issuer.sign(**claims))
    before = env.counts()
    resigned = issuer.sign(**claims)
    assert resigned.split(".")[2] != jws.split(".")[2]
    assert env.put(link, resigned).json() == once.json()
    assert env.counts() == before
    # A new record (a new jti) is a new version.
    nxt = env.put(link, issuer.sign({**AWARD, "award": "lower", "since": "2026-03-01"}))
    assert nxt.status_code == 201 and nxt.json()["version"] == 3


def test_a_used_jti_with_another_payload_is_a_conflict(env: Env) -> None:
    issuer = env.issuer()
    link = env.link(issuer)
    first = issuer.sign(jti="award-1")
    assert env.put(link, first).status_code == 201
    before = env.counts()
    other = issuer.sign({**AWARD, "award": "lower"}, jti="award-1")
    problem(env.put(link, other), 409, "record-refused:jti_reused", "jti_reused")
    assert env.counts() == before
    # The same JWS for another citizen is not a repeat either: the jti is the issuer's.
    someone_else = env.link(issuer)
    before = env.counts()
    problem(env.put(someone_else, first), 409, "record-refused:jti_reused")
    assert env.counts() == before


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _refusals(issuer: Issuer, stranger: ServiceKey) -> dict[str, tuple[Any, int, str]]:
    """Each rule, broken once: (record, status, reason)."""
    now = int(datetime.now(UTC).timestamp())
    head, payload, sig = issuer.sign().split(".")
    flipped = sig[:-4] + ("AAAA" if sig[-4:] != "AAAA" else "BBBB")
    return {
        "too_large": (issuer.sign({**AWARD, "pad": "x" * 70000}), 413, "too_large"),
        "malformed": ("not-a-jws", 400, "malformed"),
        "unknown_key": (stranger.sign_record(AA, AWARD, issuer=issuer.client_id),
                        400, "unknown_key"),
        "bad_signature": (f"{head}.{payload}.{flipped}", 400, "bad_signature"),
        "wrong_issuer": (issuer.key.sign_record(AA, AWARD, issuer="svc_someone_else"),
                         400, "wrong_issuer"),
        "wrong_category": (issuer.sign(category=UC), 400, "wrong_category"),
        "not_yet_valid": (issuer.sign(iat=now + 3600), 400, "not_yet_valid"),
        "expired": (issuer.sign(exp=now - 10), 400, "expired"),
        "invalid_value": (issuer.sign({**AWARD, "award": "highest"}), 400,
                          "invalid_value"),
        "no_record": (12, 400, ""),
    }


@pytest.mark.parametrize("rule", ["too_large", "malformed", "unknown_key", "bad_signature",
                                  "wrong_issuer", "wrong_category", "not_yet_valid",
                                  "expired", "invalid_value", "no_record"])
def test_each_refusal_says_why_and_writes_nothing(env: Env, rule: str) -> None:
    issuer = env.issuer()
    link = env.link(issuer)
    jws, status, reason = _refusals(issuer, ServiceKey.generate())[rule]
    before = env.counts()
    r = env.put(link, jws)
    if reason:
        doc = problem(r, status, f"record-refused:{reason}", reason)
        assert "highest" not in doc["detail"] and "DWP" not in doc["detail"]  # no value
    else:
        problem(r, 400, "invalid-request")
    assert env.counts() == before


def _scope_challenge(r: Any) -> str:
    """The 403's RFC 6750 §3 challenge: the realm, insufficient_scope and why."""
    doc = problem(r, 403, "access-denied:insufficient_scope", "insufficient_scope")
    challenge: str = r.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="vault", error="insufficient_scope", '
                                'error_description="')
    assert doc["detail"].replace('"', "") in challenge
    return challenge


def test_a_category_outside_the_grant_or_a_read_grant_is_insufficient_scope(env: Env) -> None:
    issuer = env.issuer(categories=(AA,))
    link = env.link(issuer)  # writes Attendance Allowance only
    reader = env.link(issuer, actions=("read",))
    before = env.counts()
    assert UC in _scope_challenge(env.put(link, issuer.sign(category=UC), category=UC))
    assert "not add to it" in _scope_challenge(env.put(reader, issuer.sign()))
    _scope_challenge(env.delete(reader))
    obs = "health.observations"  # a series: a batch outside the grant is refused alike
    _scope_challenge(env.client.post(
        f"/v1/records/{obs}/items", json={"record": issuer.sign(category=obs)},
        headers={"Authorization": f"Bearer {link.token}"}))
    assert env.counts() == before


def test_a_read_under_a_write_grant_is_insufficient_scope(env: Env) -> None:
    issuer = env.issuer()
    link = env.link(issuer)
    r = env.client.get("/v1/data", headers={"Authorization": f"Bearer {link.token}"})
    assert "not read from it" in _scope_challenge(r)
    assert env.entries()[-1]["kind"] != "data.accessed"


def test_other_refusals_of_a_grant_carry_no_scope_challenge(env: Env) -> None:
    # RFC 6750 §3.1: a revoked grant is not the token's scope; the 403 names its reason only.
    issuer = env.issuer()
    link = env.link(issuer)
    env.act(link, GrantAction.REVOKE)
    r = env.put(link, issuer.sign())
    problem(r, 403, "access-denied:revoked", "revoked")
    assert "www-authenticate" not in r.headers


@pytest.mark.parametrize(("action", "reason"), [(GrantAction.REVOKE, "revoked"),
                                                (GrantAction.PAUSE, "paused")])
def test_a_revoked_or_paused_grant_writes_nothing(
        env: Env, action: GrantAction, reason: str) -> None:
    issuer = env.issuer()
    link = env.link(issuer)
    jws = issuer.sign()
    env.act(link, action)
    before = env.counts()
    problem(env.put(link, jws), 403, f"access-denied:{reason}", reason)
    problem(env.delete(link), 403, f"access-denied:{reason}", reason)
    assert env.counts() == before


def test_an_expired_grant_writes_nothing(env: Env) -> None:
    issuer = env.issuer()
    link = env.link(issuer)
    with Session(env.state.engine) as s, s.begin():
        row = s.get(GrantRow, link.grant.id)
        assert row is not None
        terms = orjson.loads(row.terms)
        terms["expires_at"] = "2020-01-01T00:00:00Z"
        terms["not_before"] = "2019-01-01T00:00:00Z"
        s.execute(update(GrantRow).where(GrantRow.id == link.grant.id)  # type: ignore[arg-type]
                  .values(terms=orjson.dumps(terms, option=orjson.OPT_SORT_KEYS).decode()))
    before = env.counts()
    problem(env.put(link, issuer.sign()), 403, "access-denied:expired", "expired")
    assert env.counts() == before


def test_a_token_without_its_grant_is_401(env: Env) -> None:
    issuer = env.issuer()
    link = env.link(issuer)
    other = env.issuer()
    forged = env.token(other.client_id, link.grant, link.citizen_id)  # not other's grant
    r = env.put(link, other.sign(), token=forged)
    assert r.status_code == 401 and "invalid_token" in r.headers["www-authenticate"]
    r = env.client.put(f"/v1/records/{AA}", json={"record": issuer.sign()})
    assert r.status_code == 401


# -- withdrawing ----------------------------------------------------------------------------------


def test_a_withdrawal_reads_as_absent_and_keeps_the_history(both: Env) -> None:
    issuer = both.issuer()
    link = both.link(issuer)
    problem(both.delete(link), 404, "not-found")  # nothing written yet
    written = both.put(link, issuer.sign()).json()
    r = both.delete(link)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["category"] == AA and doc["version"] == written["version"]
    entry = both.entries()[doc["ledger_index"]]
    assert entry["kind"] == "record.withdrawn"
    assert entry["body"] == {"subject": entry["body"]["subject"], "category": AA,
                             "issuer": issuer.client_id, "grant_id": link.grant.id,
                             "version": written["version"]}
    ctx = both.state.ctx
    assert AA not in records.read_records(ctx, link.citizen_id)
    history = records.record_history(ctx, link.citizen_id, AA)
    assert [v.version for v in history] == [1] and history[0].withdrawn_at is not None
    [exported] = records.export_all(ctx, link.citizen_id)[AA]
    assert exported["source"] == issuer.client_id and "withdrawn_at" in exported
    assert "withdrawn_at" not in records.export_all(ctx, link.citizen_id)["address.home"][0]
    problem(both.delete(link), 404, "not-found")  # already withdrawn
    # A new award after it is the newest again.
    again = both.put(link, issuer.sign()).json()
    assert again["version"] == 2
    assert records.read_records(ctx, link.citizen_id)[AA].value == AWARD


def test_an_issuer_withdraws_only_its_own_current_record(env: Env) -> None:
    issuer = env.issuer()
    link = env.link(issuer)
    assert env.put(link, issuer.sign()).status_code == 201
    # The citizen's own value over it: no longer the issuer's record to withdraw.
    records.write_record(env.state.ctx, link.citizen_id, AA, AWARD)
    before = env.counts()
    problem(env.delete(link), 404, "not-found")
    assert env.counts() == before


# -- tampering (hypothesis) -----------------------------------------------------------------------


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_byte_changed_in_the_jws_is_refused_and_writes_nothing(
        env: Env, data: st.DataObject) -> None:
    if not env.kept:
        issuer = env.issuer()
        env.kept.update(link=env.link(issuer), jws=issuer.sign())
    link, jws = env.kept["link"], env.kept["jws"]
    raw = bytearray(jws.encode())
    at = data.draw(st.integers(0, len(raw) - 1), label="at")
    byte = data.draw(st.integers(0x21, 0x7E).filter(lambda b: b != raw[at]), label="byte")
    raw[at] = byte
    before = env.counts()
    r = env.put(link, raw.decode())
    assert r.status_code == 400, r.text
    assert r.json()["type"].startswith(PROBLEM + "record-refused:")
    assert env.counts() == before


# -- provenance in every read ---------------------------------------------------------------------


RECEIVES = "receives:attendance_allowance"


def _reader(env: Env, citizen_id: str) -> Link:
    """A council tax team linked to the same citizen: reads the award and the answer."""
    team = env.issuer(issues=(), categories=(AA,), derived=(RECEIVES,))
    return env.link(team, actions=("read",), citizen_id=citizen_id, derived=[RECEIVES],
                    access=Access("periodic", max_reads=10))


def _read(env: Env, link: Link) -> dict[str, Any]:
    r = env.client.get("/v1/data", headers={"Authorization": f"Bearer {link.token}"})
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()
    return doc


def test_a_read_carries_the_issuers_jws_exactly_as_written(both: Env) -> None:
    issuer = both.issuer()
    link = both.link(issuer)
    jws = issuer.sign()
    version = both.put(link, jws).json()["version"]
    doc = _read(both, _reader(both, link.citizen_id))
    assert doc["data"] == {AA: AWARD}
    assert doc["provenance"] == {AA: {"source": "issuer", "issuer": issuer.client_id,
                                      "version": version, "record": jws}}
    assert doc["derived"] == {RECEIVES: True}
    entry = both.entries()[doc["ledger_index"]]
    assert entry["body"]["issuers"] == {AA: issuer.client_id}
    # Withdrawn: the award reads as absent, the answer as unknown, and no issuer is named.
    assert both.delete(link).status_code == 200
    after = _read(both, _reader(both, link.citizen_id))
    assert after["data"] == {} and after["provenance"] == {}
    assert after["derived"] == {RECEIVES: None}
    assert "issuers" not in both.entries()[after["ledger_index"]]["body"]


def test_receives_counts_only_an_issued_award(env: Env) -> None:
    issuer = env.issuer()
    link = env.link(issuer)
    # The citizen says they get Attendance Allowance: their own word, released as theirs,
    # but no evidence for an answer that rests on the agency's award.
    records.write_record(env.state.ctx, link.citizen_id, AA, AWARD)
    reader = _reader(env, link.citizen_id)
    doc = _read(env, reader)
    assert doc["data"] == {AA: AWARD}
    assert doc["provenance"][AA] == {"source": "citizen", "issuer": None, "version": 1,
                                     "record": None}
    assert doc["derived"] == {RECEIVES: None}
    assert "issuers" not in env.entries()[doc["ledger_index"]]["body"]
    # Written by the operator for the agency (`vault citizen write --source`): issued,
    # so it counts, though there is no JWS to hand on.
    records.write_record(env.state.ctx, link.citizen_id, AA, AWARD, source=issuer.client_id)
    doc = _read(env, reader)
    assert doc["provenance"][AA] == {"source": "issuer", "issuer": issuer.client_id,
                                     "version": 2, "record": None}
    assert doc["derived"] == {RECEIVES: True}


def test_a_category_held_at_source_is_never_written(env: Env) -> None:
    """ARCHITECTURE §8 "Held at source": once a source holds the category, an issuer's
    write of it is refused with the reason, and nothing is written."""
    issuer = env.issuer()
    link = env.link(issuer)
    registry.register_service(env.state.ctx, registry.Registration(
        name="Benefits register", description="Holds awards at source",
        purposes=["eligibility_assessment"], categories=[], issues=[AA],
        jwks=ServiceKey.generate().public_jwks(),
        redirect_uris=["https://register.example.gov/cb"],
        privacy_notice_url="https://register.example.gov/privacy",
        source_url="https://register.example.gov/source"))
    before = env.counts()
    doc = problem(env.put(link, issuer.sign()), 400, "invalid-request:held_at_source",
                  "held_at_source")
    assert "held at source by Benefits register" in doc["detail"]
    assert env.counts() == before


def test_erasure_takes_the_used_jtis_with_the_citizen(env: Env) -> None:
    issuer = env.issuer()
    link = env.link(issuer)
    assert env.put(link, issuer.sign(jti="award-erased")).status_code == 201
    citizens.erase_citizen(env.state.ctx, link.citizen_id)
    with Session(env.state.engine) as s:
        left = s.execute(select(func.count()).select_from(RecordJtiRow)
                         .where(RecordJtiRow.citizen_id == link.citizen_id)).scalar_one()
    assert left == 0


def test_a_revoked_token_family_writes_nothing(env: Env) -> None:
    issuer = env.issuer()
    link = env.link(issuer)
    with Session(env.state.engine) as s, s.begin():
        s.add(OAuthTokenFamilyRow(id="tf_issuer", client_id=issuer.client_id,
                                  grant_id=link.grant.id, created_at=datetime.now(UTC)))
    now = datetime.now(UTC)
    token = issue_access_token(
        env.state.token_keys.current, issuer=ORIGIN, audience=resource_audience(ORIGIN),
        client_id=issuer.client_id, grant_id=link.grant.id,
        sub=pairwise_sub(env.state.app_secret, issuer.client_id, link.citizen_id),
        authorization_details=[{"type": "personal_data", **link.grant.terms.to_json()}],
        now=now, grant_expires_at=now + timedelta(days=1), token_family="tf_issuer")[0]
    assert env.put(link, issuer.sign(), token=token).status_code == 201
    with Session(env.state.engine) as s, s.begin():
        s.execute(update(OAuthTokenFamilyRow).where(
            OAuthTokenFamilyRow.id == "tf_issuer").values(revoked_at=now))  # type: ignore[arg-type]
    before = env.counts()
    r = env.put(link, issuer.sign(), token=token)
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]
    r = env.client.delete(f"/v1/records/{AA}", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    assert env.counts() == before


def test_a_write_that_lost_a_race_for_its_version_is_made_again(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """As on PostgreSQL when another grant's write for the citizen commits between our
    reading the newest version and our insert: the insert fails on (citizen, category,
    version), and the write is made once more, above the other."""
    issuer = env.issuer()
    link = env.link(issuer)
    assert env.put(link, issuer.sign()).json()["version"] == 1
    real = issued._next_version
    stale = [True]

    def next_version(work: Any, citizen_id: str, category: str) -> int:
        if stale.pop() if stale else False:
            return 1  # what it was before the other write committed
        return real(work, citizen_id, category)

    monkeypatch.setattr(issued, "_next_version", next_version)
    before = env.counts()
    r = env.put(link, issuer.sign({**AWARD, "award": "lower"}))
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 2
    rows, entries, jtis = env.counts()
    assert (rows, jtis) == (before[0] + 1, before[2] + 1)  # written once, not twice
    assert entries == before[1] + 1
