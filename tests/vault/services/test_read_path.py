"""One read path: reads made one at a time and reads grouped into batches agree.

The property: for random sequences of reads (with live, revoked, unknown and other
grants' token families), pauses, resumes, revocations, service suspensions, new record
versions and the clock moving on, over grants with read limits and minimum intervals,
reading one at a time (`read_under_grant`, a transaction per read) and reading the same
reads in batches through a `GroupCommitReader` (batched, or on its safe path of a
savepoint per read) give the same outcomes, the same ledger entries in the same order
(modulo ids, times, keys and signatures) and the same read counts and states.

Both sides live in one vault (so the test runs on SQLite and on PostgreSQL): each side
has its own citizens, services and grants, built the same way, and every step is done
to both. Each side's entries are picked out of the shared ledger by their ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, update
from support.ledgerview import full_entries
from support.vaultworld import Clock, add_passkey, blue_badge, give_ada_data

from ledger.sqlstore import SqlLedger
from vault.domain.errors import AccessDenied
from vault.domain.grants import Access, GrantAction
from vault.services import access, citizens, grants, records, registry
from vault.services.access import ReadAsk, Release
from vault.services.context import VaultContext, new_id, unit_of_work
from vault.services.group_commit import GroupCommitReader
from vault.storage.database import read_only
from vault.storage.tables import OAuthTokenFamilyRow
from wallet.passkeys.software import SoftAuthenticator

# Each grant: (service, citizen, access, categories). Two citizens, two services, so a
# batch holds several grants of one citizen and of one service.
ACCESSES = [Access("periodic", max_reads=100), Access("periodic", max_reads=2),
            Access("one_time"), Access("periodic", min_interval="PT1H"),
            Access("periodic", max_reads=3, min_interval="PT1H")]
CATEGORIES = [["address.home"], ["identity.name", "address.home"]]
GRANTS = 3
SHAPE = [(0, 0), (0, 1), (1, 0)]  # grant -> (service, citizen)
TOKENS = ["none", "none", "live", "live", "revoked", "unknown", "other"]

grant_index = st.integers(0, GRANTS - 1)
read = st.tuples(st.just("read"), grant_index, st.sampled_from(TOKENS))
reads = st.lists(read, min_size=1, max_size=6).map(lambda rs: ("reads", rs))
step = st.one_of(
    reads, reads, reads,  # mostly reads
    st.tuples(st.sampled_from(["pause", "resume", "revoke", "revoke_family"]), grant_index),
    st.tuples(st.just("suspend"), st.integers(0, 1)),
    st.tuples(st.just("advance"), st.sampled_from([30, 60, 60 * 24 * 31])),
    st.tuples(st.just("write"), st.integers(0, 1), st.sampled_from(["N1 9GU", "E1 6AN"])),
)


@dataclass
class Side:
    """One side's citizens, services, grants and token families, and their roles."""

    services: list[str]
    citizens: list[tuple[str, str, SoftAuthenticator]]  # id, subject, passkey
    grants: list[str]
    live: list[str]  # each grant's token family that is live (until revoke_family)
    revoked: list[str]  # each grant's token family that was revoked
    roles: dict[str, str]

    def role(self, value: str) -> str:
        return self.roles.get(value, value)


def build(ctx: VaultContext, accesses: Sequence[int], cats: Sequence[int]) -> Side:
    roles: dict[str, str] = {}
    services = [blue_badge(ctx) for _ in range(2)]
    people = []
    for i in range(2):
        c = citizens.enrol_citizen(ctx)
        give_ada_data(ctx, c.id)
        if i:  # not the same data for both: a mix-up of citizens shows
            records.write_record(ctx, c.id, "address.home", {
                "lines": ["1 Acacia Avenue"], "town": "Leeds", "postcode": "LS1 1AA",
                "local_authority": "Leeds"})
        people.append((c.id, c.subject, add_passkey(ctx, c.id)))
        roles |= {c.id: f"citizen{i}", c.subject: f"subject{i}"}
    ids, live, revoked = [], [], []
    for n, (s, who) in enumerate(SHAPE):
        citizen_id, _, device = people[who]
        g = grants.request_grant(
            ctx, service_id=services[s], citizen_id=citizen_id,
            purpose="eligibility_assessment", categories=CATEGORIES[cats[n]],
            derived=["age_over_65"], access=ACCESSES[accesses[n]], data_life="P30D",
            justification="To check you can have a Blue Badge.", duration=timedelta(days=30))
        grants.approve_grant(ctx, g.id, citizen_id=citizen_id,
                             proof=device.proof(challenge=g.terms_hash))
        ids.append(g.id)
        fams = [new_id("tf"), new_id("tf")]
        with unit_of_work(ctx) as work:
            for fam, gone in zip(fams, (False, True), strict=True):
                work.session.add(OAuthTokenFamilyRow(
                    id=fam, client_id=services[s], grant_id=g.id, created_at=work.now,
                    revoked_at=work.now if gone else None))
        live.append(fams[0])
        revoked.append(fams[1])
        roles |= {g.id: f"grant{n}", fams[0]: f"live{n}", fams[1]: f"revoked{n}"}
    roles |= {s: f"service{i}" for i, s in enumerate(services)}
    return Side(services, people, ids, live, revoked, roles)


def family(side: Side, g: int, token: str) -> str | None:
    return {"none": None, "live": side.live[g], "revoked": side.revoked[g],
            "unknown": "tf_nosuch", "other": side.live[(g + 1) % GRANTS]}[token]


def signed(ctx: VaultContext, side: Side, g: int, action: GrantAction) -> str:
    """The citizen pauses, resumes or revokes with a passkey; the error's name if the
    grant's state does not allow it (the same on both sides, or the test fails)."""
    citizen_id, _, device = side.citizens[SHAPE[g][1]]
    do = {GrantAction.PAUSE: grants.pause_grant, GrantAction.RESUME: grants.resume_grant,
          GrantAction.REVOKE: grants.revoke_grant}[action]
    try:
        challenge = grants.signing_challenge(ctx, side.grants[g], citizen_id=citizen_id,
                                             action=action)
        do(ctx, side.grants[g], citizen_id=citizen_id,
           proof=device.proof(challenge=challenge))
    except Exception as exc:
        return type(exc).__name__
    return "done"


def answer(side: Side, o: Release | Exception, position: dict[int, int]) -> tuple[Any, ...]:
    """A read's outcome, with roles for ids and the release's place in its side's entries."""
    if isinstance(o, Release):
        return ("release", side.role(o.grant_id), side.role(o.subject), o.data, o.derived,
                position[o.ledger_index])
    return (type(o).__name__, o.reason if isinstance(o, AccessDenied) else None)


def entries(ctx: VaultContext, since: int, side: Side) -> tuple[list[tuple[Any, ...]],
                                                               dict[int, int]]:
    """The side's ledger entries from `since` on, with roles for ids and without times,
    keys and signatures; and ledger index -> place in that list."""
    with read_only(ctx.engine).begin() as conn:
        rows = full_entries(conn, since)
    mine: list[tuple[Any, ...]] = []
    position: dict[int, int] = {}
    for e in rows:
        seq, body = e["seq"], e["body"]
        ids = [body.get(k) for k in ("grant_id", "service_id", "subject")]
        if not any(i in side.roles for i in ids):
            continue
        position[seq] = len(mine)
        mine.append((e["kind"], *(side.role(i) if i else None for i in ids),
                     body.get("categories"), body.get("derived"), body.get("by"),
                     body.get("category"), body.get("version")))
    return mine, position


def state(ctx: VaultContext, side: Side) -> list[tuple[str, int]]:
    views = [grants.get_grant(ctx, g) for g in side.grants]
    return [(v.state.value, v.reads) for v in views]


def one_by_one(ctx: VaultContext, side: Side, reads: Sequence[tuple[str, int, str]]
               ) -> list[Release | Exception]:
    out: list[Release | Exception] = []
    for _, g, token in reads:
        try:
            out.append(access.read_under_grant(
                ctx, service_id=side.services[SHAPE[g][0]], grant_id=side.grants[g],
                token_family=family(side, g, token)))
        except Exception as exc:
            out.append(exc)
    return out


def in_a_batch(ctx: VaultContext, side: Side, reads: Sequence[tuple[str, int, str]],
               batched: bool) -> list[Release | Exception]:
    """All the reads in one batch (the writer waits until all are queued), in order."""
    out: list[Release | Exception] = []
    with GroupCommitReader(ctx, max_batch=len(reads), max_wait=60, batched=batched) as r:
        futures = [r.submit(service_id=side.services[SHAPE[g][0]], grant_id=side.grants[g],
                            token_family=family(side, g, token)) for _, g, token in reads]
        for f in futures:
            try:
                out.append(f.result(timeout=120))
            except Exception as exc:
                out.append(exc)
    return out


def do_step(ctx: VaultContext, side: Side, s: tuple[Any, ...]) -> str:
    """A step that is not a read, done to one side; what came of it."""
    kind = s[0]
    if kind in ("pause", "resume", "revoke"):
        return signed(ctx, side, s[1], GrantAction(kind))
    if kind == "revoke_family":
        with unit_of_work(ctx) as work:
            work.session.execute(update(OAuthTokenFamilyRow).where(
                OAuthTokenFamilyRow.id == side.live[s[1]]).values(revoked_at=work.now))
    elif kind == "suspend":
        registry.suspend_service(ctx, side.services[s[1]])
    elif kind == "write":
        records.write_record(ctx, side.citizens[s[1]][0], "address.home", {
            "lines": ["2 New Street"], "town": "London", "postcode": s[2],
            "local_authority": "Islington"})
    return "done"


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(accesses=st.lists(st.integers(0, len(ACCESSES) - 1), min_size=GRANTS, max_size=GRANTS),
       cats=st.lists(st.integers(0, 1), min_size=GRANTS, max_size=GRANTS),
       steps=st.lists(step, min_size=1, max_size=8), batched=st.booleans())
def test_batches_and_single_reads_agree(ctx: VaultContext, clock: Clock,
                                        accesses: list[int], cats: list[int],
                                        steps: list[tuple[Any, ...]], batched: bool) -> None:
    alone, grouped = build(ctx, accesses, cats), build(ctx, accesses, cats)
    with read_only(ctx.engine).begin() as conn:
        start = SqlLedger(conn).tree_head().size
    answers_alone: list[Any] = []
    answers_grouped: list[Any] = []
    for s in steps:
        if s[0] == "reads":
            answers_alone.append(one_by_one(ctx, alone, s[1]))
            answers_grouped.append(in_a_batch(ctx, grouped, s[1], batched))
        elif s[0] == "advance":
            clock.advance(minutes=s[1])  # both sides at once
        else:
            assert do_step(ctx, alone, s) == do_step(ctx, grouped, s), s

    log_alone, at_alone = entries(ctx, start, alone)
    log_grouped, at_grouped = entries(ctx, start, grouped)
    assert [[answer(alone, o, at_alone) for o in batch] for batch in answers_alone] == [
        [answer(grouped, o, at_grouped) for o in batch] for batch in answers_grouped]
    assert log_alone == log_grouped
    assert state(ctx, alone) == state(ctx, grouped)


def test_a_batch_costs_the_statements_of_one_read(ctx: VaultContext) -> None:
    """The work of a batch is a fixed handful of statements (each a round trip on
    PostgreSQL), however many reads and grants it holds: the same as for one read."""
    side = build(ctx, [0, 0, 0], [0, 1, 0])

    def statements(reads: Sequence[tuple[int, str]]) -> list[str]:
        seen: list[str] = []

        def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
            seen.append(statement)

        event.listen(ctx.engine, "before_cursor_execute", count)
        try:
            with unit_of_work(ctx) as work:
                outcomes = access.read_batch(ctx, work, [
                    ReadAsk(side.services[SHAPE[g][0]], side.grants[g], family(side, g, t))
                    for g, t in reads])
        finally:
            event.remove(ctx.engine, "before_cursor_execute", count)
        assert all(isinstance(o, Release) for o in outcomes), outcomes
        return seen

    one = statements([(0, "none")])
    many = statements([(g, t) for g in range(GRANTS) for t in ("none", "live")] * 2)
    assert len(many) == len(one), many
