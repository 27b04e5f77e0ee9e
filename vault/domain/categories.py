"""The categories catalog: kinds of personal data, each with a JSON Schema for its value.

The catalog is package data (`catalog/categories.json`), loaded once. Values are checked
with a Draft 2020-12 validator that is stricter than the library's default in three ways:

- `integer` means a Python int that is not a bool: `1.0` is *not* an integer here, and no
  value may hold a float anywhere (values end up in canonical JSON, which forbids them);
- `format` is asserted, by the checkers in this module (date, date-time, email), so a
  date such as 2026-02-30 is refused however well it matches a pattern;
- no string may hold control characters (which also stops a trailing newline slipping
  past a `^...$` pattern, since Python's `$` matches before one).

Every write goes through `clean_value`: phone numbers and postcodes are first put in the
one form the vault stores (`vault.domain.normalise`), whoever writes them (the wallet, a
service, the command line), then checked.

A series (`Category.series`: health observations from a wearable) grows by batches of up to
1,000 items, thousands of items a second: `validate_batch` checks a batch with the same
rules, but first with a compiled validator (jsonschema-rs, about 20 times as fast as the
jsonschema one here: `bench/series_ingest.py` measured both, and fastjsonschema between
them) and a screen of the encoded bytes for control characters; only a batch that fails
is checked again the slow way, for the plain-English reason.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

import jsonschema_rs
import orjson
from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators
from jsonschema.exceptions import best_match
from jsonschema.protocols import Validator

from ledger.canonical import MAX_DEPTH, MAX_SAFE_INTEGER, check_value
from ledger.errors import EncodingError
from vault.domain.errors import InvalidValue
from vault.domain.normalise import phone_e164, uk_postcode

__all__ = [
    "MAX_BATCH_ITEMS",
    "Band",
    "Category",
    "categories",
    "clean_value",
    "is_email",
    "is_real_date",
    "is_rfc3339_datetime",
    "issuable_codes",
    "validate_batch",
    "validate_value",
]

#: The most items one series batch may hold (ARCHITECTURE §8).
MAX_BATCH_ITEMS = 1000


@dataclass(frozen=True)
class Band:
    """Where a reading of one measure is expected to lie, in one of `units` (ends
    included; None: no bound on that side). A reading in another unit is not judged."""

    units: tuple[str, ...]
    low: int | None = None
    high: int | None = None

    def judges(self, unit: Any) -> bool:
        return unit in self.units

    def outside(self, value: int) -> bool:
        return (self.low is not None and value < self.low) or \
            (self.high is not None and value > self.high)


@dataclass(frozen=True)
class Category:
    """One kind of personal data: a dotted code, a plain-English label and a value schema."""

    code: str
    label: str
    description: str
    schema: Mapping[str, Any]
    #: Plain words for codes a field holds, by field name then code (health.observations'
    #: "kind": heart_rate -> "Heart rate"). The field may hold codes not listed here.
    codes: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    #: Who may issue it, in words ("a benefits agency"); None: nobody, only the citizen
    #: writes it. Only a service registered with `--issues` for an issuable category
    #: may ask for a grant to write it (ARCHITECTURE §8). A citizen may still hold a
    #: value of their own of an issuable category.
    issued_by: str | None = None
    #: A series: the value grows by batches (each a version holding a list of items),
    #: read by services as the batches added since their last read (ARCHITECTURE §8).
    series: bool = False
    #: For a series of readings: the expected range of each measure (the item's "kind").
    bands: Mapping[str, Band] = field(default_factory=dict)

    @property
    def issuable(self) -> bool:
        """Whether a service may be registered to issue it."""
        return self.issued_by is not None

    def code_label(self, field: str, code: str) -> str:
        """The words for `code` in `field`: the catalog's, else the code made readable."""
        found = self.codes.get(field, {}).get(code)
        return found if found is not None else code.replace("_", " ").capitalize()


# --- format checkers (ASCII-only patterns: \d would also match other scripts' digits) ---

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{1,9})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_DNS_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def is_real_date(text: str) -> bool:
    """True for a calendar date written YYYY-MM-DD (so 2026-02-30 is False)."""
    if not _DATE.fullmatch(text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def is_rfc3339_datetime(text: str) -> bool:
    """True for an RFC 3339 §5.6 date-time with an offset (Z or ±HH:MM) and real fields."""
    m = _DATETIME.fullmatch(text)
    if not m:
        return False
    # Called for every reading of a series batch: the pattern has pinned the date's form,
    # so only whether it is a real day is left to ask (no second pattern, one groups()).
    day, hh, mm, ss, _, offset = m.groups()
    try:
        date.fromisoformat(day)
    except ValueError:
        return False
    hour, minute, second = int(hh), int(mm), int(ss)
    # RFC 3339 allows second 60 for leap seconds; we accept none (nothing measures one).
    if hour > 23 or minute > 59 or second > 59:
        return False
    if offset not in ("Z", "z"):
        oh, om = int(offset[1:3]), int(offset[4:6])
        if oh > 23 or om > 59:
            return False
    return True


def is_email(text: str) -> bool:
    """A practical check of an address's shape: local@domain.tld, ASCII, RFC 5321 lengths."""
    local, at, domain = text.rpartition("@")
    if not at or len(text) > 254 or len(local) > 64:
        return False
    if not _EMAIL_LOCAL.fullmatch(local):
        return False
    labels = domain.split(".")
    if len(labels) < 2 or not all(_DNS_LABEL.fullmatch(label) for label in labels):
        return False
    tld = labels[-1]
    return len(tld) >= 2 and tld.isalpha()


def _format_checker() -> FormatChecker:
    checker = FormatChecker(formats=())
    checker.checks("date")(lambda v: not isinstance(v, str) or is_real_date(v))
    checker.checks("date-time")(lambda v: not isinstance(v, str) or is_rfc3339_datetime(v))
    checker.checks("email")(lambda v: not isinstance(v, str) or is_email(v))
    return checker


def _is_integer(_checker: Any, value: Any) -> bool:
    return type(value) is int


def _is_number(_checker: Any, value: Any) -> bool:
    # No fractions anywhere: a "number" is a whole number too.
    return type(value) is int


_StrictValidator = Draft202012Validator.TYPE_CHECKER.redefine_many(
    {"integer": _is_integer, "number": _is_number}
)
_VALIDATOR_CLASS: Any = validators.extend(Draft202012Validator, type_checker=_StrictValidator)

_FORMAT_NAMES = {"date": "date", "date-time": "date and time", "email": "email address"}
_TYPE_NAMES = {
    "object": "an object",
    "array": "a list",
    "string": "text",
    "integer": "a whole number",
    "number": "a whole number",
    "boolean": "true or false",
    "null": "null",
}


@cache
def _load() -> tuple[Mapping[str, Category], Mapping[str, Validator]]:
    raw = resources.files("vault.domain").joinpath("catalog/categories.json").read_text("utf-8")
    data = json.loads(raw)
    found: dict[str, Category] = {}
    checks: dict[str, Validator] = {}
    checker = _format_checker()
    for code, entry in data["categories"].items():
        schema = entry["schema"]
        Draft202012Validator.check_schema(schema)
        found[code] = Category(
            code=code,
            label=entry["label"],
            description=entry["description"],
            schema=MappingProxyType(schema),
            codes=MappingProxyType({field: MappingProxyType(dict(words))
                                    for field, words in entry.get("codes", {}).items()}),
            issued_by=entry.get("issued_by"),
            series=entry.get("series", False) is True,
            bands=MappingProxyType({kind: Band(tuple(b["units"]), b.get("min"), b.get("max"))
                                    for kind, b in entry.get("bands", {}).items()}),
        )
        checks[code] = _VALIDATOR_CLASS(schema, format_checker=checker)
    return MappingProxyType(found), MappingProxyType(checks)


def categories() -> Mapping[str, Category]:
    """Every category by code (loaded once from the package's catalog)."""
    return _load()[0]


def issuable_codes() -> list[str]:
    """The codes of the categories a service may be registered to issue, sorted."""
    return sorted(code for code, cat in categories().items() if cat.issuable)


def _where(error: ValidationError) -> str:
    where = ""
    for part in error.absolute_path:
        where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
    return where or "the value"


def _quoted(names: Any) -> str:
    return ", ".join(f"'{n}'" for n in sorted(str(n) for n in names))


def _reason(error: ValidationError) -> str:
    """Plain English for one schema failure, never quoting the value itself."""
    kind, expected, schema = error.validator, error.validator_value, error.schema
    hint = schema.get("description") if isinstance(schema, Mapping) else None
    instance = error.instance
    if kind == "required":
        missing = [n for n in expected if isinstance(instance, dict) and n not in instance]
        return f"is missing the required field {_quoted(missing)}"
    if kind == "additionalProperties":
        allowed = schema.get("properties", {})
        extra = [k for k in instance if k not in allowed] if isinstance(instance, dict) else []
        return f"has a field that is not allowed: {_quoted(extra)}"
    if kind == "type":
        wanted = expected if isinstance(expected, list) else [expected]
        names = " or ".join(_TYPE_NAMES.get(str(t), str(t)) for t in wanted)
        if type(instance) is float:
            return f"must be {names} (numbers with a fractional part are not allowed)"
        return f"must be {names}"
    if kind == "format":
        return f"is not a valid {_FORMAT_NAMES.get(str(expected), str(expected))}"
    if kind in ("pattern", "enum", "const", "anyOf", "oneOf") and hint:
        return f"must be {hint}"
    if kind == "enum":
        return f"must be one of {_quoted(expected)}"
    if kind == "minLength":
        return "must not be empty" if expected == 1 else f"must be at least {expected} characters"
    if kind == "maxLength":
        return f"must be at most {expected} characters"
    if kind == "minItems":
        return f"must have at least {expected} item(s)"
    if kind == "maxItems":
        return f"must have at most {expected} items"
    if kind == "minimum":
        return f"must be at least {expected}"
    if kind == "maximum":
        return f"must be at most {expected}"
    return f"does not fit the rule '{kind}'"


def _first_problem(value: Any, path: str = "", depth: int = 0) -> str | None:
    """What JSON Schema cannot see: floats, control characters, non-text keys, deep nesting."""
    where = path or "the value"
    if depth > MAX_DEPTH:
        return f"{where} is nested more than {MAX_DEPTH} levels deep"
    if isinstance(value, str):
        return f"{where} must not contain control characters" if _has_control(value) else None
    if isinstance(value, float):
        return f"{where} must be a whole number (numbers with a fractional part are not allowed)"
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                return f"{where} has a field name that is not text"
            sub = f"{path}.{k}" if path else k
            if _has_control(k):
                return f"{where} has a field name with control characters"
            found = _first_problem(v, sub, depth + 1)
            if found:
                return found
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            found = _first_problem(v, f"{path}[{i}]", depth + 1)
            if found:
                return found
    return None


def _has_control(text: str) -> bool:
    # Cc: C0/C1 controls; Cs: lone surrogates, which no UTF-8 encoder will write.
    return any(unicodedata.category(c) in ("Cc", "Cs") for c in text)


def validate_value(code: str, value: Any) -> None:
    """Check `value` against category `code`'s schema; raise InvalidValue saying what is wrong."""
    cats, checks = _load()
    if code not in cats:
        raise InvalidValue(f"unknown category '{code}'")
    problem = _first_problem(value)
    if problem is not None:
        raise InvalidValue(f"{code}: {problem}")
    try:
        check_value(value)
    except EncodingError:
        raise InvalidValue(
            f"{code}: the value holds something JSON cannot store exactly (a number beyond "
            f"±{MAX_SAFE_INTEGER}, or a type other than text, whole numbers, true/false, "
            "null, lists and objects)"
        ) from None
    error = best_match(checks[code].iter_errors(value))
    if error is not None:
        raise InvalidValue(f"{code}: {_where(error)} {_reason(error)}")


@cache
def _fast(code: str) -> Any:
    """The compiled validator of a series' schema, with the vault's date-time rule."""
    return jsonschema_rs.validator_for(
        dict(categories()[code].schema), validate_formats=True,
        formats={"date-time": lambda v: not isinstance(v, str) or is_rfc3339_datetime(v),
                 "date": lambda v: not isinstance(v, str) or is_real_date(v),
                 "email": lambda v: not isinstance(v, str) or is_email(v)})


# Encoded by orjson, a string with a C0 control character holds a backslash escape; a C1
# control (U+0080..U+009F) or DEL is written as it is. Without either, no text in the
# value has one: a batch of readings has neither, so it skips `_first_problem`'s walk.
_C1_CONTROL = re.compile(rb"\xc2[\x80-\x9f]")


def _maybe_control(encoded: bytes) -> bool:
    # Byte searches first (memchr-fast); the pattern only when a \xc2 lead byte is there:
    # one pattern with an alternation tried at every offset took 2 ms of a batch's CPU.
    return (b"\\" in encoded or b"\x7f" in encoded
            or (b"\xc2" in encoded and _C1_CONTROL.search(encoded) is not None))


def validate_batch(code: str, value: Any) -> tuple[list[Any], bytes]:
    """A batch of series `code`, `{"items": [...]}` with 1 to MAX_BATCH_ITEMS items,
    checked by the rules of `validate_value` (InvalidValue says what is wrong; nothing
    of a batch with one bad item is kept). Returns the items and their JSON encoding."""
    cat = categories().get(code)
    if cat is None:
        raise InvalidValue(f"unknown category '{code}'")
    if not cat.series:
        raise InvalidValue(f"{code} is not a series: it takes one value, not batches of items")
    if not isinstance(value, dict) or set(value) != {"items"}:
        raise InvalidValue(f'{code}: a batch must be an object {{"items": [...]}} '
                           "with nothing else in it")
    items = value["items"]
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH_ITEMS:
        raise InvalidValue(f"{code}: a batch holds 1 to {MAX_BATCH_ITEMS} items in a list")
    try:
        encoded = orjson.dumps(items)
        check_value(items)
        fine = not _maybe_control(encoded) and _fast(code).is_valid(items)
    except (orjson.JSONEncodeError, EncodingError):
        fine = False
    if not fine:
        validate_value(code, items)  # the slow way: raises, saying what is wrong
        encoded = orjson.dumps(items)  # only text with escapes or C1 controls gets here
    return items, encoded


def _phone(value: Any) -> Any:
    return phone_e164(value) if isinstance(value, str) else value


def _home(value: Any) -> Any:
    if isinstance(value, dict) and isinstance(value.get("postcode"), str):
        return {**value, "postcode": uk_postcode(value["postcode"])}
    return value


#: Categories whose values are typed in many ways, and how each is put in one form.
_NORMALISE: Mapping[str, Callable[[Any], Any]] = MappingProxyType({
    "contact.phone": _phone,
    "address.home": _home,
})


def clean_value(code: str, value: Any) -> Any:
    """`value` as the vault stores it: phone numbers and postcodes in one form, then
    checked like `validate_value` (InvalidValue says what is wrong). Anything that cannot
    be put in that form is left as it is, for the check to refuse in plain words."""
    tidy = _NORMALISE.get(code)
    cleaned = value if tidy is None else tidy(value)
    validate_value(code, cleaned)
    return cleaned
