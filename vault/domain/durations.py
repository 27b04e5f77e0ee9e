"""ISO 8601 durations of days, hours, minutes and seconds, as grant terms use them.

Accepted: `P<n>D`, `PT<n>H`, `PT<n>M`, `PT<n>S` and combinations in that order, such as
`P1DT2H30M`, with whole numbers only. Years and months are refused because their length
depends on the calendar (a "month" from 31 January has no single answer); weeks are
refused to keep one spelling per length. A day here is exactly 24 hours.

The canonical form (`format_duration`) uses days, then hours, minutes and seconds, each
below its next unit, and `PT0S` for zero: `PT36H` reads back as `P1DT12H`.
"""

from __future__ import annotations

import re
from datetime import timedelta

from vault.domain.errors import InvalidDuration

__all__ = ["describe_duration", "format_duration", "parse_duration"]

# ASCII digits only ([0-9], not \d); at most 9 digits a field keeps every value in range.
_DURATION = re.compile(
    r"P(?:([0-9]{1,9})D)?(?:T(?:([0-9]{1,9})H)?(?:([0-9]{1,9})M)?(?:([0-9]{1,9})S)?)?"
)


def parse_duration(text: str) -> timedelta:
    """The length of an ISO 8601 duration such as `P30D` or `PT1H30M`; InvalidDuration if not."""
    if not isinstance(text, str):
        raise InvalidDuration("a duration must be text such as P30D or PT1H")
    m = _DURATION.fullmatch(text)
    if m is None or text in ("P", "PT") or text.endswith("T"):
        raise InvalidDuration(
            f"'{text[:40]}' is not a duration the vault accepts: use whole days, hours, "
            "minutes or seconds, such as P30D, PT12H or P1DT2H30M (no years, months, "
            "weeks, fractions or minus signs)"
        )
    days, hours, minutes, seconds = (int(g) if g else 0 for g in m.groups())
    try:
        return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    except OverflowError:
        raise InvalidDuration(f"'{text[:40]}' is longer than the vault can count") from None


def format_duration(td: timedelta) -> str:
    """The canonical ISO 8601 text of a whole-second, non-negative duration."""
    if td < timedelta(0):
        raise InvalidDuration("a duration cannot be negative")
    if td.microseconds:
        raise InvalidDuration("a duration must be a whole number of seconds")
    hours, rest = divmod(td.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"P{td.days}D" if td.days else "P"
    time = "".join(f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M"), (seconds, "S")) if n)
    if time:
        text += "T" + time
    return "PT0S" if text == "P" else text


def describe_duration(td: timedelta) -> str:
    """Plain English: '30 days', '1 hour', '1 day and 2 hours', '1 day, 2 hours and 5 minutes'."""
    format_duration(td)  # the same rules: non-negative, whole seconds
    hours, rest = divmod(td.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [
        f"{n} {unit}{'' if n == 1 else 's'}"
        for n, unit in ((td.days, "day"), (hours, "hour"), (minutes, "minute"), (seconds, "second"))
        if n
    ]
    if not parts:
        return "no time at all"
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]
