"""Ledger v2 (ARCHITECTURE §10): sealed entry bytes, openings, and the rules that tie them:
exact shape, round trips, what parsing refuses, a changed salt, private body, public part
or commitment caught at its index, v1 then v2 verifying and v2 then v1 refused, and the
stores writing v2 with their openings in the same transaction."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
import rfc8785
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from ledger.audit import audit_log
from ledger.canonical import MAX_SAFE_INTEGER
from ledger.entry import Entry, encode_sealed_entry, format_time, parse_entry
from ledger.errors import EncodingError, LogInvalid
from ledger.hasher import leaf_hash
from ledger.sealing import (
    ERASED,
    SALT_SIZE,
    Opening,
    check_opening,
    commitment,
    encode_opening,
    full_body,
    parse_opening,
    public_body,
    seal,
)
from ledger.sqlstore import SqlLedger, init_schema
from ledger.store import MemoryLedger
from vault.storage.database import make_engine, read_only

PROPS = settings(max_examples=100, deadline=None)
TIME = "2026-01-02T03:04:05.678Z"
PREV = bytes(range(32))
SALT = bytes(range(100, 132))
PUBLIC = {"grant_id": "gr_1", "service_id": "svc_1"}
PRIVATE = {"subject": "sub_1", "assertion": {"signature": "c2ln"}}
SEALED = commitment(SALT, PRIVATE)
EXAMPLE = (
    b'{"kind":"grant.approved","prev":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",'
    b'"public":{"grant_id":"gr_1","service_id":"svc_1"},"sealed":"'
    + base64.b64encode(SEALED)
    + b'","seq":1,"time":"2026-01-02T03:04:05.678Z","v":2}'
)
ENTRY = Entry(1, TIME, "grant.approved", PREV, PUBLIC, 2, SEALED)
OPENING = Opening(1, SALT, PRIVATE)


def fields(**changes: Any) -> dict[str, Any]:
    f: dict[str, Any] = {"v": 2, "seq": 1, "time": TIME, "kind": "grant.approved",
                         "prev": base64.b64encode(PREV).decode(), "public": PUBLIC,
                         "sealed": base64.b64encode(SEALED).decode()}
    f.update(changes)
    return f


def jcs(drop: tuple[str, ...] = (), **changes: Any) -> bytes:
    return rfc8785.dumps({k: v for k, v in fields(**changes).items() if k not in drop})


def counting_salts() -> Callable[[int], bytes]:
    """Deterministic salts, different for every entry (so two stores agree byte for byte)."""
    n = itertools.count()
    return lambda size: b"".join(hashlib.sha256(str(next(n)).encode()).digest()
                                 for _ in range(size // 32))


# --- entry bytes ------------------------------------------------------------------------


def test_exact_bytes_and_parse() -> None:
    assert encode_sealed_entry(1, TIME, "grant.approved", PREV, PUBLIC, SEALED) == EXAMPLE
    assert jcs() == EXAMPLE
    assert ENTRY.encode() == EXAMPLE
    assert parse_entry(EXAMPLE) == ENTRY
    assert parse_entry(EXAMPLE).body == PUBLIC  # the public part only


json_scalars = st.one_of(st.none(), st.booleans(),
                         st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER), st.text(max_size=8))
json_values = st.recursive(
    json_scalars,
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids,
                                                               max_size=3),
    max_leaves=12,
)
bodies = st.dictionaries(st.text(max_size=6), json_values, max_size=5)
kinds = st.from_regex(r"[a-z][a-z0-9_]{0,6}(\.[a-z][a-z0-9_]{0,6}){1,2}", fullmatch=True)
moments = st.datetimes(min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(9999, 1, 1),
                       timezones=st.just(dt.UTC))


@PROPS
@given(seq=st.integers(0, 10**12), moment=moments, kind=kinds, public=bodies,
       private=bodies, prev=st.binary(min_size=32, max_size=32),
       salt=st.binary(min_size=32, max_size=32))
def test_round_trip(seq: int, moment: dt.datetime, kind: str, public: dict[str, Any],
                    private: dict[str, Any], prev: bytes, salt: bytes) -> None:
    prev = b"" if seq == 0 else prev
    time = format_time(moment)
    sealed = commitment(salt, private)
    data = encode_sealed_entry(seq, time, kind, prev, public, sealed)
    entry = parse_entry(data)
    assert entry == Entry(seq, time, kind, prev, public, 2, sealed)
    assert entry.encode() == data
    want: dict[str, Any] = {"v": 2, "seq": seq, "time": time, "kind": kind,
            "prev": base64.b64encode(prev).decode(), "public": public,
            "sealed": base64.b64encode(sealed).decode()}
    assert data == rfc8785.dumps(want)
    line = encode_opening(seq, salt, private)
    assert line == rfc8785.dumps({"seq": seq, "salt": base64.b64encode(salt).decode(),
                                  "private": private})
    opening = parse_opening(line)
    assert opening == Opening(seq, salt, private)
    assert encode_opening(*opening) == line


SEALED_B64 = base64.b64encode(SEALED).decode()
BAD_ENTRIES: dict[str, bytes] = {
    "extra-field": jcs(body={}),
    "missing-public": jcs(drop=("public",)),
    "missing-v": jcs(drop=("v",)),
    "v-1": jcs(v=1),
    "v-3": jcs(v=3),
    "v-string": jcs(v="2"),
    "public-list": jcs(public=[]),
    "public-null": jcs(public=None),
    "sealed-31-bytes": jcs(sealed=base64.b64encode(SEALED[:31]).decode()),
    "sealed-33-bytes": jcs(sealed=base64.b64encode(SEALED + b"!").decode()),
    "sealed-empty": jcs(sealed=""),
    "sealed-null": jcs(sealed=None),
    "sealed-urlsafe": jcs(sealed=base64.urlsafe_b64encode(b"\xfb\xff" * 16).decode()),
    "sealed-no-padding": jcs(sealed=SEALED_B64.rstrip("=")),
    "sealed-hex": jcs(sealed=SEALED.hex()),
    "prev-empty-seq-1": jcs(prev=""),
    "float-in-public": EXAMPLE.replace(b'"public":{', b'"public":{"a":1.5,'),
    "space": EXAMPLE.replace(b'"seq":1', b'"seq": 1'),
    "reordered": orjson.dumps(fields()),
    "escaped-char": EXAMPLE.replace(b'"gr_1"', b'"\\u0067r_1"'),
}


@pytest.mark.parametrize("name", sorted(BAD_ENTRIES))
def test_parse_refuses(name: str) -> None:
    with pytest.raises(EncodingError):
        parse_entry(BAD_ENTRIES[name])


def test_sealed_stray_low_bits_refused() -> None:
    # Pick a commitment whose last base64 digit has unused low bits we can set.
    last = SEALED_B64[-2]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    other = alphabet[alphabet.index(last) ^ 1]
    with pytest.raises(EncodingError, match="canonical"):
        parse_entry(jcs(sealed=SEALED_B64[:-2] + other + "="))


@pytest.mark.parametrize(("seq", "sealed", "public"), [
    (1, SEALED[:31], PUBLIC), (1, b"", PUBLIC), (-1, SEALED, PUBLIC), (1, SEALED, [])])
def test_encode_refuses(seq: int, sealed: bytes, public: Any) -> None:
    with pytest.raises(EncodingError):
        encode_sealed_entry(seq, TIME, "grant.approved", PREV, public, sealed)


BAD_OPENINGS: dict[str, bytes] = {
    "not-json": b"{",
    "extra": rfc8785.dumps({"seq": 1, "salt": base64.b64encode(SALT).decode(),
                            "private": {}, "x": 1}),
    "missing-salt": rfc8785.dumps({"seq": 1, "private": {}}),
    "salt-31": rfc8785.dumps({"seq": 1, "salt": base64.b64encode(SALT[:31]).decode(),
                              "private": {}}),
    "salt-no-padding": rfc8785.dumps({"seq": 1, "private": {},
                                      "salt": base64.b64encode(SALT).decode().rstrip("=")}),
    "private-list": rfc8785.dumps({"seq": 1, "salt": base64.b64encode(SALT).decode(),
                                   "private": []}),
    "seq-negative": rfc8785.dumps({"seq": -1, "salt": base64.b64encode(SALT).decode(),
                                   "private": {}}),
    "not-canonical": orjson.dumps({"seq": 1, "salt": base64.b64encode(SALT).decode(),
                                   "private": {}}),
}


@pytest.mark.parametrize("name", sorted(BAD_OPENINGS))
def test_parse_opening_refuses(name: str) -> None:
    with pytest.raises(EncodingError):
        parse_opening(BAD_OPENINGS[name])


# --- checking an opening against its entry ---------------------------------------------


def test_a_good_opening_gives_the_full_body() -> None:
    assert check_opening(ENTRY, OPENING) == {**PUBLIC, **PRIVATE}
    assert full_body(ENTRY, OPENING) == {**PUBLIC, **PRIVATE}
    v1 = Entry(1, TIME, "grant.approved", PREV, {**PUBLIC, **PRIVATE})
    assert full_body(v1, None) == {**PUBLIC, **PRIVATE}


@pytest.mark.parametrize(("entry", "opening", "says"), [
    (ENTRY, OPENING._replace(salt=bytes(SALT_SIZE)), "salt or private body was altered"),
    (ENTRY, OPENING._replace(private={**PRIVATE, "subject": "sub_2"}), "altered"),
    (ENTRY, OPENING._replace(private={"subject": "sub_1"}), "altered"),
    (ENTRY, OPENING._replace(seq=2), "opening is for entry 2"),
    (ENTRY._replace(body={**PUBLIC, "grant_id": "gr_2"}), OPENING, None),  # public edited
    (ENTRY._replace(sealed=bytes(32)), OPENING, "sealed commitment"),
    (ENTRY._replace(v=1, sealed=None), OPENING, "not sealed"),
], ids=["salt", "private-value", "private-field-dropped", "other-seq", "public-field",
        "commitment", "v1-entry"])
def test_a_changed_opening_or_entry_is_caught_at_its_index(
        entry: Entry, opening: Opening, says: str | None) -> None:
    if says is None:
        # A changed public field leaves the opening matching: the entry's own bytes (its
        # leaf hash, the chain and the tree) are what catch it; see the audit tests below.
        assert check_opening(entry, opening)["grant_id"] == "gr_2"
        assert entry.encode() != EXAMPLE
        return
    with pytest.raises(LogInvalid) as info:
        check_opening(entry, opening)
    assert info.value.index == 1
    assert says in info.value.reason


def test_the_split_must_be_the_tables() -> None:
    """A subject shown in public, or a public field hidden in the sealed part, is refused
    even when the commitment matches."""
    leaked = {**PUBLIC, "subject": "sub_1"}
    rest = {"assertion": PRIVATE["assertion"]}
    entry = ENTRY._replace(body=leaked, sealed=commitment(SALT, rest))
    with pytest.raises(LogInvalid, match="public fields"):
        check_opening(entry, Opening(1, SALT, rest))
    hidden = {**PRIVATE, "service_id": "svc_1"}
    entry = ENTRY._replace(body={"grant_id": "gr_1"}, sealed=commitment(SALT, hidden))
    with pytest.raises(LogInvalid, match="public fields"):
        check_opening(entry, Opening(1, SALT, hidden))
    both = ENTRY._replace(sealed=commitment(SALT, {**PRIVATE, "grant_id": "gr_9"}))
    with pytest.raises(LogInvalid, match="both public and private"):
        check_opening(both, Opening(1, SALT, {**PRIVATE, "grant_id": "gr_9"}))
    with pytest.raises(LogInvalid, match="no opening"):
        full_body(ENTRY, None)


def test_public_body_either_way() -> None:
    assert public_body(ENTRY) == PUBLIC
    v1 = Entry(1, TIME, "grant.approved", PREV, {**PUBLIC, **PRIVATE})
    assert public_body(v1) == PUBLIC
    erased = {"grant_id": "g", "service_id": "s", "subject": "x", "reason": ERASED,
              "asked": "2026-01", "from": "approved"}
    assert public_body(v1._replace(kind="grant.revoked", body=erased)) == {
        "reason": ERASED, "asked": "2026-01", "from": "approved"}


def test_seal_splits_commits_and_opens() -> None:
    body = {**PUBLIC, **PRIVATE}
    sealed = seal(7, "grant.approved", body, SALT)
    assert sealed.public == PUBLIC
    assert sealed.sealed == commitment(SALT, PRIVATE)
    assert parse_opening(sealed.opening) == Opening(7, SALT, PRIVATE)
    with pytest.raises(EncodingError):
        seal(7, "grant.approved", body, b"short")


def test_every_entry_gets_its_own_salt() -> None:
    led = MemoryLedger(version=2)
    same = ("grant.approved", {**PUBLIC, **PRIVATE})
    led.append_many([same, same])
    led.append(*same)
    salts = [parse_opening(o).salt for o in led.openings(0, 3)]
    assert len(set(salts)) == 3
    assert len({orjson.loads(d)["sealed"] for _, _, d in led.iter_entries()}) == 3
    with pytest.raises(EncodingError, match="too few"):
        MemoryLedger(version=2, salts=lambda n: bytes(32)).append_many([same, same])


# --- whole ledgers: stores writing v2, audits ------------------------------------------


T0 = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def items(n: int, start: int = 0) -> list[tuple[str, dict[str, Any]]]:
    return [("grant.approved", {"grant_id": f"gr_{i}", "service_id": "svc",
                                "subject": f"sub_{i % 3}"}) for i in range(start, start + n)]


def mixed_ledger(v1: int, v2: int) -> MemoryLedger:
    led = MemoryLedger(clock=lambda: T0)
    led.append_many(items(v1))
    led._version = 2  # the same ledger, from now on sealed (as an upgraded vault)
    led.append_many(items(v2, v1))
    return led


def test_v1_then_v2_verifies_and_opens() -> None:
    led = mixed_ledger(5, 6)
    data = [d for _, _, d in led.iter_entries()]
    assert audit_log(data).head == led.tree_head()
    rows = list(led.iter_opened())
    assert [op is None for _, _, op in rows] == [True] * 5 + [False] * 6
    for seq, entry_bytes, op in rows:
        entry = parse_entry(entry_bytes)
        opened = full_body(entry, parse_opening(op) if op else None)
        assert opened == items(1, seq)[0][1]
    assert len(led.openings(0, 11)) == 6
    assert b"sub_" not in b"".join(data[5:])  # no subject in the sealed entries' bytes


def test_v2_then_v1_is_refused_at_the_v1_entry() -> None:
    led = mixed_ledger(2, 3)
    led._version = 1
    led.append_many(items(2, 5))
    data = [d for _, _, d in led.iter_entries()]
    with pytest.raises(LogInvalid) as info:
        audit_log(data)
    assert info.value.index == 5
    assert "v1 entry after a sealed" in info.value.reason


def test_a_changed_public_field_is_caught_at_its_index() -> None:
    led = mixed_ledger(0, 8)
    data = [d for _, _, d in led.iter_entries()]
    data[4] = data[4].replace(b'"grant_id":"gr_4"', b'"grant_id":"gr_9"')
    parse_entry(data[4])
    with pytest.raises(LogInvalid) as info:
        audit_log(data)
    assert info.value.index == 4
    stored = [(d, h) for (_, h, _), d in zip(led.iter_entries(), data, strict=True)]
    with pytest.raises(LogInvalid) as info:
        audit_log(stored)
    assert info.value.index == 4


def test_a_malformed_sealed_entry_is_named() -> None:
    led = mixed_ledger(0, 3)
    data = [d for _, _, d in led.iter_entries()]
    sealed = orjson.loads(data[1])["sealed"]
    data[1] = data[1].replace(sealed.encode(), sealed.rstrip("=").encode())
    with pytest.raises(LogInvalid) as info:
        audit_log(data)
    assert info.value.index == 1 and "sealed" in info.value.reason


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    with eng.begin() as conn:
        init_schema(conn)
    yield eng
    eng.dispose()


def test_sql_store_writes_v2_with_openings_like_the_memory_store(engine: Engine) -> None:
    mem = MemoryLedger(clock=lambda: T0, version=2, salts=counting_salts())
    mem.append_many(items(3))
    mem.append_many(items(4, 3))
    salts = counting_salts()
    with engine.begin() as conn:
        SqlLedger(conn, clock=lambda: T0, version=2, salts=salts).append_many(items(3))
    with engine.begin() as conn:
        SqlLedger(conn, clock=lambda: T0, version=2, salts=salts).append_many(items(4, 3))
    with read_only(engine).begin() as conn:
        led = SqlLedger(conn)
        assert led.tree_head() == mem.tree_head()
        assert list(led.iter_opened()) == list(mem.iter_opened())
        assert led.opened(2, 3) == mem.opened(2, 3)
        assert led.openings(1, 2) == mem.openings(1, 2)
        assert [parse_opening(o).seq for o in led.openings(0, 7)] == list(range(7))
        assert audit_log((d, h) for _, h, d in led.iter_entries()).head == led.tree_head()


def test_a_failed_append_leaves_no_entry_and_no_opening(engine: Engine) -> None:
    with pytest.raises(EncodingError), engine.begin() as conn:
        SqlLedger(conn, version=2).append_many([*items(2), ("grant.approved", {"x": 1.5})])
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM ledger_entries")).scalar_one() == 0


def test_a_store_writes_only_known_versions() -> None:
    with pytest.raises(EncodingError):
        MemoryLedger(version=3)


SEALED_LOG = [d for _, _, d in mixed_ledger(3, 9).iter_entries()]


@PROPS
@given(i=st.integers(3, 11), pos=st.integers(0, 10_000), bit=st.integers(0, 7))
def test_any_bit_flip_in_a_sealed_entry_is_caught_at_its_index(i: int, pos: int,
                                                               bit: int) -> None:
    data = list(SEALED_LOG)
    raw = bytearray(data[i])
    raw[pos % len(raw)] ^= 1 << bit
    data[i] = bytes(raw)
    stored = [(d, h) for d, h in zip(data, map(leaf_hash, SEALED_LOG), strict=True)]
    with pytest.raises(LogInvalid) as info:
        audit_log(stored)
    assert info.value.index == i
