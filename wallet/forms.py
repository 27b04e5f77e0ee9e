"""Record values as people edit and read them: a form made from a category's JSON Schema,
the value read back from the posted form, and a value in plain words.

The form comes from the schema, so a category added to the catalog gets a page without
new code. The shapes it knows:

- an object whose properties are simple (text, a date, an email address, a phone number,
  a choice from a list, yes/no, a whole number, lines of text): one input per property;
- one simple value (a date of birth, an email address): one input;
- a list of such objects (prescriptions, children, health readings): one group of inputs
  per item, an empty group to add one, a "Remove" box per item; a list longer than
  `PAGE_ITEMS` is changed a page at a time (`wallet.list_pages`);
- anything else (nesting, an object that allows extra fields): one text box holding JSON,
  with a hint and an example. Not friendly, but honest, and it loses nothing.

A field holding a code the catalog has words for (a reading's `kind`) is a list to choose
from, in words ("Heart rate"), and is shown in those words. A date and time is the
browser's date-and-time box on London's clock (`wallet.clock`); a hidden copy of the
stored time keeps it exactly as it was when the box is left alone.

Posted text: surrounding spaces are dropped and an empty field means "not given", so an
empty optional field is left out of the value (and an empty required one is reported
missing by the category's own check). Lines of text are one item per line. A field that
takes "a whole number or a short text" reads digits as a whole number. The category's
check (`validate_value`) stays the one judge of a value: the form only shapes it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from vault.domain.categories import Category
from wallet.clock import from_local_input, local_input, when
from wallet.errors import WalletError

__all__ = [
    "EXAMPLES",
    "PAGE_ITEMS",
    "WAS",
    "EditForm",
    "Field",
    "FormError",
    "FormReading",
    "Group",
    "Problem",
    "Shown",
    "edit_form",
    "explain",
    "form_from_value",
    "layout_of",
    "read_form",
    "readable_date",
    "show_value",
    "value_from_form",
]

#: A list longer than this is changed a page at a time: a group of inputs per item for a
#: thousand health readings would make a page (and a post) of thousands of fields.
PAGE_ITEMS = 25
#: The hidden field beside a date-and-time box that holds the stored time as it was.
WAS = ".was"
#: How many items of a list the overview shows; the change page and the download show all.
_SHOW_ITEMS = 10

Layout = Literal["object", "single", "items", "json"]
Kind = Literal["text", "date", "datetime", "email", "tel", "number", "numtext", "choice",
               "code", "yesno", "lines", "json"]

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")
_WHOLE = re.compile(r"[+-]?[0-9]{1,20}")  # ASCII digits only; short enough for int()
_ITEM_KEY = re.compile(r"f\.([0-9]{1,4})\.(.+)")
_SAFE_ID = re.compile(r"[^A-Za-z0-9_-]")

# --- words: labels, hints, autocomplete tokens (WCAG 1.3.5), nouns, examples ----------

_LABELS = {
    "given": "First name", "family": "Last name", "town": "Town or city",
    "postcode": "Postcode", "local_authority": "Council", "award": "Rate",
    "since": "Since when", "awarded_by": "Who gave you the award", "ods_code": "Practice code",
    "medicine": "Medicine", "dose": "Dose", "kind": "What was measured", "value": "Reading",
    "unit": "Unit", "at": "When it was measured", "urn": "School number (URN)",
    "school_urn": "School number (URN)", "date_of_birth": "Date of birth",
    "number": "Badge number", "expires": "Expiry date",
}
_CODE_LABELS = {
    ("address.home", "lines"): "Street address",
    ("benefits.universal_credit", "receiving"): "Do you get Universal Credit now?",
    ("household.universal_credit", "receiving"):
        "Does your household get Universal Credit now?",
    ("health.gp_practice", "name"): "Name of the practice",
    ("education.school", "name"): "Name of the school",
}
_HINTS = {
    ("address.home", "lines"): "House number and street. Put each part on its own line "
                               "(up to 4 lines).",
    ("address.home", "local_authority"): "The council for this address, for example "
                                         "Westminster.",
    ("health.prescriptions", "dose"): "How much and how often, for example 75 mg once a day.",
    ("health.observations", "unit"): "For example bpm for heart rate, mmHg for blood "
                                     "pressure, kg for weight.",
}
_AUTOCOMPLETE = {
    ("identity.name", "given"): "given-name", ("identity.name", "family"): "family-name",
    ("identity.date_of_birth", ""): "bday", ("contact.email", ""): "email",
    ("contact.phone", ""): "tel", ("address.home", "lines"): "street-address",
    ("address.home", "town"): "address-level2", ("address.home", "postcode"): "postal-code",
}
_NOUNS = {"health.prescriptions": "prescription", "household.children": "child",
          "health.observations": "measurement"}
#: Examples shown with a JSON box (a test checks each is valid for its category).
EXAMPLES: dict[str, Any] = {
    "health.prescriptions": [{"medicine": "Aspirin", "dose": "75 mg once a day",
                              "since": "2024-05-17"}],
    "household.children": [{"given": "Sam", "date_of_birth": "2015-03-01",
                            "school_urn": "100000"}],
}


def _label(code: str, prop: str) -> str:
    return (_CODE_LABELS.get((code, prop)) or _LABELS.get(prop)
            or prop.replace("_", " ").capitalize())


def _sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] if text else ""


def _choice_words(value: Any) -> str:
    if isinstance(value, bool):
        return "Yes" if value else "No"
    return _sentence(str(value).replace("_", " "))


# --- the kinds of field ------------------------------------------------------------------


def _types(schema: Mapping[str, Any]) -> set[str]:
    kinds = {s.get("type") for s in schema.get("anyOf", ()) if isinstance(s, Mapping)}
    return {k for k in kinds if isinstance(k, str)}


def _kind(schema: Mapping[str, Any], prop: str = "") -> Kind:
    if "enum" in schema:
        return "choice"
    kind = schema.get("type")
    if kind == "string":
        fmt = schema.get("format")
        if fmt in ("date", "email", "date-time"):
            return "date" if fmt == "date" else "email" if fmt == "email" else "datetime"
        described = str(schema.get("description", "")).lower()
        if prop in ("phone", "telephone", "mobile") or "phone number" in described:
            return "tel"
        return "text"
    if kind == "boolean":
        return "yesno"
    if kind in ("integer", "number"):
        return "number"
    if kind == "array" and isinstance(schema.get("items"), Mapping):
        inner = schema["items"]
        if inner.get("type") == "string" and "enum" not in inner:
            return "lines"
    if "anyOf" in schema and _types(schema) == {"integer", "string"}:
        return "numtext"
    return "json"


def _closed_object(schema: Mapping[str, Any]) -> bool:
    """An object whose every field the form knows (extra fields would be lost on a save)."""
    return (schema.get("type") == "object" and schema.get("additionalProperties") is False
            and isinstance(schema.get("properties"), Mapping))


def layout_of(schema: Mapping[str, Any]) -> Layout:
    """How a category's value is edited (see the module docstring)."""
    if _closed_object(schema):
        return "object"
    if schema.get("type") == "array" and isinstance(schema.get("items"), Mapping):
        inner = schema["items"]
        if _closed_object(inner) and all(
                _kind(s, p) != "json" for p, s in inner["properties"].items()):
            return "items"
    return "json" if _kind(schema) == "json" else "single"


# --- from a value to form fields, and back -------------------------------------------------


class _Missing:
    """An empty field: "not given"."""


_MISSING = _Missing()


class FormError(WalletError):
    """Posted text that cannot become a value of its field's kind (not JSON, say).

    `field` is the form field's name; `reason` is the rest of a sentence that starts
    with the field's label ("is not written correctly ...").
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def _options(schema: Mapping[str, Any]) -> list[tuple[str, str, Any]]:
    """(form value, words, the value itself) for each choice of an enum."""
    return [(v if isinstance(v, str) else json.dumps(v), _choice_words(v), v)
            for v in schema.get("enum", ())]


def _as_text(kind: Kind, schema: Mapping[str, Any], value: Any) -> str:
    if kind == "yesno":
        return "yes" if value is True else "no" if value is False else ""
    if kind == "choice":
        for text, _, original in _options(schema):
            if original == value and type(original) is type(value):
                return text
        return ""
    if kind == "lines" and isinstance(value, list):
        return "\n".join(str(v) for v in value)
    if kind == "datetime" and isinstance(value, str):
        return local_input(value)
    if kind == "json" or not isinstance(value, str | int) or isinstance(value, bool):
        return json.dumps(value, ensure_ascii=False, indent=2)
    return str(value)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _parse(kind: Kind, schema: Mapping[str, Any], raw: str, name: str, was: str = "") -> Any:
    """The value of one posted field; `was` is the stored time beside a date-and-time box."""
    text = raw.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        return _MISSING
    if kind == "datetime":
        if was and local_input(was) == text:
            return was  # left alone: kept exactly as stored (its offset, its fraction)
        found = from_local_input(text)
        if found is None:
            raise FormError(name, "is not a valid date and time")
        return found
    if kind == "yesno":
        if text in ("yes", "no"):
            return text == "yes"
        raise FormError(name, "must be Yes or No")
    if kind == "number":
        if _WHOLE.fullmatch(text):
            return int(text)
        raise FormError(name, "must be a whole number, such as 42")
    if kind == "numtext":
        return int(text) if _WHOLE.fullmatch(text) else text
    if kind == "choice":
        for value, _, original in _options(schema):
            if text == value:
                return original
        raise FormError(name, "must be one of the choices in the list")
    if kind == "lines":
        return [line.strip() for line in text.split("\n") if line.strip()]
    if kind == "json":
        try:
            return json.loads(text, parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            raise FormError(name, f"is not written correctly: look at line {exc.lineno}, "
                                  f"character {exc.colno} ({exc.msg.lower()})") from None
        except RecursionError:
            raise FormError(name, "has too many brackets inside each other") from None
        except ValueError as exc:
            raise FormError(name, f"is not written correctly ({exc})") from None
    return text


def _field_name(prop: str, index: int | None = None) -> str:
    return f"f.{prop}" if index is None else f"f.{index}.{prop}"


def _object_as_fields(props: Mapping[str, Any], value: Mapping[str, Any],
                      index: int | None = None) -> dict[str, str]:
    fields: dict[str, str] = {}
    for prop, v in value.items():
        if prop not in props:
            continue
        kind, name = _kind(props[prop], prop), _field_name(prop, index)
        fields[name] = _as_text(kind, props[prop], v)
        if kind == "datetime" and isinstance(v, str):
            fields[name + WAS] = v
    return fields


def form_from_value(schema: Mapping[str, Any], value: Any, *, start: int = 0,
                    stop: int | None = None) -> dict[str, str]:
    """The form fields that show `value` (what a browser would post back unchanged);
    of a list, the items from `start` to `stop` (a page), numbered as in the whole list."""
    layout = layout_of(schema)
    if layout in ("single", "json"):
        kind = _kind(schema) if layout == "single" else "json"
        was = {"value" + WAS: value} if kind == "datetime" and isinstance(value, str) else {}
        return {"value": _as_text(kind, schema, value), **was}
    if layout == "object":
        return _object_as_fields(schema["properties"], value)
    props = schema["items"]["properties"]
    fields: dict[str, str] = {}
    for i, item in enumerate(value[start:stop], start=start):
        fields |= _object_as_fields(props, item, i)
    return fields


@dataclass(frozen=True, slots=True)
class FormReading:
    """The value read from a form, and for a list, which form group each item came from."""

    value: Any
    #: For a list: the form group of each item, and every group the form had.
    groups: tuple[int, ...] = ()
    posted: tuple[int, ...] = ()
    #: For a page of a longer list: where the page's first item is in the whole list.
    start: int = 0


def _read_object(props: Mapping[str, Any], form: Mapping[str, str],
                 index: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for prop, sub in props.items():
        name = _field_name(prop, index)
        got = _parse(_kind(sub, prop), sub, form.get(name, ""), name, form.get(name + WAS, ""))
        if got is not _MISSING:
            out[prop] = got
    return out


def _group_indices(form: Mapping[str, str]) -> list[int]:
    return sorted({int(m.group(1)) for key in form if (m := _ITEM_KEY.fullmatch(key))})


def read_form(schema: Mapping[str, Any], form: Mapping[str, str], *, start: int = 0
              ) -> FormReading:
    """The value a posted form describes (FormError for text that cannot be read); for
    a page of a longer list, `start` says where the page begins in the whole list."""
    layout = layout_of(schema)
    if layout in ("single", "json"):
        kind = _kind(schema) if layout == "single" else "json"
        got = _parse(kind, schema, form.get("value", ""), "value", form.get("value" + WAS, ""))
        if got is _MISSING:
            raise FormError("value", "is empty. Please fill it in")
        return FormReading(got)
    if layout == "object":
        return FormReading(_read_object(schema["properties"], form))
    items: list[dict[str, Any]] = []
    groups: list[int] = []
    posted = _group_indices(form)
    for index in posted:
        if form.get(f"remove.{index}") == "yes":
            continue
        item = _read_object(schema["items"]["properties"], form, index)
        if item:  # an empty group adds nothing
            items.append(item)
            groups.append(index)
    return FormReading(items, tuple(groups), tuple(posted), start)


def value_from_form(schema: Mapping[str, Any], form: Mapping[str, str]) -> Any:
    """The value a posted form describes; empty optional fields are left out."""
    return read_form(schema, form).value


# --- the form as the template draws it -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    """What is wrong, in words, and which field it is about (for the error summary)."""

    field: str
    text: str


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    label: str
    kind: Kind
    required: bool
    text: str = ""
    hint: str = ""
    autocomplete: str = ""
    options: tuple[tuple[str, str], ...] = ()
    error: str = ""
    #: Beside a date-and-time box: the stored time it shows, kept if the box is left alone.
    was: str = ""

    @property
    def id(self) -> str:
        return "f-" + _SAFE_ID.sub("_", self.name.removeprefix("f.").replace(".", "-"))

    @property
    def target(self) -> str:
        """Where a link to this field lands: the first radio of a yes/no question."""
        return f"{self.id}-yes" if self.kind == "yesno" else self.id

    @property
    def input_type(self) -> str:
        return {"date": "date", "datetime": "datetime-local", "email": "email",
                "tel": "tel"}.get(self.kind, "text")

    @property
    def described_by(self) -> str:
        return " ".join(i for i, on in ((f"{self.id}-hint", self.hint),
                                         (f"{self.id}-error", self.error)) if on)


@dataclass(frozen=True, slots=True)
class Group:
    """One item of a list: its fields, and a box to remove it."""

    index: int
    legend: str
    fields: tuple[Field, ...]
    blank: bool
    removed: bool

    @property
    def remove_name(self) -> str:
        return f"remove.{self.index}"


@dataclass(frozen=True, slots=True)
class EditForm:
    layout: Layout
    fields: tuple[Field, ...] = ()
    groups: tuple[Group, ...] = ()
    noun: str = "item"
    example: str = ""
    problem: Problem | None = None
    #: A list that may be long (health readings): each item drawn as one compact row.
    rows: bool = False

    @property
    def all_fields(self) -> tuple[Field, ...]:
        return self.fields + tuple(f for g in self.groups for f in g.fields)

    @property
    def problem_target(self) -> str:
        """The id the error summary links to: the field in trouble, else the first."""
        fields = self.all_fields
        wanted = self.problem.field if self.problem is not None else ""
        found = next((f for f in fields if f.name == wanted), fields[0] if fields else None)
        return found.target if found is not None else ""


def _json_hint(noun: str, schema: Mapping[str, Any]) -> str:
    """What each item of a list written as JSON needs, from the item's schema."""
    inner = schema.get("items")
    if not isinstance(inner, Mapping) or not isinstance(inner.get("properties"), Mapping):
        return ""
    required = set(inner.get("required", ()))

    def part(prop: str, sub: Any) -> str:
        described = sub.get("description") if isinstance(sub, Mapping) else None
        return f'"{prop}"' + (f" ({described})" if isinstance(described, str) else "")

    needs = [part(p, s) for p, s in inner["properties"].items() if p in required]
    may = [part(p, s) for p, s in inner["properties"].items() if p not in required]
    text = f"Each {noun} needs " + ", ".join(needs) + "." if needs else ""
    return text + (f" It may also have {', '.join(may)}." if may else "")


def _hint(code: str, prop: str, schema: Mapping[str, Any], kind: Kind) -> str:
    found = _HINTS.get((code, prop))
    if found:
        return found
    if kind == "date":  # the browser draws its own date box: the ISO example would confuse
        return "Type the day, month and year, or pick the date from the calendar."
    if kind == "datetime":
        return "On the UK clock (GMT in winter, BST in summer)."
    if kind == "code":
        return ""
    if kind == "json":
        return _json_hint(_NOUNS.get(code, "item"), schema)
    described = schema.get("description")
    return _sentence(described) + "." if isinstance(described, str) else ""


def _code_options(category: Category, prop: str, text: str) -> tuple[tuple[str, str], ...]:
    """The catalog's codes for `prop` in words, and the code the field holds if it is
    another (a device may send one the catalog has no words for: it must not be lost)."""
    known = tuple(category.codes.get(prop, {}).items())
    if text and text not in dict(known):
        known += ((text, category.code_label(prop, text)),)
    return known


def _make_field(category: Category, prop: str, schema: Mapping[str, Any], *, name: str,
                label: str, required: bool, form: Mapping[str, str],
                problem: Problem | None) -> Field:
    code, text = category.code, form.get(name, "")
    kind: Kind = "code" if prop in category.codes else _kind(schema, prop)
    options = _code_options(category, prop, text) if kind == "code" else \
        tuple((v, w) for v, w, _ in _options(schema))
    return Field(
        name=name, label=label, kind=kind, required=required, text=text,
        hint=_hint(code, prop, schema, kind), autocomplete=_AUTOCOMPLETE.get((code, prop), ""),
        options=options,
        error=problem.text if problem is not None and problem.field == name else "",
        was=form.get(name + WAS, "") if kind == "datetime" else "")


def _object_fields(category: Category, schema: Mapping[str, Any], form: Mapping[str, str],
                   problem: Problem | None, index: int | None = None) -> tuple[Field, ...]:
    required = set(schema.get("required", ()))
    return tuple(
        _make_field(category, p, s, name=_field_name(p, index), label=_label(category.code, p),
                    required=p in required, form=form, problem=problem)
        for p, s in schema["properties"].items())


def edit_form(category: Category, form: Mapping[str, str], *, problem: Problem | None = None,
              more: int = 0, start: int = 0) -> EditForm:
    """The form for `category` showing `form` (a value's fields, or what was typed);
    a list gets `more` empty groups to add items, and its groups are numbered from
    `start` + 1 (a page of a longer list)."""
    code, schema = category.code, category.schema
    layout = layout_of(schema)
    if layout == "object":
        return EditForm(layout, _object_fields(category, schema, form, problem),
                        problem=problem)
    if layout in ("single", "json"):
        one = _make_field(category, "", schema, name="value", label=category.label,
                          required=True, form=form, problem=problem)
        example = EXAMPLES.get(code)
        return EditForm(layout, (one,), problem=problem,
                        example="" if example is None else json.dumps(example, indent=2))
    noun = _NOUNS.get(code, "item")
    indices = _group_indices(form)
    following = (indices[-1] + 1) if indices else 0
    indices += list(range(following, following + more))
    groups = []
    for n, index in enumerate(indices, start=start + 1):
        fields = _object_fields(category, schema["items"], form, problem, index)
        blank = not any(f.text.strip() for f in fields)
        legend = f"New {noun} (leave it empty if you have none to add)" if blank else \
            f"{_sentence(noun)} {n}"
        groups.append(Group(index, legend, fields, blank,
                            form.get(f"remove.{index}") == "yes"))
    long = not isinstance(schema.get("maxItems"), int) or schema["maxItems"] > PAGE_ITEMS
    return EditForm(layout, groups=tuple(groups), noun=noun, problem=problem, rows=long)


# --- errors, in the words of the form -------------------------------------------------------

_MISSING_WORDS = "is missing. Please fill it in"
_PATH_PART = re.compile(r"\[([0-9]+)\]|\.?([^.\[]+)")
_REQUIRED = re.compile(r"is missing the required field '([^']+)'")


def _path(text: str) -> list[int | str]:
    return [int(m.group(1)) if m.group(1) is not None else m.group(2)
            for m in _PATH_PART.finditer(text)]


def explain(category: Category, error: Exception, reading: FormReading | None = None
            ) -> Problem:
    """The field an error is about and what to tell the citizen.

    A FormError names its field. A validation message from the catalog reads
    "<code>: <where> <reason>" (`vault.domain.categories`), where <where> is "the value"
    or a path such as `lines[1]` or `[2].since`; it never quotes the value.
    """
    form = edit_form(category, {}, more=1)
    first = form.all_fields[0].name if form.all_fields else "value"
    if isinstance(error, FormError):
        label = next((f.label for f in form.all_fields if f.name == error.field),
                     category.label)
        if form.layout == "items" and (m := _ITEM_KEY.fullmatch(error.field)):
            label = _label(category.code, m.group(2))
        return Problem(error.field, _sentence(f"{label} {error.reason}."))
    message = str(error)
    rest = message.removeprefix(f"{category.code}: ")
    if rest.startswith("the value "):
        where: list[int | str] = []
        reason = rest.removeprefix("the value ")
    else:
        spot, _, reason = rest.partition(" ")
        where = _path(spot)
    if m := _REQUIRED.fullmatch(reason):
        where.append(m.group(1))
        reason = _MISSING_WORDS
    return _locate(category, form.layout, where, reason.rstrip("."), first, reading)


def _locate(category: Category, layout: Layout, where: list[int | str], reason: str,
            first: str, reading: FormReading | None) -> Problem:
    code = category.code
    if layout == "object" and where and isinstance(where[0], str):
        prop = where[0]
        sub = category.schema["properties"].get(prop, {})
        kind = _kind(sub, prop)
        if reason == _MISSING_WORDS and kind in ("yesno", "choice"):
            what = "Yes or No" if kind == "yesno" else "one of the choices"
            return Problem(_field_name(prop), f"Choose {what} for “{_label(code, prop)}”.")
        line = f" (line {where[1] + 1})" if len(where) > 1 and isinstance(where[1], int) else ""
        return Problem(_field_name(prop), _sentence(f"{_label(code, prop)}{line} {reason}."))
    on_page = -1 if reading is None or not where or not isinstance(where[0], int) \
        else where[0] - reading.start  # the error's item among the page's items
    if layout == "items" and reading is not None and 0 <= on_page < len(reading.groups):
        index = reading.groups[on_page]
        # Numbered as the page numbers its groups (empty and removed ones count there).
        number = reading.start + (reading.posted.index(index) + 1 if index in reading.posted
                                  else on_page + 1)
        noun = f"{_NOUNS.get(code, 'item')} {number}"
        if len(where) > 1 and isinstance(where[1], str):
            return Problem(_field_name(where[1], index),
                           _sentence(f"{_label(code, where[1])} ({noun}) {reason}."))
        props = list(category.schema["items"]["properties"])
        return Problem(_field_name(props[0], index), _sentence(f"{noun} {reason}."))
    if layout in ("single", "json", "items") and where:
        # An item the page does not show (a stored one on another page) is named by number.
        noun = _NOUNS.get(code, "item") if layout == "items" else "item"
        spot = ", ".join(f"{noun} {p + 1}" if isinstance(p, int)
                         else _label(code, p) if layout == "items" else p for p in where)
        return Problem("value" if layout != "items" else first,
                       _sentence(f"{category.label} ({spot}) {reason}."))
    return Problem(first, _sentence(f"{category.label} {reason}."))


# --- a value in plain words ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Shown:
    """A value as the page shows it: a text, lines (an address), a list, or labelled parts."""

    kind: Literal["text", "lines", "list", "pairs"]
    text: str = ""
    lines: tuple[str, ...] = ()
    items: tuple[Shown, ...] = ()
    pairs: tuple[tuple[str, Shown], ...] = ()
    more: int = 0


def readable_date(text: str) -> str:
    """2024-05-17 as people write it: 17 May 2024 (other text as it is)."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return text
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"


def _readable_datetime(text: str) -> str:
    """An RFC 3339 time on London's clock: 17 May 2024, 10:30 BST (other text as it is)."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return text
    return when(at) if at.tzinfo is not None else text


def _scalar_words(schema: Mapping[str, Any], value: Any, codes: Category | None = None,
                  prop: str = "") -> str:
    """One value in words; `codes` (the category) gives words for a code `prop` holds."""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if codes is not None and prop in codes.codes and isinstance(value, str):
        return codes.code_label(prop, value)
    if "enum" in schema:
        return _choice_words(value)
    if isinstance(value, str):
        fmt = schema.get("format")
        return readable_date(value) if fmt == "date" else \
            _readable_datetime(value) if fmt == "date-time" else value
    if value is None:
        return "Nothing"
    return str(value) if isinstance(value, int) else json.dumps(value, ensure_ascii=False)


def _one_line(category: Category, schema: Mapping[str, Any], value: dict[str, Any]) -> str:
    props = schema.get("properties", {})
    return "; ".join(
        f"{_label(category.code, k)}: {_scalar_words(props.get(k, {}), v, category, k)}"
        for k, v in value.items())


def _show(category: Category, schema: Mapping[str, Any], value: Any, prop: str = ""
          ) -> Shown:
    code = category.code
    if isinstance(value, list):
        inner = schema.get("items", {})
        items = tuple(Shown("text", _one_line(category, inner, v)) if isinstance(v, dict)
                      else _show(category, inner, v) for v in value[:_SHOW_ITEMS])
        return Shown("list", items=items, more=max(0, len(value) - _SHOW_ITEMS))
    if isinstance(value, dict):
        props = schema.get("properties", {})
        order = [p for p in props if p in value] + [k for k in value if k not in props]
        return Shown("pairs", pairs=tuple(
            (_label(code, k), _show(category, props.get(k, {}), value[k], k)) for k in order))
    return Shown("text", _scalar_words(schema, value, category, prop))


def _name(value: Any) -> Shown:
    return Shown("text", f"{value['given']} {value['family']}")


def _address(value: Any) -> Shown:
    lines = [*value["lines"], value["town"], value["postcode"]]
    return Shown("lines", lines=(*[str(x) for x in lines],
                                 f"Council: {value['local_authority']}"))


def _observations(value: Any, category: Category) -> Shown:
    def line(reading: Mapping[str, Any]) -> str:
        what = category.code_label("kind", reading["kind"])
        return f"{what}: {reading['value']} {reading['unit']}, {_readable_datetime(reading['at'])}"

    return Shown("list", items=tuple(Shown("text", line(r)) for r in value[:_SHOW_ITEMS]),
                 more=max(0, len(value) - _SHOW_ITEMS))


_SPECIAL = {"identity.name": lambda value, _: _name(value),
            "address.home": lambda value, _: _address(value),
            "health.observations": _observations}


def show_value(category: Category, value: Any) -> Shown:
    """`value` of `category` in plain words: a name as "Ada Lovelace", dates as
    "10 December 1950", times on London's clock, codes in the catalog's words ("Heart
    rate"), yes/no, lists as lists, an address as lines."""
    special = _SPECIAL.get(category.code)
    if special is not None:
        try:
            return special(value, category)
        except (KeyError, TypeError):  # a value of an older shape: show it plainly
            pass
    return _show(category, category.schema, value)
