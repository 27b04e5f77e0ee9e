"""Telling services that a record changed (ARCHITECTURE §8, webhook `record.changed`).

A change is told in its own transaction when that is cheap, and by a thread when not,
so that a write costs about the same however many services rely on the value:

1. `tell_changes` (or `tell_changed` for one change), called by every path that changes a
   record inside its transaction, after its ledger entry, looks up the grants to tell
   (one query for all the transaction's changes, stopping one past
   `VaultContext.tell_inline`). When there are at most that many, it queues their
   messages in the webhook outbox there and then: they commit or roll back with the
   change. Otherwise (or with `tell_inline` 0) it writes ONE row per change to
   `record_changes`: the entry's index, the citizen, the categories, committed or rolled
   back with the change, so a change that committed is never forgotten.
2. `tell_pending` (run by the `ChangeTeller` thread, nudged after a commit that left
   rows) takes the pending rows in ledger order and, in one transaction, queues a
   `record.changed` message in the webhook outbox for every grant to tell, and deletes
   the rows. The messages and the deletion commit together: a teller that dies half-way
   commits neither, and the change is still pending for the next run (nothing lost);
   once it committed, the row is gone and no run tells it again (nothing twice). Tellers
   in several processes claim rows with FOR UPDATE SKIP LOCKED on PostgreSQL; on SQLite
   the write lock taken at BEGIN serialises them. The webhook dispatcher then delivers
   the messages like any other (signed, retried, at least once: services deduplicate by
   `webhook-id`, and order changes by `ledger_index`).

Why not always queue the messages in the write's own transaction: one change to a
category with 10,000 live grants means 10,000 messages, a few hundred milliseconds of
work (`bench/record_changes.py`) that the write would answer late by and, on SQLite,
every other writer would wait behind. Why not always leave them to the teller: for the
usual handful of grants, the teller's own transactions (a look, a claim, a delete, a
commit) cost more than the messages, and on PostgreSQL they held issuer writes to 0.42x
the rate of reads instead of 0.63x (`bench.service_load`, the teller turned off).

Who is told: a grant of the citizen that is approved (so not paused, revoked, expired or
used up), has started and not yet ended, lets the service read (a grant only to write
cannot read, so it is not told), held by a service that is not suspended and has a
webhook URL, whose categories include a changed one or whose derived answers rest on
one (`resolve_derived(name).inputs`). A grant is judged as it stands when the change is
told, moments after the change: one revoked meanwhile is not told, one approved
meanwhile is (its first read sees the new value anyway).

What it is told: `{"type": "record.changed", "timestamp": <when the change was made>,
"data": {"grant_id", "categories", "derived", "ledger_index"}}`. `categories` are the
grant's own categories that changed and `derived` its derived answers resting on them,
so a service hears only names from its own terms (a grant for `receives:...` is not
told which record lies behind it) and knows where in `/v1/data` to look (`data` or
`derived`). A derived answer is listed when an input changed, whether or not its value
did: finding out would mean opening the citizen's records outside a read. `ledger_index`
is the change's entry: a service can order the changes, and skip a read if it already
read after it. It then reads as usual, within its grant's limits.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

import orjson
from sqlalchemy import bindparam, delete, insert, select
from sqlmodel import col

from ledger.entry import format_time
from vault.domain.derived import resolve_derived
from vault.domain.errors import UnknownDerived
from vault.domain.grants import GrantState
from vault.domain.terms import format_utc
from vault.services.background import Periodic
from vault.services.context import VaultContext, Work, reading, unit_of_work
from vault.services.webhooks import QUEUE as WEBHOOKS_QUEUE
from vault.storage.tables import GrantRow, RecordChangeRow, ServiceRow, WebhookMessageRow

__all__ = ["EVENT", "QUEUE", "Change", "ChangeTeller", "tell_changed", "tell_changes",
           "tell_pending"]

#: The webhook event (in `webhooks.EVENTS`).
EVENT = "record.changed"
#: What a transaction that calls `tell_changed` has queued (`Work.queued`).
QUEUE = "changes"
#: Changes claimed by one transaction of the teller, and the messages it stops at.
_BATCH = 50
_MAX_MESSAGES = 20_000

_ANY_PENDING = select(col(RecordChangeRow.seq)).limit(1)
_ADD_CHANGE = insert(RecordChangeRow.__table__)  # type: ignore[attr-defined]


class Change(NamedTuple):
    """A record change made in a transaction: its ledger entry, whose, which categories."""

    seq: int
    citizen_id: str
    categories: list[str]
    created_at: datetime


def tell_changed(work: Work, *, citizen_id: str, categories: Iterable[str],
                 ledger_index: int) -> None:
    """`tell_changes` of one change: the citizen's `categories` changed at ledger entry
    `ledger_index`. One call per entry."""
    tell_changes(work, [(ledger_index, citizen_id, categories)])


def tell_changes(work: Work, changes: Iterable[tuple[int, str, Iterable[str]]]) -> None:
    """See that every service whose approved grant reads one of the changed categories
    (or a derived answer resting on one) is told, from inside the changes' own
    transaction: `changes` are (ledger index, citizen id, categories), each after its
    ledger entry. The messages are queued here when there are at most `work.tell_inline`
    of them, else a change row each is left for the teller (the module docstring)."""
    made = [Change(seq, citizen_id, sorted(set(categories)), work.now)
            for seq, citizen_id, categories in changes]
    made = [c for c in made if c.categories]
    if not made:
        return
    if work.tell_inline > 0:
        grants = _grants_to_tell(work, {c.citizen_id for c in made},
                                 limit=work.tell_inline + 1)
        if sum(map(len, grants.values())) <= work.tell_inline:
            now_text = format_utc(work.now)
            messages = [m for c in made
                        for m in _messages(c, grants.get(c.citizen_id, []), now_text)]
            if messages:
                _queue(work, messages)
                work.queued.add(WEBHOOKS_QUEUE)
            return
    # Core, not the ORM: on an issuer's write (the hot path) the unit of work's flush
    # cost more than the write's own insert.
    work.session.connection().execute(_ADD_CHANGE, [c._asdict() for c in made])
    work.queued.add(QUEUE)


@lru_cache(maxsize=1024)
def _inputs(name: str) -> frozenset[str]:
    try:
        return frozenset(resolve_derived(name).inputs)
    except UnknownDerived:  # a name no longer known rests on nothing that can change
        return frozenset()


def _told(terms_text: str, changed: frozenset[str], now_text: str
          ) -> tuple[list[str], list[str]] | None:
    """The grant's categories and derived answers that `changed` touches, or None when
    the grant is not to be told (it cannot read, has not started, or nothing it reads
    changed). Terms are read as their JSON contract (ARCHITECTURE §3), not re-validated:
    they were checked when the grant was requested and never change."""
    terms: Mapping[str, Any] = orjson.loads(terms_text)
    if "read" not in terms.get("actions", ("read",)):
        return None
    if terms["not_before"] > now_text:  # RFC 3339 UTC, whole seconds: ordered as text
        return None
    categories = [c for c in terms["categories"] if c in changed]
    derived = [d for d in terms["derived"] if not changed.isdisjoint(_inputs(d))]
    return (categories, derived) if categories or derived else None


_TO_TELL = (
    select(col(GrantRow.citizen_id), col(GrantRow.id), col(GrantRow.service_id),
           col(GrantRow.terms))
    .join(ServiceRow, col(ServiceRow.id) == col(GrantRow.service_id))
    .where(col(GrantRow.citizen_id).in_(bindparam("citizens", expanding=True)),
           col(GrantRow.state) == GrantState.APPROVED.value,
           col(GrantRow.due_at) > bindparam("now"),
           col(ServiceRow.active).is_(True),
           col(ServiceRow.webhook_url).is_not(None), col(ServiceRow.webhook_url) != "")
    .order_by(col(GrantRow.id)))


def _grants_to_tell(work: Work, citizen_ids: set[str], *, limit: int | None = None
                    ) -> dict[str, list[tuple[str, str, str]]]:
    """By citizen, (grant id, service id, terms) of their grants that may be told (at
    most `limit` in all): one query for all the changes a transaction tells, not one a
    change (which cost more than the write that made the change)."""
    found: dict[str, list[tuple[str, str, str]]] = {}
    query = _TO_TELL if limit is None else _TO_TELL.limit(limit)
    for citizen_id, grant_id, service_id, terms in work.session.connection().execute(
            query, {"citizens": sorted(citizen_ids), "now": work.now}):
        found.setdefault(citizen_id, []).append((grant_id, service_id, terms))
    return found


def _messages(change: Change | RecordChangeRow, grants: list[tuple[str, str, str]],
              now_text: str) -> list[tuple[str, str]]:
    """(service id, body) of each message the change makes to `grants` (its citizen's)."""
    changed = frozenset(change.categories)
    stamp = format_time(change.created_at)
    out = []
    for grant_id, service_id, terms in grants:
        told = _told(terms, changed, now_text)
        if told is None:
            continue
        body = orjson.dumps({"type": EVENT, "timestamp": stamp, "data": {
            "grant_id": grant_id, "categories": told[0], "derived": told[1],
            "ledger_index": change.seq}})
        out.append((service_id, body.decode("utf-8")))
    return out


def _message_ids(n: int) -> list[str]:
    """n message ids of 128 random bits each (hex: one read of the system's randomness
    and one encoding for all of them, not a call of `new_id` per message)."""
    blob = os.urandom(16 * n).hex()
    return ["msg_" + blob[i:i + 32] for i in range(0, 32 * n, 32)]


_MESSAGES = WebhookMessageRow.__table__  # type: ignore[attr-defined]
#: SQLite: the driver's executemany, in process.
_INSERT_EACH = ("INSERT INTO webhook_messages (id, service_id, event, body, created_at, "
                "attempts, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
#: PostgreSQL: one statement over arrays, not a round trip per row (1.3 s for 10,000),
#: sent in binary (%b: psycopg's text form escapes every quote of every body, by regex).
_INSERT_ARRAYS = (
    "INSERT INTO webhook_messages (id, service_id, event, body, created_at, attempts, "
    "next_attempt_at) SELECT m.id, m.service_id, %s, m.body, %s, 0, %s "
    "FROM unnest(%b::varchar[], %b::varchar[], %b::text[]) AS m(id, service_id, body)")


def _queue(work: Work, messages: list[tuple[str, str]]) -> None:
    """Put the messages in the webhook outbox, due now (as `webhooks.enqueue` would),
    with one statement. Every row has the same event and times, so their bind values
    are made once: per-row processing in an ORM or Core insert was most of the teller's
    time with 10,000 messages."""
    conn = work.session.connection()
    bind = _MESSAGES.c.created_at.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    at = bind(work.now) if bind is not None else work.now
    ids = _message_ids(len(messages))
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(_INSERT_ARRAYS, (EVENT, at, at, ids, [m[0] for m in messages],
                                              [m[1] for m in messages]))
        return
    conn.exec_driver_sql(_INSERT_EACH, [(message_id, service_id, EVENT, body, at, 0, at)
                                        for message_id, (service_id, body)
                                        in zip(ids, messages, strict=True)])


def _claim(work: Work, limit: int) -> Sequence[RecordChangeRow]:
    return work.session.execute(
        select(RecordChangeRow).order_by(col(RecordChangeRow.seq)).limit(limit)
        .with_for_update(skip_locked=True)).scalars().all()


def _forget(work: Work, seqs: list[int]) -> None:
    work.session.execute(delete(RecordChangeRow).where(col(RecordChangeRow.seq).in_(seqs)))


def tell_pending(ctx: VaultContext, *, limit: int = _BATCH) -> int:
    """Queue the `record.changed` messages of up to `limit` pending changes, oldest
    first, and forget those changes, in one transaction; how many changes were told.
    Changes are added until `_MAX_MESSAGES` messages are reached (one change is never
    split: its messages commit together), so a transaction stays of a bounded size."""
    # Look first without the write lock: nearly every nudge finds nothing pending.
    with reading(ctx) as session:
        if session.connection().execute(_ANY_PENDING).first() is None:
            return 0
    with unit_of_work(ctx) as work:
        changes = _claim(work, limit)
        if not changes:
            return 0
        grants = _grants_to_tell(work, {c.citizen_id for c in changes})
        now_text = format_utc(work.now)
        messages: list[tuple[str, str]] = []
        told: list[int] = []
        for change in changes:
            messages += _messages(change, grants.get(change.citizen_id, []), now_text)
            told.append(change.seq)
            if len(messages) >= _MAX_MESSAGES:
                break  # the rest stay pending, for the next transaction
        if messages:
            _queue(work, messages)
        _forget(work, told)
        return len(told)


def _nothing() -> None:
    pass


def _ignore(queued: frozenset[str]) -> None:
    pass


class ChangeTeller(Periodic):
    """A daemon thread telling pending changes every `interval` seconds, and at once
    when nudged (after a commit that queued a change). Its own commits queue webhooks
    and nothing else, so they call `then` (the webhook dispatcher's nudge)."""

    def __init__(self, ctx: VaultContext, *, then: Callable[[], None] = _nothing,
                 interval: float = 1.0) -> None:
        super().__init__(self._tell_all, name="changes", interval=interval)
        self._ctx = dataclasses.replace(ctx, after_commit=then, after_queue=_ignore)

    def _tell_all(self) -> None:
        while tell_pending(self._ctx):
            pass
