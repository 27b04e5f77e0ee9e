"""Reading under a grant: checked live, released by the terms, logged before returned.

There is one read path, for one read or many in one transaction (group commit):

1. `plan_reads`: one SELECT of the batch's grants, with their service, citizen and the
   asked token families, locked in grant id order; one SELECT of the records they need;
   then one loop that checks each read in batch order (the grant is the service's, the
   token's family is the grant's and live, then `check_read`: the service is active, the
   grant approved, in its window, not used up, not read too soon, its state, count and
   last read as the reads before it in the batch leave them), and builds what it
   releases (`_release`). A read refused or failing here is refused alone: its outcome
   is its exception, and nothing of it will be written.
2. `write_reads`: the writes of every allowed read at once: one UPDATE of the counts,
   the `data.accessed` entries in batch order (one `append_many`, split only where a
   read exhausts its grant, so `grant.exhausted` follows that read at once), one INSERT
   of the accesses rows.

`read_in` is a batch of one. To add a rule or a field to what a read releases, extend
`ReadPlan`, the loop in `plan_reads`, `_release` and `Released`: every reader gets it.

A series (`vault.services.series`) is read from the grant's cursor: each read releases
the batches after it (at most `series.READ_BATCHES`, with "next" when more wait), so its
release is built per read, not once per grant in a batch, and its cursor moves with the
read's writes (`write_reads`). A derived answer over a series gets the items of its last
day's batches.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import Row, Select, bindparam, insert, update
from sqlmodel import col, select

from ledger.canonical import canonical_json
from vault.crypto import envelope
from vault.domain.derived import resolve_derived
from vault.domain.grants import GrantAction, GrantState, GrantTerms, check_read, exhausted_after
from vault.errors import NotAuthorized, NotFound
from vault.services import series
from vault.services.context import VaultContext, Work, unit_of_work
from vault.services.grants import lock_grant, transition
from vault.services.records import open_record
from vault.services.sources import Fetched
from vault.storage.tables import (
    AccessRow,
    CitizenRow,
    GrantRow,
    OAuthTokenFamilyRow,
    RecordRow,
    ServiceRow,
)

__all__ = ["ReadAsk", "ReadOutcome", "ReadPlan", "Release", "Released", "TokensRevoked",
           "parsed_terms", "plan_reads", "read_batch", "read_in", "read_under_grant",
           "write_reads"]


class TokensRevoked(NotAuthorized):
    """The access token's family was revoked (by its client, or after a replayed code
    or refresh token): no read, whatever the grant says."""


@dataclass(frozen=True, slots=True)
class ReadAsk:
    """One read a service asked for."""

    service_id: str
    grant_id: str
    token_family: str | None = None
    #: The records sources answered for this read, checked, fetched before its
    #: transaction (`vault.services.sources`): released as the terms allow.
    fetched: tuple[Fetched, ...] = ()


@dataclass(frozen=True, slots=True)
class Release:
    """What a service receives: only what the terms allow, and where it was logged."""

    grant_id: str
    subject: str
    data: dict[str, Any]
    derived: dict[str, Any]
    ledger_index: int
    #: Where each released category's value came from (ARCHITECTURE §8 "Provenance"):
    #: {"source": "citizen"|"issuer", "issuer", "version", "record": the issuer's JWS}.
    provenance: dict[str, dict[str, Any]] = field(default_factory=dict)


#: Each read's answer, in the order asked: its Release, or its own refusal or failure.
ReadOutcome = Release | Exception


def read_under_grant(ctx: VaultContext, *, service_id: str, grant_id: str,
                     token_family: str | None = None) -> Release:
    """One read by a service. Denied (AccessDenied) unless a live grant allows it now.

    The grant is locked and checked inside the transaction that records the access, so
    a revocation that commits first is always seen; the `data.accessed` entry commits
    before anything is returned.
    """
    with unit_of_work(ctx) as work:
        return read_in(ctx, work, service_id=service_id, grant_id=grant_id,
                       token_family=token_family)


def read_in(ctx: VaultContext, work: Work, *, service_id: str, grant_id: str,
            token_family: str | None = None, fetched: tuple[Fetched, ...] = ()) -> Release:
    """`read_under_grant` inside a transaction the caller commits: a batch of one.
    Nothing may be returned to a service before that commit."""
    [outcome] = read_batch(ctx, work, [ReadAsk(service_id, grant_id, token_family, fetched)])
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def read_batch(ctx: VaultContext, work: Work, asks: Sequence[ReadAsk]) -> list[ReadOutcome]:
    """Many reads in the caller's transaction, each checked as if made one after the
    other in this order. A failure of the writes raises (the transaction is then
    unusable: roll it back, return nothing)."""
    return write_reads(work, plan_reads(ctx, work, asks))


@lru_cache(maxsize=4096)
def parsed_terms(text: str) -> GrantTerms:
    """Parsed terms, by their exact text: terms never change, so parse each once (reads
    here, issuers' writes in `issued.writer_in`)."""
    return GrantTerms.from_json(orjson.loads(text))


# The hottest path of the vault, so it speaks SQLAlchemy Core. Its IN lists have a few
# fixed lengths (`_listed`): an expanding IN would be rendered again on every execution,
# which cost the single read about a tenth of its CPU.
_NOTHING = ""  # no grant, family, citizen or category has this id: pads an IN list


def _listed(name: str, values: Iterable[str]) -> dict[str, str]:
    """`values`, sorted, as the bind parameters name0, name1... of an IN list whose
    length is the next power of two, padded with the last value (or _NOTHING)."""
    ordered = sorted(values)
    size = 1 << max(len(ordered) - 1, 0).bit_length()
    ordered += [ordered[-1] if ordered else _NOTHING] * (size - len(ordered))
    return {f"{name}{i}": v for i, v in enumerate(ordered)}


def _in(column: Any, name: str, size: int) -> Any:
    return col(column).in_([bindparam(f"{name}{i}") for i in range(size)])


@lru_cache(maxsize=128)
def _grants(ids: int, families: int) -> Select[Any]:
    """All of a batch's grants at once, locked in id order (on PostgreSQL; SQLite's
    BEGIN IMMEDIATE already holds its one write lock): before any ledger append, in one
    order, or a batch and a revocation can deadlock (group_commit's docstring). With
    each grant, the batch's token families that belong to it (a row per family found,
    or one with none)."""
    stmt: Select[Any] = (
        select(GrantRow.id.label("grant_id"), GrantRow.state, GrantRow.terms,  # type: ignore[call-overload, attr-defined]
               GrantRow.reads, GrantRow.last_read_at, GrantRow.service_id, ServiceRow.active,
               CitizenRow.id.label("citizen_id"), CitizenRow.subject,  # type: ignore[attr-defined]
               CitizenRow.kek_id, CitizenRow.wrapped_key,
               OAuthTokenFamilyRow.id.label("family"),  # type: ignore[attr-defined]
               OAuthTokenFamilyRow.revoked_at)
        .join(ServiceRow, col(ServiceRow.id) == col(GrantRow.service_id))
        .join(CitizenRow, col(CitizenRow.id) == col(GrantRow.citizen_id))
        .outerjoin(OAuthTokenFamilyRow,
                   _in(OAuthTokenFamilyRow.id, "family", families)
                   & (col(OAuthTokenFamilyRow.grant_id) == col(GrantRow.id)))
        .where(_in(GrantRow.id, "grant", ids))
        .order_by(col(GrantRow.id))
        .with_for_update(of=GrantRow)
    )
    return stmt


@lru_cache(maxsize=128)
def _records(citizens: int, categories: int) -> Select[Any]:
    """The records of these citizens in these categories, oldest version first."""
    stmt: Select[Any] = (
        select(RecordRow.citizen_id, RecordRow.id, RecordRow.category, RecordRow.version,  # type: ignore[call-overload]
               RecordRow.ciphertext, RecordRow.source, RecordRow.record_jws,
               RecordRow.withdrawn_at)
        .where(_in(RecordRow.citizen_id, "citizen", citizens),
               _in(RecordRow.category, "category", categories))
        .order_by(col(RecordRow.version))
    )
    return stmt


_COUNT_READS = (
    update(GrantRow).where(col(GrantRow.id) == bindparam("grant_id"))
    .values(reads=bindparam("reads"), last_read_at=bindparam("now"))
)
_LOG_ACCESSES = insert(AccessRow)


@dataclass(frozen=True, slots=True)
class Released:
    """What one read releases, and the keyed commitment to it that the ledger keeps."""

    data: dict[str, Any]
    derived: dict[str, Any]
    commitment: str
    #: Category fetched at source -> its issuer (`data.accessed`'s "sources").
    sources: dict[str, str] = field(default_factory=dict)
    #: Series category -> version of the last batch released: the grant's cursor after.
    cursors: dict[str, int] = field(default_factory=dict)
    #: Released category -> where its value came from (`Release.provenance`).
    provenance: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Released category whose value an issuer wrote -> that issuer (`data.accessed`'s
    #: "issuers": who stands behind what the service was given).
    issuers: dict[str, str] = field(default_factory=dict)

    def entry(self, grant_id: str, service_id: str, subject: str) -> dict[str, Any]:
        """The `data.accessed` entry's body: names, never values."""
        body: dict[str, Any] = {
            "grant_id": grant_id, "service_id": service_id, "subject": subject,
            "categories": sorted(self.data), "derived": sorted(self.derived),
            "commitment": self.commitment}
        if self.sources:  # left out when none, so every other entry is as it was
            body["sources"] = dict(sorted(self.sources.items()))
        if self.issuers:  # the same
            body["issuers"] = dict(sorted(self.issuers.items()))
        return body

    def access_row(self, seq: int, grant_id: str, citizen_id: str, service_id: str,
                   at: datetime) -> dict[str, Any]:
        # The citizen's own view of it (the activity page), erased with them.
        return {"seq": seq, "grant_id": grant_id, "citizen_id": citizen_id,
                "service_id": service_id, "categories": sorted(self.data),
                "derived": sorted(self.derived), "at": at}


@dataclass(frozen=True, slots=True)
class ReadPlan:
    """A read that passed every check: what it releases; its writes are still to do."""

    ask: ReadAsk
    citizen_id: str
    subject: str
    released: Released
    reads: int  # the grant's read count with this read
    exhausts: bool  # this read uses up the grant: `grant.exhausted` follows its entry


@dataclass(slots=True)
class _Grant:
    """A grant as the batch found it, and as the batch's allowed reads so far leave it."""

    row: Row[Any]
    terms: GrantTerms
    state: GrantState
    reads: int
    last_read_at: datetime | None
    families: dict[str, datetime | None] = field(default_factory=dict)  # id -> revoked_at
    released: Released | None = None  # the same for every read of it in the batch
    #: Series category -> version of the last batch released to it (read by read).
    cursors: dict[str, int] = field(default_factory=dict)
    window: dict[str, list[Any]] | None = None  # series items of the last day, fetched once


def plan_reads(ctx: VaultContext, work: Work, asks: Sequence[ReadAsk]
               ) -> list[ReadPlan | Exception]:
    """Lock, read and check a batch of reads (see the module docstring); nothing is
    written yet. Each read's plan, or its own refusal or failure."""
    conn = work.session.connection()
    grants: dict[str, _Grant] = {}
    ids = _listed("grant", {a.grant_id for a in asks})
    families = _listed("family", {a.token_family for a in asks if a.token_family})
    for row in conn.execute(_grants(len(ids), len(families)), ids | families):
        g = grants.get(row.grant_id)
        if g is None:
            g = grants[row.grant_id] = _Grant(row, parsed_terms(row.terms), GrantState(row.state),
                                              row.reads, row.last_read_at)
        if row.family is not None:
            g.families[row.family] = row.revoked_at
    _series_cursors(work, grants)
    newest = _newest_records(work, grants.values())
    plans: list[ReadPlan | Exception] = []
    for ask in asks:
        try:
            plans.append(_plan(ctx, work, ask, grants.get(ask.grant_id), newest))
        except Exception as exc:  # this read's own refusal or failure; nothing written
            plans.append(exc)
    return plans


def _plan(ctx: VaultContext, work: Work, ask: ReadAsk, g: _Grant | None,
          newest: Mapping[str, Mapping[str, Any]]) -> ReadPlan:
    """Check one read against its grant as the batch so far leaves it (raising its
    refusal), then count it there."""
    if g is None or g.row.service_id != ask.service_id:
        raise NotFound("no such grant")
    if ask.token_family is not None and (ask.token_family not in g.families
                                         or g.families[ask.token_family] is not None):
        raise TokensRevoked("the access token has been revoked")
    check_read(state=g.state, terms=g.terms, now=work.now, reads_used=g.reads,
               last_read_at=g.last_read_at, service_active=g.row.active)
    row = g.row
    if g.released is None or g.cursors:
        # The same records at the same time for every read of the grant in the batch:
        # decrypted and committed to once (a series: from where the last read left it).
        key = ctx.keyring.unwrap(row.kek_id, row.wrapped_key, citizen_id=row.citizen_id)
        pages = _pages(work, g, key)
        g.released = _release(key, row.citizen_id, g.terms, newest[row.citizen_id],
                              work.now, pages, _window(work, g, key), fetched=ask.fetched)
    reads = g.reads + 1
    exhausts = exhausted_after(g.terms, reads)
    g.reads, g.last_read_at = reads, work.now
    if exhausts:
        g.state = GrantState.EXHAUSTED
    return ReadPlan(ask, row.citizen_id, row.subject, g.released, reads, exhausts)


def _series_cursors(work: Work, grants: Mapping[str, _Grant]) -> None:
    """Each grant's cursor on each series it reads (one SELECT, none for a batch without)."""
    reading = {gid: [c for c in g.terms.categories if series.is_series(c)]
               for gid, g in grants.items()}
    reading = {gid: cats for gid, cats in reading.items() if cats}
    if not reading:
        return
    found = series.cursors_of(work, list(reading))
    for gid, cats in reading.items():
        grants[gid].cursors = {c: found.get((gid, c), 0) for c in cats}


def _pages(work: Work, g: _Grant, key: bytes) -> dict[str, series.BatchPage]:
    """The batches this read releases of each series, moving the grant's cursors."""
    pages: dict[str, series.BatchPage] = {}
    for cat, after in g.cursors.items():
        rows = series.batches_after(work, g.row.citizen_id, cat, after, series.READ_BATCHES)
        page = pages[cat] = series.page_of(key, g.row.citizen_id, cat, rows,
                                           series.READ_BATCHES)
        g.cursors[cat] = page.last if page.last is not None else after
    return pages


def _window(work: Work, g: _Grant, key: bytes) -> dict[str, list[Any]]:
    """The items of the last day's batches of each series a derived answer reads."""
    if g.window is None:
        wanted = {c for name in g.terms.derived for c in resolve_derived(name).inputs
                  if series.is_series(c)}
        since = work.now - series.WINDOW
        g.window = {c: series.window_items(
            key, g.row.citizen_id, c,
            series.batches_since(work, g.row.citizen_id, c, since)) for c in sorted(wanted)}
    return g.window


def _needed(terms: GrantTerms) -> set[str]:
    """The categories a read must open: the released ones and the derived answers' inputs."""
    needed = set(terms.categories)
    for name in terms.derived:
        needed.update(resolve_derived(name).inputs)
    return needed


def _newest_records(work: Work, grants: Iterable[_Grant]) -> dict[str, dict[str, Any]]:
    """citizen id -> category -> newest record row, of the categories the grants need."""
    citizens: set[str] = set()
    needed: set[str] = set()
    for g in grants:
        citizens.add(g.row.citizen_id)
        needed |= {c for c in _needed(g.terms) if not series.is_series(c)}  # by batch
    newest: dict[str, dict[str, Any]] = {c: {} for c in citizens}
    if citizens and needed:
        who, which = _listed("citizen", citizens), _listed("category", needed)
        for rec in work.session.connection().execute(_records(len(who), len(which)),
                                                     who | which):
            newest[rec.citizen_id][rec.category] = rec  # by version: the last one wins
    for found in newest.values():  # withdrawn by its issuer: the category reads as absent
        for cat in [cat for cat, rec in found.items() if rec.withdrawn_at is not None]:
            del found[cat]
    return newest


def _release(key: bytes, citizen_id: str, terms: GrantTerms, newest: Mapping[str, Any],
             now: datetime, pages: Mapping[str, series.BatchPage] | None = None,
             window: Mapping[str, list[Any]] | None = None,
             *, fetched: Sequence[Fetched] = ()) -> Released:
    """What a read releases: the newest records the terms name, decrypted, and the
    derived answers computed from those the answers need (another grant of the same
    citizen in the batch may have fetched more: only `_needed` are opened); of a series,
    the batches of `pages` (none new: nothing of it), and its last day (`window`) for
    the derived answers."""
    wanted = _needed(terms)
    values = {
        cat: open_record(key, citizen_id=citizen_id, record_id=rec.id, category=cat,
                         version=rec.version, ciphertext=rec.ciphertext)
        for cat, rec in newest.items() if cat in wanted
    }
    # Held at source: no record here, the value a source answered for this read.
    sources = {f.category: f.issuer for f in fetched if f.category in wanted}
    values |= {f.category: f.value for f in fetched if f.category in sources}
    data = {cat: values[cat] for cat in terms.categories if cat in values}
    pages = pages or {}
    data |= {cat: page.data() for cat, page in pages.items() if page.batches}
    cursors = {cat: page.last for cat, page in pages.items() if page.last is not None}
    inputs = {**values, **(window or {})}
    # Answers resting on issued facts are given none of the citizen's own values of
    # those facts (all their inputs, or the ones named: `DerivedAnswer.counted`).
    own = {cat for cat, rec in newest.items() if rec.source == "citizen"}
    derived: dict[str, Any] = {}
    for name in terms.derived:
        answer = resolve_derived(name)
        derived[name] = answer.answer(answer.counted(inputs, own), now)
    # Of the stored records; a category held at source or a series adds its own.
    provenance = {cat: _provenance(key, citizen_id, newest[cat]) for cat in data
                  if cat in newest and cat not in sources}
    issuers = {cat: p["issuer"] for cat, p in provenance.items() if p["issuer"] is not None}
    # Held at source: the source's JWS, as it answered (no version: nothing is stored).
    provenance |= {f.category: {"source": "issuer", "issuer": f.issuer, "version": None,
                                "record": f.jws} for f in fetched if f.category in data}
    # A series: each batch released, with its issuer's JWS (`series.BatchPage`).
    provenance |= {cat: page.provenance() for cat, page in pages.items() if page.batches}
    issuers |= {cat: page.issuer for cat, page in pages.items() if page.issuer is not None}
    # A keyed commitment to exactly what was released: the citizen (who can derive the
    # key) can later prove what a service saw; nobody else learns anything from it.
    commitment = envelope.commit(envelope.commitment_key(key),
                                 canonical_json({"data": data, "derived": derived}))
    return Released(data, derived, commitment, cursors=cursors, sources=sources,
                    provenance=provenance, issuers=issuers)


def _provenance(key: bytes, citizen_id: str, rec: Any) -> dict[str, Any]:
    """Where a released record came from (ARCHITECTURE §8). The issuer's JWS is opened
    only here, for a record released, so reads of citizens' own values never pay for it."""
    if rec.source == "citizen":
        return {"source": "citizen", "issuer": None, "version": rec.version, "record": None}
    jws = None
    if rec.record_jws is not None:  # None: issued without one (`vault citizen write --source`)
        jws = envelope.open_sealed(key, rec.record_jws, ad=envelope.record_jws_ad(
            citizen_id=citizen_id, record_id=rec.id, category=rec.category,
            version=rec.version)).decode("utf-8")
    return {"source": "issuer", "issuer": rec.source, "version": rec.version, "record": jws}


def write_reads(work: Work, plans: Sequence[ReadPlan | Exception]) -> list[ReadOutcome]:
    """Count, log and record every planned read at once; each read's Release, or the
    exception it was refused with. If this raises, the transaction is unusable."""
    allowed = [p for p in plans if isinstance(p, ReadPlan)]
    if not allowed:
        return [p for p in plans if isinstance(p, Exception)]
    conn = work.session.connection()
    counts = {p.ask.grant_id: p.reads for p in allowed}  # after the grant's last read
    conn.execute(_COUNT_READS, [{"grant_id": gid, "reads": reads, "now": work.now}
                                for gid, reads in counts.items()])
    seqs = _append(work, allowed)
    moves = {(p.ask.grant_id, cat): version for p in allowed  # in order: the last one wins
             for cat, version in p.released.cursors.items()}
    if moves:
        series.move_cursors(work, moves)
    conn.execute(_LOG_ACCESSES, [
        p.released.access_row(seq, p.ask.grant_id, p.citizen_id, p.ask.service_id, work.now)
        for p, seq in zip(allowed, seqs, strict=True)])
    session = work.session
    if session.new or session.dirty or session.deleted:
        session.flush()  # the exhaustions' rows: a failure here is still the writes'
    by_read = iter(zip(allowed, seqs, strict=True))
    outcomes: list[ReadOutcome] = []
    for plan in plans:
        if isinstance(plan, Exception):
            outcomes.append(plan)
            continue
        p, seq = next(by_read)
        outcomes.append(Release(p.ask.grant_id, p.subject, p.released.data,
                                p.released.derived, seq, p.released.provenance))
    return outcomes


def _append(work: Work, allowed: list[ReadPlan]) -> list[int]:
    """The `data.accessed` entries in batch order. A read that exhausts its grant is
    followed at once by the grant's `grant.exhausted` entry (and its webhook), as if
    the reads were made one by one."""
    seqs: list[int] = []
    start = 0
    for i, p in enumerate(allowed):
        if p.exhausts:
            seqs += _append_reads(work, allowed[start:i + 1])
            transition(work, lock_grant(work, p.ask.grant_id), GrantAction.EXHAUST)
            start = i + 1
    return seqs + _append_reads(work, allowed[start:])


def _append_reads(work: Work, allowed: list[ReadPlan]) -> list[int]:
    entries = work.ledger.append_many(
        ("data.accessed", p.released.entry(p.ask.grant_id, p.ask.service_id, p.subject))
        for p in allowed)
    return [e.seq for e in entries]
