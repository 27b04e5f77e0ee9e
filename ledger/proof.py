"""Building inclusion and consistency proofs (RFC 9162 §2.1.3.1 and §2.1.4.1).

A proof is a list of subtree hashes. Each subtree is either perfect (one stored
node) or the ragged right edge of the tree (a fold of a few stored nodes), so a proof
costs one batched read of O(log n) node hashes and never recomputes the tree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ledger.errors import RangeError
from ledger.hasher import EMPTY_ROOT, node_hash
from ledger.tree import perfect_subtrees

__all__ = ["NodeSource", "consistency_proof", "inclusion_proof", "root_at"]


class NodeSource(Protocol):
    """Anything that can return stored perfect-subtree hashes by (level, index)."""

    def node_hashes(self, nodes: Sequence[tuple[int, int]]) -> list[bytes]: ...


def _split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Leaf ranges of the subtrees in PATH(index, D[0:size]), bottom-up."""
    if not 0 <= index < size:
        raise RangeError(f"index {index} is outside a tree of size {size}")
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
    ranges.reverse()
    return ranges


def consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """Leaf ranges of the subtrees in PROOF(first, D[0:second]), bottom-up."""
    if not 0 < first <= second:
        raise RangeError(f"no consistency proof exists from size {first} to size {second}")
    ranges: list[tuple[int, int]] = []
    lo, hi, whole = 0, second, True
    while first != hi:
        k = _split(hi - lo)
        if first - lo <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
            whole = False
    if not whole:
        ranges.append((lo, hi))
    ranges.reverse()
    return ranges


def _resolve(source: NodeSource, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
    tiles = [list(perfect_subtrees(b, e)) for b, e in ranges]
    wanted = sorted({t for ts in tiles for t in ts})
    found = dict(zip(wanted, source.node_hashes(wanted), strict=True))
    out: list[bytes] = []
    for ts in tiles:
        h = found[ts[-1]]
        for t in reversed(ts[:-1]):
            h = node_hash(found[t], h)
        out.append(h)
    return out


def inclusion_proof(source: NodeSource, index: int, size: int) -> list[bytes]:
    return _resolve(source, inclusion_ranges(index, size))


def consistency_proof(source: NodeSource, first: int, second: int) -> list[bytes]:
    if first == second:
        if first < 1:
            raise RangeError("no consistency proof exists from the empty tree")
        return []
    return _resolve(source, consistency_ranges(first, second))


def root_at(source: NodeSource, size: int) -> bytes:
    """MTH(D[0:size]) from stored nodes."""
    if size == 0:
        return EMPTY_ROOT
    return _resolve(source, [(0, size)])[0]
