"""The public transparency report: registered services, and how often grants and reads
happen, with small numbers hidden so that nobody can be singled out.

Three steps, each testable alone:

- the atoms, the finest groups a figure is built from, are counted from the public
  ledger (`vault.services.transparency_counts`, with `ledger.transparency`: the code an
  auditor recounts with): grants by the calendar month (UTC) they were asked for and the
  state they are in now; reads by month, service, purpose and the exact sets of
  categories and derived answers released. The ledger keeps every entry, so erasing a
  citizen never lowers a count;
- `suppress` (pure, `ledger.transparency`) turns atom counts into published figures;
- `build_report` (pure) lays the figures out for the page and its JSON, with how many
  entries were counted (`ledger_size`) and the checkpoint that signs exactly those.

The suppression rule (`SUPPRESSION_RULE`): an atom of 1 to `threshold - 1` is never
shown, and neither is any figure that includes one; such a figure is published as a
range computed from the shown atoms and the number of hidden ones. So every published
number is a function of the shown atoms alone: changing a hidden atom to any other small
value changes nothing that is published, and no hidden number can be worked out by
adding or subtracting published ones, in one table or across tables. Every exact figure
is a sum of shown atoms, so it is 0 or at least the threshold.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select, text
from sqlmodel import Session, col

from ledger.checkpoint import parse_checkpoint
from ledger.errors import LedgerError
from ledger.note import parse_note
from ledger.sqlstore import SqlLedger
from ledger.transparency import (
    ALL_MONTHS,
    SUPPRESSION_THRESHOLD,
    ZERO,
    AccessAtom,
    Figure,
    GrantAtom,
    access_figures,
    grant_figures,
    suppress,
)
from vault.domain.categories import categories as category_catalog
from vault.domain.derived import resolve_derived
from vault.domain.errors import DomainError
from vault.domain.grants import GrantState
from vault.domain.purposes import purposes as purpose_catalog
from vault.services.context import VaultContext, reading
from vault.services.transparency_counts import counted
from vault.storage.tables import ServiceRow

__all__ = [
    "SUPPRESSION_RULE",
    "SUPPRESSION_THRESHOLD",
    "SUPPRESSION_WHY",
    "ZERO",
    "AccessAtom",
    "AccessMonth",
    "Accesses",
    "CheckpointInfo",
    "Figure",
    "GrantAtom",
    "GrantMonth",
    "Grants",
    "Named",
    "PurposeInfo",
    "Report",
    "ServiceInfo",
    "build_report",
    "category_label",
    "checkpoint_at",
    "derived_label",
    "latest_checkpoint",
    "month_of",
    "months_between",
    "purpose_info",
    "services",
    "suppress",
    "transparency_report",
]

SUPPRESSION_RULE = (
    "Every figure is a sum of the smallest groups the vault counts: for grants, the month "
    "a grant was asked for and the state it is in now; for data accesses, the month, the "
    "service, the purpose and the exact kinds of data and answers released. A group of 1 "
    "to {low} is never shown, and neither is any figure that includes one: that figure is "
    "given as a range (at_least to at_most) worked out from the groups that are shown and "
    "how many are hidden. Every published number therefore depends only on groups of 0 or "
    "at least {threshold}, so no hidden number can be worked out by adding or subtracting "
    "published ones. Zero is shown as zero."
)
SUPPRESSION_WHY = (
    "A small number can point at a person: if a report says that 2 people's health "
    "records were read in a month, someone who knows one of them learns a lot. Like the "
    "Office for National Statistics and the NHS when they publish tables, we hide small "
    "counts, and any total that would give them away, so that nobody can be singled out."
)

_ALL = ALL_MONTHS


def month_of(when: datetime) -> str:
    """The calendar month (UTC) as the counts name it: 'YYYY-MM'."""
    return when.astimezone(UTC).strftime("%Y-%m")


# -- services and the checkpoint ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Named:
    code: str
    label: str


@dataclass(frozen=True, slots=True)
class PurposeInfo:
    code: str
    text: str
    lawful_basis: str
    lawful_basis_text: str


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    """What anyone may know about a registered service (nothing about its citizens)."""

    id: str
    name: str
    description: str
    purposes: tuple[PurposeInfo, ...]
    categories: tuple[Named, ...]
    derived: tuple[Named, ...]
    max_days: int
    privacy_notice_url: str
    dpia_url: str | None
    active: bool
    registered_at: datetime


def purpose_info(code: str) -> PurposeInfo:
    found = purpose_catalog().get(code)
    if found is None:  # a code since dropped from the catalog: say so, do not fail
        return PurposeInfo(code, code, "unknown", "not in the purpose catalog")
    return PurposeInfo(code, found.text, found.lawful_basis, found.lawful_basis_text)


def category_label(code: str) -> Named:
    found = category_catalog().get(code)
    return Named(code, found.label if found else code)


def derived_label(name: str) -> Named:
    try:
        return Named(name, resolve_derived(name).label)
    except DomainError:
        return Named(name, name)


def _one_snapshot(session: Session) -> None:
    """Every query of the report sees the same database (the counts and the cursor with
    the checkpoint). PostgreSQL's default (READ COMMITTED) gives each statement its own
    snapshot; SQLite's read transaction is one snapshot already."""
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def services(session: Session) -> list[ServiceInfo]:
    """Every registered service, oldest first, with its catalog texts."""
    rows = session.execute(select(ServiceRow).order_by(
        col(ServiceRow.created_at), col(ServiceRow.name), col(ServiceRow.id))).scalars()
    return [ServiceInfo(
        id=r.id, name=r.name, description=r.description,
        purposes=tuple(purpose_info(p) for p in r.purposes),
        categories=tuple(category_label(c) for c in r.categories),
        derived=tuple(derived_label(d) for d in r.derived), max_days=r.max_days,
        privacy_notice_url=r.privacy_notice_url, dpia_url=r.dpia_url, active=r.active,
        registered_at=r.created_at) for r in rows]


@dataclass(frozen=True, slots=True)
class CheckpointInfo:
    size: int
    #: base64, as in the note.
    root: str
    #: The whole signed note, exactly as GET /ledger/checkpoint serves it.
    note: str


def _info(note: str) -> CheckpointInfo | None:
    try:
        body = parse_checkpoint(parse_note(note).text)
    except LedgerError:
        return None
    return CheckpointInfo(body.size, base64.b64encode(body.root).decode(), note)


def latest_checkpoint(conn: Connection) -> CheckpointInfo | None:
    """The newest signed checkpoint (not verified here: the page says how to)."""
    latest = SqlLedger(conn).latest_checkpoint()
    return _info(latest[1]) if latest is not None else None


def checkpoint_at(conn: Connection, size: int) -> CheckpointInfo | None:
    """The signed checkpoint of exactly `size` entries, if one was published."""
    note = conn.execute(text("SELECT note FROM ledger_checkpoints WHERE size = :size"),
                        {"size": size}).scalar()
    return _info(note) if note is not None else None


# -- the report (pure) ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GrantMonth:
    month: str
    total: Figure
    by_state: dict[str, Figure]


@dataclass(frozen=True, slots=True)
class Grants:
    total: Figure
    by_state: dict[str, Figure]
    months: list[GrantMonth]


@dataclass(frozen=True, slots=True)
class AccessMonth:
    month: str
    total: Figure
    by_service: dict[str, Figure]
    by_purpose: dict[str, Figure]
    by_category: dict[str, Figure]
    by_derived: dict[str, Figure]


@dataclass(frozen=True, slots=True)
class Accesses:
    """All-time figures, and the same per month."""

    total: Figure
    by_service: dict[str, Figure]
    by_purpose: dict[str, Figure]
    by_category: dict[str, Figure]
    by_derived: dict[str, Figure]
    months: list[AccessMonth]


@dataclass(frozen=True, slots=True)
class Report:
    generated_at: datetime
    threshold: int
    services: list[ServiceInfo]
    #: Purposes, categories and derived answers the figures name (registered or seen).
    purposes: list[PurposeInfo]
    categories: list[Named]
    derived: list[Named]
    grants: Grants
    accesses: Accesses
    #: The newest signed checkpoint (for the audit commands).
    checkpoint: CheckpointInfo | None
    #: How many ledger entries the figures count (0 .. ledger_size - 1), and the signed
    #: checkpoint of exactly those entries, if one was published: what
    #: `vault-audit transparency` recounts and holds the figures against.
    ledger_size: int = 0
    counted_checkpoint: CheckpointInfo | None = None


def months_between(first: str, last: str) -> list[str]:
    """Every month from `first` to `last` ('YYYY-MM'), both included."""
    year, month = map(int, first.split("-"))
    end = tuple(map(int, last.split("-")))
    found: list[str] = []
    while (year, month) <= end:
        found.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return found


def _dense(figures: Mapping[Any, Figure], month: str, dimension: str,
           keys: Sequence[str]) -> dict[str, Figure]:
    return {k: figures.get((month, dimension, k), ZERO) for k in keys}


def build_report(
    *, services: Sequence[ServiceInfo], grants: Mapping[GrantAtom, int],
    accesses: Mapping[AccessAtom, int], checkpoint: CheckpointInfo | None, now: datetime,
    threshold: int = SUPPRESSION_THRESHOLD, ledger_size: int = 0,
    counted_checkpoint: CheckpointInfo | None = None,
) -> Report:
    """Suppress and lay out the figures: every month from the first one with data to
    the current one, every registered service, state, purpose and category (zero when
    nothing happened), so the tables never change shape with the data."""
    months = sorted({a.month for a in grants} | {a.month for a in accesses})
    months = months_between(months[0], max(months[-1], month_of(now))) if months else []
    states = [s.value for s in GrantState]
    service_ids = [s.id for s in services]
    service_ids += sorted({a.service_id for a in accesses} - set(service_ids))
    purpose_codes = sorted({p.code for s in services for p in s.purposes}
                           | {a.purpose for a in accesses})
    category_codes = sorted({c.code for s in services for c in s.categories}
                            | {c for a in accesses for c in a.categories})
    derived_names = sorted({d.code for s in services for d in s.derived}
                           | {d for a in accesses for d in a.derived})

    g = grant_figures(grants, threshold=threshold)
    a = access_figures(accesses, threshold=threshold)

    def access_month(month: str) -> AccessMonth:
        return AccessMonth(
            month, a.get((month, "total", ""), ZERO),
            _dense(a, month, "service", service_ids), _dense(a, month, "purpose", purpose_codes),
            _dense(a, month, "category", category_codes),
            _dense(a, month, "derived", derived_names))

    everything = access_month(_ALL)
    return Report(
        generated_at=now, threshold=threshold, services=list(services),
        purposes=[purpose_info(p) for p in purpose_codes],
        categories=[category_label(c) for c in category_codes],
        derived=[derived_label(d) for d in derived_names],
        grants=Grants(
            g.get((_ALL, "total", ""), ZERO), _dense(g, _ALL, "state", states),
            [GrantMonth(m, g.get((m, "total", ""), ZERO), _dense(g, m, "state", states))
             for m in months]),
        accesses=Accesses(everything.total, everything.by_service, everything.by_purpose,
                          everything.by_category, everything.by_derived,
                          [access_month(m) for m in months]),
        checkpoint=checkpoint, ledger_size=ledger_size, counted_checkpoint=counted_checkpoint)


def transparency_report(
    ctx: VaultContext, *, now: datetime | None = None, threshold: int = SUPPRESSION_THRESHOLD,
) -> Report:
    """Everything the public transparency page shows, from one read-only transaction:
    the atoms counted so far (never a scan of the ledger or of the grants)."""
    with reading(ctx) as session:
        _one_snapshot(session)
        found = services(session)
        conn = session.connection()
        atoms = counted(conn)
        checkpoint = latest_checkpoint(conn)
        agreed = (checkpoint if checkpoint is not None and checkpoint.size == atoms.size
                  else checkpoint_at(conn, atoms.size))
    return build_report(services=found, grants=atoms.grants, accesses=atoms.accesses,
                        checkpoint=checkpoint, now=now or ctx.clock(), threshold=threshold,
                        ledger_size=atoms.size, counted_checkpoint=agreed)
