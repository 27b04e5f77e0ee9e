"""A service cannot flood a wallet (issue 11, bug 8): at most MAX_WAITING requests
waiting per service per citizen, counted under the ledger's write lock so concurrent
requests never pass it together; and a citizen can stop a service asking. A refused
request records nothing: no grant row, no ledger entry. On SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

import orjson
import pytest
from sqlalchemy import func, update
from sqlmodel import Session, col, select
from support.vaultworld import Clock, World, add_passkey, ask, blue_badge, world

from ledger.sqlstore import SqlLedger
from vault.domain.asking import MAX_WAITING
from vault.domain.errors import AskingRefused
from vault.domain.grants import GrantState
from vault.services import blocks, citizens, grants
from vault.services.context import VaultContext
from vault.storage.database import read_only
from vault.storage.tables import GrantRow, ServiceBlockRow


def ledger_size(ctx: VaultContext) -> int:
    with read_only(ctx.engine).begin() as conn:
        return SqlLedger(conn).size()


def grant_rows(ctx: VaultContext, w: World | None = None) -> int:
    query = select(func.count()).select_from(GrantRow)
    if w is not None:
        query = query.where(col(GrantRow.citizen_id) == w.citizen_id,
                            col(GrantRow.service_id) == w.service_id)
    with Session(ctx.engine) as s:
        return int(s.execute(query).scalar_one())


def refused(ctx: VaultContext, w: World, reason: str) -> AskingRefused:
    """Asking is refused for `reason`, and nothing at all is written."""
    size, rows = ledger_size(ctx), grant_rows(ctx)
    with pytest.raises(AskingRefused) as caught:
        ask(ctx, w)
    assert caught.value.reason == reason
    assert (ledger_size(ctx), grant_rows(ctx)) == (size, rows)
    return caught.value


def test_the_sixth_waiting_request_is_refused_and_nothing_is_written(
        ctx: VaultContext) -> None:
    w = world(ctx)
    waiting = [ask(ctx, w) for _ in range(MAX_WAITING)]
    assert MAX_WAITING == 5
    why = refused(ctx, w, "too_many_waiting")
    assert "5 requests waiting" in str(why)
    # Another service, or the same service for another citizen, may still ask.
    other = World(blue_badge(ctx), w.citizen_id, "")
    ask(ctx, other)
    ask(ctx, World(w.service_id, citizens.enrol_citizen(ctx).id, ""))
    # Once the citizen answers one, the service may ask once more (and only once).
    grants.deny_grant(ctx, waiting[0].id, citizen_id=w.citizen_id)
    ask(ctx, w)
    refused(ctx, w, "too_many_waiting")


def test_approved_and_lapsed_requests_are_not_waiting(ctx: VaultContext, clock: Clock) -> None:
    w = world(ctx)
    device = add_passkey(ctx, w.citizen_id)
    first = ask(ctx, w)
    grants.approve_grant(ctx, first.id, citizen_id=w.citizen_id,
                         proof=device.proof(challenge=first.terms_hash))
    rest = [ask(ctx, w) for _ in range(MAX_WAITING)]
    refused(ctx, w, "too_many_waiting")
    # One is past its lapse deadline, though the sweeper has not been round yet.
    with Session(ctx.engine) as s, s.begin():
        s.execute(update(GrantRow).where(col(GrantRow.id) == rest[0].id)
                  .values(due_at=clock() - timedelta(seconds=1)))
    ask(ctx, w)


def test_concurrent_requests_never_pass_the_limit(ctx: VaultContext) -> None:
    w = world(ctx)
    ask(ctx, w)  # one waiting already
    start = threading.Barrier(10)
    outcomes: list[str] = []

    def one() -> None:
        start.wait()
        try:
            ask(ctx, w)
            outcomes.append("asked")
        except AskingRefused as exc:
            outcomes.append(exc.reason)

    threads = [threading.Thread(target=one) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["asked"] * 4 + ["too_many_waiting"] * 6
    assert grant_rows(ctx, w) == MAX_WAITING


def test_blocking_declines_what_waits_keeps_what_was_approved_and_refuses_new_requests(
        ctx: VaultContext) -> None:
    w = world(ctx)
    device = add_passkey(ctx, w.citizen_id)
    approved = ask(ctx, w)
    grants.approve_grant(ctx, approved.id, citizen_id=w.citizen_id,
                         proof=device.proof(challenge=approved.terms_hash))
    waiting = [ask(ctx, w).id for _ in range(2)]
    other = World(blue_badge(ctx), w.citizen_id, "")
    elsewhere = ask(ctx, other)
    size = ledger_size(ctx)

    declined = blocks.block_service(ctx, citizen_id=w.citizen_id, service_id=w.service_id)

    assert sorted(declined) == sorted(waiting)
    assert [grants.get_grant(ctx, g).state for g in waiting] == [GrantState.DENIED] * 2
    assert grants.get_grant(ctx, approved.id).state is GrantState.APPROVED
    assert grants.get_grant(ctx, elsewhere.id).state is GrantState.REQUESTED
    # Each decline is an ordinary grant.denied entry; the block itself is not on the
    # ledger (the service could read it there).
    with read_only(ctx.engine).begin() as conn:
        kinds = [orjson.loads(d)["kind"] for _, _, d in SqlLedger(conn).iter_entries(size)]
    assert kinds == ["grant.denied", "grant.denied"]
    refused(ctx, w, "blocked")
    ask(ctx, other)  # only that service is stopped
    with Session(ctx.engine) as s:
        listed = blocks.blocked_services(s, w.citizen_id)
    assert [(b.service_id, b.name) for b in listed] == [(w.service_id, "Blue Badge team")]
    # Blocking again changes nothing and declines nothing more.
    assert blocks.block_service(ctx, citizen_id=w.citizen_id, service_id=w.service_id) == []

    assert blocks.unblock_service(ctx, citizen_id=w.citizen_id, service_id=w.service_id)
    assert not blocks.unblock_service(ctx, citizen_id=w.citizen_id,
                                      service_id=w.service_id)
    ask(ctx, w)


def test_blocks_go_with_the_citizen(ctx: VaultContext) -> None:
    w = world(ctx)
    blocks.block_service(ctx, citizen_id=w.citizen_id, service_id=w.service_id)
    citizens.erase_citizen(ctx, w.citizen_id)
    with Session(ctx.engine) as s:
        assert s.execute(select(func.count()).select_from(ServiceBlockRow)).scalar_one() == 0
