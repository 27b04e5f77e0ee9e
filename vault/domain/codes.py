"""Every code a service can be registered with, and the words citizens read for it.

One list for `vault catalog list`, the help of `vault service add` and the errors that
name the valid codes, so none of them can drift from the catalogs themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

from vault.domain.categories import categories
from vault.domain.derived import BENEFITS, resolve_derived, static_derived_names
from vault.domain.purposes import purposes

__all__ = [
    "ISSUED_ONLY",
    "RESIDENT_IN",
    "Code",
    "category_codes",
    "derived_codes",
    "purpose_codes",
    "spelled",
]

#: The pattern of the one derived answer that takes free text: any local authority.
RESIDENT_IN = "resident_in:<local authority>"
#: What a derived answer resting on issued facts (`DerivedAnswer.issued_only`) counts.
ISSUED_ONLY = ("Counts only what the service that issues it added to the vault: a value "
               "the citizen typed themselves is not evidence of it, and the answer is "
               "then unknown.")


@dataclass(frozen=True, slots=True)
class Code:
    """A code, the words a citizen reads for it, and more about it when there is more
    (a purpose's lawful basis, a category's description)."""

    code: str
    words: str
    more: str = ""
    #: For a category a service may issue (`vault service add --issues`): who issues it.
    issued_by: str | None = None
    #: For a derived answer: it counts only issued records (`ISSUED_ONLY` says so).
    issued_only: bool = False


def purpose_codes() -> list[Code]:
    return [Code(p.code, p.text, p.lawful_basis_text)
            for p in sorted(purposes().values(), key=lambda p: p.code)]


def category_codes() -> list[Code]:
    return [Code(c.code, c.label, c.description, c.issued_by)
            for c in sorted(categories().values(), key=lambda c: c.code)]


def derived_codes() -> list[Code]:
    """The fixed answers, each `receives:` benefit, and the `resident_in:` pattern."""
    names = [*static_derived_names(), *(f"receives:{b}" for b in sorted(BENEFITS))]
    answers = [resolve_derived(n) for n in names]
    found = [Code(a.name, a.label, ISSUED_ONLY if a.issued_only else a.rule,
                  issued_only=a.issued_only) for a in answers]
    found.append(Code(RESIDENT_IN, "Whether you live in the local authority named",
                      "e.g. resident_in:Riverside"))
    return found


def spelled(codes: list[Code]) -> str:
    """The codes as an error message or a help text lists them: 'a, b, c'."""
    return ", ".join(c.code for c in codes)
