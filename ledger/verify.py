"""Checking inclusion and consistency proofs (RFC 9162 §2.1.3.2 and §2.1.4.2).

Kept apart from proof construction: an auditor needs nothing but this module and the
hasher, so it imports nothing else of substance (errors are plain exception classes).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from ledger.errors import ProofError, RangeError, RootMismatch
from ledger.hasher import HASH_SIZE, leaf_hash, node_hash

__all__ = [
    "ConsistencyVerified",
    "InclusionVerified",
    "root_from_inclusion_proof",
    "verify_consistency",
    "verify_inclusion",
    "verify_leaf_inclusion",
]


@dataclass(frozen=True, slots=True)
class InclusionVerified:
    index: int
    tree_size: int
    root: bytes


@dataclass(frozen=True, slots=True)
class ConsistencyVerified:
    first: int
    second: int
    first_root: bytes
    second_root: bytes


def _check_hash(value: bytes, what: str) -> None:
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
        got = len(value) if isinstance(value, bytes | bytearray) else type(value).__name__
        raise ProofError(f"{what} must be {HASH_SIZE} bytes, got {got}")


def _check_path(proof: Sequence[bytes]) -> None:
    for i, h in enumerate(proof):
        _check_hash(h, f"proof hash {i}")


def root_from_inclusion_proof(
    *, leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes]
) -> bytes:
    """The root that `proof` leads to from `leaf_hash` at `index` (RFC 9162 §2.1.3.2)."""
    if tree_size <= 0 or not 0 <= index < tree_size:
        raise RangeError(f"index {index} is outside a tree of size {tree_size}")
    _check_hash(leaf_hash, "leaf hash")
    fn, sn = index, tree_size - 1
    r = bytes(leaf_hash)
    # The loop inlines node_hash (SHA-256(0x01 || left || right)): auditors run it once
    # per entry they check, and a call per level would double its cost.
    sha256 = hashlib.sha256
    for i, p in enumerate(proof):
        if type(p) is not bytes or len(p) != HASH_SIZE:
            _check_hash(p, f"proof hash {i}")
            p = bytes(p)
        if sn == 0:
            raise ProofError(f"proof has more hashes than a tree of size {tree_size} needs")
        if fn & 1 or fn == sn:
            r = sha256(b"\x01" + p + r).digest()
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"proof has too few hashes for index {index} in size {tree_size}")
    return r


def verify_inclusion(
    *,
    leaf_hash: bytes,
    index: int,
    tree_size: int,
    proof: Sequence[bytes],
    expected_root: bytes,
) -> InclusionVerified:
    """Check that the leaf with `leaf_hash` sits at `index` of the tree with `expected_root`."""
    _check_hash(expected_root, "expected root")
    computed = root_from_inclusion_proof(
        leaf_hash=leaf_hash, index=index, tree_size=tree_size, proof=proof
    )
    if computed != expected_root:
        raise RootMismatch(expected_root, computed)
    return InclusionVerified(index, tree_size, expected_root)


def verify_leaf_inclusion(
    *, entry: bytes, index: int, tree_size: int, proof: Sequence[bytes], expected_root: bytes
) -> InclusionVerified:
    """As `verify_inclusion`, from the entry bytes rather than their leaf hash."""
    return verify_inclusion(
        leaf_hash=leaf_hash(entry),
        index=index,
        tree_size=tree_size,
        proof=proof,
        expected_root=expected_root,
    )


def verify_consistency(
    *,
    first: int,
    second: int,
    proof: Sequence[bytes],
    first_root: bytes,
    second_root: bytes,
) -> ConsistencyVerified:
    """Check that the tree of size `second` extends the tree of size `first`.

    A consistency proof from the empty tree proves nothing, so `first` must be >= 1
    (callers treat size 0 as trivially consistent). RFC 9162 §2.1.4.2.
    """
    _check_hash(first_root, "first root")
    _check_hash(second_root, "second root")
    _check_path(proof)
    if first < 1 or second < first:
        raise RangeError(f"no consistency proof exists from size {first} to size {second}")
    if first == second:
        if proof:
            raise ProofError("proof between equal sizes must be empty")
        if first_root != second_root:
            raise RootMismatch(first_root, second_root)
        return ConsistencyVerified(first, second, first_root, second_root)
    if not proof:
        raise ProofError(f"empty proof cannot link size {first} to size {second}")

    path = list(proof)
    if first & (first - 1) == 0:  # first is a power of two: its root is a proof node
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"proof has more hashes than sizes {first}->{second} need")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"proof has too few hashes for sizes {first}->{second}")
    if fr != first_root:
        raise RootMismatch(first_root, fr)
    if sr != second_root:
        raise RootMismatch(second_root, sr)
    return ConsistencyVerified(first, second, first_root, second_root)
