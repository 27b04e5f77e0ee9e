"""The auditor agrees with the vault itself about records (issue 12 §7): a ledger the
vault's own services write, as an issuer writes, a service reads what it wrote, the
issuer withdraws and writes again, the citizen writes their own value and revokes the
issuer's grant, verifies with no failure; and the same ledger with one entry changed as
a lying operator would change it fails with the rule that entry breaks."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from support.vaultworld import Clock, add_passkey

from clients.auditor.story import StoryChecker
from clients.service.keys import ServiceKey
from ledger.sqlstore import SqlLedger
from vault.crypto import load_keyring
from vault.domain.grants import Access, GrantAction
from vault.services import access, citizens, grants, issued, records, registry
from vault.services.context import VaultContext
from vault.storage.database import make_engine, read_only
from vault.storage.schema import migrate
from wallet.passkeys import PasskeyApprovalVerifier, RelyingParty
from wallet.passkeys.software import SoftAuthenticator

ORIGIN = "http://localhost:8000"
AA = "benefits.attendance_allowance"
AWARD = {"award": "higher", "since": "2026-01-05", "awarded_by": "DWP"}


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
              citizen_id: str, **kw: Any) -> str:
    g = grants.request_grant(ctx, service_id=service_id, citizen_id=citizen_id,
                             purpose="eligibility_assessment", data_life="P30D",
                             duration=timedelta(days=30), justification="Because.", **kw)
    grants.approve_grant(ctx, g.id, citizen_id=citizen_id,
                         proof=device.proof(challenge=g.terms_hash))
    return g.id


def _entries(ctx: VaultContext) -> list[dict[str, Any]]:
    with read_only(ctx.engine).begin() as conn:
        return [orjson.loads(data) for _, _, data in SqlLedger(conn).iter_entries()]


def _check(entries: list[dict[str, Any]]) -> list[tuple[int | None, str]]:
    checker = StoryChecker(rp_id="localhost", origins=[ORIGIN])
    for i, e in enumerate(entries):
        checker.feed(i, e)
    checker.finish()
    return [(f.index, f.rule) for f in checker.failures]


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
    issued.withdraw_issued(ctx, service_id=issuer, grant_id=write, token_family=None,
                           category=AA)
    access.read_under_grant(ctx, service_id=reader, grant_id=read)  # nothing to release
    put()
    access.read_under_grant(ctx, service_id=reader, grant_id=read)
    records.write_record(ctx, citizen, AA, AWARD)  # the citizen's own value, newer
    access.read_under_grant(ctx, service_id=reader, grant_id=read)
    grants.revoke_grant(ctx, write, citizen_id=citizen, proof=device.proof(
        challenge=grants.signing_challenge(ctx, write, citizen_id=citizen,
                                           action=GrantAction.REVOKE)))
    return _entries(ctx)


def _index(entries: list[dict[str, Any]], kind: str, nth: int = 0) -> int:
    return [i for i, e in enumerate(entries) if e["kind"] == kind][nth]


def test_the_vaults_own_ledger_of_issued_records_verifies(ledger: list[dict[str, Any]]
                                                          ) -> None:
    kinds = [e["kind"] for e in ledger]
    assert kinds.count("record.written") == 4 and kinds.count("record.withdrawn") == 1
    first_read = ledger[_index(ledger, "data.accessed")]["body"]
    assert first_read["issuers"] == {AA: ledger[_index(ledger, "record.written")]["body"][
        "issuer"]}
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
