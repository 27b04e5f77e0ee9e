"""The auditor agrees with the vault itself about records (issue 12 §7): a ledger the
vault's own services write verifies with no failure (story checks and personal-data
scan) as an issuer writes, a service reads what it wrote, the citizen disputes it, the
issuer withdraws and writes again, the citizen writes and deletes a value of their own
and revokes the issuer's grant; as a wearable appends batches of a series that a GP
practice reads; and as a register answers a read at source. The same ledger with one
entry changed as a lying operator would change it fails with the rule that entry
breaks."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from support.ledgerview import full_entries
from support.vaultworld import Clock, add_passkey

from clients.auditor.story import StoryChecker
from clients.auditor.verify import EntryChecks
from clients.service.keys import ServiceKey
from vault.crypto import load_keyring
from vault.domain.grants import Access, GrantAction
from vault.services import (
    access,
    citizens,
    disputes,
    grants,
    issued,
    issued_series,
    records,
    registry,
)
from vault.services.context import VaultContext, unit_of_work
from vault.services.sources import Fetched
from vault.storage.database import make_engine, read_only
from vault.storage.schema import migrate
from wallet.passkeys import PasskeyApprovalVerifier, RelyingParty
from wallet.passkeys.software import SoftAuthenticator

ORIGIN = "http://localhost:8000"
AA = "benefits.attendance_allowance"
AWARD = {"award": "higher", "since": "2026-01-05", "awarded_by": "DWP"}
OBS = "health.observations"
HOME = "address.home"
ADDRESS = {"lines": ["12 St James's Square"], "town": "London", "postcode": "SW1Y 4JH",
           "local_authority": "Westminster"}


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[VaultContext]:
    engine = make_engine(f"sqlite:///{tmp_path / 'vault.db'}")
    migrate(engine)
    c = VaultContext(engine=engine, keyring=load_keyring(tmp_path / "keys", master_key=None,
                                                         production=False),
                     clock=Clock(),
                     approvals=PasskeyApprovalVerifier(RelyingParty.from_public_url(ORIGIN)))
    yield c
    engine.dispose()


def _register(ctx: VaultContext, key: ServiceKey, **kw: Any) -> str:
    return registry.register_service(ctx, registry.Registration(**{
        "name": "A service", "description": "Does things", "purposes": ["eligibility_assessment"],
        "categories": [], "derived": [], "jwks": key.public_jwks(),
        "redirect_uris": ["https://service.example.gov/cb"],
        "privacy_notice_url": "https://service.example.gov/privacy", **kw}))


def _approved(ctx: VaultContext, device: SoftAuthenticator, *, service_id: str,
              citizen_id: str, purpose: str = "eligibility_assessment", **kw: Any) -> str:
    g = grants.request_grant(ctx, service_id=service_id, citizen_id=citizen_id,
                             purpose=purpose, data_life="P30D",
                             duration=timedelta(days=30), justification="Because.", **kw)
    grants.approve_grant(ctx, g.id, citizen_id=citizen_id,
                         proof=device.proof(challenge=g.terms_hash))
    return g.id


def _entries(ctx: VaultContext) -> list[dict[str, Any]]:
    """The entries with their full bodies (a sealed one opened): the story rules' view,
    which `vault-audit verify` gets through the openings (tests/clients/auditor/
    test_openings.py checks those)."""
    with read_only(ctx.engine).begin() as conn:
        return [{k: e[k] for k in ("seq", "time", "kind", "body")} for e in full_entries(conn)]


def _check(entries: list[dict[str, Any]]) -> list[tuple[int | None, str]]:
    """The story checks and the personal-data scan (as `vault-audit verify` runs them)."""
    checks = EntryChecks(StoryChecker(rp_id="localhost", origins=[ORIGIN]))
    for i, e in enumerate(entries):
        checks.feed(i, orjson.dumps(e))
    checks.story.finish()
    return [(f.index, f.rule) for f in checks.failures]


@pytest.fixture
def ledger(ctx: VaultContext) -> list[dict[str, Any]]:
    """The vault's own entries of an issuer's records, from registration to revocation."""
    key = ServiceKey.generate()
    issuer = _register(ctx, key, name="Benefits agency", issues=[AA])
    reader = _register(ctx, ServiceKey.generate(), name="Council tax", categories=[AA])
    citizen = citizens.enrol_citizen(ctx).id
    device = add_passkey(ctx, citizen, SoftAuthenticator(origin=ORIGIN))
    write = _approved(ctx, device, service_id=issuer, citizen_id=citizen, categories=[AA],
                      access=Access("one_time"), actions=["write"])
    read = _approved(ctx, device, service_id=reader, citizen_id=citizen, categories=[AA],
                     access=Access("periodic", max_reads=10))

    def put() -> None:
        issued.write_issued(ctx, service_id=issuer, grant_id=write, token_family=None,
                            category=AA, record=key.sign_record(
                                AA, AWARD, issuer=issuer, iat=int(ctx.clock().timestamp())))

    put()
    released = access.read_under_grant(ctx, service_id=reader, grant_id=read)
    assert AA in released.data
    put()  # the award changes: version 2
    disputes.dispute_record(ctx, citizen, AA, version=2, reason="details_wrong")
    issued.withdraw_issued(ctx, service_id=issuer, grant_id=write, token_family=None,
                           category=AA)
    access.read_under_grant(ctx, service_id=reader, grant_id=read)  # nothing to release
    put()
    access.read_under_grant(ctx, service_id=reader, grant_id=read)
    records.write_record(ctx, citizen, AA, AWARD)  # the citizen's own value, newer
    access.read_under_grant(ctx, service_id=reader, grant_id=read)
    records.delete_records(ctx, citizen, AA)  # their own goes; the issuer's stays
    assert access.read_under_grant(ctx, service_id=reader, grant_id=read).data[AA] == AWARD
    grants.revoke_grant(ctx, write, citizen_id=citizen, proof=device.proof(
        challenge=grants.signing_challenge(ctx, write, citizen_id=citizen,
                                           action=GrantAction.REVOKE)))
    _series(ctx, device, citizen)
    _at_source(ctx, device, citizen)
    return _entries(ctx)


def _series(ctx: VaultContext, device: SoftAuthenticator, citizen: str) -> None:
    """A wearable appends two batches of observations; a GP practice reads them."""
    key = ServiceKey.generate()
    wearable = _register(ctx, key, name="Wearable", purposes=["health_monitoring"],
                         issues=[OBS])
    gp = _register(ctx, ServiceKey.generate(), name="GP practice",
                   purposes=["health_monitoring"], categories=[OBS])
    write = _approved(ctx, device, service_id=wearable, citizen_id=citizen,
                      purpose="health_monitoring", categories=[OBS],
                      access=Access("one_time"), actions=["write"])
    read = _approved(ctx, device, service_id=gp, citizen_id=citizen,
                     purpose="health_monitoring", categories=[OBS],
                     access=Access("periodic", max_reads=10))
    for value in (70, 72):
        batch = {"items": [{"kind": "heart_rate", "value": value, "unit": "bpm",
                            "at": "2026-11-22T08:00:00Z"}]}
        issued_series.append_issued(
            ctx, service_id=wearable, grant_id=write, token_family=None, category=OBS,
            record=key.sign_record(OBS, batch, issuer=wearable,
                                   iat=int(ctx.clock().timestamp())))
    assert OBS in access.read_under_grant(ctx, service_id=gp, grant_id=read).data


def _at_source(ctx: VaultContext, device: SoftAuthenticator, citizen: str) -> None:
    """A register holds address.home at source; a read releases what it answered."""
    key = ServiceKey.generate()
    register = _register(ctx, key, name="Electoral register", purposes=["service_provision"],
                         issues=[HOME], source_url="https://register.example.gov/source")
    badge = _register(ctx, ServiceKey.generate(), name="Blue Badge", categories=[HOME])
    read = _approved(ctx, device, service_id=badge, citizen_id=citizen, categories=[HOME],
                     access=Access("one_time"))
    # What `SourceFetcher.fetch_for` hands the read after checking the source's answer.
    fetched = Fetched(HOME, register, ADDRESS,
                      key.sign_record(HOME, ADDRESS, issuer=register,
                                      iat=int(ctx.clock().timestamp())))
    with unit_of_work(ctx) as work:
        access.read_in(ctx, work, service_id=badge, grant_id=read, fetched=(fetched,))


def _index(entries: list[dict[str, Any]], kind: str, nth: int = 0) -> int:
    return [i for i, e in enumerate(entries) if e["kind"] == kind][nth]


def test_the_vaults_own_ledger_of_issued_records_verifies(ledger: list[dict[str, Any]]
                                                          ) -> None:
    kinds = [e["kind"] for e in ledger]
    assert kinds.count("record.written") == 6 and kinds.count("record.withdrawn") == 1
    assert kinds.count("record.disputed") == 1 and kinds.count("record.deleted") == 1
    issuer = {AA: ledger[_index(ledger, "record.written")]["body"]["issuer"]}
    reads = [e["body"] for e in ledger if e["kind"] == "data.accessed"]
    # Named as issuer while its record is the newest; not when withdrawn, nor when the
    # citizen's own value is newer; again once the citizen deletes their own.
    assert [r.get("issuers") for r in reads[:5]] == [issuer, None, issuer, None, issuer]
    wearable = ledger[_index(ledger, "record.written", 4)]["body"]
    assert wearable["items"] == 1 and wearable["category"] == OBS
    assert reads[6]["sources"] == {HOME: ledger[_index(ledger, "service.registered", 4)][
        "body"]["service_id"]}
    assert _check(ledger) == []


def _forged(entries: list[dict[str, Any]], i: int, **body: Any) -> list[dict[str, Any]]:
    out = copy.deepcopy(entries)
    out[i]["body"].update(body)
    return out


def test_the_vaults_ledger_changed_fails_with_the_rule_broken(ledger: list[dict[str, Any]]
                                                              ) -> None:
    withdrawal = _index(ledger, "record.withdrawn")
    assert _check(_forged(ledger, withdrawal, version=1)) == [(withdrawal, "withdraw.record")]
    read_after = _index(ledger, "data.accessed", 1)  # released nothing: withdrawn
    issuer = ledger[withdrawal]["body"]["issuer"]
    assert _check(_forged(ledger, read_after, categories=[AA], issuers={AA: issuer})) == [
        (read_after, "access.issuer")]
    # A write after the citizen revoked the grant: appended, as an operator could.
    late = copy.deepcopy(ledger[_index(ledger, "record.written", 2)])
    late["body"]["version"] = 5
    assert _check([*ledger, late]) == [(len(ledger), "write.state")]
    dispute = _index(ledger, "record.disputed")  # of version 2: now of version 1
    assert _check(_forged(ledger, dispute, version=1)) == [(dispute, "dispute.record")]
    gp_read = _index(ledger, "data.accessed", 5)  # the series: named as the GP's own
    gp = ledger[gp_read]["body"]["service_id"]
    assert _check(_forged(ledger, gp_read, issuers={OBS: gp})) == [(gp_read, "access.issuer")]
    at_source = _index(ledger, "data.accessed", 6)  # held by the register, not the reader
    badge = ledger[at_source]["body"]["service_id"]
    assert _check(_forged(ledger, at_source, sources={HOME: badge})) == [
        (at_source, "access.source")]

