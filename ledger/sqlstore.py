"""The ledger in SQL (SQLite or PostgreSQL), appended inside the caller's transaction.

Tables: `ledger_entries` (seq, leaf hash, entry bytes, and a v2 entry's opening:
its salt and private body, written in the same row so an entry never lacks it),
`ledger_nodes` (interior perfect-subtree hashes by in-order id, from level
`STORED_LEVEL` up), `ledger_head` (one row: size, root, right border, last leaf and
time) and `ledger_checkpoints` (signed notes).

Interior nodes below `STORED_LEVEL` are not stored: 7 of every 8 interior nodes are
on levels 1 to 3, and each is rehashed on read from at most 8 leaf hashes (a proof
reads one more aligned run of 16 leaf hashes, in the same query). An append then
writes one node row per 16 entries instead of one per entry; ledgers written before
keep their low rows, which are no longer read.

Writers are serialised on the head row: each append starts with an
`UPDATE ledger_head ... RETURNING`, a row lock on PostgreSQL and the database's single
write lock on SQLite (which fails rather than append on a stale snapshot). Indices come from the
head row, never from a database sequence. A crash before COMMIT leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Connection,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

from ledger import proof
from ledger.entry import VERSION, Clock, format_time, utc_now
from ledger.errors import StoreError
from ledger.hasher import EMPTY_ROOT, node_hash
from ledger.sealing import Salts
from ledger.store import (
    Appended,
    EntryItem,
    HeadState,
    check_page,
    check_tree_size,
    check_version,
    plan_append,
)
from ledger.tree import CompactRange, TreeHead, node_id

__all__ = ["STORED_LEVEL", "SqlLedger", "init_schema", "metadata"]

metadata = MetaData()

# SQLite makes only "INTEGER PRIMARY KEY" an alias of the rowid (no second index).
_Seq = BigInteger().with_variant(Integer(), "sqlite")

entries_table = Table(
    "ledger_entries",
    metadata,
    Column("seq", _Seq, primary_key=True, autoincrement=False),
    Column("leaf_hash", LargeBinary, nullable=False),
    Column("data", LargeBinary, nullable=False),
    #: `ledger.sealing.encode_opening` bytes of a v2 entry; NULL for a v1 entry.
    Column("opening", LargeBinary, nullable=True),
)
nodes_table = Table(
    "ledger_nodes",
    metadata,
    Column("id", _Seq, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary, nullable=False),
)
head_table = Table(
    "ledger_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
    Column("root", LargeBinary, nullable=False),
    Column("last_leaf", LargeBinary, nullable=False),
    Column("last_time", String(24), nullable=False),
    Column("border", LargeBinary, nullable=False),
    CheckConstraint("id = 1", name="ledger_head_single_row"),
)
checkpoints_table = Table(
    "ledger_checkpoints",
    metadata,
    Column("size", _Seq, primary_key=True, autoincrement=False),
    Column("root", LargeBinary, nullable=False),
    Column("note", Text, nullable=False),
    Column("published_at", String(24), nullable=False),
)

_ITER_BATCH = 5000

#: The lowest level of interior node kept in `ledger_nodes` (the module docstring).
STORED_LEVEL = 4


def init_schema(conn: Connection) -> None:
    """Create the ledger tables and the empty head if they do not exist yet."""
    metadata.create_all(conn)
    p = _placeholder(conn)
    conn.exec_driver_sql(
        "INSERT INTO ledger_head (id, size, root, last_leaf, last_time, border) "
        f"VALUES (1, 0, {p}, {p}, '', {p}) ON CONFLICT (id) DO NOTHING",
        (EMPTY_ROOT, b"", b""),
    )


def _blob(value: Any) -> bytes:
    """Column value as bytes. A row edited by hand may come back as TEXT: surface it to
    the verifier as the bytes it holds rather than failing to read it."""
    return value.encode() if isinstance(value, str) else bytes(value)


def _subtree(leaf: Mapping[int, bytes], begin: int, end: int) -> bytes:
    """MTH of the perfect subtree over leaves [begin, end), from their hashes."""
    level = [leaf[seq] for seq in range(begin, end)]
    while len(level) > 1:
        level = [node_hash(level[k], level[k + 1]) for k in range(0, len(level), 2)]
    return level[0]


def _placeholder(conn: Connection) -> str:
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


class SqlLedger:
    """The ledger seen through one SQLAlchemy connection and its open transaction.

    Cheap to make: build one per transaction. It never commits; the caller does, so a
    state change and its ledger entry land together or not at all.
    """

    def __init__(self, conn: Connection, *, clock: Clock = utc_now, version: int = VERSION,
                 salts: Salts | None = None) -> None:
        self._conn = conn
        self._clock = clock
        self._version = check_version(version)
        self._salts = salts
        self._p = _placeholder(conn)

    # -- writing -----------------------------------------------------------------

    def append(self, kind: str, body: Mapping[str, Any]) -> Appended:
        return self.append_many([(kind, body)])[0]

    def append_many(self, items: Iterable[EntryItem]) -> list[Appended]:
        items = list(items)
        if not items:
            return []
        # The append is a fixed handful of statements on the caller's connection, run on
        # its DBAPI cursor: still the caller's transaction, without SQLAlchemy's
        # per-statement machinery, which costs more than SQLite itself here.
        cur = self._conn.connection.cursor()
        try:
            head = self._lock_head(cur)
            plan = plan_append(head, items, format_time(self._clock()),
                               version=self._version, salts=self._salts)
            p = self._p
            cur.executemany(
                "INSERT INTO ledger_entries (seq, leaf_hash, data, opening) "
                f"VALUES ({p}, {p}, {p}, {p})",
                [(e.seq, e.leaf_hash, e.data, e.opening) for e in plan.entries],
            )
            stored = [(node_id(level, index), h) for level, index, h in plan.nodes
                      if level >= STORED_LEVEL]
            if stored:
                cur.executemany(f"INSERT INTO ledger_nodes (id, hash) VALUES ({p}, {p})",
                                stored)
            border = head.border
            cur.execute(
                f"UPDATE ledger_head SET size = {p}, root = {p}, last_leaf = {p}, "
                f"last_time = {p}, border = {p} WHERE id = 1",
                (border.size, border.root(), head.last_leaf, head.last_time, border.to_bytes()),
            )
        finally:
            cur.close()
        return plan.entries

    @staticmethod
    def _lock_head(cur: Any) -> HeadState:
        # One statement both takes the lock and reads the head: on PostgreSQL the UPDATE
        # locks the row like SELECT ... FOR UPDATE; on SQLite it takes the database's write
        # lock before anything is read, so the head cannot be stale.
        cur.execute(
            "UPDATE ledger_head SET size = size WHERE id = 1 "
            "RETURNING size, last_leaf, last_time, border"
        )
        row = cur.fetchone()
        if row is None:
            raise StoreError("the ledger tables are not initialised (no head row)")
        size, last_leaf, last_time, border = row
        return HeadState(CompactRange.from_bytes(size, _blob(border)), _blob(last_leaf), last_time)

    # -- reading -----------------------------------------------------------------

    def tree_head(self) -> TreeHead:
        row = self._conn.exec_driver_sql("SELECT size, root FROM ledger_head WHERE id = 1").first()
        if row is None:
            raise StoreError("the ledger tables are not initialised (no head row)")
        return TreeHead(row[0], bytes(row[1]))

    def size(self) -> int:
        return self.tree_head().size

    def node_hashes(self, nodes: Sequence[tuple[int, int]]) -> list[bytes]:
        leaves: set[int] = set()
        inner: list[int] = []
        for level, i in nodes:
            if level < STORED_LEVEL:  # a leaf, or rehashed from the leaves it covers
                leaves.update(range(i << level, (i + 1) << level))
            else:
                inner.append(node_id(level, i))
        leaf: dict[int, bytes] = {}
        if leaves:
            leaf = {seq: _blob(h) for seq, h in
                    self._select_in("seq, leaf_hash", "ledger_entries", "seq", sorted(leaves))}
        stored: dict[int, bytes] = {}
        if inner:
            stored = {nid: _blob(h) for nid, h in
                      self._select_in("id, hash", "ledger_nodes", "id", inner)}
        try:
            return [stored[node_id(level, i)] if level >= STORED_LEVEL
                    else _subtree(leaf, i << level, (i + 1) << level)
                    for level, i in nodes]
        except KeyError as exc:
            raise StoreError(f"stored tree node {exc.args[0]} is missing") from None

    def _select_in(
        self, columns: str, table: str, key: str, values: list[int]
    ) -> Sequence[Any]:
        marks = ", ".join([self._p] * len(values))
        sql = f"SELECT {columns} FROM {table} WHERE {key} IN ({marks})"
        return self._conn.exec_driver_sql(sql, tuple(values)).all()

    def root_at(self, size: int) -> bytes:
        check_tree_size(size, self.size())
        return proof.root_at(self, size)

    def entries(self, start: int, limit: int) -> list[bytes]:
        check_page(start, limit, self.size())
        p = self._p
        rows = self._conn.exec_driver_sql(
            f"SELECT data FROM ledger_entries WHERE seq >= {p} AND seq < {p} ORDER BY seq",
            (start, start + limit),
        ).all()
        return [_blob(r[0]) for r in rows]

    def openings(self, start: int, limit: int) -> list[bytes]:
        """The openings of the v2 entries among [start, start + limit), in seq order (v1
        entries have none: the page may be shorter than the entries it covers)."""
        check_page(start, limit, self.size())
        p = self._p
        rows = self._conn.exec_driver_sql(
            f"SELECT opening FROM ledger_entries WHERE seq >= {p} AND seq < {p} "
            "AND opening IS NOT NULL ORDER BY seq",
            (start, start + limit),
        ).all()
        return [_blob(r[0]) for r in rows]

    def opened(self, start: int, limit: int) -> list[tuple[int, bytes, bytes | None]]:
        """(seq, entry bytes, opening bytes or None for v1) of [start, start + limit)."""
        check_page(start, limit, self.size())
        return self._opened(start, start + limit)

    def _opened(self, start: int, end: int) -> list[tuple[int, bytes, bytes | None]]:
        p = self._p
        rows = self._conn.exec_driver_sql(
            f"SELECT seq, data, opening FROM ledger_entries WHERE seq >= {p} AND seq < {p} "
            "ORDER BY seq",
            (start, end),
        ).all()
        return [(seq, _blob(data), None if op is None else _blob(op)) for seq, data, op in rows]

    def iter_opened(self, start: int = 0) -> Iterator[tuple[int, bytes, bytes | None]]:
        """(seq, entry bytes, opening bytes or None) up to the size when iteration starts."""
        end = self.size()
        while start < end:
            rows = self._opened(start, min(end, start + _ITER_BATCH))
            if not rows:
                return
            yield from rows
            start = rows[-1][0] + 1

    def iter_entries(self, start: int = 0) -> Iterator[tuple[int, bytes, bytes]]:
        """(seq, stored leaf hash, entry bytes) up to the size when iteration starts."""
        end = self.size()
        p = self._p
        while start < end:
            rows = self._conn.exec_driver_sql(
                "SELECT seq, leaf_hash, data FROM ledger_entries "
                f"WHERE seq >= {p} AND seq < {p} ORDER BY seq",
                (start, min(end, start + _ITER_BATCH)),
            ).all()
            if not rows:
                return
            for seq, h, data in rows:
                yield seq, _blob(h), _blob(data)
            start = rows[-1][0] + 1

    def inclusion_proof(self, index: int, tree_size: int) -> list[bytes]:
        check_tree_size(tree_size, self.size())
        return proof.inclusion_proof(self, index, tree_size)

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        check_tree_size(second, self.size())
        return proof.consistency_proof(self, first, second)

    # -- checkpoints ---------------------------------------------------------------

    def latest_checkpoint(self) -> tuple[int, str] | None:
        row = self._conn.exec_driver_sql(
            "SELECT size, note FROM ledger_checkpoints ORDER BY size DESC LIMIT 1"
        ).first()
        return (row[0], row[1]) if row else None

    def save_checkpoint(self, size: int, root: bytes, note: str) -> None:
        """Keep a signed checkpoint; a second one for the same size is ignored."""
        p = self._p
        self._conn.exec_driver_sql(
            "INSERT INTO ledger_checkpoints (size, root, note, published_at) "
            f"VALUES ({p}, {p}, {p}, {p}) ON CONFLICT (size) DO NOTHING",
            (size, root, note, format_time(self._clock())),
        )
