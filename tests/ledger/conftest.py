"""Fixtures for the ledger tests, and a deliberately naive RFC 9162 §2.1 reference.

The reference is the RFC's recursive pseudo-code over lists of leaf data, written as
literally as possible: no caching, no stored nodes, no bit tricks. It shares nothing
with ledger.tree or ledger.proof, only the two hash functions of ledger.hasher, so a
bug in the ledger's iterative code cannot hide in it too.

Test modules get it through the session fixture `rfc` (helpers in a conftest cannot be
imported by name without package __init__ files).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from ledger.hasher import leaf_hash, node_hash
from ledger.store import MemoryLedger

# --- RFC 9162 §2.1, literally -------------------------------------------------------


def _k(n: int) -> int:
    """RFC 9162 §2.1.1: the largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of a list of leaf data (RFC 9162 §2.1.1)."""
    n = len(d)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaf_hash(d[0])
    k = _k(n)
    return node_hash(mth(d[0:k]), mth(d[k:n]))


def path(m: int, d: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]): the inclusion proof of leaf m (RFC 9162 §2.1.3.1)."""
    n = len(d)
    if n == 1:
        assert m == 0
        return []
    k = _k(n)
    if m < k:
        return [*path(m, d[0:k]), mth(d[k:n])]
    return [*path(m - k, d[k:n]), mth(d[0:k])]


def subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) (RFC 9162 §2.1.4.1)."""
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = _k(n)
    if m <= k:
        return [*subproof(m, d[0:k], b), mth(d[k:n])]
    return [*subproof(m - k, d[k:n], False), mth(d[0:k])]


def proof(m: int, d: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) = SUBPROOF(m, D[n], true); empty for m == n."""
    return subproof(m, d, True)


class ReferenceNodes:
    """A NodeSource for ledger.proof whose nodes come from the naive MTH."""

    def __init__(self, data: Sequence[bytes]) -> None:
        self.data = list(data)

    def node_hashes(self, nodes: Sequence[tuple[int, int]]) -> list[bytes]:
        return [mth(self.data[i << lvl : (i + 1) << lvl]) for lvl, i in nodes]


@dataclass(frozen=True)
class Rfc9162:
    """The reference, handed to tests by the `rfc` fixture."""

    mth: Callable[[Sequence[bytes]], bytes]
    path: Callable[[int, Sequence[bytes]], list[bytes]]
    proof: Callable[[int, Sequence[bytes]], list[bytes]]
    nodes: Callable[[Sequence[bytes]], ReferenceNodes]


@pytest.fixture(scope="session")
def rfc() -> Rfc9162:
    return Rfc9162(mth=mth, path=path, proof=proof, nodes=ReferenceNodes)


# --- ledgers built with a deterministic clock ----------------------------------------

T0 = datetime(2026, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)


def stepping_clock(start: datetime = T0, step: timedelta = timedelta(milliseconds=1)
                   ) -> Callable[[], datetime]:
    """A clock that moves forward by `step` on every call."""
    ticks: Iterator[int] = iter(range(10**9))
    return lambda: start + step * next(ticks)


@dataclass(frozen=True)
class BuiltLedger:
    ledger: MemoryLedger
    data: list[bytes]  # entry bytes, i.e. the RFC 9162 leaf data D[0:n]

    def __repr__(self) -> str:  # keeps hypothesis failure reports short
        return f"BuiltLedger(<{len(self.data)} entries>)"


def build_ledger(n: int) -> BuiltLedger:
    led = MemoryLedger(clock=stepping_clock())
    for i in range(n):
        led.append("record.written", {"i": i, "note": f"entry {i:04d}"})
    data = [d for _, _, d in led.iter_entries()]
    return BuiltLedger(led, data)


@pytest.fixture(scope="session")
def built300() -> BuiltLedger:
    """A 300-entry ledger; tests must not append to it (proofs use any prefix size)."""
    return build_ledger(300)


@pytest.fixture(scope="session")
def make_ledger() -> Callable[[int], BuiltLedger]:
    return build_ledger
