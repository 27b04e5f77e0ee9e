"""RFC 9162 §2.1.1 hashing: the only primitive that proofs and verification share."""

from __future__ import annotations

import hashlib

HASH_SIZE = 32

_sha256 = hashlib.sha256

#: MTH({}) = SHA-256() (RFC 9162 §2.1.1).
EMPTY_ROOT: bytes = _sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d)."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return _sha256(b"\x01" + left + right).digest()
