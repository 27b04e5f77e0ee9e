"""The purposes catalog: why a service may ask, its GDPR lawful basis and its W3C DPV term.

Kept as data in `catalog/purposes.json`, loaded once. `dpv` is a compact IRI in the DPV
namespace (`dpv:` = https://w3id.org/dpv#); `dpv_iri` expands it for consent receipts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import MappingProxyType

__all__ = ["DPV_NAMESPACE", "Purpose", "purposes"]

DPV_NAMESPACE = "https://w3id.org/dpv#"


@dataclass(frozen=True)
class Purpose:
    """A purpose code with the text a citizen reads and the law it rests on."""

    code: str
    text: str
    lawful_basis: str
    lawful_basis_text: str
    dpv: str

    @property
    def dpv_iri(self) -> str:
        """The full DPV IRI, e.g. https://w3id.org/dpv#ServiceProvision."""
        return DPV_NAMESPACE + self.dpv.removeprefix("dpv:")


@cache
def purposes() -> Mapping[str, Purpose]:
    """Every purpose by code (loaded once from the package's catalog)."""
    raw = resources.files("vault.domain").joinpath("catalog/purposes.json").read_text("utf-8")
    data = json.loads(raw)
    bases: dict[str, str] = data["lawful_bases"]
    found: dict[str, Purpose] = {}
    for code, entry in data["purposes"].items():
        basis = entry["lawful_basis"]
        if basis not in bases:
            raise ValueError(f"purpose {code!r} names an unknown lawful basis {basis!r}")
        found[code] = Purpose(
            code=code,
            text=entry["text"],
            lawful_basis=basis,
            lawful_basis_text=bases[basis],
            dpv=entry["dpv"],
        )
    return MappingProxyType(found)
