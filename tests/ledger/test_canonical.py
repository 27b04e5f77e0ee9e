"""canonical_json against the rfc8785 reference, round trips, rejections, and a few
known answers worked out by hand from RFC 8785 §3.2."""

from __future__ import annotations

import datetime as dt
import decimal
import re
from typing import Any

import orjson
import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.canonical import MAX_DEPTH, MAX_SAFE_INTEGER, canonical_json
from ledger.errors import EncodingError

PROPS = settings(max_examples=200, deadline=None)

# Characters JCS treats specially, or that sort differently by code point and by UTF-16
# code unit (U+E000..U+FFFF sort after the astral ones in UTF-16: surrogates are 0xD8xx).
TRICKY = [
    *'"\\/\b\f\n\r\t\x00\x1f\x7f \u00e9\u2028\u2029\ud7ff\ue000\ufeff\uffff',
    "\U00010000", "\U0001f600", "\U0010ffff", "A", "a", "z",
]
chars = st.one_of(st.sampled_from(TRICKY), st.characters(codec="utf-8"))
strings = st.text(chars, max_size=8)
bmp_strings = st.text(
    st.one_of(st.sampled_from([c for c in TRICKY if ord(c) <= 0xFFFF]),
              st.characters(codec="utf-8", max_codepoint=0xFFFF)),
    max_size=8,
)
safe_ints = st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
scalars = st.one_of(st.none(), st.booleans(), safe_ints, strings,
                    st.sampled_from([0, -1, MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER]))


def json_values(keys: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars,
        lambda kids: st.lists(kids, max_size=4) | st.dictionaries(keys, kids, max_size=5),
        max_leaves=25,
    )


values = json_values(strings)
bmp_key_values = json_values(bmp_strings)  # the orjson fast path only
# Short keys from a tiny alphabet, so that keys often share prefixes and order matters.
astral_keys = st.text(st.sampled_from(["a", "\ue000", "\uffff", "\U00010000", "\U0001f600"]),
                      min_size=1, max_size=3)
astral_objects = st.dictionaries(astral_keys, scalars, min_size=2, max_size=8)


@PROPS
@given(v=values)
def test_matches_rfc8785(v: Any) -> None:
    assert canonical_json(v) == rfc8785.dumps(v)


@PROPS
@given(v=bmp_key_values)
def test_matches_rfc8785_bmp_keys(v: Any) -> None:
    assert canonical_json(v) == rfc8785.dumps(v)


@PROPS
@given(v=astral_objects)
def test_matches_rfc8785_astral_keys(v: dict[str, Any]) -> None:
    assert canonical_json(v) == rfc8785.dumps(v)
    assert canonical_json({"x": [v]}) == rfc8785.dumps({"x": [v]})


@PROPS
@given(v=values)
def test_round_trip(v: Any) -> None:
    out = canonical_json(v)
    assert orjson.loads(out) == v
    assert canonical_json(orjson.loads(out)) == out


# --- known answers, by hand from RFC 8785 ---------------------------------------------


def test_key_order_is_utf16_code_units() -> None:
    # U+1F600 is D83D DE00 in UTF-16, so it sorts before U+E000 (though its code point
    # is larger); "a" < "aa" < "b"; upper case before lower case.
    assert canonical_json({"\ue000": 1, "\U0001f600": 2}) == (
        '{"\U0001f600":2,"\ue000":1}'.encode()
    )
    assert canonical_json({"b": 1, "aa": 2, "a": 3, "B": 4, "\u00e9": 5}) == (
        '{"B":4,"a":3,"aa":2,"b":1,"\u00e9":5}'.encode()
    )
    assert canonical_json({"\uffff": [], "\U00010000": {}, "z": None}) == (
        '{"z":null,"\U00010000":{},"\uffff":[]}'.encode()
    )


def test_nested_objects_are_sorted_and_compact() -> None:
    v = {"b": [3, {"d": True, "c": False}], "a": {"y": None, "x": "s"}}
    assert canonical_json(v) == b'{"a":{"x":"s","y":null},"b":[3,{"c":false,"d":true}]}'
    assert canonical_json({}) == b"{}" and canonical_json([]) == b"[]"


def test_string_escapes() -> None:
    s = '\b\f\n\r\t\x00\x01\x1f"\\/\x7f\u2028\u2029\u00e9\U0001f600'
    want = (
        b'"\\b\\f\\n\\r\\t\\u0000\\u0001\\u001f\\"\\\\/'
        + "\x7f\u2028\u2029\u00e9\U0001f600".encode()
        + b'"'
    )
    assert canonical_json(s) == want
    assert canonical_json({s: s}) == b"{" + want + b":" + want + b"}"
    assert canonical_json("\x0b\x1e") == b'"\\u000b\\u001e"'  # lower-case hex


def test_integers() -> None:
    assert canonical_json([0, -0, 1, -1, MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER]) == (
        b"[0,0,1,-1,9007199254740991,-9007199254740991]"
    )
    assert canonical_json([True, False, None]) == b"[true,false,null]"


# --- rejections ----------------------------------------------------------------------


class Odd:
    pass


BAD_LEAVES: list[Any] = [
    0.0, -0.0, 1.5, 1e300, float("nan"), float("inf"), float("-inf"),
    MAX_SAFE_INTEGER + 1, -MAX_SAFE_INTEGER - 1, 2**64, -(2**63) - 1, 10**40,
    {1: "a"}, {None: 1}, {b"k": 1}, {(1,): 1}, {True: 1}, {1.5: 1},
    set(), {1}, frozenset(), b"", b"x", bytearray(b"x"),
    dt.datetime(2026, 1, 1, tzinfo=dt.UTC), dt.date(2026, 1, 1), decimal.Decimal("1"),
    1j, Odd(), object(),
    "\ud800", "a\udfffb", {"\udc00": 1}, {"\U0001f600": "\ud83d"}, {"\U0001f600\ud800": 1},
]


def _stable_id(value: Any) -> str:
    """repr, without the memory address of plain objects (pytest-xdist workers must
    collect the same ids)."""
    return re.sub(r" at 0x[0-9a-f]+", "", repr(value))


@pytest.mark.parametrize("bad", BAD_LEAVES, ids=_stable_id)
def test_rejected_values(bad: Any) -> None:
    for v in (bad, [bad], {"k": bad}, {"k": [1, {"j": bad}]}, {"\U0001f600": [bad]}):
        with pytest.raises(EncodingError):
            canonical_json(v)


@PROPS
@given(good=values, bad=st.sampled_from(BAD_LEAVES), data=st.data())
def test_one_bad_leaf_anywhere_is_rejected(good: Any, bad: Any, data: st.DataObject) -> None:
    v = bad
    for _ in range(data.draw(st.integers(0, 5))):
        if data.draw(st.booleans()):
            v = data.draw(st.permutations([v, good]))
        else:
            v = {data.draw(strings): v, "\x00other": good}
    with pytest.raises(EncodingError):
        canonical_json(v)


def _nest(depth: int, use_dict: bool) -> Any:
    v: Any = 0
    for _ in range(depth):
        v = {"k": v} if use_dict else [v]
    return v


@pytest.mark.parametrize("use_dict", [False, True])
def test_nesting_limit(use_dict: bool) -> None:
    ok = _nest(MAX_DEPTH, use_dict)
    assert orjson.loads(canonical_json(ok)) == ok
    for depth in (MAX_DEPTH + 2, 100, 10_000):
        with pytest.raises(EncodingError):
            canonical_json(_nest(depth, use_dict))
