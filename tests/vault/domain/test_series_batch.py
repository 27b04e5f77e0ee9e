"""A series batch is checked by a compiled validator first: it must judge exactly as the
catalog's own check (`validate_value`) does, whatever the items hold."""

from __future__ import annotations

import re
from importlib import import_module
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.domain.categories import MAX_BATCH_ITEMS, categories, validate_batch, validate_value
from vault.domain.errors import InvalidValue

OBS = "health.observations"

_TEXT = st.one_of(st.sampled_from(["bpm", "%", "120/80", "heart_rate", "", "x" * 101]),
                  st.text(max_size=12))
_AT = st.one_of(st.sampled_from(["2026-11-22T08:00:00Z", "2026-11-22T08:00:00.25+01:00",
                                 "2026-02-30T08:00:00Z", "2026-11-22T24:00:00Z",
                                 "2026-11-22 08:00", "2026-11-22T08:00:00"]), st.text(max_size=8))
_SCALAR = st.one_of(st.integers(-2_000_000_000, 2_000_000_000), st.booleans(), st.none(),
                    st.floats(allow_nan=False, allow_infinity=False), _TEXT)
_ITEM = st.one_of(
    st.fixed_dictionaries({"kind": st.one_of(st.sampled_from(["heart_rate", "steps"]), _TEXT),
                           "value": _SCALAR, "unit": _TEXT, "at": _AT},
                          optional={"extra": _SCALAR}),
    _SCALAR)


def verdict(check: Any, value: Any) -> str | None:
    try:
        check(value)
    except InvalidValue as exc:
        return str(exc)
    return None


@settings(max_examples=400, deadline=None)
@given(items=st.lists(_ITEM, min_size=1, max_size=4))
def test_the_fast_check_judges_as_the_catalog_does(items: list[Any]) -> None:
    assert verdict(lambda v: validate_batch(OBS, {"items": v}), items) == \
        verdict(lambda v: validate_value(OBS, v), items)


def test_the_batch_shape() -> None:
    good = {"kind": "heart_rate", "value": 70, "unit": "bpm", "at": "2026-11-22T08:00:00Z"}
    items, encoded = validate_batch(OBS, {"items": [good]})
    assert items == [good] and encoded.startswith(b'[{"kind":"heart_rate"')
    assert categories()[OBS].series and not categories()["address.home"].series
    for bad, why in [
        ([good], "must be an object"),
        ({"items": [good], "more": 1}, "nothing else"),
        ({"items": []}, f"1 to {MAX_BATCH_ITEMS} items"),
        ({"items": [good] * (MAX_BATCH_ITEMS + 1)}, f"1 to {MAX_BATCH_ITEMS} items"),
        ({"items": {"0": good}}, "in a list"),
    ]:
        with pytest.raises(InvalidValue, match=why):
            validate_batch(OBS, bad)
    with pytest.raises(InvalidValue, match="not a series"):
        validate_batch("address.home", {"items": [good]})
    with pytest.raises(InvalidValue, match="unknown category"):
        validate_batch("health.nothing", {"items": [good]})



# The module, not the `categories` function the package exports under the same name.
_CATALOG = import_module("vault.domain.categories")


@settings(max_examples=300)
@given(st.text())
def test_the_control_screen_finds_exactly_what_it_should(text: str) -> None:
    """`_maybe_control` (byte searches, then a pattern only after a C1 lead byte) says yes
    exactly when the text holds a quote or backslash (escaped), a C0 control (escaped),
    DEL or a C1 control, as the one pattern it replaced did."""
    encoded = orjson.dumps(text)
    expected = re.search(rb"[\\\x7f]|\xc2[\x80-\x9f]", encoded) is not None
    assert _CATALOG._maybe_control(encoded) is expected
    assert expected == any(c in '"\\\x7f' or ord(c) < 0x20 or 0x80 <= ord(c) <= 0x9f
                           for c in text)
