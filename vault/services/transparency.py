"""The public transparency report: registered services, and how often grants and reads
happen, with small numbers hidden so that nobody can be singled out.

Three steps, each testable alone:

- the queries (`grant_atoms`, `access_atoms`) count rows per *atom*, the finest group a
  figure is built from, with GROUP BY in SQL (the tables may hold millions of rows; the
  atoms are a few hundred): grants by the calendar month (UTC) they were asked for and
  the state they are in now; reads by month, service, purpose and the exact sets of
  categories and derived answers released;
- `suppress` (pure) turns atom counts into published figures;
- `build_report` (pure) lays the figures out for the page and its JSON.

Erasure deletes a citizen's grants and reads, so published counts would go down and
disagree with the ledger. `keep_erased_counts`, in the erasure's transaction, adds them
to `transparency_counts` first (grants in the state the ledger says erasure ended them
in), and `erased_atoms` adds those into the atoms: the figures come out as if the rows
were still there. Atoms are summed before suppression, so the rule below holds as is.

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
import hashlib
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeVar

import orjson
from sqlalchemy import Text, cast, func, literal_column, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from ledger.checkpoint import parse_checkpoint
from ledger.errors import LedgerError
from ledger.note import parse_note
from ledger.sqlstore import SqlLedger
from vault.domain.categories import categories as category_catalog
from vault.domain.derived import resolve_derived
from vault.domain.errors import DomainError
from vault.domain.grants import GrantState
from vault.domain.purposes import purposes as purpose_catalog
from vault.services.context import VaultContext, reading
from vault.storage.tables import AccessRow, GrantRow, ServiceRow, TransparencyCountRow

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
    "access_atoms",
    "build_report",
    "category_label",
    "derived_label",
    "erased_atoms",
    "grant_atoms",
    "keep_erased_counts",
    "latest_checkpoint",
    "month_of",
    "months_between",
    "purpose_info",
    "report_atoms",
    "services",
    "suppress",
    "transparency_report",
]

#: Counts from 1 to 9 are never published.
SUPPRESSION_THRESHOLD = 10

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

#: The month key of all-time figures in `suppress`'s groups.
_ALL = ""

K = TypeVar("K", bound=Hashable)
G = TypeVar("G", bound=Hashable)


# -- suppression (pure) ------------------------------------------------------------------


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


# -- atoms (SQL) -----------------------------------------------------------------------


class GrantAtom(NamedTuple):
    month: str
    state: str


class AccessAtom(NamedTuple):
    month: str
    service_id: str
    purpose: str
    categories: frozenset[str]
    derived: frozenset[str]


def month_of(when: datetime) -> str:
    """The calendar month (UTC) as the queries name it: 'YYYY-MM'."""
    return when.astimezone(UTC).strftime("%Y-%m")


def _utc_month(column: Any, dialect: str) -> ColumnElement[str]:
    """`month_of` in SQL, for a `UtcDateTime` column. Constants are inlined, not bound,
    so the expression in SELECT is the very one in GROUP BY (PostgreSQL insists)."""
    if dialect == "postgresql":
        # timestamptz: take the UTC wall time, whatever the session's time zone.
        utc = func.timezone(literal_column("'UTC'"), column)
        return func.to_char(utc, literal_column("'YYYY-MM'"))
    # SQLite: UtcDateTime stores naive UTC text ("2026-11-22 09:00:00.000000").
    return func.strftime(literal_column("'%Y-%m'"), column)


def _purpose(terms: Any, dialect: str) -> ColumnElement[str]:
    """The purpose code inside a grant's terms (JSON text)."""
    if dialect == "postgresql":
        return cast(terms, JSONB).op("->>")(literal_column("'purpose'"))
    return func.json_extract(terms, literal_column("'$.purpose'"))


def grant_atoms(session: Session) -> dict[GrantAtom, int]:
    """How many grants were asked for in each month and are in each state now."""
    dialect = session.get_bind().dialect.name
    month = _utc_month(col(GrantRow.requested_at), dialect)
    rows = session.execute(select(month, col(GrantRow.state), func.count())
                           .group_by(month, col(GrantRow.state))).all()
    return {GrantAtom(m, state): int(n) for m, state, n in rows}


def _names(text: str | None) -> frozenset[str]:
    return frozenset(orjson.loads(text)) if text else frozenset()


def access_atoms(session: Session, *, citizen_id: str | None = None) -> dict[AccessAtom, int]:
    """How many reads fall in each month, service, purpose and released set (of one
    citizen's grants only, given `citizen_id`).

    The sets are grouped by their JSON text and normalised here, so two spellings of one
    set (never written today: the vault sorts them) still make one atom.
    """
    dialect = session.get_bind().dialect.name
    # First per grant, from the accesses table alone; only then join the (far fewer)
    # groups to their grant for its purpose: no JSON is parsed per read.
    inner_keys: tuple[ColumnElement[Any], ...] = (
        _utc_month(col(AccessRow.at), dialect).label("month"),
        col(AccessRow.service_id).label("service_id"), col(AccessRow.grant_id).label("grant_id"),
        cast(col(AccessRow.categories), Text).label("categories"),
        cast(col(AccessRow.derived), Text).label("derived"))
    inner = select(*inner_keys, func.count().label("n"))
    if citizen_id is not None:
        inner = inner.where(col(AccessRow.citizen_id) == citizen_id)
    per_grant = inner.group_by(*inner_keys).subquery("per_grant")
    keys = (per_grant.c.month, per_grant.c.service_id, _purpose(col(GrantRow.terms), dialect),
            per_grant.c.categories, per_grant.c.derived)
    rows = session.execute(
        select(*keys, func.sum(per_grant.c.n))
        .join_from(per_grant, GrantRow, col(GrantRow.id) == per_grant.c.grant_id)
        .group_by(*keys)).all()
    atoms: dict[AccessAtom, int] = defaultdict(int)
    for m, service_id, code, cats, derived, n in rows:
        atoms[AccessAtom(m, service_id, code or "", _names(cats), _names(derived))] += int(n)
    return dict(atoms)


# -- what erased citizens did (SQL) ---------------------------------------------------------

_GRANT, _ACCESS = "grant", "access"


def _atom_row(kind: str, month: str, service_id: str, purpose: str, state: str,
              categories: Iterable[str], derived: Iterable[str], n: int) -> dict[str, Any]:
    fields = [kind, month, service_id, purpose, state, sorted(categories), sorted(derived)]
    return {"atom": hashlib.sha256(orjson.dumps(fields)).hexdigest(), "kind": kind,
            "month": month, "service_id": service_id, "purpose": purpose, "state": state,
            "categories": fields[5], "derived": fields[6], "count": n}


def keep_erased_counts(session: Session, citizen_id: str, *,
                       final_states: Mapping[str, str]) -> None:
    """Add a citizen's grants and reads to `transparency_counts`, in the transaction
    that erases them, before their rows are deleted.

    `final_states` maps a grant's state now to the one the erasure ends it in (and
    writes on the ledger: a waiting request is denied, a live grant revoked); the
    other states stay as they are. The caller holds the citizen's grants locked, so no
    read can add an access row between these counts and the deletion.
    """
    grants: Counter[tuple[str, str, str, str]] = Counter()
    for requested_at, service_id, terms, state in session.execute(
            select(col(GrantRow.requested_at), col(GrantRow.service_id), col(GrantRow.terms),
                   col(GrantRow.state)).where(col(GrantRow.citizen_id) == citizen_id)):
        purpose = str(orjson.loads(terms).get("purpose", ""))
        grants[month_of(requested_at), service_id, purpose, final_states.get(state, state)] += 1
    rows = [_atom_row(_GRANT, m, sid, p, state, (), (), n)
            for (m, sid, p, state), n in grants.items()]
    rows += [_atom_row(_ACCESS, a.month, a.service_id, a.purpose, "", a.categories, a.derived,
                       n) for a, n in access_atoms(session, citizen_id=citizen_id).items()]
    if not rows:
        return
    table = TransparencyCountRow.__table__  # type: ignore[attr-defined]
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    # One statement; rows in one order, so two erasures at once cannot deadlock on them.
    insert = dialect.insert(table).values(sorted(rows, key=lambda r: r["atom"]))
    session.execute(insert.on_conflict_do_update(
        index_elements=[table.c.atom], set_={"count": table.c.count + insert.excluded.count}))


def erased_atoms(session: Session) -> tuple[dict[GrantAtom, int], dict[AccessAtom, int]]:
    """The counts kept from erased citizens, as the report's atoms."""
    grants: dict[GrantAtom, int] = defaultdict(int)
    accesses: dict[AccessAtom, int] = defaultdict(int)
    for row in session.execute(select(TransparencyCountRow)).scalars():
        if row.kind == _GRANT:
            grants[GrantAtom(row.month, row.state)] += row.count
        else:
            accesses[AccessAtom(row.month, row.service_id, row.purpose,
                                frozenset(row.categories), frozenset(row.derived))] += row.count
    return dict(grants), dict(accesses)


def _add(*parts: Mapping[K, int]) -> dict[K, int]:
    total: dict[K, int] = defaultdict(int)
    for part in parts:
        for atom, n in part.items():
            total[atom] += n
    return dict(total)


def report_atoms(session: Session) -> tuple[dict[GrantAtom, int], dict[AccessAtom, int]]:
    """Every atom the report counts: the rows there are, and what erased citizens did."""
    erased_grants, erased_accesses = erased_atoms(session)
    return (_add(grant_atoms(session), erased_grants),
            _add(access_atoms(session), erased_accesses))


def _one_snapshot(session: Session) -> None:
    """Every query of the report sees the same database. PostgreSQL's default (READ
    COMMITTED) gives each statement its own snapshot: an erasure committing between the
    grants query and the erased counts would count that citizen twice, or not at all.
    SQLite's read transaction is one snapshot already."""
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


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


def latest_checkpoint(session: Session) -> CheckpointInfo | None:
    """The newest signed checkpoint (not verified here: the page says how to)."""
    latest = SqlLedger(session.connection()).latest_checkpoint()
    if latest is None:
        return None
    note = latest[1]
    try:
        body = parse_checkpoint(parse_note(note).text)
    except LedgerError:
        return None
    return CheckpointInfo(body.size, base64.b64encode(body.root).decode(), note)


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
    checkpoint: CheckpointInfo | None


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


def _grant_groups(atom: GrantAtom) -> Iterator[tuple[str, str, str]]:
    for month in (atom.month, _ALL):
        yield month, "total", ""
        yield month, "state", atom.state


def _access_groups(atom: AccessAtom) -> Iterator[tuple[str, str, str]]:
    for month in (atom.month, _ALL):
        yield month, "total", ""
        yield month, "service", atom.service_id
        yield month, "purpose", atom.purpose
        for code in atom.categories:
            yield month, "category", code
        for name in atom.derived:
            yield month, "derived", name


def build_report(
    *, services: Sequence[ServiceInfo], grants: Mapping[GrantAtom, int],
    accesses: Mapping[AccessAtom, int], checkpoint: CheckpointInfo | None, now: datetime,
    threshold: int = SUPPRESSION_THRESHOLD,
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

    g = suppress(grants, _grant_groups, threshold=threshold)
    a = suppress(accesses, _access_groups, threshold=threshold)

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
        checkpoint=checkpoint)


def transparency_report(
    ctx: VaultContext, *, now: datetime | None = None, threshold: int = SUPPRESSION_THRESHOLD,
) -> Report:
    """Everything the public transparency page shows, from one read-only transaction."""
    with reading(ctx) as session:
        _one_snapshot(session)
        found = services(session)
        grants, accesses = report_atoms(session)
        checkpoint = latest_checkpoint(session)
    return build_report(services=found, grants=grants, accesses=accesses,
                        checkpoint=checkpoint, now=now or ctx.clock(), threshold=threshold)
