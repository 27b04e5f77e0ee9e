"""Looking for personal data where the ledger must hold none (ARCHITECTURE §2).

The ledger holds pseudonyms, ids, hashes, codes and times: never a citizen's data. The
scan flags what looks like personal data anyway, in whole bodies and, with or without
their openings, in the public parts of sealed (v2) entries, which anyone may read:

- email addresses; phone numbers in E.164 (+447700900123) or UK national form
  (07700 900123); UK postcodes (SW1A 1AA);
- bare ISO dates (1950-12-10) from 1880 to the entry's year, in any field but the known
  time fields (`not_before`, `expires_at`): the shape of a date of birth;
- objects shaped like a category's value in the vault's catalog, such as
  `{"given": ..., "family": ...}` (identity.name) or an address (`CATALOG_SHAPES`).

It does not flag the vault's own ids, hashes and base64 blobs (strings of 16 or more
base64 characters, at least one a letter), times, category names or codes, and it
never repeats the suspect value in its report (that would spread it further).

Speed: each value is looked at once, and a string found clean is remembered (ids,
codes and names of services repeat from entry to entry), so most entries cost a few
set lookups; only an entry with something suspect is walked again to say where.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["CATALOG_SHAPES", "TIME_FIELDS", "PiiFinding", "PiiScanner", "shapes_from_catalog"]

#: Per category of the catalog whose values are objects: the keys every such value has
#: and the keys it may have (`shapes_from_catalog` of vault/domain/catalog/
#: categories.json; a test keeps the two equal).
CATALOG_SHAPES: Mapping[str, tuple[frozenset[str], frozenset[str]]] = {
    "address.home": (frozenset({"lines", "local_authority", "postcode", "town"}),
                     frozenset({"lines", "local_authority", "postcode", "town"})),
    "benefits.attendance_allowance": (frozenset({"award", "awarded_by", "since"}),
                                      frozenset({"award", "awarded_by", "since"})),
    "benefits.universal_credit": (frozenset({"receiving"}), frozenset({"receiving", "since"})),
    "education.school": (frozenset({"name", "urn"}), frozenset({"name", "urn"})),
    "health.gp_practice": (frozenset({"name", "ods_code"}), frozenset({"name", "ods_code"})),
    "health.observations": (frozenset({"at", "kind", "unit", "value"}),
                            frozenset({"at", "kind", "unit", "value"})),
    "health.prescriptions": (frozenset({"dose", "medicine", "since"}),
                             frozenset({"dose", "medicine", "since"})),
    "household.children": (frozenset({"date_of_birth", "given"}),
                           frozenset({"date_of_birth", "given", "school_urn"})),
    "household.universal_credit": (frozenset({"receiving"}),
                                   frozenset({"receiving", "since"})),
    "identity.name": (frozenset({"family", "given"}), frozenset({"family", "given"})),
    "transport.blue_badge": (frozenset({"expires", "number"}),
                             frozenset({"expires", "number"})),
}
#: Fields whose values are times by design (the entry's own `time` is outside the body).
TIME_FIELDS = frozenset({"not_before", "expires_at"})

_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_PHONE = re.compile(
    r"(?<![0-9A-Za-z+])(?:\+[1-9](?:[ -]?[0-9]){6,14}"  # E.164, maybe spaced
    r"|\(?0[1-9][0-9]{1,3}\)?[ -]?[0-9]{3,4}[ -]?[0-9]{3,4})(?![0-9])"  # UK national
)
_POSTCODE = re.compile(r"(?<![A-Za-z0-9])(?:[A-Z]{1,2}[0-9][0-9A-Z]? ?[0-9][A-Z]{2}|GIR ?0AA)"
                       r"(?![A-Za-z0-9])", re.IGNORECASE)
_DATE = re.compile(r"(?<![0-9])((?:18[89]|19[0-9]|2[0-9][0-9])[0-9])-(0[1-9]|1[0-2])"
                   r"-(0[1-9]|[12][0-9]|3[01])(?![0-9T])")
_BLOB = re.compile(r"(?=[^A-Za-z]*[A-Za-z])[A-Za-z0-9+/=_-]{16,}")


@dataclass(frozen=True, slots=True)
class PiiFinding:
    """Where (a JSON path in the body) and what kind of personal data it looks like."""

    path: str
    what: str

    def __str__(self) -> str:
        return f"{self.path} looks like {self.what}"


def shapes_from_catalog(catalog: Mapping[str, Any]
                        ) -> dict[str, tuple[frozenset[str], frozenset[str]]]:
    """The object shapes of a category catalog (the vault's categories.json document):
    per category whose values (or whose list items) are objects, (required, allowed) keys.

    Relationships issued as records (`relationship.*`: a delegate's pairwise sub, actions,
    an end date) are left out: their values are terms, not facts about a person, and the
    ledger's own `delegation.granted` bodies carry those very fields by design."""
    shapes: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
    for code, category in catalog["categories"].items():
        if code.startswith("relationship."):
            continue
        schema = category["schema"]
        if schema.get("type") == "array":
            schema = schema.get("items", {})
        if schema.get("type") == "object" and schema.get("properties"):
            props = frozenset(schema["properties"])
            shapes[code] = (frozenset(schema.get("required", props)), props)
    return shapes


class PiiScanner:
    """`scan(body, time=...)` per entry; reuse one scanner for a whole ledger (it
    remembers the strings it found clean, up to `remember` of them)."""

    def __init__(self, shapes: Mapping[str, tuple[frozenset[str], frozenset[str]]]
                 = CATALOG_SHAPES, *, remember: int = 200_000) -> None:
        self._shapes = dict(shapes)
        self._keys = frozenset().union(*(required for required, _ in self._shapes.values()))
        self._clean: set[str] = set()
        self._remember = remember

    def scan(self, body: Any, *, time: str = "", thorough: bool = False,
             root: str = "body") -> list[PiiFinding]:
        """Personal data in an entry's body (or in a sealed entry's `public` part, named
        `root` in the findings' paths). `time` is the entry's: dates after its year (not
        birth dates) pass. `thorough` skips the fast first look (for tests)."""
        if not thorough and self._looks_clean(body):
            return []
        year = int(time[:4]) if time[:4].isdigit() else 9999
        if not thorough and not self._suspect(body, "", year):
            return []
        return list(self._walk(body, root, "", 0, year))

    def suspect(self, value: Any) -> bool:
        """True unless `value` surely holds no personal data (whatever the entry's year:
        a date passes only if it could not be a date of birth in any year)."""
        if type(value) is str and (value in self._clean or _BLOB.fullmatch(value)):
            return False  # "@" is not a base64 character: no email hides in a blob
        return self._suspect(value, "", 9999)

    def _looks_clean(self, body: Any) -> bool:
        """The common case in a few set lookups: an object of strings remembered clean,
        short ones, blobs, numbers and lists of those. False sends it the long way."""
        if type(body) is not dict or not self._keys.isdisjoint(body):
            return False
        clean, blob = self._clean, _BLOB.fullmatch
        for v in body.values():
            t = type(v)
            if t is str:
                if not (v in clean or len(v) < 6 or (len(v) >= 40 and blob(v))):
                    return False
            elif t is list:
                for x in v:
                    if type(x) is not str or not (x in clean or len(x) < 6):
                        return False
            elif not (t is int or t is bool or v is None):
                return False
        return True

    # -- the fast look: is anything suspect at all? ------------------------------------

    def _suspect(self, value: Any, field: str, year: int, depth: int = 0) -> bool:
        t = type(value)
        if t is dict:
            if not self._keys.isdisjoint(value) and self._shape(value) is not None:
                return True
            items: Any = value.items()
        elif t is list:
            items = ((field, v) for v in value)
        elif t is str:
            return self._suspect_string(value, field, year)
        else:
            return False
        if depth >= 32:
            return False
        clean = self._clean
        for k, v in items:
            tv = type(v)
            if tv is str:
                if v not in clean and self._suspect_string(v, k, year):
                    return True
            elif (tv is dict or tv is list) and self._suspect(v, k, year, depth + 1):
                return True
        return False

    def _suspect_string(self, s: str, field: str, year: int) -> bool:
        if len(s) < 6 or field in TIME_FIELDS:
            return False
        what, lasting = _classify(s, year)
        if what is not None:
            return True
        # Hashes and commitments are unique: not worth remembering. A date judged by
        # the entry's year may be judged again by a later entry's.
        if lasting and len(s) < 40:
            if len(self._clean) >= self._remember:
                self._clean.clear()
            self._clean.add(s)
        return False

    # -- the thorough walk: where, and what ----------------------------------------------

    def _walk(self, value: Any, path: str, field: str, depth: int, year: int
              ) -> Iterator[PiiFinding]:
        t = type(value)
        if t is str:
            if len(value) >= 6 and field not in TIME_FIELDS:
                what = _classify(value, year)[0]
                if what is not None:
                    yield PiiFinding(path, what)
        elif t is dict:
            shape = self._shape(value)
            if shape is not None:
                yield PiiFinding(path, f"a value of {shape} (its keys)")
                return  # one finding for the object, not one per field
            if depth < 32:
                for k, v in value.items():
                    yield from self._walk(v, f"{path}.{k}", k, depth + 1, year)
        elif t is list and depth < 32:
            for n, v in enumerate(value):
                yield from self._walk(v, f"{path}[{n}]", field, depth + 1, year)

    def _shape(self, obj: dict[str, Any]) -> str | None:
        keys = obj.keys()
        for code, (required, allowed) in self._shapes.items():
            if required <= keys and (len(required) > 1 or keys <= allowed):
                return code
        return None


def _classify(s: str, year: int) -> tuple[str | None, bool]:
    """What personal data `s` looks like (None: nothing), and whether that verdict holds
    for any entry (False when it rests on the entry's year)."""
    if "@" in s and _EMAIL.search(s):
        return "an email address", True
    if _BLOB.fullmatch(s):
        return None, True  # an id, a hash, a key: base64 text, not a phone number
    if _PHONE.search(s):
        return "a phone number", True
    if _POSTCODE.search(s):
        return "a UK postcode", True
    lasting = True
    for m in _DATE.finditer(s):
        if int(m.group(1)) <= year:
            return "a date (of birth?)", True
        lasting = False
    return None, lasting
