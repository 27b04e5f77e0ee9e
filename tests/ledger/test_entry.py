"""Entry bytes (ARCHITECTURE §2): exact shape, round trips, and everything parse_entry
must refuse; entry times."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import orjson
import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.canonical import MAX_SAFE_INTEGER, canonical_json
from ledger.entry import Entry, encode_entry, format_time, parse_entry
from ledger.errors import EncodingError
from ledger.store import MemoryLedger

PROPS = settings(max_examples=150, deadline=None)
TIME = "2026-01-02T03:04:05.678Z"
PREV = bytes(range(32))
PREV_B64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
BODY = {"tags": ["a", None], "ok": True, "n": 3, "grant_id": "g-1"}
EXAMPLE = (
    b'{"body":{"grant_id":"g-1","n":3,"ok":true,"tags":["a",null]},"kind":"grant.approved",'
    b'"prev":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","seq":1,'
    b'"time":"2026-01-02T03:04:05.678Z","v":1}'
)
FIRST = (
    b'{"body":{},"kind":"citizen.enrolled","prev":"","seq":0,'
    b'"time":"2026-01-02T03:04:05.678Z","v":1}'
)


def fields(**changes: Any) -> dict[str, Any]:
    f: dict[str, Any] = {"v": 1, "seq": 1, "time": TIME, "kind": "grant.approved",
                         "prev": PREV_B64, "body": BODY}
    f.update(changes)
    return f


def jcs(**changes: Any) -> bytes:
    """Canonical bytes of EXAMPLE's fields with some changed, or dropped (`drop=(...)`), so
    that each bad case breaks exactly one rule."""
    drop = changes.pop("drop", ())
    f = {k: v for k, v in fields(**changes).items() if k not in drop}
    return rfc8785.dumps(f)


# --- shape and round trips -------------------------------------------------------------


def test_exact_bytes() -> None:
    assert encode_entry(1, TIME, "grant.approved", PREV, BODY) == EXAMPLE
    assert Entry(1, TIME, "grant.approved", PREV, BODY).encode() == EXAMPLE
    assert encode_entry(0, TIME, "citizen.enrolled", b"", {}) == FIRST
    assert jcs() == EXAMPLE
    assert parse_entry(EXAMPLE) == Entry(1, TIME, "grant.approved", PREV, BODY)
    assert parse_entry(FIRST) == Entry(0, TIME, "citizen.enrolled", b"", {})


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
@given(seq=st.integers(0, 10**12), moment=moments, kind=kinds, body=bodies,
       prev=st.binary(min_size=32, max_size=32))
def test_round_trip(seq: int, moment: dt.datetime, kind: str, body: dict[str, Any],
                    prev: bytes) -> None:
    prev = b"" if seq == 0 else prev
    time = format_time(moment)
    data = encode_entry(seq, time, kind, prev, body)
    entry = parse_entry(data)
    assert entry == Entry(seq, time, kind, prev, body)
    assert entry.encode() == data
    want = {"v": 1, "seq": seq, "time": time, "kind": kind,
            "prev": base64.b64encode(prev).decode(), "body": body}
    assert data == canonical_json(want) == rfc8785.dumps(want)
    assert orjson.loads(data) == want


# --- what parse_entry (and encode_entry) refuse ------------------------------------------


BAD_BYTES: dict[str, bytes] = {
    "not-json": b"{",
    "not-utf8": EXAMPLE.replace(b"g-1", b"g-\xff"),
    "top-level-array": b"[" + EXAMPLE + b"]",
    "empty": b"",
    "extra-field": jcs(w=0),
    "extra-field-first": jcs(a=None),
    "missing-v": jcs(drop=("v",)),
    "missing-body": jcs(drop=("body",)),
    "missing-prev": jcs(drop=("prev",)),
    "duplicate-key": EXAMPLE.replace(b'"seq":1,', b'"seq":1,"seq":1,'),
    "duplicate-body-key": EXAMPLE.replace(b'"n":3,', b'"n":3,"n":3,'),
    "trailing-newline": EXAMPLE + b"\n",
    "leading-space": b" " + EXAMPLE,
    "space-after-colon": EXAMPLE.replace(b'"seq":1', b'"seq": 1'),
    "space-after-comma": EXAMPLE.replace(b',"v"', b', "v"'),
    "reordered-keys": orjson.dumps(fields()),
    "reordered-body-keys": EXAMPLE.replace(b'"grant_id":"g-1","n":3', b'"n":3,"grant_id":"g-1"'),
    "escaped-plain-char": EXAMPLE.replace(b'"g-1"', b'"\\u0067-1"'),
    "escaped-kind-char": EXAMPLE.replace(b"grant.approved", b"gr\\u0061nt.approved"),
    "escaped-slash": EXAMPLE.replace(b'"g-1"', b'"g\\/1"'),
    "upper-case-escape": EXAMPLE.replace(b'"g-1"', b'"\\u001F"'),
    "float-in-body": EXAMPLE.replace(b'"n":3', b'"n":3.0'),
    "exponent-in-body": EXAMPLE.replace(b'"n":3', b'"n":3e0'),
    "minus-zero": EXAMPLE.replace(b'"n":3', b'"n":-0'),
    "nested-float": jcs(body={"a": [1, {"b": 1}]}).replace(b'"b":1', b'"b":1.5'),
    "big-int-in-body": jcs(body={"n": 0}).replace(b'"n":0', b'"n":9007199254740992'),
    "v-2": jcs(v=2),
    "v-0": jcs(v=0),
    "v-string": jcs(v="1"),
    "v-true": jcs(v=True),
    "v-null": jcs(v=None),
    "v-float": EXAMPLE.replace(b'"v":1', b'"v":1.0'),
    "seq-negative": jcs(seq=-1),
    "seq-string": jcs(seq="1"),
    "seq-float": EXAMPLE.replace(b'"seq":1', b'"seq":1.0'),
    "seq-bool": jcs(seq=True),
    "seq-leading-zero": EXAMPLE.replace(b'"seq":1', b'"seq":01'),
    "body-list": jcs(body=[]),
    "body-string": jcs(body="x"),
    "body-null": jcs(body=None),
    "prev-not-base64": jcs(prev="!!!!"),
    "prev-urlsafe": jcs(prev=base64.urlsafe_b64encode(b"\xfb\xff" * 16).decode()),
    "prev-no-padding": jcs(prev=PREV_B64.rstrip("=")),
    # "...Hh9=" decodes to the same bytes as "...Hh8=" (the dropped low bits differ).
    "prev-noncanonical-bits": jcs(prev=PREV_B64[:-2] + "9="),
    "prev-31-bytes": jcs(prev=base64.b64encode(PREV[:31]).decode()),
    "prev-33-bytes": jcs(prev=base64.b64encode(PREV + b"!").decode()),
    "prev-empty-seq-1": jcs(prev=""),
    "prev-null": jcs(prev=None),
    "prev-bytes-as-list": jcs(prev=list(PREV)),
    # ARCHITECTURE §2: prev is "" for entry 0 (there is no entry -1 to link to).
    "prev-nonempty-seq-0": jcs(seq=0),
}

BAD_TIMES = [
    "2026-01-02T03:04:05Z", "2026-01-02T03:04:05.67Z", "2026-01-02T03:04:05.6789Z",
    "2026-01-02T03:04:05.678+00:00", "2026-01-02T03:04:05.678z", "2026-01-02 03:04:05.678Z",
    "2026-01-02t03:04:05.678Z", "2026-01-02T03:04:05.678", "26-01-02T03:04:05.678Z",
    " 2026-01-02T03:04:05.678Z", "2026-01-02T03:04:05.678Z\n", "", "20260102T030405.678Z",
    # Impossible dates and times (RFC 3339 §5.7):
    "2026-13-02T03:04:05.678Z", "2026-00-02T03:04:05.678Z", "2026-02-30T03:04:05.678Z",
    "2026-01-32T03:04:05.678Z", "2026-01-02T24:00:00.000Z", "2026-01-02T03:60:05.678Z",
    # Non-ASCII digits (fullwidth, Arabic-Indic) that a regex's \d would accept:
    "\uff12\uff10\uff12\uff16-01-02T03:04:05.678Z", "2026-01-02T03:04:05.\u0666\u0667\u0668Z",
]
BAD_KINDS = [
    "grant", "Grant.approved", "grant.Approved", "grant.", ".approved", "grant..approved",
    "grant.approved ", "grant-approved.x", "1grant.ok", "", "gr\u00e4nt.approved",
    "grant.approved\n", "grant._x", 5, None,
]


@pytest.mark.parametrize("name", sorted(BAD_BYTES))
def test_parse_rejects(name: str) -> None:
    with pytest.raises(EncodingError):
        parse_entry(BAD_BYTES[name])


@pytest.mark.parametrize("time", BAD_TIMES)
def test_bad_times_rejected(time: str) -> None:
    with pytest.raises(EncodingError):
        parse_entry(jcs(time=time))
    with pytest.raises(EncodingError):
        encode_entry(1, time, "grant.approved", PREV, BODY)


@pytest.mark.parametrize("kind", BAD_KINDS, ids=repr)
def test_bad_kinds_rejected(kind: Any) -> None:
    with pytest.raises(EncodingError):
        parse_entry(jcs(kind=kind))
    with pytest.raises(EncodingError):
        encode_entry(1, TIME, kind, PREV, BODY)


@pytest.mark.parametrize(
    ("seq", "prev", "body"),
    [(-1, PREV, {}), (1, b"", {}), (1, PREV[:31], {}), (0, PREV, {}), (True, PREV, {}),
     (1, PREV, {"x": 1.5}), (1, PREV, []), (1, PREV, {"x": {1, 2}}), (1.0, PREV, {})],
    ids=["seq-negative", "prev-empty-seq-1", "prev-31-bytes", "prev-nonempty-seq-0",
         "seq-bool", "float-in-body", "body-list", "set-in-body", "seq-float"],
)
def test_encode_rejects(seq: Any, prev: bytes, body: Any) -> None:
    with pytest.raises(EncodingError):
        encode_entry(seq, TIME, "grant.approved", prev, body)


# --- time ------------------------------------------------------------------------------


def test_format_time() -> None:
    utc = dt.UTC
    assert format_time(dt.datetime(2026, 1, 2, 3, 4, 5, 678_400, utc)) == TIME
    assert format_time(dt.datetime(2026, 1, 2, 3, 4, 5, 0, utc)) == "2026-01-02T03:04:05.000Z"
    plus2 = dt.timezone(dt.timedelta(hours=2))
    assert format_time(dt.datetime(2026, 1, 2, 5, 4, 5, 678_000, plus2)) == TIME
    minus5 = dt.timezone(dt.timedelta(hours=-5, minutes=-30))
    assert format_time(dt.datetime(2026, 1, 1, 21, 34, 5, 678_000, minus5)) == TIME
    with pytest.raises(EncodingError):
        format_time(dt.datetime(2026, 1, 2, 3, 4, 5))


@PROPS
@given(moment=moments)
def test_format_time_parses_back(moment: dt.datetime) -> None:
    text = format_time(moment)
    assert text.isascii() and len(text) == 24 and text.endswith("Z")
    back = dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z")
    assert back == moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def test_times_never_go_backwards() -> None:
    base = dt.datetime(2026, 1, 2, 3, 4, 5, 678_000, dt.UTC)
    ticks = iter([base, base - dt.timedelta(seconds=30), base + dt.timedelta(seconds=1),
                  base + dt.timedelta(hours=-1), base + dt.timedelta(seconds=2)])
    led = MemoryLedger(clock=lambda: next(ticks))
    times = [led.append("record.written", {"i": i}).time for i in range(3)]
    times += [a.time for a in led.append_many([("record.written", {}), ("record.deleted", {})])]
    times.append(led.append("record.written", {}).time)
    assert times == [TIME, TIME, "2026-01-02T03:04:06.678Z", "2026-01-02T03:04:06.678Z",
                     "2026-01-02T03:04:06.678Z", "2026-01-02T03:04:07.678Z"]
    assert [parse_entry(d).time for _, _, d in led.iter_entries()] == times
