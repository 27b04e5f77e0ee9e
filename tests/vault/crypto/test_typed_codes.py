"""Codes people type: made, shown, typed back in any form, and hashed per use."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from vault.crypto import typed_codes


@given(st.integers(min_value=4, max_value=20), st.sampled_from([" ", "-", "  ", "\t"]),
       st.booleans())
def test_a_code_typed_back_any_way_is_the_code(chars: int, gap: str, lower: bool) -> None:
    code = typed_codes.new_code(chars)
    shown = typed_codes.readable(code).replace("-", gap)
    typed = shown.lower() if lower else shown
    assert typed_codes.normalise(typed) == code
    assert typed_codes.well_formed(typed_codes.normalise(typed), chars)


def test_letters_read_as_digits_and_letters_never_made() -> None:
    assert typed_codes.normalise("il0o-ab") == "1100AB"
    assert not typed_codes.well_formed("ABCU", 4)  # U is not in the alphabet
    assert not typed_codes.well_formed("ABC", 4)


def test_the_hash_is_keyed_and_labelled() -> None:
    one = typed_codes.code_hash(b"k" * 32, b"recovery-code", "ABCD")
    assert one != typed_codes.code_hash(b"k" * 32, b"handover-code", "ABCD")
    assert one != typed_codes.code_hash(b"j" * 32, b"recovery-code", "ABCD")
    # The form recovery codes were kept under before this module: they still work.
    import hashlib
    import hmac
    assert one == hmac.new(b"k" * 32, b"recovery-code\x00ABCD", hashlib.sha256).hexdigest()
