"""Phone numbers and postcodes put in one form: properties over what people may type."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from vault.domain.categories import categories, clean_value
from vault.domain.errors import InvalidValue
from vault.domain.normalise import phone_e164, uk_postcode

PHONE_PATTERN = re.compile(categories()["contact.phone"].schema["pattern"])
POSTCODE_PATTERN = re.compile(
    categories()["address.home"].schema["properties"]["postcode"]["pattern"])
HOME = {"lines": ["1 Park Row"], "town": "Leeds", "postcode": "LS1 5HD",
        "local_authority": "Leeds"}

# -- what people type ----------------------------------------------------------------------

separators = st.sampled_from(["", "", " ", "  ", "-", "\u00a0", ".", "\u2013"])


@st.composite
def spaced(draw: st.DrawFn, digits: str) -> str:
    """`digits` with separators between some of them, maybe a bracketed first group."""
    out = ""
    bracket = draw(st.booleans()) and len(digits) > 5
    cut = draw(st.integers(2, 5)) if bracket else 0
    for i, d in enumerate(digits):
        if bracket and i == 0:
            out += "("
        if i and not (bracket and i == cut):
            out += draw(separators)
        out += d
        if bracket and i == cut - 1:
            out += ") "
    return out


national_numbers = st.from_regex(r"[1-9][0-9]{8,9}", fullmatch=True)


@st.composite
def typed_uk_numbers(draw: st.DrawFn) -> tuple[str, str]:
    """(a UK number as someone may type it, its E.164 form)."""
    national = draw(national_numbers)
    prefix = draw(st.sampled_from(["0", "+44", "+44 ", "0044 ", "+44 (0)", "+44(0) ", "+44 0"]))
    typed = draw(spaced("0" + national)) if prefix == "0" else prefix + draw(spaced(national))
    padding = draw(st.sampled_from(["", " ", "  "]))
    return padding + typed + padding, "+44" + national


postcode_parts = st.from_regex(r"[A-Z]{1,2}[0-9][0-9A-Z]?", fullmatch=True)
inward_parts = st.from_regex(r"[0-9][A-Z]{2}", fullmatch=True)


@st.composite
def typed_postcodes(draw: st.DrawFn) -> tuple[str, str]:
    """(a postcode as someone may type it: any case, any spaces; its stored form)."""
    outward, inward = draw(postcode_parts), draw(inward_parts)
    case = draw(st.sampled_from([str.lower, str.upper, str.swapcase, lambda s: s]))
    gap = draw(st.sampled_from(["", " ", "  ", "\u00a0"]))
    ends = draw(st.sampled_from(["", " "]))
    return ends + case(outward) + gap + case(inward) + ends, f"{outward} {inward}"


anything = st.text(max_size=30) | st.text(alphabet="0123456789+()- \u00a0.", max_size=20)

# -- phone numbers -------------------------------------------------------------------------


@settings(max_examples=200)
@given(typed_uk_numbers())
def test_a_uk_number_however_typed_becomes_e164(case: tuple[str, str]) -> None:
    typed, stored = case
    assert phone_e164(typed) == stored
    assert PHONE_PATTERN.fullmatch(stored)
    assert clean_value("contact.phone", typed) == stored


@settings(max_examples=200)
@given(anything)
def test_phone_normalising_is_idempotent_and_ends_in_e164_or_leaves_the_text(
        text: str) -> None:
    once = phone_e164(text)
    assert phone_e164(once) == once
    # Either a number the schema takes, or the text exactly as typed (for it to refuse).
    assert once == text or PHONE_PATTERN.fullmatch(once)


@given(st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True))
def test_a_stored_number_is_left_as_it_is(number: str) -> None:
    # Saving a stored number again never changes it (not even a +44 one of an odd length).
    assert phone_e164(number) == number


# -- postcodes -----------------------------------------------------------------------------


@settings(max_examples=200)
@given(typed_postcodes())
def test_a_postcode_however_typed_becomes_capitals_with_one_space(
        case: tuple[str, str]) -> None:
    typed, stored = case
    assert uk_postcode(typed) == stored
    assert POSTCODE_PATTERN.fullmatch(stored)
    assert clean_value("address.home", {**HOME, "postcode": typed})["postcode"] == stored


@settings(max_examples=200)
@given(anything | st.from_regex(r"[a-zA-Z0-9 ]{5,9}", fullmatch=True))
def test_postcode_normalising_is_idempotent_and_ends_in_the_pattern_or_leaves_the_text(
        text: str) -> None:
    once = uk_postcode(text)
    assert uk_postcode(once) == once
    assert once == text or POSTCODE_PATTERN.fullmatch(once)


# -- through clean_value: anything at all is stored cleaned or refused, never a crash --------


@settings(max_examples=300)
@given(st.none() | st.integers() | st.booleans() | anything
       | st.dictionaries(st.sampled_from(["postcode", "lines", "town"]),
                         st.none() | anything, max_size=3))
def test_clean_value_never_crashes(value: Any) -> None:
    for code in ("contact.phone", "address.home"):
        candidate = value if code == "contact.phone" or not isinstance(value, dict) \
            else {**HOME, **value}
        try:
            cleaned = clean_value(code, candidate)
        except InvalidValue:
            continue
        assert clean_value(code, cleaned) == cleaned
