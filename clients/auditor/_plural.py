"""Counted nouns for the auditor's messages: "1 entry", "2,500 entries", never "entry(s)"."""

from __future__ import annotations

__all__ = ["counted"]


def counted(n: int, singular: str, plural: str | None = None) -> str:
    """`n` (with thousands separators) and the noun in the number it takes.

    The plural is `plural` if given, else the English rule the auditor's nouns follow:
    consonant + "y" becomes "ies" (entry, entries), anything else takes "s".
    """
    if n == 1:
        return f"1 {singular}"
    if plural is None:
        plural = (singular[:-1] + "ies" if singular.endswith("y")
                  and singular[-2:-1] not in tuple("aeiou") else singular + "s")
    return f"{n:,} {plural}"
