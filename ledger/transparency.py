"""Transparency counts from the public ledger, and the rule that hides small ones.

The vault publishes how many grants and reads there were (ARCHITECTURE §10,
"transparency from the ledger"); anyone holding the public entries recounts them with
this module and must get the same figures. So everything here is pure and reads only
what an entry shows to everyone (`ledger.sealing`): the vault counts incrementally with
it (`Tally` over each new stretch of entries), the auditor counts the whole ledger with
it, and both publish or compare through the same `suppress`.

Atoms are the finest groups counted:

- grants: the calendar month (UTC) the grant was asked for, and the state it is in now;
- reads: the month of the read, the service, the purpose (from the grant's public terms
  in its `grant.requested`), and the exact sets of categories and derived answers.

A grant ended by an erasure shows only `{"reason": "citizen_erased", "asked": month,
"from": state}` (its id is sealed, so that the erasure does not tie that citizen's
services together): it moves one grant of `asked` from `from` to the entry's state,
without knowing which. That is all the counts need: an atom is a number, not a list of
grants. (What a counter remembers per grant stays with the old state; no later public
entry can name an erased grant, since its row is gone with the citizen.)

The suppression rule (`suppress`): an atom of 1 to `threshold - 1` is never shown, and
neither is any figure that includes one; such a figure is published as a range
computed from the shown atoms and the number of hidden ones. So every published number
is a function of the shown atoms alone: changing a hidden atom to any other small value
changes nothing that is published, and no hidden number can be worked out by adding or
subtracting published ones. Every exact figure is 0 or at least the threshold.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

import orjson

from ledger.errors import EncodingError
from ledger.sealing import ERASED, public_fields

__all__ = [
    "ALL_MONTHS",
    "SUPPRESSION_THRESHOLD",
    "ZERO",
    "AccessAtom",
    "Figure",
    "GrantAtom",
    "GrantFacts",
    "Key",
    "Tally",
    "access_figures",
    "access_groups",
    "count_entries",
    "decode",
    "grant_figures",
    "grant_groups",
    "public_of",
    "state_after",
    "suppress",
]

#: Counts from 1 to 9 are never published.
SUPPRESSION_THRESHOLD = 10

#: The month key of all-time figures.
ALL_MONTHS = ""

K = TypeVar("K", bound=Hashable)
G = TypeVar("G", bound=Hashable)

#: A figure's name: (month or ALL_MONTHS, dimension, code), e.g. ("2026-11", "state",
#: "approved") or ("", "total", "").
Key = tuple[str, str, str]


# -- suppression ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Figure:
    """A published count: exact (`value`), or hidden with the range it lies in."""

    value: int | None
    at_least: int
    at_most: int

    @classmethod
    def exact(cls, n: int) -> Figure:
        return cls(n, n, n)

    @property
    def suppressed(self) -> bool:
        return self.value is None


ZERO = Figure.exact(0)


def suppress(
    atoms: Mapping[K, int], groups_of: Callable[[K], Iterable[G]], *,
    threshold: int = SUPPRESSION_THRESHOLD,
) -> dict[G, Figure]:
    """The published figure of every group any atom belongs to (`groups_of(atom)`).

    A group is exact when none of its atoms is small (1 to threshold - 1); otherwise it
    is hidden, with `at_least` = shown sum + one per hidden atom and `at_most` = shown
    sum + (threshold - 1) per hidden atom. Groups of zero atoms are absent: they are 0.
    """
    if threshold < 2:
        raise ValueError("the threshold must be at least 2")
    shown: dict[G, int] = defaultdict(int)
    hidden: dict[G, int] = defaultdict(int)
    for atom, n in atoms.items():
        if n < 0:
            raise ValueError(f"a negative count for {atom!r}")
        if n == 0:
            continue
        for group in set(groups_of(atom)):
            if n < threshold:
                hidden[group] += 1
            else:
                shown[group] += n
    figures: dict[G, Figure] = {}
    for group in shown.keys() | hidden.keys():
        total, small = shown.get(group, 0), hidden.get(group, 0)
        figures[group] = (Figure.exact(total) if small == 0 else
                          Figure(None, total + small, total + (threshold - 1) * small))
    return figures


# -- atoms and the figures built from them ---------------------------------------------------


class GrantAtom(NamedTuple):
    month: str
    state: str


class AccessAtom(NamedTuple):
    month: str
    service_id: str
    purpose: str
    categories: frozenset[str]
    derived: frozenset[str]


def grant_groups(atom: GrantAtom) -> Iterator[Key]:
    for month in (atom.month, ALL_MONTHS):
        yield month, "total", ""
        yield month, "state", atom.state


def access_groups(atom: AccessAtom) -> Iterator[Key]:
    for month in (atom.month, ALL_MONTHS):
        yield month, "total", ""
        yield month, "service", atom.service_id
        yield month, "purpose", atom.purpose
        for code in atom.categories:
            yield month, "category", code
        for name in atom.derived:
            yield month, "derived", name


def grant_figures(atoms: Mapping[GrantAtom, int], *,
                  threshold: int = SUPPRESSION_THRESHOLD) -> dict[Key, Figure]:
    """Every grant figure that is not zero: totals and by state, per month and all time."""
    return suppress(atoms, grant_groups, threshold=threshold)


def access_figures(atoms: Mapping[AccessAtom, int], *,
                   threshold: int = SUPPRESSION_THRESHOLD) -> dict[Key, Figure]:
    """Every read figure that is not zero: totals and by service, purpose, category and
    derived answer, per month and all time."""
    return suppress(atoms, access_groups, threshold=threshold)


# -- counting --------------------------------------------------------------------------------


class GrantFacts(NamedTuple):
    """What counting remembers of a grant, all of it public: the month it was asked
    for, its purpose (for its reads) and the state it is in now."""

    month: str
    purpose: str
    state: str


def state_after(kind: str) -> str | None:
    """The state a `grant.*` entry leaves its grant in (None: not a transition)."""
    if not kind.startswith("grant.") or kind == "grant.requested":
        return None
    step = kind.removeprefix("grant.")
    return "approved" if step == "resumed" else step


def public_of(entry: Mapping[str, Any]) -> Mapping[str, Any]:
    """The public part of a decoded entry (v2: `public`; v1: `split`'s public half, so
    v1 and v2 ledgers count the same way).

    One allowance for v1: erasures written before ledger v2 carry no "asked"/"from",
    only the grant id (public in a v1 entry anyway, which seals nothing); it is kept so
    that such an entry moves its grant by id, as any other transition does.
    """
    if entry.get("v") == 2:
        public = entry.get("public")
        if type(public) is not dict:
            raise EncodingError("a v2 entry's public part is not an object")
        return public
    body = entry.get("body")
    if type(body) is not dict:
        raise EncodingError("a v1 entry's body is not an object")
    shown = public_fields(_text(entry.get("kind")), body)
    # `split(kind, body)[0]`, without building the private half (this runs per entry).
    public = dict(body) if shown is None else {k: body[k] for k in shown if k in body}
    if public.get("reason") == ERASED and "from" not in public and "grant_id" in body:
        public["grant_id"] = body["grant_id"]
    return public


def _text(value: Any) -> str:
    return value if type(value) is str else ""


def _names(value: Any) -> frozenset[str]:
    if type(value) is not tuple:
        return frozenset()
    return frozenset(v for v in value if type(v) is str)


@dataclass(slots=True)
class Tally:
    """Counts of a stretch of public entries, fed in ledger order.

    `grants` and `accesses` are changes: counting from entry 0 they are the counts; from
    later on, a grant asked for earlier that changes state here takes one from its old
    atom (a negative change) and adds one to its new one. `known` gives the facts of
    grants asked for before the stretch (the vault loads the few it needs); `facts`
    holds every grant whose facts the stretch set or changed.
    """

    known: Mapping[str, GrantFacts] = field(default_factory=dict)
    grants: Counter[GrantAtom] = field(default_factory=Counter)
    facts: dict[str, GrantFacts] = field(default_factory=dict)
    #: Reads by (month, service, purpose, categories, derived) as the entries list them:
    #: `accesses` makes atoms of them once, not once per read (the hot path).
    _reads: Counter[tuple[str, str, str, Any, Any]] = field(default_factory=Counter)
    #: Entries fed.
    size: int = 0
    #: Entries that could not be counted (a transition of an unknown grant, a malformed
    #: public part): counted as nothing, and named here for whoever wants to know.
    skipped: list[int] = field(default_factory=list)

    @property
    def accesses(self) -> Counter[AccessAtom]:
        atoms: Counter[AccessAtom] = Counter()
        for (month, service, purpose, cats, derived), n in self._reads.items():
            atoms[AccessAtom(month, service, purpose, _names(cats), _names(derived))] += n
        return atoms

    def grant(self, grant_id: str) -> GrantFacts | None:
        found = self.facts.get(grant_id)
        return found if found is not None else self.known.get(grant_id)

    def feed(self, seq: int, time: str, kind: str, public: Mapping[str, Any]) -> None:
        """Count one entry, given its time, kind and public part."""
        self.size += 1
        if kind == "data.accessed":
            self._read(seq, time, public)
        elif kind == "grant.requested":
            self._requested(seq, time, public)
        elif (state := state_after(kind)) is not None:
            self._moved(seq, state, public)

    def feed_bytes(self, seq: int, data: bytes) -> None:
        """Count one entry from its bytes (as stored or served)."""
        decoded = decode(data)
        if decoded is None:
            self.size += 1
            self.skipped.append(seq)
            return
        self.feed(seq, *decoded)

    def _requested(self, seq: int, time: str, public: Mapping[str, Any]) -> None:
        grant_id, terms = public.get("grant_id"), public.get("terms")
        if type(grant_id) is not str or type(terms) is not dict or len(time) < 7:
            self.skipped.append(seq)
            return
        month = time[:7]
        self.facts[grant_id] = GrantFacts(month, _text(terms.get("purpose")), "requested")
        self.grants[GrantAtom(month, "requested")] += 1

    def _moved(self, seq: int, state: str, public: Mapping[str, Any]) -> None:
        if public.get("reason") == ERASED and "grant_id" not in public:
            # An erasure's ending: which grant is sealed; its month and old state are not.
            asked, was = public.get("asked"), public.get("from")
            if type(asked) is not str or type(was) is not str:
                self.skipped.append(seq)
                return
            self.grants[GrantAtom(asked, was)] -= 1
            self.grants[GrantAtom(asked, state)] += 1
            return
        grant_id = public.get("grant_id")
        facts = self.grant(grant_id) if type(grant_id) is str else None
        if facts is None or grant_id is None:
            self.skipped.append(seq)
            return
        self.grants[GrantAtom(facts.month, facts.state)] -= 1
        self.grants[GrantAtom(facts.month, state)] += 1
        self.facts[grant_id] = facts._replace(state=state)

    def _read(self, seq: int, time: str, public: Mapping[str, Any]) -> None:
        grant_id = public.get("grant_id")
        facts = self.grant(grant_id) if type(grant_id) is str else None
        cats, derived = public.get("categories"), public.get("derived")
        try:
            key = (time[:7], _text(public.get("service_id")),
                   facts.purpose if facts is not None else "",
                   tuple(cats) if type(cats) is list else None,
                   tuple(derived) if type(derived) is list else None)
            if len(time) < 7:
                raise TypeError
            self._reads[key] += 1
        except TypeError:  # a name that is not a string (a list, an object): no atom
            self.skipped.append(seq)


def decode(data: bytes) -> tuple[str, str, Mapping[str, Any]] | None:
    """An entry's (time, kind, public part) from its bytes; None if they are not an
    entry (the auditor's log check says why; counting only leaves it out)."""
    try:
        entry = orjson.loads(data)
        if type(entry) is not dict:
            return None
        return _text(entry.get("time")), _text(entry.get("kind")), public_of(entry)
    except (orjson.JSONDecodeError, EncodingError):
        return None


def count_entries(entries: Iterable[bytes], *, known: Mapping[str, GrantFacts] | None = None,
                  start: int = 0) -> Tally:
    """Count entries `start, start + 1, ...` from their bytes."""
    tally = Tally(known=known or {})
    for seq, data in enumerate(entries, start):
        tally.feed_bytes(seq, data)
    return tally
