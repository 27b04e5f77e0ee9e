"""Reading under a grant: checked live, released by the terms, logged before returned."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from ledger.canonical import canonical_json
from vault.crypto import envelope
from vault.domain.derived import resolve_derived
from vault.domain.grants import GrantAction, GrantState, GrantTerms, check_read, exhausted_after
from vault.errors import NotFound
from vault.services.citizens import get_citizen
from vault.services.context import VaultContext, Work, unit_of_work
from vault.services.grants import lock_grant, transition
from vault.services.records import data_key, latest_values
from vault.services.registry import get_service

__all__ = ["Release", "read_in", "read_under_grant"]


@dataclass(frozen=True, slots=True)
class Release:
    """What a service receives: only what the terms allow, and where it was logged."""

    grant_id: str
    subject: str
    data: dict[str, Any]
    derived: dict[str, Any]
    ledger_index: int


def read_under_grant(ctx: VaultContext, *, service_id: str, grant_id: str) -> Release:
    """One read by a service. Denied (AccessDenied) unless a live grant allows it now.

    The grant is locked and checked inside the transaction that records the access, so
    a revocation that commits first is always seen; the `data.accessed` entry commits
    before anything is returned.
    """
    with unit_of_work(ctx) as work:
        return read_in(ctx, work, service_id=service_id, grant_id=grant_id)


def read_in(ctx: VaultContext, work: Work, *, service_id: str, grant_id: str) -> Release:
    """`read_under_grant` inside a transaction the caller commits (group commit batches
    several reads into one). Nothing may be returned to a service before that commit."""
    row = lock_grant(work, grant_id)
    if row.service_id != service_id:
        raise NotFound("no such grant")
    service = get_service(work, service_id)
    terms = GrantTerms.from_json(orjson.loads(row.terms))
    check_read(state=GrantState(row.state), terms=terms, now=work.now, reads_used=row.reads,
               last_read_at=row.last_read_at, service_active=service.active)
    citizen = get_citizen(work, row.citizen_id)
    needed = set(terms.categories)
    answers = [resolve_derived(name) for name in terms.derived]
    for answer in answers:
        needed.update(answer.inputs)
    records = latest_values(ctx, work, citizen, tuple(sorted(needed)))
    values = {cat: rec.value for cat, rec in records.items()}
    data = {cat: values[cat] for cat in terms.categories if cat in values}
    derived = {a.name: a.compute(values, work.now.date()) for a in answers}

    row.reads += 1
    row.last_read_at = work.now
    work.session.add(row)
    # A keyed commitment to exactly what was released: the citizen (who can derive the
    # key) can later prove what a service saw; nobody else learns anything from it.
    released = {"data": data, "derived": derived}
    key = envelope.commitment_key(data_key(ctx, citizen))
    entry = work.ledger.append("data.accessed", {
        "grant_id": grant_id, "service_id": service_id, "subject": citizen.subject,
        "categories": sorted(data), "derived": sorted(derived),
        "commitment": envelope.commit(key, canonical_json(released))})
    if exhausted_after(terms, row.reads):
        transition(work, row, GrantAction.EXHAUST)
    return Release(grant_id, citizen.subject, data, derived, entry.seq)
