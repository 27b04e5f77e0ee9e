"""The transparency report's counts come from the public ledger (issue 13 §2): counted
incrementally in the background, they equal a full recount of the public entries, a
crash or a second counter counts nothing twice, and erasing a citizen (which deletes
their grants and reads, never entries) lowers no count."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, update
from support.ledgeratoms import Atoms
from support.ledgeratoms import ledger_atoms as atoms_from_ledger
from support.vaultworld import JWK, Clock, World, add_passkey, ask, give_ada_data, world

from ledger.note import Signer
from ledger.sqlstore import SqlLedger
from vault.crypto import load_keyring
from vault.domain.grants import Access, GrantAction
from vault.errors import VaultError
from vault.services import access, citizens, grants, registry
from vault.services import transparency as tr
from vault.services import transparency_counts as tc
from vault.services.approvals import ApprovalProof
from vault.services.checkpoints import publish_checkpoint
from vault.services.context import VaultContext
from vault.storage.database import make_engine, read_only
from vault.storage.schema import migrate
from vault.storage.tables import TransparencyAtomRow, TransparencyCursorRow, TransparencyGrantRow
from wallet.passkeys import PasskeyApprovalVerifier, RelyingParty
from wallet.passkeys.software import SoftAuthenticator

ORIGIN = "http://localhost:8000"


def ledger_atoms(ctx: VaultContext) -> Atoms:
    return atoms_from_ledger(ctx.engine)


def db_atoms(ctx: VaultContext, *, chunk: int = tc.CHUNK) -> Atoms:
    """What the vault has counted, after counting every entry not counted yet."""
    tc.count_ledger(ctx, to_head=True, chunk=chunk)
    with read_only(ctx.engine).begin() as conn:
        found = tc.counted(conn)
    return found.grants, found.accesses


# -- a citizen with grants in every state an erasure meets ------------------------------------


def _meals(ctx: VaultContext) -> str:
    return registry.register_service(ctx, registry.Registration(
        name="Free school meals check", description="Checks meals for children at school",
        purposes=["service_provision"], categories=["identity.name"], jwk=JWK,
        redirect_uris=["https://meals.example.gov/cb"],
        privacy_notice_url="https://meals.example.gov/privacy", max_days=30))


def busy_citizen(ctx: VaultContext, clock: Clock, w: World, meals: str) -> None:
    """Approved and read, paused after reads, waiting, denied, cancelled, revoked after a
    read, exhausted by its one read; in two months, with two services and purposes."""
    device = add_passkey(ctx, w.citizen_id)

    def approve(g: grants.GrantView) -> grants.GrantView:
        return grants.approve_grant(ctx, g.id, citizen_id=w.citizen_id,
                                    proof=device.proof(challenge=g.terms_hash))

    def signed(action: GrantAction, grant_id: str) -> ApprovalProof:
        proof: ApprovalProof = device.proof(challenge=grants.signing_challenge(
            ctx, grant_id, citizen_id=w.citizen_id, action=action))
        return proof

    live = approve(ask(ctx, w, access=Access("periodic", max_reads=50)))
    paused = approve(ask(ctx, w, access=Access("periodic", max_reads=50), categories=[]))
    once = approve(ask(ctx, w, access=Access("one_time")))
    for _ in range(3):
        access.read_under_grant(ctx, service_id=w.service_id, grant_id=live.id)
        access.read_under_grant(ctx, service_id=w.service_id, grant_id=paused.id)
    access.read_under_grant(ctx, service_id=w.service_id, grant_id=once.id)
    grants.pause_grant(ctx, paused.id, citizen_id=w.citizen_id,
                       proof=signed(GrantAction.PAUSE, paused.id))
    grants.deny_grant(ctx, ask(ctx, w).id, citizen_id=w.citizen_id)
    grants.cancel_grant(ctx, ask(ctx, w).id, service_id=w.service_id)
    clock.advance(days=12)  # the rest in another month
    ask(ctx, w)
    read_once = approve(grants.request_grant(
        ctx, service_id=meals, citizen_id=w.citizen_id, purpose="service_provision",
        categories=["identity.name"], access=Access("periodic", max_reads=5),
        data_life="P1D", justification="Free school meals", duration=timedelta(days=30)))
    for _ in range(2):
        access.read_under_grant(ctx, service_id=meals, grant_id=read_once.id)
    grants.revoke_grant(ctx, read_once.id, citizen_id=w.citizen_id,
                        proof=signed(GrantAction.REVOKE, read_once.id))
    access.read_under_grant(ctx, service_id=w.service_id, grant_id=live.id)


def _grant_totals(atoms: dict[tr.GrantAtom, int]) -> dict[str, int]:
    months: Counter[str] = Counter()
    for atom, n in atoms.items():
        months[atom.month] += n
    return dict(months)


def test_erasure_keeps_every_count_and_the_ledger_agrees(ctx: VaultContext,
                                                         clock: Clock) -> None:
    w = world(ctx)
    meals = _meals(ctx)
    busy_citizen(ctx, clock, w, meals)
    other = citizens.enrol_citizen(ctx)  # stays: their rows are still counted as rows
    give_ada_data(ctx, other.id)
    busy_citizen(ctx, clock, replace(w, citizen_id=other.id, subject=other.subject), meals)
    before = db_atoms(ctx)
    assert before == ledger_atoms(ctx)
    # The first citizen's story runs from November into December, the second's after it.
    assert before[0][tr.GrantAtom("2026-11", "paused")] == 1
    assert before[0][tr.GrantAtom("2026-12", "paused")] == 1
    report_before = tr.transparency_report(ctx, now=clock.now)

    citizens.erase_citizen(ctx, w.citizen_id)
    after = db_atoms(ctx)
    assert after == ledger_atoms(ctx)
    assert after[1] == before[1]  # every read, still counted in its own atom
    assert _grant_totals(after[0]) == _grant_totals(before[0])  # grants per month
    # Erasure ended the citizen's live grants, as the ledger says: waiting → denied,
    # approved and paused → revoked.
    moved = Counter(after[0])
    moved.subtract(before[0])
    assert {k: n for k, n in moved.items() if n} == {
        tr.GrantAtom("2026-11", "approved"): -1, tr.GrantAtom("2026-11", "paused"): -1,
        tr.GrantAtom("2026-11", "revoked"): 2,
        tr.GrantAtom("2026-12", "requested"): -1, tr.GrantAtom("2026-12", "denied"): 1}

    # The second erasure moves more grants of the same atoms.
    citizens.erase_citizen(ctx, other.id)
    assert db_atoms(ctx) == ledger_atoms(ctx)
    assert db_atoms(ctx)[1] == before[1]

    # Published: every read figure as before; the grant figures are those the ledger's
    # own counts give (a range may narrow as grants move to their final state, as it does
    # whenever a grant changes state: the true totals above are unchanged).
    report_after = tr.transparency_report(ctx, now=clock.now)
    assert report_after.accesses == report_before.accesses
    from_ledger = tr.build_report(services=report_after.services, grants=ledger_atoms(ctx)[0],
                                  accesses=ledger_atoms(ctx)[1], checkpoint=None,
                                  now=clock.now)
    assert report_after.grants == from_ledger.grants
    assert report_after.accesses == from_ledger.accesses
    assert report_after.ledger_size == _ledger_size(ctx)


def _ledger_size(ctx: VaultContext) -> int:
    with read_only(ctx.engine).begin() as conn:
        return SqlLedger(conn).size()


def test_counting_as_the_ledger_grows_equals_one_full_count(ctx: VaultContext,
                                                            clock: Clock) -> None:
    """Counted a few entries at a time while the story happens (grants asked for in one
    stretch and moved in a later one), the counts are those of one count from scratch."""
    w = world(ctx)
    meals = _meals(ctx)
    busy_citizen(ctx, clock, w, meals)
    db_atoms(ctx, chunk=3)
    other = citizens.enrol_citizen(ctx)
    give_ada_data(ctx, other.id)
    busy_citizen(ctx, clock, replace(w, citizen_id=other.id, subject=other.subject), meals)
    citizens.erase_citizen(ctx, w.citizen_id)
    as_it_grew = db_atoms(ctx, chunk=7)
    assert as_it_grew == ledger_atoms(ctx)
    with ctx.engine.begin() as conn:  # forget every count: start again at entry 0
        for table in (TransparencyAtomRow, TransparencyGrantRow):
            conn.execute(delete(table))
        conn.execute(update(TransparencyCursorRow).values(next_seq=0))
    assert db_atoms(ctx) == as_it_grew


def test_only_entries_a_checkpoint_signs_are_counted(ctx: VaultContext, clock: Clock) -> None:
    """The background counter stops at the latest checkpoint, so the report can name the
    signed tree its counts agree with."""
    w = world(ctx)
    ask(ctx, w)
    assert tc.count_ledger(ctx) == 0  # nothing signed yet
    signer = Signer.generate("vault.example/ledger")
    size = publish_checkpoint(ctx.engine, signer).size
    ask(ctx, w)  # after the checkpoint: not counted yet
    assert tc.count_ledger(ctx) == size
    report = tr.transparency_report(ctx, now=clock.now)
    assert report.ledger_size == size
    assert report.counted_checkpoint is not None and report.counted_checkpoint.size == size
    assert report.grants.by_state["requested"] == tr.Figure(None, 1, 9)


def test_a_second_counter_counts_nothing_twice(ctx: VaultContext, clock: Clock) -> None:
    """Two counters (two processes) read the same stretch; the one that writes second
    finds the cursor moved and writes nothing. A crash between reading and writing is
    the same: nothing was written, and the next count reads the stretch again."""
    w = world(ctx)
    busy_citizen(ctx, clock, w, _meals(ctx))
    found = tc._stretch(ctx.engine, to_head=True, chunk=tc.CHUNK)
    assert found is not None
    start, tally = found
    counted_once = db_atoms(ctx)  # the other counter
    assert not tc._write(ctx.engine, start, tally)
    assert db_atoms(ctx) == counted_once == ledger_atoms(ctx)


# -- a property: whatever happens, totals never go down ---------------------------------------


@dataclass
class Model:
    """What the test has done, to choose legal next steps."""

    ctx: VaultContext
    clock: Clock
    services: list[str]
    people: list[tuple[World, SoftAuthenticator]] = field(default_factory=list)
    live: dict[str, tuple[World, SoftAuthenticator]] = field(default_factory=dict)

    def enrol(self) -> None:
        c = citizens.enrol_citizen(self.ctx)
        give_ada_data(self.ctx, c.id)
        device = add_passkey(self.ctx, c.id, SoftAuthenticator(origin=ORIGIN))
        self.people.append((World(self.services[0], c.id, c.subject), device))

    def step(self, op: str, i: int) -> None:
        if op == "enrol" or not self.people:
            self.enrol()
            return
        who, device = self.people[i % len(self.people)]
        mine = [g for g, (w, _) in self.live.items() if w.citizen_id == who.citizen_id]
        gid = mine[i % len(mine)] if mine else None
        try:
            if op == "ask":
                g = ask(self.ctx, replace(who, service_id=self.services[i % 2]),
                        access=Access("periodic", max_reads=100),
                        duration=timedelta(days=30))
                self.live[g.id] = (who, device)
            elif op == "approve" and gid:
                g = grants.get_grant(self.ctx, gid)
                grants.approve_grant(self.ctx, gid, citizen_id=who.citizen_id,
                                     proof=device.proof(challenge=g.terms_hash))
            elif op == "deny" and gid:
                grants.deny_grant(self.ctx, gid, citizen_id=who.citizen_id)
            elif op == "read" and gid:
                g = grants.get_grant(self.ctx, gid)
                access.read_under_grant(self.ctx, service_id=g.service_id, grant_id=gid)
            elif op == "erase":
                citizens.erase_citizen(self.ctx, who.citizen_id)
                self.people.remove((who, device))
                for g in mine:
                    del self.live[g]
        except VaultError:
            pass  # not allowed now (a read before approval, a denied grant...): no change


def _totals(atoms: Atoms) -> Counter[tuple[str, ...]]:
    """Every true total the report is built from: grants per month, reads per month and
    per service, purpose, category and derived answer (and all-time)."""
    totals: Counter[tuple[str, ...]] = Counter()
    for g, n in atoms[0].items():
        for month in (g.month, ""):
            totals["grants", month] += n
    for a, n in atoms[1].items():
        for month in (a.month, ""):
            totals["reads", month] += n
            totals["service", month, a.service_id] += n
            totals["purpose", month, a.purpose] += n
            for c in a.categories:
                totals["category", month, c] += n
            for d in a.derived:
                totals["derived", month, d] += n
    return totals


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated database, copied for every example (migrating each time is slow)."""
    path = tmp_path_factory.mktemp("template") / "vault.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()
    return path


@pytest.fixture
def fresh_ctx(template_db: Path, tmp_path: Path) -> Iterator[Callable[[Clock], VaultContext]]:
    keyring = load_keyring(tmp_path / "keys", master_key=None, production=False)
    made: list[VaultContext] = []
    counter = iter(range(10**6))

    def make(clock: Clock) -> VaultContext:
        db = tmp_path / f"vault-{next(counter)}.db"
        shutil.copy(template_db, db)
        engine = make_engine(f"sqlite:///{db}")
        made.append(VaultContext(engine=engine, keyring=keyring, clock=clock,
                                 approvals=PasskeyApprovalVerifier(
                                     RelyingParty.from_public_url(ORIGIN))))
        return made[-1]

    yield make
    for ctx in made:
        ctx.engine.dispose()


OPS = st.sampled_from(["enrol", "ask", "ask", "approve", "deny", "read", "read", "read",
                       "erase"])


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=st.lists(st.tuples(OPS, st.integers(0, 7), st.integers(0, 30)),
                      min_size=1, max_size=30))
# At least one erasure of a citizen with grants and reads, whatever hypothesis draws.
@example(steps=[("enrol", 0, 0), ("ask", 0, 1), ("approve", 0, 1), ("read", 0, 1),
                ("ask", 1, 1), ("read", 0, 1), ("enrol", 0, 0), ("ask", 1, 2),
                ("approve", 1, 1), ("read", 1, 1), ("erase", 0, 1), ("read", 0, 1)])
def test_published_totals_never_go_down(fresh_ctx: Callable[[Clock], VaultContext],
                                        steps: list[tuple[str, int, int]]) -> None:
    clock = Clock()
    ctx = fresh_ctx(clock)
    world_ = world(ctx)
    model = Model(ctx, clock, [world_.service_id, _meals(ctx)])
    seen = _totals(db_atoms(ctx))
    published = tr.transparency_report(ctx, now=clock.now)
    for op, i, hours in steps:
        clock.advance(hours=hours)  # 30 steps of up to 30 hours: into December
        model.step(op, i)
        atoms = db_atoms(ctx)
        now = _totals(atoms)
        assert all(now[k] >= n for k, n in seen.items()), (op, seen - now)
        seen = now
        report = tr.transparency_report(ctx, now=clock.now)
        # Reads only ever add to their atom, so every published read figure (exact or
        # a range) can only grow, erasures included.
        for old, new in ((published.accesses.total, report.accesses.total),
                         *((published.accesses.by_service[k], report.accesses.by_service[k])
                           for k in published.accesses.by_service)):
            assert new.at_least >= old.at_least and new.at_most >= old.at_most, op
        published = report
        if op == "erase":
            assert atoms == ledger_atoms(ctx)
    assert db_atoms(ctx) == ledger_atoms(ctx)


def test_sealed_entries_after_v1_ones_count_from_their_public_part(ctx: VaultContext) -> None:
    """A vault that wrote v1 and then v2 (sealed) entries: the counter reads v2's public
    part, and an erasure's sealed endings move grants of their month without their ids."""

    def append(version: int, items: list[tuple[str, dict[str, object]]]) -> None:
        with ctx.engine.begin() as conn:
            SqlLedger(conn, version=version).append_many(items)

    def asked(gid: str) -> tuple[str, dict[str, object]]:
        return "grant.requested", {"grant_id": gid, "service_id": "svc_a", "subject": "s1",
                                   "terms": {"purpose": "eligibility_assessment"},
                                   "terms_hash": "h"}

    append(1, [asked("g1"), ("grant.approved", {"grant_id": "g1", "service_id": "svc_a",
                                                "subject": "s1"})])
    append(2, [asked("g2"), ("data.accessed", {
        "grant_id": "g1", "service_id": "svc_a", "subject": "s1",
        "categories": ["address.home"], "derived": [], "commitment": "c"})])
    month = db_atoms(ctx)[0].popitem()[0].month  # every entry's month (the real clock)
    append(2, [("grant.revoked", {"grant_id": "g1", "service_id": "svc_a", "subject": "s1",
                                  "reason": "citizen_erased", "asked": month,
                                  "from": "approved"}),
               ("grant.denied", {"grant_id": "g2", "service_id": "svc_a", "subject": "s1",
                                 "reason": "citizen_erased", "asked": month,
                                 "from": "requested"}),
               ("citizen.erased", {"subject": "s1"})])
    grants_now, reads = db_atoms(ctx)
    assert (grants_now, reads) == ledger_atoms(ctx)
    assert grants_now == {tr.GrantAtom(month, "revoked"): 1, tr.GrantAtom(month, "denied"): 1}
    assert reads == {tr.AccessAtom(month, "svc_a", "eligibility_assessment",
                                   frozenset({"address.home"}), frozenset()): 1}
