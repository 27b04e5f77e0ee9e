"""RFC 8785 (JCS) canonical JSON for ledger bodies: no floats, only what JCS can hold.

orjson does the encoding: for the values we allow (strings, safe integers, booleans,
null, arrays, objects) its output is byte-for-byte JCS, except that it sorts object
keys by code point where JCS sorts by UTF-16 code unit. The two orders differ only for
keys holding characters beyond U+FFFF, so those rare values go through the `rfc8785`
reference implementation instead. Tests compare both on generated values.
"""

from __future__ import annotations

from typing import Any

import orjson
import rfc8785

from ledger.errors import EncodingError

__all__ = [
    "MAX_DEPTH",
    "MAX_SAFE_INTEGER",
    "canonical_json",
    "check_value",
    "encode_checked",
]

#: I-JSON (RFC 7493) / JCS: integers beyond 2**53 - 1 lose precision as IEEE doubles.
MAX_SAFE_INTEGER = 2**53 - 1
MAX_DEPTH = 32


def _astral(s: str) -> bool:
    return not s.isascii() and any(ord(c) > 0xFFFF for c in s)


def _check_int(value: int) -> None:
    if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        raise EncodingError(f"integer {value} is outside the range JSON numbers hold exactly")


def _reject(value: Any) -> None:
    if type(value) is float:
        raise EncodingError("floats are not allowed in ledger entries (use integers or strings)")
    raise EncodingError(f"{type(value).__name__} values cannot be encoded as canonical JSON")


def check_value(value: Any, depth: int = 0, *, parsed_ascii: bool = False) -> bool:
    """Raise EncodingError unless JCS can hold `value`; True if a key needs UTF-16 order.

    `parsed_ascii`: the value was parsed from pure-ASCII JSON, so its keys are strings
    and none can be astral; only the values need checking.
    """
    t = type(value)
    if t is dict or t is list or t is tuple:
        return _check_container(value, depth, not parsed_ascii)
    if t is str or t is bool or value is None:
        return False
    if t is int:
        _check_int(value)
        return False
    _reject(value)
    return False  # unreachable: _reject raises


def _check_container(value: dict[Any, Any] | list[Any] | tuple[Any, ...], depth: int,
                     check_keys: bool) -> bool:
    # Scalars are checked inline rather than by a call each: this runs for every entry
    # the streaming verifier reads.
    if depth >= MAX_DEPTH:
        raise EncodingError(f"value is nested deeper than {MAX_DEPTH} levels")
    astral = False
    items: Any = value
    if type(value) is dict:
        if check_keys:
            for k in value:
                if type(k) is not str:
                    raise EncodingError(f"object key {k!r} is not a string")
                if not k.isascii():
                    astral = astral or _astral(k)
        items = value.values()
    for v in items:
        tv = type(v)
        if tv is str:
            continue
        if tv is int:
            _check_int(v)
        elif tv is dict or tv is list or tv is tuple:
            astral = _check_container(v, depth + 1, check_keys) or astral
        elif not (tv is bool or v is None):
            _reject(v)
    return astral


def encode_checked(value: Any, astral: bool) -> bytes:
    """Encode a value that `check_value` accepted (and said whether keys are astral)."""
    try:
        if astral:
            return rfc8785.dumps(value)
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except (TypeError, ValueError, rfc8785.CanonicalizationError) as exc:
        # orjson.JSONEncodeError is a TypeError: lone surrogates end up here.
        raise EncodingError(f"value cannot be encoded as canonical JSON: {exc}") from None


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 bytes of `value`; EncodingError if it holds anything JCS cannot."""
    return encode_checked(value, check_value(value))
