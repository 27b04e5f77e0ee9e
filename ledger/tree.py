"""Merkle tree shape: perfect subtrees, the compact range, and tree heads.

A perfect subtree is addressed by (level, index): it covers leaves
[index * 2**level, (index + 1) * 2**level). Stores keep the hash of every perfect
subtree, written once when it completes, so any root or proof needs O(log n) reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ledger.errors import StoreError
from ledger.hasher import EMPTY_ROOT, HASH_SIZE, new_node_hasher, node_hash

__all__ = ["CompactRange", "TreeHead", "node_id", "perfect_subtrees"]

@dataclass(frozen=True, slots=True)
class TreeHead:
    size: int
    root: bytes


def node_id(level: int, index: int) -> int:
    """A unique integer for a perfect subtree: its in-order position in the tree."""
    return (index << (level + 1)) + (1 << level) - 1


def perfect_subtrees(begin: int, end: int) -> Iterator[tuple[int, int]]:
    """The perfect subtrees that tile [begin, end), left to right, largest first.

    For a range that RFC 9162 hashes as one node (aligned at a split point), folding
    their hashes right to left gives MTH(D[begin:end]).
    """
    while begin < end:
        level = (end - begin).bit_length() - 1
        if begin:
            level = min(level, (begin & -begin).bit_length() - 1)
        yield level, begin >> level
        begin += 1 << level


class CompactRange:
    """The right border of a tree: one hash per perfect subtree of [0, size).

    Appending a leaf completes, on average, one interior node; `append` returns the
    completed ones so that a store can keep them. Memory is O(log n).
    """

    __slots__ = ("hashes", "size")

    def __init__(self, size: int = 0, hashes: list[bytes] | None = None) -> None:
        hashes = hashes or []
        if len(hashes) != size.bit_count():
            raise StoreError(f"a tree of size {size} needs {size.bit_count()} border hashes")
        self.size = size
        self.hashes = hashes

    @classmethod
    def from_bytes(cls, size: int, border: bytes) -> CompactRange:
        if len(border) != HASH_SIZE * size.bit_count():
            raise StoreError("stored tree border does not match the stored size")
        hs = [border[i : i + HASH_SIZE] for i in range(0, len(border), HASH_SIZE)]
        return cls(size, hs)

    def to_bytes(self) -> bytes:
        return b"".join(self.hashes)

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add a leaf hash; return the (level, index, hash) of interior nodes it completes."""
        completed: list[tuple[int, int, bytes]] = []
        h, s, level, index = leaf, self.size, 0, self.size
        hashes = self.hashes
        while s & 1:
            h = node_hash(hashes.pop(), h)
            level += 1
            index >>= 1
            s >>= 1
            completed.append((level, index, h))
        hashes.append(h)
        self.size += 1
        return completed

    def push(self, leaf: bytes) -> None:
        """`append` for callers that need no completed nodes (the streaming verifier)."""
        h, s, hashes = leaf, self.size, self.hashes
        while s & 1:
            hasher = new_node_hasher()  # node_hash, inlined
            hasher.update(hashes.pop() + h)
            h = hasher.digest()
            s >>= 1
        hashes.append(h)
        self.size += 1

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        it = reversed(self.hashes)
        r = next(it)
        for h in it:
            r = node_hash(h, r)
        return r

    def head(self) -> TreeHead:
        return TreeHead(self.size, self.root())
