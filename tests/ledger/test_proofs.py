"""Proofs and roots against the naive RFC 9162 reference (see conftest.py), and rejection
of every tampered proof, root, leaf or entry."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import proof as lproof
from ledger.errors import LedgerError, ProofError, RangeError, RootMismatch, StoreError
from ledger.hasher import EMPTY_ROOT, HASH_SIZE, leaf_hash
from ledger.tree import CompactRange, perfect_subtrees
from ledger.verify import (
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
    verify_leaf_inclusion,
)

if TYPE_CHECKING:
    from conftest import BuiltLedger, Rfc9162

MAX_N = 300  # the size of the `built300` fixture
SMALL_N = 64  # exhaustive loops go up to here
PROPS = settings(max_examples=150, deadline=None)


@st.composite
def size_index(draw: st.DrawFn, lo: int = 1) -> tuple[int, int]:
    n = draw(st.integers(lo, MAX_N))
    return n, draw(st.integers(0, n - 1))


@st.composite
def two_sizes(draw: st.DrawFn) -> tuple[int, int]:
    n = draw(st.integers(1, MAX_N))
    return draw(st.integers(1, n)), n


def flip(b: bytes, bit: int) -> bytes:
    out = bytearray(b)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def check_inclusion(built: BuiltLedger, rfc: Rfc9162, n: int, i: int) -> list[bytes]:
    data = built.data[:n]
    want = rfc.path(i, data)
    root = rfc.mth(data)
    assert built.ledger.inclusion_proof(i, n) == want
    assert lproof.inclusion_proof(rfc.nodes(data), i, n) == want
    got = verify_inclusion(leaf_hash=leaf_hash(data[i]), index=i, tree_size=n, proof=want,
                           expected_root=root)
    assert (got.index, got.tree_size, got.root) == (i, n, root)
    verify_leaf_inclusion(entry=data[i], index=i, tree_size=n, proof=want, expected_root=root)
    return want


def check_consistency(built: BuiltLedger, rfc: Rfc9162, m: int, n: int) -> list[bytes]:
    data = built.data[:n]
    want = rfc.proof(m, data)
    assert built.ledger.consistency_proof(m, n) == want
    assert lproof.consistency_proof(rfc.nodes(data), m, n) == want
    r1, r2 = rfc.mth(data[:m]), rfc.mth(data)
    got = verify_consistency(first=m, second=n, proof=want, first_root=r1, second_root=r2)
    assert (got.first, got.second, got.first_root, got.second_root) == (m, n, r1, r2)
    return want


# --- agreement with the reference ------------------------------------------------------


def test_empty_tree_root() -> None:
    assert EMPTY_ROOT == hashlib.sha256(b"").digest() == CompactRange().root()


@PROPS
@given(ni=size_index())
def test_inclusion_proofs_match_reference(built300: BuiltLedger, rfc: Rfc9162,
                                          ni: tuple[int, int]) -> None:
    check_inclusion(built300, rfc, *ni)


@PROPS
@given(mn=two_sizes())
def test_consistency_proofs_match_reference(built300: BuiltLedger, rfc: Rfc9162,
                                            mn: tuple[int, int]) -> None:
    check_consistency(built300, rfc, *mn)


def test_inclusion_exhaustive_small(built300: BuiltLedger, rfc: Rfc9162) -> None:
    seen = 0
    for n in range(1, SMALL_N + 1):
        for i in range(n):
            check_inclusion(built300, rfc, n, i)
            seen += 1
    assert seen == SMALL_N * (SMALL_N + 1) // 2


def test_consistency_exhaustive_small(built300: BuiltLedger, rfc: Rfc9162) -> None:
    seen = 0
    for n in range(1, SMALL_N + 1):
        for m in range(1, n + 1):
            check_consistency(built300, rfc, m, n)
            seen += 1
    assert seen == SMALL_N * (SMALL_N + 1) // 2


def test_root_at_every_prefix(built300: BuiltLedger, rfc: Rfc9162) -> None:
    for n in range(MAX_N + 1):
        want = rfc.mth(built300.data[:n])
        assert built300.ledger.root_at(n) == want, n
        assert lproof.root_at(rfc.nodes(built300.data[:n]), n) == want, n
    assert built300.ledger.tree_head().root == rfc.mth(built300.data)


def test_compact_range_every_size(built300: BuiltLedger, rfc: Rfc9162) -> None:
    cr = CompactRange()
    for n, data in enumerate(built300.data, start=1):
        completed = cr.append(leaf_hash(data))
        assert cr.size == n
        assert cr.root() == rfc.mth(built300.data[:n]), n
        assert cr.head().root == cr.root() and cr.head().size == n
        # The nodes a leaf completes are exactly the perfect subtrees ending at it.
        assert len(completed) == (n ^ (n - 1)).bit_length() - 1
        for level, index, h in completed:
            assert (index + 1) << level == n
            assert h == rfc.mth(built300.data[index << level : n])
        again = CompactRange.from_bytes(n, cr.to_bytes())
        assert again.root() == cr.root() and again.size == n
        # The border holds one perfect subtree per set bit of n, left to right.
        tiles = list(perfect_subtrees(0, n))
        assert cr.hashes == [rfc.mth(built300.data[i << lv : (i + 1) << lv]) for lv, i in tiles]


def test_compact_range_rejects_wrong_border() -> None:
    with pytest.raises(StoreError):
        CompactRange.from_bytes(3, b"\x00" * HASH_SIZE)
    with pytest.raises(StoreError):
        CompactRange(2, [b"\x00" * HASH_SIZE] * 2)


# --- tampering: bit flips ---------------------------------------------------------------


@PROPS
@given(ni=size_index(lo=2), data=st.data())
def test_inclusion_proof_bit_flip(built300: BuiltLedger, rfc: Rfc9162, ni: tuple[int, int],
                                  data: st.DataObject) -> None:
    n, i = ni
    p = rfc.path(i, built300.data[:n])
    j = data.draw(st.integers(0, len(p) - 1))
    bit = data.draw(st.integers(0, 8 * HASH_SIZE - 1))
    p[j] = flip(p[j], bit)
    with pytest.raises(RootMismatch):
        verify_inclusion(leaf_hash=leaf_hash(built300.data[i]), index=i, tree_size=n, proof=p,
                         expected_root=rfc.mth(built300.data[:n]))


@PROPS
@given(ni=size_index(), data=st.data())
def test_root_leaf_and_entry_bit_flips(built300: BuiltLedger, rfc: Rfc9162,
                                       ni: tuple[int, int], data: st.DataObject) -> None:
    n, i = ni
    entry = built300.data[i]
    p, root = rfc.path(i, built300.data[:n]), rfc.mth(built300.data[:n])
    bit = data.draw(st.integers(0, 8 * HASH_SIZE - 1))
    with pytest.raises(RootMismatch):
        verify_inclusion(leaf_hash=leaf_hash(entry), index=i, tree_size=n, proof=p,
                         expected_root=flip(root, bit))
    with pytest.raises(RootMismatch):
        verify_inclusion(leaf_hash=flip(leaf_hash(entry), bit), index=i, tree_size=n, proof=p,
                         expected_root=root)
    ebit = data.draw(st.integers(0, 8 * len(entry) - 1))
    with pytest.raises(RootMismatch):
        verify_leaf_inclusion(entry=flip(entry, ebit), index=i, tree_size=n, proof=p,
                              expected_root=root)


def test_every_bit_flip_of_one_inclusion_case(built300: BuiltLedger, rfc: Rfc9162) -> None:
    n, i = 13, 6
    leaf, root = leaf_hash(built300.data[i]), rfc.mth(built300.data[:n])
    p = rfc.path(i, built300.data[:n])
    assert len(p) == 4
    for bit in range(8 * HASH_SIZE):
        for j in range(len(p)):
            bad = [flip(h, bit) if k == j else h for k, h in enumerate(p)]
            with pytest.raises(RootMismatch):
                verify_inclusion(leaf_hash=leaf, index=i, tree_size=n, proof=bad,
                                 expected_root=root)
        for lf, rt in ((flip(leaf, bit), root), (leaf, flip(root, bit))):
            with pytest.raises(RootMismatch):
                verify_inclusion(leaf_hash=lf, index=i, tree_size=n, proof=p, expected_root=rt)


@PROPS
@given(mn=two_sizes(), data=st.data())
def test_consistency_bit_flips(built300: BuiltLedger, rfc: Rfc9162, mn: tuple[int, int],
                               data: st.DataObject) -> None:
    m, n = mn
    p = rfc.proof(m, built300.data[:n])
    r1, r2 = rfc.mth(built300.data[:m]), rfc.mth(built300.data[:n])
    bit = data.draw(st.integers(0, 8 * HASH_SIZE - 1))
    cases = [(p, flip(r1, bit), r2), (p, r1, flip(r2, bit))]
    if p:
        j = data.draw(st.integers(0, len(p) - 1))
        cases.append(([flip(h, bit) if k == j else h for k, h in enumerate(p)], r1, r2))
    for proof, a, b in cases:
        with pytest.raises(ProofError):
            verify_consistency(first=m, second=n, proof=proof, first_root=a, second_root=b)


# --- tampering: wrong positions, sizes and lengths --------------------------------------


@PROPS
@given(ni=size_index(lo=2), other=st.integers(0, MAX_N - 1))
def test_wrong_index_rejected(built300: BuiltLedger, rfc: Rfc9162, ni: tuple[int, int],
                              other: int) -> None:
    n, i = ni
    data = built300.data[:n]
    p, root, leaf = rfc.path(i, data), rfc.mth(data), leaf_hash(data[i])
    for j in {i - 1, i + 1, i ^ 1, other % n} - {i}:
        if 0 <= j < n:
            with pytest.raises(ProofError):
                verify_inclusion(leaf_hash=leaf, index=j, tree_size=n, proof=p,
                                 expected_root=root)
            # Another leaf's hash with this leaf's proof.
            with pytest.raises(ProofError):
                verify_inclusion(leaf_hash=leaf_hash(data[j]), index=i, tree_size=n, proof=p,
                                 expected_root=root)


@PROPS
@given(ni=size_index())
def test_wrong_size_rejected(built300: BuiltLedger, rfc: Rfc9162, ni: tuple[int, int]) -> None:
    n, i = ni
    p, leaf = rfc.path(i, built300.data[:n]), leaf_hash(built300.data[i])
    # Against the true root of the claimed size. (Against the root of size n a wrong size
    # can legitimately pass: PATH(0, D[3]) and PATH(0, D[4]) have the same shape, and the
    # verifier cannot tell a leaf hash from a subtree hash.)
    for wrong in (n - 1, n + 1):
        if i < wrong <= MAX_N:
            with pytest.raises(ProofError):
                verify_inclusion(leaf_hash=leaf, index=i, tree_size=wrong, proof=p,
                                 expected_root=rfc.mth(built300.data[:wrong]))
    root = rfc.mth(built300.data[:n])
    for index, size in ((n, i), (i, 0), (-1, n), (n, n), (i, -n)):  # swapped, out of range
        with pytest.raises(RangeError):
            verify_inclusion(leaf_hash=leaf, index=index, tree_size=size, proof=p,
                             expected_root=root)


@PROPS
@given(mn=two_sizes())
def test_wrong_consistency_sizes_rejected(built300: BuiltLedger, rfc: Rfc9162,
                                          mn: tuple[int, int]) -> None:
    m, n = mn
    p = rfc.proof(m, built300.data[:n])
    for a, b in {(m - 1, n), (m + 1, n), (m, n - 1), (m, n + 1), (n, m)} - {(m, n)}:
        if b > MAX_N:
            continue
        if not 1 <= a <= b:
            with pytest.raises(RangeError):
                verify_consistency(first=a, second=b, proof=p, first_root=b"\x00" * 32,
                                   second_root=b"\x00" * 32)
            continue
        with pytest.raises(ProofError):
            verify_consistency(first=a, second=b, proof=p,
                               first_root=rfc.mth(built300.data[:a]),
                               second_root=rfc.mth(built300.data[:b]))
    if m < n:  # swapped roots
        with pytest.raises(ProofError):
            verify_consistency(first=m, second=n, proof=p,
                               first_root=rfc.mth(built300.data[:n]),
                               second_root=rfc.mth(built300.data[:m]))


@PROPS
@given(ni=size_index(), mn=two_sizes())
def test_extra_or_missing_proof_hashes_rejected(built300: BuiltLedger, rfc: Rfc9162,
                                                ni: tuple[int, int],
                                                mn: tuple[int, int]) -> None:
    n, i = ni
    p, root, leaf = rfc.path(i, built300.data[:n]), rfc.mth(built300.data[:n]), \
        leaf_hash(built300.data[i])
    variants = [[*p, root], [root, *p]] + ([p[:-1], p[1:]] if p else [])
    for bad in variants:
        with pytest.raises(ProofError):
            verify_inclusion(leaf_hash=leaf, index=i, tree_size=n, proof=bad,
                             expected_root=root)
    m, n = mn
    p = rfc.proof(m, built300.data[:n])
    r1, r2 = rfc.mth(built300.data[:m]), rfc.mth(built300.data[:n])
    variants = [[*p, r1], [r2, *p]] + ([p[:-1], p[1:]] if p else [])
    for bad in variants:
        with pytest.raises(ProofError):
            verify_consistency(first=m, second=n, proof=bad, first_root=r1, second_root=r2)


@pytest.mark.parametrize("length", [0, 1, 12, 31, 33, 64])
def test_hashes_of_wrong_length_rejected(built300: BuiltLedger, rfc: Rfc9162,
                                         length: int) -> None:
    n, i, m = 11, 5, 6
    bad = bytes(range(length))
    p, root, leaf = rfc.path(i, built300.data[:n]), rfc.mth(built300.data[:n]), \
        leaf_hash(built300.data[i])
    for lf, pr, rt in ((bad, p, root), (leaf, p, bad), (leaf, [*p[:-1], bad], root)):
        with pytest.raises(ProofError) as info:
            verify_inclusion(leaf_hash=lf, index=i, tree_size=n, proof=pr, expected_root=rt)
        assert not isinstance(info.value, RootMismatch)
    with pytest.raises(ProofError):
        root_from_inclusion_proof(leaf_hash=bad, index=i, tree_size=n, proof=p)
    c, r1 = rfc.proof(m, built300.data[:n]), rfc.mth(built300.data[:m])
    for pr, a, b in ((c, bad, root), (c, r1, bad), ([bad, *c[1:]], r1, root)):
        with pytest.raises(ProofError):
            verify_consistency(first=m, second=n, proof=pr, first_root=a, second_root=b)
    # Equal sizes and equal roots still need real 32-byte roots.
    with pytest.raises(ProofError):
        verify_consistency(first=1, second=1, proof=[], first_root=bad, second_root=bad)


def test_store_range_errors(built300: BuiltLedger) -> None:
    led = built300.ledger
    calls = [
        lambda: led.inclusion_proof(5, 5),
        lambda: led.inclusion_proof(-1, 5),
        lambda: led.inclusion_proof(0, MAX_N + 1),
        lambda: led.inclusion_proof(0, 0),
        lambda: led.consistency_proof(0, 5),
        lambda: led.consistency_proof(0, 0),
        lambda: led.consistency_proof(6, 5),
        lambda: led.consistency_proof(1, MAX_N + 1),
        lambda: led.root_at(MAX_N + 1),
        lambda: led.root_at(-1),
        lambda: verify_consistency(first=0, second=3, proof=[b"\x00" * 32],
                                   first_root=EMPTY_ROOT, second_root=b"\x00" * 32),
    ]
    for call in calls:
        with pytest.raises(RangeError):
            call()
    assert led.consistency_proof(5, 5) == []
    assert led.root_at(0) == EMPTY_ROOT
    assert issubclass(RangeError, LedgerError) and issubclass(ProofError, LedgerError)
