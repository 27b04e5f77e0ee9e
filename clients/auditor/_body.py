"""Reading the fields of an entry's body, for the story checks (`story`, `records`).

A known kind whose body lacks a field, or holds it with the wrong type, raises
`Malformed`; the checker reports it once, as rule `entry`, and goes on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["Malformed", "names", "number", "text", "text_map"]


class Malformed(Exception):
    """A known kind's body lacks a field, or holds the wrong type (rule `entry`)."""


def text(body: Mapping[str, Any], key: str) -> str:
    v = body.get(key)
    if type(v) is not str:
        raise Malformed(f"{key} must be text")
    return v


def names(value: Any, what: str) -> list[str]:
    if type(value) is not list or not all(type(x) is str for x in value):
        raise Malformed(f"{what} must be a list of text")
    return value


def number(body: Mapping[str, Any], key: str, *, least: int = 0) -> int:
    """A whole number of at least `least` (booleans are not numbers here)."""
    v = body.get(key)
    if type(v) is not int or v < least:
        raise Malformed(f"{key} must be a whole number from {least}")
    return v


def text_map(value: Any, what: str) -> dict[str, str]:
    """A non-empty object of text to text (such as {category: issuer})."""
    if type(value) is not dict or not value \
            or not all(type(v) is str for v in value.values()):
        raise Malformed(f"{what} must be a non-empty object of text")
    return value
