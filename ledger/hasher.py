"""RFC 9162 §2.1.1 hashing: the only primitive that proofs and verification share."""

from __future__ import annotations

import hashlib

HASH_SIZE = 32

_sha256 = hashlib.sha256

#: MTH({}) = SHA-256() (RFC 9162 §2.1.1).
EMPTY_ROOT: bytes = _sha256(b"").digest()


# Hashers that have taken the one-byte prefix already: copying one costs about half of
# making a new one, and every append and every verified entry hashes a leaf and a node.
_LEAF_PREFIX = _sha256(b"\x00")
_NODE_PREFIX = _sha256(b"\x01")


#: A new SHA-256 hasher that has taken the leaf prefix 0x00: `.update(data).digest()`
#: is `leaf_hash(data)`, without a call, for loops that hash every entry.
new_leaf_hasher = _LEAF_PREFIX.copy
#: The same for interior nodes (prefix 0x01).
new_node_hasher = _NODE_PREFIX.copy


def leaf_hash(data: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d)."""
    h = _LEAF_PREFIX.copy()
    h.update(data)
    return h.digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    h = _NODE_PREFIX.copy()
    h.update(left + right)
    return h.digest()
