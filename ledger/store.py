"""The store protocol, the append logic every store shares, and the in-memory store.

Appending assigns `seq`, `time` and `prev` in the writer, computes leaf hashes and the
interior nodes each leaf completes, and moves the tree head forward. A store only has
to keep the rows and serialise writers.

A store writes v1 entries (whole bodies) unless made with `version=SEALED_VERSION`: then
each body is split by `ledger.sealing.PUBLIC_FIELDS`, its private part committed to under
a fresh salt, and the opening kept beside the entry, in the same transaction.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from ledger import proof
from ledger.entry import (
    SEALED_VERSION,
    VERSION,
    Clock,
    check_kind,
    check_prev,
    check_time,
    encode_entry,
    format_time,
    sealed_entry_bytes,
    utc_now,
)
from ledger.errors import EncodingError, RangeError
from ledger.hasher import leaf_hash
from ledger.sealing import SALT_SIZE, Salts, seal
from ledger.tree import CompactRange, TreeHead

__all__ = [
    "MAX_PAGE",
    "Appended",
    "HeadState",
    "LedgerReader",
    "LedgerWriter",
    "MemoryLedger",
    "plan_append",
]

MAX_PAGE = 1000

EntryItem = tuple[str, Mapping[str, Any]]


class Appended(NamedTuple):
    """An entry as appended (a NamedTuple: a writer makes one per entry)."""

    seq: int
    time: str
    leaf_hash: bytes
    data: bytes
    #: The opening's bytes (`ledger.sealing.encode_opening`) of a v2 entry; None for v1.
    opening: bytes | None = None


@dataclass(slots=True)
class HeadState:
    """What a writer needs to append: the right border, the last leaf and its time."""

    border: CompactRange = field(default_factory=CompactRange)
    last_leaf: bytes = b""
    last_time: str = ""

    @property
    def size(self) -> int:
        return self.border.size


@dataclass(slots=True)
class AppendPlan:
    entries: list[Appended]
    nodes: list[tuple[int, int, bytes]]  # (level, index, hash) of completed interior nodes


def check_version(version: int) -> int:
    if version not in (VERSION, SEALED_VERSION):
        raise EncodingError(f"a store writes entries of version {VERSION} or {SEALED_VERSION}")
    return version


def plan_append(head: HeadState, items: Iterable[EntryItem], now: str, *,
                version: int = VERSION, salts: Salts | None = None) -> AppendPlan:
    """Encode `items` after `head`, advancing `head` in place.

    Entry times never go backwards: a writer whose clock is behind the last entry's
    takes the last entry's time, so time order always matches `seq` order.
    `version` 2 seals each body (`ledger.sealing.seal`) under a fresh salt and returns
    each entry's opening with it: `salts(n)` gives n random bytes (default os.urandom,
    called once a batch: a call per entry would cost as much as the rest of sealing).
    """
    time = max(now, head.last_time)
    border, prev = head.border, head.last_leaf
    entries: list[Appended] = []
    nodes: list[tuple[int, int, bytes]] = []
    if version == SEALED_VERSION:
        items = list(items)
        pool = (salts or os.urandom)(SALT_SIZE * len(items))
        if len(pool) != SALT_SIZE * len(items):
            raise EncodingError("the salt source gave too few bytes")
        # What `encode_sealed_entry` checks of every entry, checked once for the batch:
        # the rest (seq, prev, sealed) the loop makes itself.
        check_time(time)
        check_prev(border.size, prev)
        seq = border.size
        for i, (kind, body) in enumerate(items):
            check_kind(kind)
            _, public_json, sealed, opening = seal(
                seq, kind, body, pool[i * SALT_SIZE:(i + 1) * SALT_SIZE])
            data = sealed_entry_bytes(kind, prev, public_json, sealed, seq, time)
            prev = leaf_hash(data)
            nodes.extend(border.append(prev))
            entries.append(Appended(seq, time, prev, data, opening))
            seq += 1
    else:
        for kind, body in items:
            seq = border.size
            data = encode_entry(seq, time, kind, prev, body)
            h = leaf_hash(data)
            nodes.extend(border.append(h))
            entries.append(Appended(seq, time, h, data))
            prev = h
    head.last_leaf, head.last_time = prev, time
    return AppendPlan(entries, nodes)


class LedgerReader(Protocol):
    def tree_head(self) -> TreeHead: ...
    def root_at(self, size: int) -> bytes: ...
    def entries(self, start: int, limit: int) -> list[bytes]: ...
    def openings(self, start: int, limit: int) -> list[bytes]: ...
    def opened(self, start: int, limit: int) -> list[tuple[int, bytes, bytes | None]]: ...
    def iter_entries(self, start: int = 0) -> Iterator[tuple[int, bytes, bytes]]: ...
    def iter_opened(self, start: int = 0) -> Iterator[tuple[int, bytes, bytes | None]]: ...
    def inclusion_proof(self, index: int, tree_size: int) -> list[bytes]: ...
    def consistency_proof(self, first: int, second: int) -> list[bytes]: ...


class LedgerWriter(LedgerReader, Protocol):
    def append(self, kind: str, body: Mapping[str, Any]) -> Appended: ...
    def append_many(self, items: Iterable[EntryItem]) -> list[Appended]: ...


def check_page(start: int, limit: int, size: int) -> None:
    if start < 0 or not 1 <= limit <= MAX_PAGE:
        raise RangeError(f"start must be >= 0 and limit between 1 and {MAX_PAGE}")
    if start > size:
        raise RangeError(f"start {start} is beyond the end of the ledger ({size} entries)")


def check_tree_size(tree_size: int, size: int) -> None:
    if not 0 <= tree_size <= size:
        raise RangeError(f"tree_size {tree_size} is outside 0..{size} (the current size)")


class MemoryLedger:
    """A ledger held in memory: for tests, tools and the reference for the SQL store."""

    def __init__(self, *, clock: Clock = utc_now, version: int = VERSION,
                 salts: Salts | None = None) -> None:
        self._clock = clock
        self._version = check_version(version)
        self._salts = salts
        self._head = HeadState()
        self._data: list[bytes] = []
        self._openings: list[bytes | None] = []
        self._levels: list[list[bytes]] = [[]]  # _levels[l][i]: node (l, i)

    def append(self, kind: str, body: Mapping[str, Any]) -> Appended:
        return self.append_many([(kind, body)])[0]

    def append_many(self, items: Iterable[EntryItem]) -> list[Appended]:
        head = HeadState(CompactRange(self._head.size, list(self._head.border.hashes)),
                         self._head.last_leaf, self._head.last_time)
        plan = plan_append(head, list(items), format_time(self._clock()),
                           version=self._version, salts=self._salts)
        # Only now, with every entry encoded, does the ledger change: all or nothing.
        for e in plan.entries:
            self._data.append(e.data)
            self._openings.append(e.opening)
            self._levels[0].append(e.leaf_hash)
        for level, index, h in plan.nodes:
            if level == len(self._levels):
                self._levels.append([])
            assert len(self._levels[level]) == index
            self._levels[level].append(h)
        self._head = head
        return plan.entries

    def node_hashes(self, nodes: Sequence[tuple[int, int]]) -> list[bytes]:
        return [self._levels[level][index] for level, index in nodes]

    def tree_head(self) -> TreeHead:
        return self._head.border.head()

    def root_at(self, size: int) -> bytes:
        check_tree_size(size, self._head.size)
        return proof.root_at(self, size)

    def entries(self, start: int, limit: int) -> list[bytes]:
        check_page(start, limit, self._head.size)
        return self._data[start : start + limit]

    def openings(self, start: int, limit: int) -> list[bytes]:
        """The openings of the v2 entries among [start, start + limit), in order."""
        check_page(start, limit, self._head.size)
        return [o for o in self._openings[start : start + limit] if o is not None]

    def iter_entries(self, start: int = 0) -> Iterator[tuple[int, bytes, bytes]]:
        for seq in range(start, len(self._data)):
            yield seq, self._levels[0][seq], self._data[seq]

    def opened(self, start: int, limit: int) -> list[tuple[int, bytes, bytes | None]]:
        """(seq, entry bytes, opening bytes or None for v1) of [start, start + limit)."""
        check_page(start, limit, self._head.size)
        end = min(start + limit, len(self._data))
        return [(seq, self._data[seq], self._openings[seq]) for seq in range(start, end)]

    def iter_opened(self, start: int = 0) -> Iterator[tuple[int, bytes, bytes | None]]:
        """(seq, entry bytes, opening bytes or None for a v1 entry)."""
        for seq in range(start, len(self._data)):
            yield seq, self._data[seq], self._openings[seq]

    def inclusion_proof(self, index: int, tree_size: int) -> list[bytes]:
        check_tree_size(tree_size, self._head.size)
        return proof.inclusion_proof(self, index, tree_size)

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        check_tree_size(second, self._head.size)
        return proof.consistency_proof(self, first, second)
