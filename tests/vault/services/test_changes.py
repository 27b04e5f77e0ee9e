"""`record.changed`: a change tells exactly the grants that read what changed, from the
webhook outbox, exactly once, and never for a change that rolled back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass
from dataclasses import replace as replace_ctx
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, col, select
from standardwebhooks import Webhook
from support.ledgerview import opened_entries
from support.vaultworld import JWK, Clock, add_passkey

from clients.service import verify_webhook
from clients.service.keys import ServiceKey
from clients.service.webhooks import RecordChanged
from vault.crypto.webhook_signing import printable, webhook_secret
from vault.domain.errors import AccessDenied
from vault.domain.grants import Access, GrantAction
from vault.services import access, changes, citizens, grants, issued, records, registry
from vault.services.changes import ChangeTeller, tell_changed, tell_pending
from vault.services.context import VaultContext, unit_of_work
from vault.services.group_commit import GroupCommitWriter, WriteAsk
from vault.services.webhooks import WebhookDispatcher
from vault.storage.tables import RecordChangeRow, WebhookMessageRow
from wallet.passkeys.software import SoftAuthenticator

APP_SECRET = b"s" * 32
HOOK = "https://council-tax.example.gov/hooks"
READS = ["address.home", "identity.date_of_birth", "contact.email",
         "benefits.attendance_allowance"]
DERIVED = ["age_over_18", "age_over_65", "resident_in:Leeds", "receives:attendance_allowance"]
INPUTS = {"age_over_18": {"identity.date_of_birth"}, "age_over_65": {"identity.date_of_birth"},
          "resident_in:Leeds": {"address.home"},
          "receives:attendance_allowance": {"benefits.attendance_allowance"}}
VALUES: dict[str, Any] = {
    "address.home": {"lines": ["1 High Street"], "town": "Leeds", "postcode": "LS1 1AA",
                     "local_authority": "Leeds"},
    "identity.date_of_birth": "1950-12-10",
    "contact.email": "ada@example.org",
    "benefits.attendance_allowance": {"award": "higher", "since": "2026-01-05",
                                      "awarded_by": "Benefits agency"},
}


def _service(ctx: VaultContext, name: str, *, webhook: bool = True,
             issues: tuple[str, ...] = ()) -> str:
    return registry.register_service(ctx, registry.Registration(
        name=name, description="Tests record.changed", purposes=["eligibility_assessment"],
        categories=READS, derived=DERIVED, jwk=JWK, redirect_uris=["https://s.example.gov/cb"],
        privacy_notice_url="https://s.example.gov/privacy",
        webhook_url=HOOK if webhook else None, issues=issues))


def _ask(ctx: VaultContext, service_id: str, citizen_id: str, *, categories: list[str],
         derived: list[str], actions: tuple[str, ...] = ("read",),
         duration: timedelta = timedelta(days=30), not_before: datetime | None = None,
         access_: Access | None = None) -> grants.GrantView:
    return grants.request_grant(
        ctx, service_id=service_id, citizen_id=citizen_id, purpose="eligibility_assessment",
        categories=categories, derived=derived,
        access=access_ or Access("periodic", max_reads=100), data_life="P30D",
        justification="To test record.changed.", duration=duration, not_before=not_before,
        actions=actions)


def _approve(ctx: VaultContext, device: SoftAuthenticator, citizen_id: str,
             g: grants.GrantView) -> None:
    grants.approve_grant(ctx, g.id, citizen_id=citizen_id,
                         proof=device.proof(challenge=g.terms_hash))


def _act(ctx: VaultContext, device: SoftAuthenticator, citizen_id: str, grant_id: str,
         action: GrantAction) -> None:
    proof = device.proof(challenge=grants.signing_challenge(
        ctx, grant_id, citizen_id=citizen_id, action=action))
    {GrantAction.PAUSE: grants.pause_grant, GrantAction.REVOKE: grants.revoke_grant}[action](
        ctx, grant_id, citizen_id=citizen_id, proof=proof)


def _told(ctx: VaultContext) -> list[dict[str, Any]]:
    """Every record.changed body queued so far, with the service it is for."""
    with Session(ctx.engine) as s:
        rows = s.exec(select(WebhookMessageRow)
                      .where(col(WebhookMessageRow.event) == "record.changed")).all()
        return [{**json.loads(r.body), "service_id": r.service_id} for r in rows]


def _pending(ctx: VaultContext) -> list[RecordChangeRow]:
    with Session(ctx.engine) as s:
        return list(s.exec(select(RecordChangeRow)).all())


@dataclass
class Setting:
    service: str
    citizen: str
    device: SoftAuthenticator


@pytest.fixture
def reader(ctx: VaultContext) -> Setting:
    service = _service(ctx, "Council tax team")
    c = citizens.enrol_citizen(ctx)
    return Setting(service, c.id, add_passkey(ctx, c.id))


def _live_grant(ctx: VaultContext, s: Setting, **kw: Any) -> grants.GrantView:
    g = _ask(ctx, s.service, s.citizen, **kw)
    _approve(ctx, s.device, s.citizen, g)
    return g


def test_a_write_tells_the_grant_that_reads_it(ctx: VaultContext, reader: Setting,
                                               clock: Clock) -> None:
    g = _live_grant(ctx, reader, categories=["address.home"], derived=["age_over_65"])
    view = records.write_record(ctx, reader.citizen, "address.home", VALUES["address.home"])
    assert _told(ctx) == [] and len(_pending(ctx)) == 1  # the write queued one row only
    assert tell_pending(ctx) == 1
    (told,) = _told(ctx)
    assert _pending(ctx) == []
    # Stored exactly as the ORM stores grant.approved's message, made at the same time.
    with ctx.engine.connect() as conn:
        assert len(conn.exec_driver_sql("SELECT DISTINCT created_at, next_attempt_at "
                                        "FROM webhook_messages").all()) == 1
    entry_seq = told["data"]["ledger_index"]
    assert told == {"type": "record.changed", "timestamp": told["timestamp"],
                    "service_id": reader.service,
                    "data": {"grant_id": g.id, "categories": ["address.home"], "derived": [],
                             "ledger_index": entry_seq}}
    # The timestamp is the change's own time, and the index its record.written entry.
    assert told["timestamp"].startswith(view.created_at.strftime("%Y-%m-%dT%H:%M:%S"))
    with Session(ctx.engine) as s:
        [entry] = opened_entries(s.connection(), entry_seq)[:1]
    assert (entry.kind, entry.body["category"]) == ("record.written", "address.home")
    # A change to what a derived answer rests on names the answer, not the category.
    clock.advance(minutes=1)
    records.write_record(ctx, reader.citizen, "identity.date_of_birth", "1950-12-10")
    tell_pending(ctx)
    assert _told(ctx)[-1]["data"]["categories"] == []
    assert _told(ctx)[-1]["data"]["derived"] == ["age_over_65"]
    # Deleting is a change too; a category nobody reads tells no one.
    records.delete_records(ctx, reader.citizen, "address.home")
    records.write_record(ctx, reader.citizen, "contact.email", "ada@example.org")
    assert tell_pending(ctx) == 2
    deleted = _told(ctx)[2]["data"]
    assert (deleted["categories"], len(_told(ctx))) == (["address.home"], 3)


def test_an_issuers_award_and_its_withdrawal_tell_who_rests_on_it(
        ctx: VaultContext, reader: Setting, clock: Clock) -> None:
    """The council tax scenario, in the vault: the benefits agency's write tells the
    team whose grant is on `receives:attendance_allowance`, and so does its withdrawal;
    the agency's own grant, only to write, is not told."""
    key = ServiceKey.generate()
    agency = registry.register_service(ctx, registry.Registration(
        name="Benefits agency", description="Awards benefits",
        purposes=["eligibility_assessment"], categories=[], jwks=key.public_jwks(),
        redirect_uris=["https://benefits.example.gov/cb"],
        privacy_notice_url="https://benefits.example.gov/privacy", webhook_url=HOOK,
        issues=["benefits.attendance_allowance"]))
    writes = _ask(ctx, agency, reader.citizen, categories=["benefits.attendance_allowance"],
                  derived=[], actions=("write",))
    _approve(ctx, reader.device, reader.citizen, writes)
    team = _live_grant(ctx, reader, categories=[], derived=["receives:attendance_allowance"])
    jws = key.sign_record("benefits.attendance_allowance",
                          VALUES["benefits.attendance_allowance"], issuer=agency,
                          iat=int(clock().timestamp()))
    written = issued.write_issued(ctx, service_id=agency, grant_id=writes.id,
                                  token_family=None, category="benefits.attendance_allowance",
                                  record=jws)
    clock.advance(days=20)
    withdrawn = issued.withdraw_issued(ctx, service_id=agency, grant_id=writes.id,
                                       token_family=None,
                                       category="benefits.attendance_allowance")
    assert tell_pending(ctx) == 2
    told = _told(ctx)
    assert [(t["service_id"], t["data"]["grant_id"]) for t in told] == [
        (reader.service, team.id)] * 2
    assert [t["data"]["ledger_index"] for t in told] == [written.ledger_index,
                                                         withdrawn.ledger_index]
    assert {(tuple(t["data"]["categories"]), tuple(t["data"]["derived"])) for t in told} == \
        {((), ("receives:attendance_allowance",))}


def test_the_agencys_award_in_a_childs_vault_tells_the_school(
        ctx: VaultContext, reader: Setting, clock: Clock) -> None:
    """Free school meals (issue 14 §5): the agency writes the household's award into a
    child's vault; the school's grant on `eligible_free_school_meals`, a derived answer
    over that issued fact, is told of the write and of the award's change, by name."""
    key = ServiceKey.generate()
    agency = registry.register_service(ctx, registry.Registration(
        name="Benefits agency", description="Pays Universal Credit",
        purposes=["eligibility_assessment"], categories=[], jwks=key.public_jwks(),
        redirect_uris=["https://benefits.example.gov/cb"],
        privacy_notice_url="https://benefits.example.gov/privacy", webhook_url=HOOK,
        issues=["household.universal_credit"]))
    school = registry.register_service(ctx, registry.Registration(
        name="Riverside Primary", description="Free school meals",
        purposes=["eligibility_assessment"], categories=[],
        derived=["eligible_free_school_meals"], jwk=JWK,
        redirect_uris=["https://school.example.gov/cb"],
        privacy_notice_url="https://school.example.gov/privacy", webhook_url=HOOK))
    writes = _ask(ctx, agency, reader.citizen, categories=["household.universal_credit"],
                  derived=[], actions=("write",))
    _approve(ctx, reader.device, reader.citizen, writes)
    meals = _live_grant(ctx, Setting(school, reader.citizen, reader.device),
                        categories=[], derived=["eligible_free_school_meals"])
    indices = []
    for value in ({"receiving": True, "since": "2025-09-01"}, {"receiving": False}):
        jws = key.sign_record("household.universal_credit", value, issuer=agency,
                              iat=int(clock().timestamp()))
        indices.append(issued.write_issued(
            ctx, service_id=agency, grant_id=writes.id, token_family=None,
            category="household.universal_credit", record=jws).ledger_index)
        clock.advance(minutes=1)
    assert tell_pending(ctx) == 2
    told = [t for t in _told(ctx) if t["service_id"] == school]
    assert [(t["data"]["grant_id"], t["data"]["derived"], t["data"]["categories"],
             t["data"]["ledger_index"]) for t in told] == [
        (meals.id, ["eligible_free_school_meals"], [], i) for i in indices]


# -- exactly the grants that should be told -------------------------------------------------

#: Approved (the only fate that is told) is drawn as often as all the others together.
FATES = ["approved"] * 6 + ["requested", "paused", "revoked", "denied", "expired",
                            "not_started"]


@st.composite
def grant_specs(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["reader", "reader", "no_webhook", "suspended", "issuer"]))
    if kind == "issuer":
        actions = draw(st.sampled_from([("write",), ("read", "write")]))
        cats, derived = ["benefits.attendance_allowance"], []
    else:
        actions = ("read",)
        cats = draw(st.lists(st.sampled_from(READS), unique=True, max_size=2))
        derived = draw(st.lists(st.sampled_from(DERIVED), unique=True,
                                min_size=0 if cats else 1, max_size=2))
    return {"kind": kind, "actions": actions, "categories": cats, "derived": derived,
            "fate": draw(st.sampled_from(FATES))}


def _should_tell(spec: dict[str, Any], changed: str) -> bool:
    """The rule, stated naively: an approved grant, live now, that can read, of a
    service that is not suspended and listens, reading the category or an answer on it."""
    if spec["fate"] != "approved" or spec["kind"] in ("no_webhook", "suspended"):
        return False
    if "read" not in spec["actions"]:
        return False
    return changed in spec["categories"] or any(changed in INPUTS[d] for d in spec["derived"])


def _grants_in_fates(ctx: VaultContext, clock: Clock, specs: list[dict[str, Any]]
                     ) -> tuple[str, dict[str, str], list[tuple[dict[str, Any], str]]]:
    """A citizen, the four services, and a grant per spec brought to its fate."""
    services = {"reader": _service(ctx, "Reader"),
                "no_webhook": _service(ctx, "Quiet", webhook=False),
                "suspended": _service(ctx, "Suspended"),
                "issuer": _service(ctx, "Benefits agency",
                                   issues=("benefits.attendance_allowance",))}
    c = citizens.enrol_citizen(ctx)
    device = add_passkey(ctx, c.id)
    made: list[tuple[dict[str, Any], str]] = []
    for spec in specs:
        fate = spec["fate"]
        g = _ask(ctx, services[spec["kind"]], c.id, categories=spec["categories"],
                 derived=spec["derived"], actions=spec["actions"],
                 duration=timedelta(days=1 if fate == "expired" else 30),
                 not_before=clock() + timedelta(days=5) if fate == "not_started" else None)
        if fate == "denied":
            grants.deny_grant(ctx, g.id, citizen_id=c.id)
        elif fate != "requested":
            _approve(ctx, device, c.id, g)
        if fate in ("paused", "revoked"):
            _act(ctx, device, c.id, g.id,
                 GrantAction.PAUSE if fate == "paused" else GrantAction.REVOKE)
        made.append((spec, g.id))
    registry.suspend_service(ctx, services["suspended"])
    clock.advance(days=2)  # the 1-day grants are past their end (not yet swept)
    return c.id, services, made


def _check_told(ctx: VaultContext, citizen_id: str, services: dict[str, str],
                made: list[tuple[dict[str, Any], str]]) -> None:
    for changed in READS:
        before = len(_told(ctx))
        records.write_record(ctx, citizen_id, changed, VALUES[changed])
        tell_pending(ctx)
        told = {t["data"]["grant_id"]: t for t in _told(ctx)[before:]}
        assert set(told) == {gid for spec, gid in made if _should_tell(spec, changed)}
        for spec, gid in made:
            if gid in told:
                data = told[gid]["data"]
                # Names as the terms hold them: sorted.
                assert data["categories"] == [c for c in spec["categories"] if c == changed]
                assert data["derived"] == sorted(d for d in spec["derived"]
                                                 if changed in INPUTS[d])
                assert told[gid]["service_id"] == services[spec["kind"]]


def test_told_only_the_live_reading_grants(ctx: VaultContext, clock: Clock) -> None:
    """One grant in each state that is not told, beside two that are."""
    reading = {"categories": ["address.home"], "derived": []}
    on_answer = {"categories": [], "derived": ["resident_in:Leeds"]}
    specs = [{"kind": "reader", "actions": ("read",), **reading, "fate": "approved"},
             {"kind": "reader", "actions": ("read",), **on_answer, "fate": "approved"},
             {"kind": "issuer", "actions": ("write",), "categories":
              ["benefits.attendance_allowance"], "derived": [], "fate": "approved"},
             {"kind": "issuer", "actions": ("read", "write"), "categories":
              ["benefits.attendance_allowance"], "derived": [], "fate": "approved"},
             {"kind": "no_webhook", "actions": ("read",), **reading, "fate": "approved"},
             {"kind": "suspended", "actions": ("read",), **reading, "fate": "approved"},
             {"kind": "reader", "actions": ("read",), **reading, "fate": "approved"}]
    specs += [{"kind": "reader", "actions": ("read",), **reading, "fate": fate}
              for fate in sorted(set(FATES) - {"approved"})]
    citizen_id, services, made = _grants_in_fates(ctx, clock, specs)
    _check_told(ctx, citizen_id, services, made)
    assert len(_told(ctx)) == 4  # 3 on address.home, 1 on the award, 0 on the others


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=st.lists(grant_specs(), min_size=1, max_size=5))
def test_told_exactly_the_live_reading_grants_over_the_change(
        ctx: VaultContext, clock: Clock, specs: list[dict[str, Any]]) -> None:
    _check_told(ctx, *_grants_in_fates(ctx, clock, specs))


# -- atomic, exactly once ---------------------------------------------------------------------

@pytest.mark.parametrize("inline", [0, 100], ids=["by the teller", "inline"])
def test_a_change_that_rolls_back_tells_no_one(ctx: VaultContext, reader: Setting,
                                               inline: int) -> None:
    """Whether the change leaves a row for the teller or queues its message itself, both
    roll back with it."""
    ctx = replace_ctx(ctx, tell_inline=inline)
    _live_grant(ctx, reader, categories=["address.home"], derived=[])
    with pytest.raises(RuntimeError), unit_of_work(ctx) as work:
        entry = work.ledger.append("record.deleted", {"subject": "x", "category":
                                                      "address.home", "versions": 1})
        tell_changed(work, citizen_id=reader.citizen, categories=["address.home"],
                     ledger_index=entry.seq)
        queued = work.session.exec(select(WebhookMessageRow).where(
            col(WebhookMessageRow.event) == "record.changed")).all()
        assert len(queued) == (1 if inline else 0)
        raise RuntimeError("the change fails after telling")
    assert _pending(ctx) == []
    assert tell_pending(ctx) == 0 and _told(ctx) == []
    # A write refused by its checks queues nothing either.
    with pytest.raises(Exception, match="email"):
        records.write_record(ctx, reader.citizen, "contact.email", "not an email")
    assert _pending(ctx) == []


def test_erasure_takes_an_untold_change_with_the_citizen(ctx: VaultContext,
                                                         reader: Setting) -> None:
    _live_grant(ctx, reader, categories=["address.home"], derived=[])
    records.write_record(ctx, reader.citizen, "address.home", VALUES["address.home"])
    assert len(_pending(ctx)) == 1
    citizens.erase_citizen(ctx, reader.citizen)  # refused by the foreign key without cascade
    assert _pending(ctx) == []
    assert tell_pending(ctx) == 0 and _told(ctx) == []


def test_a_teller_failing_half_way_loses_and_repeats_nothing(
        ctx: VaultContext, reader: Setting, monkeypatch: pytest.MonkeyPatch) -> None:
    g = _live_grant(ctx, reader, categories=["address.home"], derived=[])
    records.write_record(ctx, reader.citizen, "address.home", VALUES["address.home"])

    def crash(*_: object) -> None:
        raise ConnectionError("the database went away after the messages were queued")

    with monkeypatch.context() as m:
        m.setattr(changes, "_forget", crash)
        with pytest.raises(ConnectionError):
            tell_pending(ctx)
    assert _told(ctx) == [] and len(_pending(ctx)) == 1  # neither messages nor forgetting
    assert tell_pending(ctx) == 1
    assert tell_pending(ctx) == 0
    assert [t["data"]["grant_id"] for t in _told(ctx)] == [g.id]


_CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from vault.crypto import load_keyring
    from vault.services import changes
    from vault.services.context import VaultContext
    from vault.storage.database import make_engine
    from wallet.passkeys import PasskeyApprovalVerifier, RelyingParty

    url, keys, marker = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    forget = changes._forget

    def stall(work, seqs):
        forget(work, seqs)
        work.session.flush()
        marker.write_text("inside")  # messages queued, change forgotten, not committed
        time.sleep(120)

    changes._forget = stall
    ctx = VaultContext(engine=make_engine(url),
                       keyring=load_keyring(keys, master_key=None, production=False),
                       approvals=PasskeyApprovalVerifier(
                           RelyingParty.from_public_url("http://localhost:8000")))
    changes.tell_pending(ctx)
""")


def test_a_teller_killed_before_its_commit_loses_and_repeats_nothing(
        ctx: VaultContext, reader: Setting, tmp_path: Path) -> None:
    """A real crash: a teller process is killed (SIGKILL) inside its transaction."""
    g = _live_grant(ctx, reader, categories=["address.home"], derived=[])
    records.write_record(ctx, reader.citizen, "address.home", VALUES["address.home"])
    marker = tmp_path / "inside"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, ctx.engine.url.render_as_string(hide_password=False),
         str(tmp_path / "keys"), str(marker)], env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), "the teller never reached its commit"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
    assert len(_pending(ctx)) == 1 and _told(ctx) == []
    assert tell_pending(ctx) == 1
    assert [t["data"]["grant_id"] for t in _told(ctx)] == [g.id]


def test_tellers_racing_tell_each_change_once(ctx: VaultContext, reader: Setting) -> None:
    g = _live_grant(ctx, reader, categories=["address.home", "contact.email"], derived=[])
    for category in ("address.home", "contact.email", "address.home"):
        records.write_record(ctx, reader.citizen, category, VALUES[category])
    start = threading.Barrier(3)
    counts: list[int] = []

    def run() -> None:
        start.wait()
        while told := tell_pending(ctx, limit=1):
            counts.append(told)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sum(counts) == 3
    indexes = [t["data"]["ledger_index"] for t in _told(ctx)]
    assert len(indexes) == len(set(indexes)) == 3
    assert {t["data"]["grant_id"] for t in _told(ctx)} == {g.id}


def test_a_transaction_of_the_teller_stops_after_enough_messages(
        ctx: VaultContext, reader: Setting, monkeypatch: pytest.MonkeyPatch) -> None:
    _live_grant(ctx, reader, categories=["address.home"], derived=[])
    _live_grant(ctx, reader, categories=["address.home"], derived=[])
    for _ in range(3):
        records.write_record(ctx, reader.citizen, "address.home", VALUES["address.home"])
    monkeypatch.setattr(changes, "_MAX_MESSAGES", 3)
    assert tell_pending(ctx) == 2  # 2 + 2 messages: past 3, so the third change waits
    assert len(_told(ctx)) == 4 and len(_pending(ctx)) == 1
    assert tell_pending(ctx) == 1 and len(_told(ctx)) == 6


# -- who is woken, and when ------------------------------------------------------------------

def test_only_commits_that_queued_work_wake_the_threads_for_it(ctx: VaultContext,
                                                              reader: Setting) -> None:
    """A change wakes the teller; a grant event the dispatcher; a read or a commit that
    queued nothing wakes neither (only the publisher, which hears of every commit)."""
    woken: list[frozenset[str]] = []
    commits: list[int] = []
    live = replace_ctx(ctx, after_commit=lambda: commits.append(1),
                       after_queue=woken.append)
    g = _ask(live, reader.service, reader.citizen, categories=["address.home"], derived=[])
    assert woken == [] and commits  # a request queues no webhook
    _approve(live, reader.device, reader.citizen, g)
    assert woken == [frozenset({"webhooks"})]  # grant.approved, to the service
    woken.clear()
    records.write_record(live, reader.citizen, "address.home", VALUES["address.home"])
    assert woken == [frozenset({"changes"})]
    woken.clear()
    access.read_under_grant(live, grant_id=g.id, service_id=reader.service)
    with unit_of_work(live):
        pass
    assert woken == []
    with unit_of_work(live) as work:
        tell_changed(work, citizen_id=reader.citizen, categories=[], ledger_index=0)
    assert woken == []  # nothing changed: nothing queued


# -- told in the change's own transaction, when there are few to tell ------------------------

def test_few_grants_are_told_in_the_changes_own_transaction(ctx: VaultContext,
                                                            reader: Setting) -> None:
    """With `tell_inline`, a change with at most that many grants to tell queues their
    messages itself: nothing is left for the teller, and only the dispatcher wakes."""
    woken: list[frozenset[str]] = []
    inline = replace_ctx(ctx, tell_inline=2, after_queue=woken.append)
    g = _live_grant(inline, reader, categories=["address.home"], derived=["age_over_65"])
    other = _live_grant(inline, reader, categories=["identity.date_of_birth"], derived=[])
    woken.clear()
    records.write_record(inline, reader.citizen, "address.home", VALUES["address.home"])
    assert _pending(ctx) == [] and woken == [frozenset({"webhooks"})]
    (told,) = _told(ctx)  # the grant over the date of birth hears nothing
    assert told["service_id"] == reader.service
    assert told["data"] == {"grant_id": g.id, "categories": ["address.home"], "derived": [],
                            "ledger_index": told["data"]["ledger_index"]}
    # Two grants rest on the date of birth: still at most 2, still told at once.
    records.write_record(inline, reader.citizen, "identity.date_of_birth", "1950-12-10")
    assert _pending(ctx) == [] and tell_pending(ctx) == 0
    assert {(t["data"]["grant_id"], tuple(t["data"]["categories"]),
             tuple(t["data"]["derived"])) for t in _told(ctx)[1:]} == {
        (g.id, (), ("age_over_65",)), (other.id, ("identity.date_of_birth",), ())}


def test_more_grants_than_told_inline_are_left_to_the_teller(ctx: VaultContext,
                                                             reader: Setting) -> None:
    inline = replace_ctx(ctx, tell_inline=1)
    grants_ = {_live_grant(inline, reader, categories=["address.home"], derived=[]).id
               for _ in range(2)}
    records.write_record(inline, reader.citizen, "address.home", VALUES["address.home"])
    assert _told(ctx) == [] and len(_pending(ctx)) == 1  # 2 > 1: one row, no message
    assert tell_pending(ctx) == 1
    assert {t["data"]["grant_id"] for t in _told(ctx)} == grants_


def test_an_issuers_batch_of_writes_is_told_inline(ctx: VaultContext, reader: Setting,
                                                   clock: Clock) -> None:
    """The bulk path (`issued_batch`, what `PUT /v1/records` runs) tells as one write does."""
    inline = replace_ctx(ctx, tell_inline=100)
    key = ServiceKey.generate()
    agency = registry.register_service(inline, registry.Registration(
        name="Benefits agency", description="Awards benefits",
        purposes=["eligibility_assessment"], categories=[], jwks=key.public_jwks(),
        redirect_uris=["https://benefits.example.gov/cb"],
        privacy_notice_url="https://benefits.example.gov/privacy",
        issues=["benefits.attendance_allowance"]))
    writes = _ask(inline, agency, reader.citizen,
                  categories=["benefits.attendance_allowance"], derived=[], actions=("write",))
    _approve(inline, reader.device, reader.citizen, writes)
    team = _live_grant(inline, reader, categories=[],
                       derived=["receives:attendance_allowance"])
    jws = key.sign_record("benefits.attendance_allowance",
                          VALUES["benefits.attendance_allowance"], issuer=agency,
                          iat=int(clock().timestamp()))
    with GroupCommitWriter(inline) as writer:
        written = writer.submit(WriteAsk(agency, writes.id, None,
                                         "benefits.attendance_allowance", jws)
                                ).result(timeout=10)
    assert _pending(ctx) == []
    (told,) = _told(ctx)
    assert (told["service_id"], told["data"]["grant_id"]) == (reader.service, team.id)
    assert told["data"]["ledger_index"] == written.ledger_index


# -- delivered, signed, and then the grant's own limits -------------------------------------

def test_told_end_to_end_signed_and_parsed_by_the_sdk(ctx: VaultContext, reader: Setting,
                                                      clock: Clock) -> None:
    clock.now = datetime.now(UTC)  # the verifiers check the timestamp against real time
    g = _live_grant(ctx, reader, categories=["address.home"], derived=["resident_in:Leeds"])
    got: list[httpx.Request] = []
    arrived = threading.Event()

    def receive(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content)["type"] == "record.changed":
            got.append(request)
            arrived.set()
        return httpx.Response(204)

    dispatcher = WebhookDispatcher(
        ctx, app_secret=APP_SECRET, interval=60,
        client_factory=lambda: httpx.Client(transport=httpx.MockTransport(receive)))
    teller = ChangeTeller(ctx, then=dispatcher.nudge, interval=60)
    # As the app wires them: a commit that queued a change nudges the teller, which
    # nudges the dispatcher.
    live = VaultContext(engine=ctx.engine, keyring=ctx.keyring, approvals=ctx.approvals,
                        clock=ctx.clock, after_queue=lambda queued: teller.nudge())
    dispatcher.start()
    teller.start()
    try:
        view = records.write_record(live, reader.citizen, "address.home",
                                    VALUES["address.home"])
        assert arrived.wait(10), "record.changed was not delivered"
    finally:
        teller.stop()
        dispatcher.stop()
    (request,) = got
    secret = printable(webhook_secret(APP_SECRET, reader.service))
    assert Webhook(secret).verify(request.content, dict(request.headers))["type"] == \
        "record.changed"
    event = verify_webhook(secret, dict(request.headers), request.content)
    assert isinstance(event, RecordChanged)
    assert (event.grant_id, event.categories, event.derived) == \
        (g.id, ("address.home",), ("resident_in:Leeds",))
    assert event.id == request.headers["webhook-id"]
    assert abs((event.timestamp - view.created_at).total_seconds()) < 0.01
    assert event.ledger_index > 0


def test_a_periodic_grant_told_of_a_change_still_waits_its_min_interval(
        ctx: VaultContext, reader: Setting, clock: Clock) -> None:
    records.write_record(ctx, reader.citizen, "address.home", VALUES["address.home"])
    g = _live_grant(ctx, reader, categories=["address.home"], derived=[],
                    access_=Access("periodic", min_interval="PT1H"))
    access.read_under_grant(ctx, service_id=reader.service, grant_id=g.id)
    tell_pending(ctx)
    clock.advance(minutes=5)
    moved = {**VALUES["address.home"], "lines": ["2 Park Row"]}
    records.write_record(ctx, reader.citizen, "address.home", moved)
    tell_pending(ctx)
    assert _told(ctx)[-1]["data"]["grant_id"] == g.id  # told at once...
    with pytest.raises(AccessDenied) as refused:  # ...but reads only when its terms allow
        access.read_under_grant(ctx, service_id=reader.service, grant_id=g.id)
    assert refused.value.reason == "too_soon"
    clock.advance(minutes=55)
    release = access.read_under_grant(ctx, service_id=reader.service, grant_id=g.id)
    assert release.data["address.home"]["lines"] == ["2 Park Row"]
