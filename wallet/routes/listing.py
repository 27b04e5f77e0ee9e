"""Rows of the activity tables, shared by the dashboard, the activity page and a grant."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from sqlmodel import Session, col, select

from vault.domain.purposes import purposes as purpose_catalog
from vault.services.activity import AccessView
from vault.storage.tables import GrantRow
from wallet.views import category_label, derived_label, when

__all__ = ["AccessRow", "access_rows"]


@dataclass(frozen=True, slots=True)
class AccessRow:
    seq: int
    grant_id: str
    service: str
    what: tuple[str, ...]
    purpose: str
    at: str


def access_rows(session: Session, items: Sequence[AccessView], names: dict[str, str]
                ) -> list[AccessRow]:
    """Accesses in words; one query for the purposes of all their grants."""
    ids = sorted({a.grant_id for a in items})
    purposes: dict[str, str] = {}
    if ids:
        for gid, terms in session.execute(
            select(col(GrantRow.id), col(GrantRow.terms)).where(col(GrantRow.id).in_(ids))
        ).all():
            code = orjson.loads(terms)["purpose"]
            found = purpose_catalog().get(code)
            purposes[gid] = found.text if found is not None else code
    return [
        AccessRow(a.seq, a.grant_id, names.get(a.service_id, "A service"),
                  tuple(category_label(c) for c in a.categories)
                  + tuple(f"Answer only: {derived_label(d)}" for d in a.derived),
                  purposes.get(a.grant_id, ""), when(a.at))
        for a in items
    ]
