"""Envelope recipes: seal/open round trips, and everything that must not open."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from enum import StrEnum
from itertools import pairwise
from typing import Any

import pytest
import rfc8785
from hypothesis import example, given, settings
from hypothesis import strategies as st

from vault.crypto import (
    KEY_SIZE,
    CryptoError,
    DecryptionFailed,
    commit,
    commitment_key,
    data_key_ad,
    new_key,
    open_sealed,
    record_ad,
    seal,
)
from vault.errors import VaultError

PROPS = settings(max_examples=150, deadline=None)
OVERHEAD = 1 + 24 + 16  # version byte, nonce, tag

keys = st.binary(min_size=KEY_SIZE, max_size=KEY_SIZE)
plaintexts = st.binary(max_size=2048)
ads = st.binary(max_size=256)
# Field values full of the characters an ad-hoc encoding would use as separators.
tricky = st.text(alphabet=st.sampled_from('ab"\\,:|{}[] \x00\n\u00e9\U0001f600'), max_size=8)
fields = st.one_of(tricky, st.text(max_size=12))
versions = st.integers(min_value=0, max_value=2**53 - 1)


def flip(blob: bytes, bit: int) -> bytes:
    """`blob` with bit number `bit` (0 = the lowest bit of the first byte) inverted."""
    out = bytearray(blob)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def rec(citizen: str = "cit_1", record: str = "rec_1", category: str = "contact.email",
        version: int = 1) -> bytes:
    return record_ad(citizen_id=citizen, record_id=record, category=category, version=version)


# -- round trips and shape ---------------------------------------------------------------


@PROPS
@given(key=keys, plaintext=plaintexts, ad=ads)
def test_seal_then_open_round_trips(key: bytes, plaintext: bytes, ad: bytes) -> None:
    blob = seal(key, plaintext, ad=ad)
    assert blob[0] == 0x01
    assert len(blob) == len(plaintext) + OVERHEAD
    assert open_sealed(key, blob, ad=ad) == plaintext


def test_each_seal_draws_a_fresh_nonce() -> None:
    key = new_key()
    blobs = {seal(key, b"same value", ad=b"same ad") for _ in range(50)}
    assert len(blobs) == 50
    assert len({b[1:25] for b in blobs}) == 50


def test_new_key_is_32_random_bytes() -> None:
    got = {new_key() for _ in range(20)}
    assert len(got) == 20 and all(len(k) == KEY_SIZE for k in got)


@pytest.mark.parametrize("key", [b"", b"\x00" * 31, b"\x00" * 33, bytearray(32), "k" * 32])
def test_seal_refuses_a_key_of_the_wrong_size_or_type(key: object) -> None:
    with pytest.raises(CryptoError, match="32 bytes"):
        seal(key, b"x", ad=b"")  # type: ignore[arg-type]


# -- what must not open --------------------------------------------------------------------


def test_every_single_bit_flip_of_a_small_blob_is_rejected() -> None:
    key, ad = new_key(), rec()
    blob = seal(key, b"0123456789", ad=ad)
    for bit in range(len(blob) * 8):
        with pytest.raises(DecryptionFailed):
            open_sealed(key, flip(blob, bit), ad=ad)


@PROPS
@given(key=keys, plaintext=plaintexts, ad=ads, data=st.data())
def test_any_flipped_bit_is_rejected(key: bytes, plaintext: bytes, ad: bytes,
                                     data: st.DataObject) -> None:
    blob = seal(key, plaintext, ad=ad)
    bit = data.draw(st.integers(min_value=0, max_value=len(blob) * 8 - 1), label="bit")
    with pytest.raises(DecryptionFailed):
        open_sealed(key, flip(blob, bit), ad=ad)


@PROPS
@given(plaintext=plaintexts, ad=ads, data=st.data())
def test_a_flipped_bit_in_the_key_or_the_ad_is_rejected(plaintext: bytes, ad: bytes,
                                                        data: st.DataObject) -> None:
    key = new_key()
    blob = seal(key, plaintext, ad=ad)
    kbit = data.draw(st.integers(min_value=0, max_value=KEY_SIZE * 8 - 1), label="key bit")
    with pytest.raises(DecryptionFailed):
        open_sealed(flip(key, kbit), blob, ad=ad)
    other_ad = data.draw(ads.filter(lambda a: a != ad), label="other ad")
    with pytest.raises(DecryptionFailed):
        open_sealed(key, blob, ad=other_ad)


def test_truncated_empty_and_garbage_blobs_are_rejected() -> None:
    key, ad = new_key(), rec()
    blob = seal(key, b"a value worth keeping", ad=ad)
    for n in range(len(blob)):
        with pytest.raises(DecryptionFailed):
            open_sealed(key, blob[:n], ad=ad)
    bad = [b"", b"\x01", blob + b"\x00", b"\x02" + blob[1:], b"\x00" + blob[1:],
           os.urandom(len(blob)), b"\x01" + os.urandom(200), bytes(OVERHEAD)]
    for garbage in bad:
        with pytest.raises(DecryptionFailed):
            open_sealed(key, garbage, ad=ad)


@pytest.mark.parametrize("blob", [None, "text", bytearray(64), memoryview(bytes(64)), 7])
def test_non_bytes_are_rejected_the_same_way(blob: object) -> None:
    with pytest.raises(DecryptionFailed):
        open_sealed(new_key(), blob, ad=b"")  # type: ignore[arg-type]


def test_a_wrong_key_size_on_open_is_the_same_opaque_failure() -> None:
    key = new_key()
    blob = seal(key, b"v", ad=b"")
    for bad_key in (key[:16], key + b"\x00", b""):
        with pytest.raises(DecryptionFailed):
            open_sealed(bad_key, blob, ad=b"")


def test_decryption_failed_is_opaque_and_a_vault_error() -> None:
    key = new_key()
    blob = seal(key, b"secret value", ad=rec())
    failures: list[str] = []
    for k, b, ad in ((new_key(), blob, rec()), (key, blob, rec(version=2)),
                     (key, blob[:10], rec())):
        with pytest.raises(DecryptionFailed) as info:
            open_sealed(k, b, ad=ad)
        failures.append(str(info.value))
    assert len(set(failures)) == 1 and "secret" not in failures[0]
    assert issubclass(DecryptionFailed, CryptoError) and issubclass(CryptoError, VaultError)


SWAPS = [
    ("citizen<->record", dict(citizen="rec_1", record="cit_1")),
    ("category<->record", dict(record="contact.email", category="rec_1")),
    ("other citizen", dict(citizen="cit_2")),
    ("other record", dict(record="rec_2")),
    ("other category", dict(category="contact.phone")),
    ("next version", dict(version=2)),
    ("previous version", dict(version=0)),
]


@pytest.mark.parametrize(("what", "change"), SWAPS, ids=[s[0] for s in SWAPS])
def test_a_changed_or_swapped_record_ad_field_is_rejected(
    what: str, change: dict[str, Any]
) -> None:
    key = new_key()
    blob = seal(key, b'{"email":"a@example.org"}', ad=rec())
    assert open_sealed(key, blob, ad=rec()) == b'{"email":"a@example.org"}'
    with pytest.raises(DecryptionFailed):
        open_sealed(key, blob, ad=rec(**change))


@settings(max_examples=60, deadline=None)
@given(a=st.tuples(fields, fields, fields, versions), b=st.tuples(fields, fields, fields, versions))
def test_a_ciphertext_moved_to_another_record_or_citizen_does_not_open(
    a: tuple[str, str, str, int], b: tuple[str, str, str, int]
) -> None:
    key = new_key()
    blob = seal(key, b"value", ad=rec(*a))
    if a == b:
        assert open_sealed(key, blob, ad=rec(*b)) == b"value"
    else:
        with pytest.raises(DecryptionFailed):
            open_sealed(key, blob, ad=rec(*b))


def test_a_record_moved_to_another_citizen_fails_under_their_key_too() -> None:
    alice, bob = new_key(), new_key()
    blob = seal(alice, b"alice's value", ad=rec("alice", "r1"))
    with pytest.raises(DecryptionFailed):
        open_sealed(bob, blob, ad=rec("bob", "r1"))
    with pytest.raises(DecryptionFailed):
        open_sealed(bob, blob, ad=rec("alice", "r1"))
    with pytest.raises(DecryptionFailed):
        open_sealed(alice, blob, ad=rec("bob", "r1"))


def test_a_wrapped_data_key_with_another_citizen_or_kek_id_is_rejected() -> None:
    kek, data_key = new_key(), new_key()
    wrapped = seal(kek, data_key, ad=data_key_ad(citizen_id="c1", kek_id="kek_a"))
    assert open_sealed(kek, wrapped, ad=data_key_ad(citizen_id="c1", kek_id="kek_a")) == data_key
    for ad in (data_key_ad(citizen_id="c2", kek_id="kek_a"),
               data_key_ad(citizen_id="c1", kek_id="kek_b"),
               data_key_ad(citizen_id="kek_a", kek_id="c1"),
               rec("c1", "kek_a")):
        with pytest.raises(DecryptionFailed):
            open_sealed(kek, wrapped, ad=ad)


# -- associated data encodings -------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(a=st.tuples(fields, fields, fields, versions), b=st.tuples(fields, fields, fields, versions))
@example(a=("a", "b|c", "x", 1), b=("a|b", "c", "x", 1))
@example(a=('a","record":"b', "c", "x", 1), b=("a", 'b","record":"c', "x", 1))
@example(a=("a", "b", "c", 12), b=("a", "b", "c1", 2))
def test_record_ad_is_injective(a: tuple[str, str, str, int], b: tuple[str, str, str, int]) -> None:
    assert (rec(*a) == rec(*b)) == (a == b)


@settings(max_examples=300, deadline=None)
@given(a=st.tuples(fields, fields), b=st.tuples(fields, fields))
@example(a=("a", "b:c"), b=("a:b", "c"))
def test_data_key_ad_is_injective(a: tuple[str, str], b: tuple[str, str]) -> None:
    ad_a = data_key_ad(citizen_id=a[0], kek_id=a[1])
    ad_b = data_key_ad(citizen_id=b[0], kek_id=b[1])
    assert (ad_a == ad_b) == (a == b)


@PROPS
@given(r=st.tuples(fields, fields, fields, versions), d=st.tuples(fields, fields))
def test_record_and_data_key_ads_never_collide(r: tuple[str, str, str, int],
                                               d: tuple[str, str]) -> None:
    assert rec(*r) != data_key_ad(citizen_id=d[0], kek_id=d[1])


def test_ad_bytes_are_pinned() -> None:
    # Every stored ciphertext depends on these exact bytes: a change here loses data.
    assert rec("cit_1", "rec_1", "contact.email", 3) == (
        b'{"category":"contact.email","citizen":"cit_1","record":"rec_1",'
        b'"use":"vault.record.v1","version":3}'
    )
    assert data_key_ad(citizen_id="cit_1", kek_id="kek_0011223344556677") == (
        b'{"citizen":"cit_1","kek":"kek_0011223344556677","use":"vault.data-key.v1"}'
    )


@PROPS
@given(r=st.tuples(fields, fields, fields, versions), d=st.tuples(fields, fields))
def test_ads_are_the_rfc8785_bytes_of_their_fields(r: tuple[str, str, str, int],
                                                   d: tuple[str, str]) -> None:
    c, rid, cat, v = r
    assert rec(*r) == rfc8785.dumps({"use": "vault.record.v1", "citizen": c, "record": rid,
                                     "category": cat, "version": v})
    assert data_key_ad(citizen_id=d[0], kek_id=d[1]) == rfc8785.dumps(
        {"use": "vault.data-key.v1", "citizen": d[0], "kek": d[1]})


def test_str_subclasses_encode_as_their_value() -> None:
    class Code(StrEnum):
        EMAIL = "contact.email"

    assert rec(category=Code.EMAIL) == rec(category="contact.email")


@pytest.mark.parametrize("version", [-1, 2**53, True, "1", 1.0])
def test_record_ad_refuses_a_bad_version(version: object) -> None:
    with pytest.raises(CryptoError, match="version"):
        rec(version=version)  # type: ignore[arg-type]


def test_ad_fields_must_be_encodable_strings() -> None:
    with pytest.raises(CryptoError, match="record_id must be a string"):
        record_ad(citizen_id="c", record_id=5, category="x", version=1)  # type: ignore[arg-type]
    with pytest.raises(CryptoError, match="kek_id must be a string"):
        data_key_ad(citizen_id="c", kek_id=None)  # type: ignore[arg-type]
    with pytest.raises(CryptoError, match="associated data"):
        rec(citizen="\ud800")  # a lone surrogate has no UTF-8 encoding


# -- commitments ---------------------------------------------------------------------------


def test_commitment_key_is_deterministic_one_way_and_per_data_key() -> None:
    dks = [new_key() for _ in range(20)]
    cks = [commitment_key(dk) for dk in dks]
    assert cks == [commitment_key(dk) for dk in dks]
    assert len(set(cks)) == 20 and all(len(ck) == 32 for ck in cks)
    assert not set(cks) & set(dks)
    # Not a plain hash of the key: a distinct, labelled derivation.
    assert all(ck != hashlib.sha256(dk).digest() and ck != hashlib.blake2b(dk, digest_size=32)
               .digest() for dk, ck in zip(dks, cks, strict=True))


def test_commitment_key_refuses_a_bad_data_key() -> None:
    with pytest.raises(CryptoError, match="32 bytes"):
        commitment_key(b"short")


@PROPS
@given(m1=st.binary(max_size=64), m2=st.binary(max_size=64))
def test_commitments_differ_per_key_and_per_message(m1: bytes, m2: bytes) -> None:
    k1, k2 = commitment_key(new_key()), commitment_key(new_key())
    c = commit(k1, m1)
    assert c == commit(k1, m1)
    assert c != commit(k2, m1)
    assert (c == commit(k1, m2)) == (m1 == m2)


def test_commit_is_hmac_sha256_base64url_without_padding() -> None:
    key = commitment_key(bytes(range(32)))
    got = commit(key, b"contact.email:a@example.org")
    mac = hmac.new(key, b"contact.email:a@example.org", hashlib.sha256).digest()
    assert len(got) == 43 and "=" not in got and "+" not in got and "/" not in got
    assert base64.urlsafe_b64decode(got + "=") == mac


def test_many_commitments_are_distinct() -> None:
    key = commitment_key(new_key())
    got = [commit(key, str(i).encode()) for i in range(500)]
    assert all(a != b for a, b in pairwise(sorted(got)))
