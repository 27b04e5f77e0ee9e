"""Erasure by crypto-shredding: nothing of the citizen decrypts afterwards, the ledger
still verifies, and it holds nothing that leads back to the citizen."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.ledgerview import opened_entries
from support.vaultworld import add_passkey, ask, world

from ledger.audit import audit_log
from ledger.sealing import ERASED, split
from ledger.sqlstore import SqlLedger
from vault.errors import NotFound
from vault.services import citizens, grants, records
from vault.services.context import VaultContext
from vault.storage.database import read_only
from vault.storage.tables import CitizenRow, GrantRow, RecordRow


def test_erasure(ctx: VaultContext) -> None:
    w = world(ctx)
    g = ask(ctx, w)
    seq = citizens.erase_citizen(ctx, w.citizen_id)
    with read_only(ctx.engine).begin() as conn:
        ledger = SqlLedger(conn)
        audit_log((d, h) for _, h, d in ledger.iter_entries())
        last = ledger.entries(seq - 1, 2)
        for table in (CitizenRow, RecordRow, GrantRow):
            assert conn.execute(table.__table__.select()).first() is None  # type: ignore[attr-defined]
    assert b'"kind":"grant.denied"' in last[0] and b"citizen_erased" in last[0]
    assert b'"kind":"citizen.erased"' in last[1]
    with pytest.raises(NotFound):
        records.read_records(ctx, w.citizen_id)
    with pytest.raises(NotFound):
        grants.get_grant(ctx, g.id)
    with pytest.raises(NotFound):
        citizens.erase_citizen(ctx, w.citizen_id)


def test_the_erased_key_leaves_no_copy_in_sqlite_files(sqlite_ctx: VaultContext) -> None:
    ctx = sqlite_ctx
    w = world(ctx)
    with read_only(ctx.engine).begin() as conn:
        wrapped = conn.execute(CitizenRow.__table__.select()).first().wrapped_key  # type: ignore[attr-defined,union-attr]
    citizens.erase_citizen(ctx, w.citizen_id)
    db = Path(ctx.engine.url.database or "")
    for path in (db, Path(f"{db}-wal")):
        if path.exists():
            assert wrapped not in path.read_bytes(), f"the erased key lingers in {path.name}"


def test_grants_ended_by_an_erasure_show_only_the_month_asked_and_the_state_left(
        ctx: VaultContext) -> None:
    """The ending entries' public part is what the transparency counts need; which grants
    and services ended together stays sealed with the subject (ledger.sealing)."""
    w = world(ctx)
    asked, approved = ask(ctx, w), ask(ctx, w)
    device = add_passkey(ctx, w.citizen_id)
    grants.approve_grant(ctx, approved.id, citizen_id=w.citizen_id,
                         proof=device.proof(challenge=approved.terms_hash))
    seq = citizens.erase_citizen(ctx, w.citizen_id)
    with read_only(ctx.engine).begin() as conn:
        entries = opened_entries(conn)
    requested = {e.body["grant_id"]: e.time[:7] for e in entries if e.kind == "grant.requested"}
    ended = {e.body["grant_id"]: e for e in entries[seq - 2:seq]}
    assert {g: e.kind for g, e in ended.items()} == {
        asked.id: "grant.denied", approved.id: "grant.revoked"}
    for gid, state in ((asked.id, "requested"), (approved.id, "approved")):
        entry = ended[gid]
        public = split(entry.kind, entry.body)[0]
        assert public == {"reason": ERASED, "asked": requested[gid], "from": state}
        assert entry.body["subject"] == w.subject and entry.body["service_id"] == w.service_id


def test_openings_survive_erasure(ctx: VaultContext) -> None:
    """As the ledger does: an auditor can still check every commitment and story of the
    erased citizen; the pseudonym in them no longer leads to a person."""
    w = world(ctx)
    ask(ctx, w)
    seq = citizens.erase_citizen(ctx, w.citizen_id)
    with read_only(ctx.engine).begin() as conn:
        entries = opened_entries(conn)  # every opening checked against its entry
        openings = SqlLedger(conn).openings(0, seq + 1)
    assert len(openings) == seq + 1
    mine = [e for e in entries if e.body.get("subject") == w.subject]
    assert [e.kind for e in mine][-3:] == ["grant.requested", "grant.denied", "citizen.erased"]
    assert all(e.sealed is not None and "subject" not in split(e.kind, e.body)[0]
               for e in mine)
