"""The SQL ledger on SQLite and PostgreSQL: same results as MemoryLedger, transactions,
range checks, tamper detection, checkpoints, and O(log n) reads per proof."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ledger.audit import audit_log
from ledger.entry import parse_entry
from ledger.errors import EncodingError, LogInvalid, RangeError
from ledger.hasher import EMPTY_ROOT, leaf_hash
from ledger.sqlstore import SqlLedger, init_schema, metadata
from ledger.store import Appended, EntryItem, MemoryLedger
from ledger.tree import TreeHead
from ledger.verify import verify_consistency, verify_inclusion
from vault.storage.database import make_engine, read_only

FIXED_TIME = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
KINDS = ("grant.approved", "data.read", "consent.revoked", "key.rotated")
# Batch sizes adding up to 150: singles, small and power-of-two-ish batches.
BATCHES = (1, 1, 2, 3, 5, 8, 13, 1, 1, 21, 34, 7, 4, 16, 32, 1)
ENTRIES = metadata.tables["ledger_entries"]
NODES = metadata.tables["ledger_nodes"]


def fixed_clock() -> datetime:
    return FIXED_TIME


def make_items(n: int, start: int = 0) -> list[EntryItem]:
    return [
        (KINDS[i % len(KINDS)],
         {"i": i, "who": f"zoë ✓ {i}", "nested": {"list": [i, None, True, "x"]}, "ok": i % 2 == 0})
        for i in range(start, start + n)
    ]


def split(items: Sequence[EntryItem], sizes: Sequence[int]) -> list[list[EntryItem]]:
    out, pos = [], 0
    for s in sizes:
        out.append(list(items[pos : pos + s]))
        pos += s
    assert pos == len(items)
    return out


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    with eng.begin() as conn:
        init_schema(conn)
    yield eng
    eng.dispose()


@contextmanager
def reading(engine: Engine) -> Iterator[SqlLedger]:
    with read_only(engine).begin() as conn:
        yield SqlLedger(conn, clock=fixed_clock)


def append_batches(engine: Engine, batches: Sequence[Sequence[EntryItem]]) -> list[Appended]:
    """Each batch in its own committed transaction."""
    out: list[Appended] = []
    for batch in batches:
        with engine.begin() as conn:
            out.extend(SqlLedger(conn, clock=fixed_clock).append_many(batch))
    return out


def count_rows(engine: Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def audit(led: SqlLedger) -> Any:
    return audit_log((data, h) for _, h, data in led.iter_entries())


def test_init_schema_is_idempotent(engine: Engine) -> None:
    with engine.begin() as conn:
        init_schema(conn)
        init_schema(conn)
    with reading(engine) as led:
        assert led.tree_head() == TreeHead(0, EMPTY_ROOT)
    append_batches(engine, [make_items(3)])
    with engine.begin() as conn:
        init_schema(conn)  # must not reset the head or touch the entries
    with reading(engine) as led:
        assert led.size() == 3
        assert audit(led).head == led.tree_head()


def test_same_results_as_memory_ledger(engine: Engine) -> None:
    items = make_items(sum(BATCHES))
    mem = MemoryLedger(clock=fixed_clock)
    for batch in split(items, BATCHES):
        got = append_batches(engine, [batch])
        assert got == (mem.append_many(batch) if len(batch) > 1 else [mem.append(*batch[0])])
        with reading(engine) as led:
            assert led.tree_head() == mem.tree_head()
    n = len(items)
    rng = random.Random(1234)
    with reading(engine) as led:
        assert [led.root_at(s) for s in range(n + 1)] == [mem.root_at(s) for s in range(n + 1)]
        assert led.entries(0, 1000) == mem.entries(0, 1000)
        assert list(led.iter_entries(57)) == list(mem.iter_entries(57))
        pairs = [(i, s) for s in range(1, 41) for i in range(s)]
        pairs += [(rng.randrange(s), s) for s in rng.choices(range(41, n + 1), k=200)]
        for i, s in pairs:
            assert led.inclusion_proof(i, s) == mem.inclusion_proof(i, s), (i, s)
        cons = [(f, s) for s in range(1, 41) for f in range(1, s + 1)]
        cons += [(rng.randint(1, s), s) for s in rng.choices(range(41, n + 1), k=200)]
        for f, s in cons:
            assert led.consistency_proof(f, s) == mem.consistency_proof(f, s), (f, s)
        # And the proofs verify against the stored roots.
        leaves = {seq: h for seq, h, _ in led.iter_entries()}
        for i, s in pairs[::37]:
            verify_inclusion(leaf_hash=leaves[i], index=i, tree_size=s,
                             proof=led.inclusion_proof(i, s), expected_root=led.root_at(s))
        for f, s in cons[::37]:
            verify_consistency(first=f, second=s, proof=led.consistency_proof(f, s),
                               first_root=led.root_at(f), second_root=led.root_at(s))


def test_entries_paging_and_range_errors(engine: Engine) -> None:
    append_batches(engine, split(make_items(25), (10, 15)))
    mem = MemoryLedger(clock=fixed_clock)
    mem.append_many(make_items(25))
    with reading(engine) as led:
        pages = [led.entries(s, 10) for s in (0, 10, 20)]
        assert [len(p) for p in pages] == [10, 10, 5]
        assert [d for p in pages for d in p] == mem.entries(0, 25) == led.entries(0, 1000)
        assert [parse_entry(d).seq for d in led.entries(7, 3)] == [7, 8, 9]
        assert led.entries(25, 5) == []  # start == size: an empty page, not an error
        for start, limit in [(0, 0), (0, 1001), (26, 1), (-1, 5), (0, -1), (100, 10)]:
            with pytest.raises(RangeError):
                led.entries(start, limit)
            with pytest.raises(RangeError):
                mem.entries(start, limit)


def test_proofs_beyond_the_size_are_range_errors(engine: Engine) -> None:
    append_batches(engine, [make_items(9)])
    with reading(engine) as led:
        for call in (lambda: led.inclusion_proof(0, 10), lambda: led.inclusion_proof(9, 9),
                     lambda: led.inclusion_proof(-1, 5), lambda: led.consistency_proof(1, 10),
                     lambda: led.consistency_proof(0, 5), lambda: led.consistency_proof(6, 5),
                     lambda: led.root_at(10), lambda: led.root_at(-1)):
            with pytest.raises(RangeError):
                call()


def test_invalid_body_writes_nothing_and_the_chain_continues(engine: Engine) -> None:
    first = append_batches(engine, [make_items(3)])
    with reading(engine) as led:
        head = led.tree_head()
    nodes = count_rows(engine, NODES)
    with pytest.raises(EncodingError), engine.begin() as conn:
        led = SqlLedger(conn, clock=fixed_clock)
        led.append("test.ok", {"x": 1})
        led.append("test.bad", {"x": 1.5})
    with pytest.raises(EncodingError), engine.begin() as conn:
        SqlLedger(conn, clock=fixed_clock).append_many([("test.ok", {"x": 1}),
                                                         ("test.bad", {"x": 0.5})])
    with reading(engine) as led:
        assert led.tree_head() == head
    assert count_rows(engine, ENTRIES) == 3
    assert count_rows(engine, NODES) == nodes
    # A failed append writes nothing, so the same transaction may go on and commit.
    with engine.begin() as conn:
        led = SqlLedger(conn, clock=fixed_clock)
        a = led.append("test.ok", {"x": 1})
        with pytest.raises(EncodingError):
            led.append("test.bad", {"x": float("nan")})
        b = led.append("test.ok", {"x": 2})
    assert (a.seq, b.seq) == (3, 4)
    assert parse_entry(a.data).prev == first[-1].leaf_hash
    assert parse_entry(b.data).prev == a.leaf_hash
    with reading(engine) as led:
        assert audit(led).head == led.tree_head()
        assert led.size() == 5


def test_rolled_back_append_leaves_no_trace(engine: Engine) -> None:
    items = make_items(20)
    append_batches(engine, [items[:5]])
    with reading(engine) as led:
        head = led.tree_head()
    nodes = count_rows(engine, NODES)
    with engine.connect() as conn:
        trans = conn.begin()
        got = SqlLedger(conn, clock=fixed_clock).append_many(items[5:])
        assert got[0].seq == 5
        trans.rollback()
    with reading(engine) as led:
        assert led.tree_head() == head
    assert (count_rows(engine, ENTRIES), count_rows(engine, NODES)) == (5, nodes)
    again = append_batches(engine, [items[5:]])
    mem = MemoryLedger(clock=fixed_clock)
    mem.append_many(items[:5])
    assert again == mem.append_many(items[5:])  # the same seqs 5..19, as if never tried
    with reading(engine) as led:
        assert audit(led).head == led.tree_head() == mem.tree_head()


demo_metadata = sa.MetaData()
demo_grants = sa.Table(
    "demo_grants", demo_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.Integer, nullable=False),
)


def test_callers_row_commits_or_rolls_back_with_the_append(engine: Engine) -> None:
    with engine.begin() as conn:
        demo_metadata.create_all(conn)
    with engine.begin() as conn:
        a = SqlLedger(conn, clock=fixed_clock).append("grant.approved", {"grant": 1})
        conn.execute(demo_grants.insert().values(id=1, seq=a.seq))

    class Boom(Exception):
        pass

    with pytest.raises(Boom), engine.begin() as conn:
        b = SqlLedger(conn, clock=fixed_clock).append("grant.approved", {"grant": 2})
        conn.execute(demo_grants.insert().values(id=2, seq=b.seq))
        raise Boom
    with engine.connect() as conn:
        rows = conn.execute(sa.select(demo_grants.c.id, demo_grants.c.seq)).all()
    assert [tuple(r) for r in rows] == [(1, 0)]
    with reading(engine) as led:
        assert led.size() == 1
        assert parse_entry(led.entries(0, 1)[0]).body == {"grant": 1}


def test_audit_over_iter_entries(engine: Engine) -> None:
    append_batches(engine, split(make_items(sum(BATCHES)), BATCHES))
    with reading(engine) as led:
        result = audit(led)
        assert result.head == led.tree_head()
        assert result.head.size == 150
        # Bytes alone (without the stored leaf hashes) audit the same.
        assert audit_log(d for _, _, d in led.iter_entries()).head == led.tree_head()


def _tamper(conn: sa.Connection, how: str, k: int, j: int) -> None:
    rows = {r.seq: r for r in conn.execute(sa.select(ENTRIES)).all()}
    where = ENTRIES.c.seq == k
    if how == "update_data":
        data = bytes(rows[k].data)
        assert f'"i":{k},'.encode() in data
        conn.execute(ENTRIES.update().where(where).values(
            data=data.replace(f'"i":{k},'.encode(), f'"i":{k + 1000},'.encode())))
    elif how == "update_data_and_hash":
        data = bytes(rows[k].data).replace(b'"ok":false', b'"ok":true')
        assert data != bytes(rows[k].data)
        conn.execute(ENTRIES.update().where(where).values(data=data, leaf_hash=leaf_hash(data)))
    elif how == "delete":
        conn.execute(ENTRIES.delete().where(where))
    elif how == "swap":
        conn.execute(ENTRIES.update().where(where).values(data=bytes(rows[j].data)))
        conn.execute(ENTRIES.update().where(ENTRIES.c.seq == j).values(data=bytes(rows[k].data)))
    else:
        raise AssertionError(how)


@pytest.mark.parametrize("how", ["update_data", "update_data_and_hash", "delete", "swap"])
def test_tampering_in_the_database_is_detected(engine: Engine, how: str) -> None:
    append_batches(engine, split(make_items(40), (17, 6, 17)))
    with reading(engine) as led:
        assert audit(led).head == led.tree_head()
    with engine.begin() as conn:
        _tamper(conn, how, 17, 29)
    with reading(engine) as led, pytest.raises(LogInvalid) as caught:
        audit(led)
    assert caught.value.index == 17, caught.value.reason


def test_checkpoints_save_and_latest(engine: Engine) -> None:
    append_batches(engine, [make_items(6)])
    with engine.begin() as conn:
        led = SqlLedger(conn, clock=fixed_clock)
        assert led.latest_checkpoint() is None
        led.save_checkpoint(3, led.root_at(3), "note at 3\n")
        led.save_checkpoint(5, led.root_at(5), "note at 5\n")
    with engine.begin() as conn:
        led = SqlLedger(conn, clock=fixed_clock)
        led.save_checkpoint(5, led.root_at(5), "another note at 5\n")  # ignored
        led.save_checkpoint(4, led.root_at(4), "note at 4\n")  # older: not the latest
    with reading(engine) as led:
        assert led.latest_checkpoint() == (5, "note at 5\n")


def test_proofs_read_a_constant_number_of_statements(engine: Engine) -> None:
    n = 5003
    items = make_items(n)
    append_batches(engine, split(items, (1000,) * 5 + (3,)))
    mem = MemoryLedger(clock=fixed_clock)
    mem.append_many(items)
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        with reading(engine) as led:
            for name, call, expected in [
                ("inclusion", lambda: led.inclusion_proof(0, n), mem.inclusion_proof(0, n)),
                ("inclusion", lambda: led.inclusion_proof(n - 1, n),
                 mem.inclusion_proof(n - 1, n)),
                ("inclusion", lambda: led.inclusion_proof(2777, 4097),
                 mem.inclusion_proof(2777, 4097)),
                ("consistency", lambda: led.consistency_proof(1, n), mem.consistency_proof(1, n)),
                ("consistency", lambda: led.consistency_proof(3333, n),
                 mem.consistency_proof(3333, n)),
                ("root", lambda: [led.root_at(n)], [mem.root_at(n)]),
                ("root", lambda: [led.root_at(4095)], [mem.root_at(4095)]),
            ]:
                seen.clear()
                assert call() == expected, name
                selects = [(s, p) for s, p in seen if s.lstrip().upper().startswith("SELECT")]
                # One read of the head (size check) plus at most one batched read each of
                # leaf hashes and interior nodes, however large the tree.
                assert 1 <= len(selects) <= 3, (name, [s for s, _ in selects])
                # ... fetching O(log n) node hashes, not O(n).
                params = sum(len(p) for _, p in selects if p)
                assert params <= 3 * n.bit_length(), (name, params)
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
