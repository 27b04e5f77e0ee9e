"""A long list (a thousand health readings) changed a page at a time.

The page's form holds the items from `start` (numbered as in the whole list) and three
hidden fields: where the page starts, how many stored items it showed, and the version
of the record it was drawn from. Saving puts the page's items (changed, removed, added)
in place of the ones it showed and keeps every other item as stored. If the record has
changed since the page was drawn (another device, a service), the positions may no
longer be the same items, so nothing is saved and the page is drawn again as it is now.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from wallet.forms import PAGE_ITEMS

__all__ = ["PAGE_FIELDS", "ListPage", "page_of", "posted_page"]

#: The hidden fields of a page (never part of the value).
PAGE_FIELDS = ("page.start", "page.count", "page.version")


@dataclass(frozen=True, slots=True)
class ListPage:
    """Which part of a list a form shows, and of which version of the record."""

    start: int
    count: int
    version: int
    #: How many items the list had when the page was drawn (0 when not known).
    total: int = 0

    @property
    def stop(self) -> int:
        return self.start + self.count

    @property
    def number(self) -> int:
        return self.start // PAGE_ITEMS + 1

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // PAGE_ITEMS))

    def fields(self) -> dict[str, str]:
        """The hidden fields that say which page this is."""
        return dict(zip(PAGE_FIELDS, (str(self.start), str(self.count), str(self.version)),
                        strict=True))

    def still_fits(self, version: int, length: int) -> bool:
        """True if the record is still the version the page was drawn from."""
        return version == self.version and self.stop <= length

    def merge(self, stored: Sequence[Any], items: Sequence[Any]) -> list[Any]:
        """The whole list with this page's items in place of those it showed."""
        return [*stored[:self.start], *items, *stored[self.stop:]]


def page_of(length: int, version: int, number: int) -> ListPage | None:
    """Page `number` (from 1; past the end means the last) of a list of `length` items,
    or None when the list fits on one page (then the form holds the whole list)."""
    if length <= PAGE_ITEMS:
        return None
    pages = -(-length // PAGE_ITEMS)
    start = (min(max(number, 1), pages) - 1) * PAGE_ITEMS
    return ListPage(start, min(PAGE_ITEMS, length - start), version, length)


def posted_page(form: Mapping[str, str]) -> ListPage | None:
    """The page a posted form says it was (None: the whole list); ValueError if its
    hidden fields are missing some or not numbers."""
    sent = [form.get(name) for name in PAGE_FIELDS]
    if all(v is None for v in sent):
        return None
    numbers = []
    for value in sent:
        if value is None or not (value.isascii() and value.isdigit() and len(value) <= 7):
            raise ValueError("the page's hidden fields are not what the page sent")
        numbers.append(int(value))
    start, count, version = numbers
    return ListPage(start, count, version)
