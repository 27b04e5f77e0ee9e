"""Values people type in many ways, written the one way the vault stores them.

- A phone number becomes E.164 (`+447700900456`): UK national format as people write
  it (`07700 900456`, `(01632) 960 001`, `07700-900-456`), `+44 7700 900456`,
  `+44 (0)7700 900456`, `0044 7700 900456`, and other countries' numbers after `+` or `00`.
- A UK postcode becomes upper case with one space before the inward code (`sw1a2aa` ->
  `SW1A 2AA`).

Each normaliser returns its input unchanged when it cannot read it: the category's schema
stays the one judge of a value, and refuses it with its own plain message. Both are
idempotent (normalising twice changes nothing more), so a stored value saved again is
left as it is.
"""

from __future__ import annotations

import re

__all__ = ["phone_e164", "uk_postcode"]

#: What people put between digits: spaces (also no-break), hyphens, dashes, brackets, dots.
_PHONE_SEPARATORS = re.compile(r"[ \u00a0\u2010-\u2015().-]")
#: The UK trunk prefix written after the country code: "+44 (0)20 ..." means "+44 20 ...".
_TRUNK_AFTER_44 = re.compile(r"^(\+|00)44[ \u00a0]*\(0\)")
#: E.164: a country code that does not start with 0, at most 15 digits (ITU-T E.164 §6).
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
#: A UK national significant number (without its leading 0) has 9 or 10 digits.
_UK_NATIONAL = re.compile(r"[1-9][0-9]{8,9}")

#: Outward code (area, district) then inward code (sector, unit); GIR 0AA is the one
#: postcode of another shape. The catalog's pattern for address.home's postcode matches.
_POSTCODE = re.compile(r"(?:[A-Z]{1,2}[0-9][0-9A-Z]?|GIR(?=0AA))[0-9][A-Z]{2}")


def phone_e164(text: str) -> str:
    """`text` as an E.164 phone number, or `text` unchanged if it is not one we can read."""
    compact = _PHONE_SEPARATORS.sub("", _TRUNK_AFTER_44.sub(r"\g<1>44", text))
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    if compact.startswith("+44"):
        # "+44 07700 ...": a UK number after +44 never starts with 0.
        compact = "+44" + compact[3:].lstrip("0")
    elif compact.startswith("0"):
        national = compact[1:]
        compact = "+44" + national if _UK_NATIONAL.fullmatch(national) else text
    if not compact.isascii() or not _E164.fullmatch(compact):
        return text
    if compact.startswith("+44") and not _UK_NATIONAL.fullmatch(compact[3:]):
        return text  # too short or too long for a UK number: let the schema say so
    return compact


def uk_postcode(text: str) -> str:
    """`text` as a UK postcode in capitals with one space (`SW1A 2AA`), or unchanged."""
    compact = re.sub(r"[ \u00a0]", "", text)
    # ASCII first: some letters upper-case to Latin ones (the long s to S).
    if not compact.isascii() or not _POSTCODE.fullmatch(compact := compact.upper()):
        return text
    return f"{compact[:-3]} {compact[-3:]}"
