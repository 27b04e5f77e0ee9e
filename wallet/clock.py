"""London's clock: how the wallet shows times, and reads the times people type.

The vault keeps every time in UTC; the wallet's people are in the UK, so its pages show
Europe/London time and say which clock it is on, GMT in winter and BST in summer
(ARCHITECTURE §6 "times in Europe/London"). A time typed into a date-and-time box
(`<input type="datetime-local">`, which has no zone) is London time too. The `tzdata`
package is a dependency, so this works where the system has no time zone files.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

__all__ = ["LONDON", "from_local_input", "local_input", "local_time", "when"]

LONDON = ZoneInfo("Europe/London")

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")


def local_time(dt: datetime) -> datetime:
    """`dt` on London's clock (a time without a zone is taken to be UTC, as stored)."""
    return (dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)).astimezone(LONDON)


def when(dt: datetime) -> str:
    """A time as people in the UK read it, with the clock it is on: "3 March 2026,
    14:05 GMT"; "17 July 2026, 00:30 BST" (which is 23:30 UTC the day before)."""
    local = local_time(dt)
    return (f"{local.day} {_MONTHS[local.month - 1]} {local.year}, "
            f"{local:%H:%M} {local.tzname()}")


def local_input(text: str) -> str:
    """An RFC 3339 time as a date-and-time box shows it, on London's clock
    (`2024-05-17T10:30`, seconds only when there are some); other text as it is."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return text
    if at.tzinfo is None:
        return text
    local = local_time(at)
    return f"{local:%Y-%m-%dT%H:%M}" + (f":{local:%S}" if local.second else "")


def from_local_input(text: str) -> str | None:
    """What a date-and-time box sent (`2024-05-17T10:30`, London time), as RFC 3339 in
    UTC (`2024-05-17T09:30:00Z`); a time with its own offset is kept as written. None
    for text that is not a date and time.

    A time the clocks skip in March (01:30 on their day) is read on the clock before the
    change; one they repeat in October (01:30 twice) as the first, BST (PEP 495 fold=0).
    """
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return None
    if at.tzinfo is not None:
        return text
    utc = at.replace(tzinfo=LONDON).astimezone(UTC)
    return utc.replace(microsecond=0).isoformat().replace("+00:00", "Z")
