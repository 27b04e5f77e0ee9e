"""Records: validated, versioned, sealed; the ledger learns the category, never the value."""

from __future__ import annotations

import pytest

from ledger.sqlstore import SqlLedger
from vault.domain.errors import InvalidValue
from vault.errors import NotFound
from vault.services import citizens, records
from vault.services.context import VaultContext
from vault.storage.database import read_only

NAME = {"given": "Ada", "family": "Lovelace"}


def ledger_bytes(ctx: VaultContext) -> bytes:
    with read_only(ctx.engine).begin() as conn:
        return b"\n".join(d for _, _, d in SqlLedger(conn).iter_entries())


def test_write_read_versions_and_provenance(ctx: VaultContext) -> None:
    c = citizens.enrol_citizen(ctx)
    v1 = records.write_record(ctx, c.id, "identity.name", NAME)
    v2 = records.write_record(ctx, c.id, "identity.name", {"given": "Ada", "family": "King"},
                              source="svc_registrar")
    assert (v1.version, v2.version) == (1, 2)
    latest = records.read_records(ctx, c.id)
    assert latest["identity.name"].value == {"given": "Ada", "family": "King"}
    assert latest["identity.name"].source == "svc_registrar"
    history = records.record_history(ctx, c.id, "identity.name")
    assert [h.value for h in history] == [NAME, {"given": "Ada", "family": "King"}]
    assert b"Lovelace" not in ledger_bytes(ctx) and b"identity.name" in ledger_bytes(ctx)


def test_invalid_values_are_refused_and_nothing_is_written(ctx: VaultContext) -> None:
    c = citizens.enrol_citizen(ctx)
    size = len(ledger_bytes(ctx))
    for category, value in [("identity.name", {"given": "Ada"}),
                            ("contact.email", "not an email"),
                            ("no.such", "x")]:
        with pytest.raises(InvalidValue):
            records.write_record(ctx, c.id, category, value)
    assert records.read_records(ctx, c.id) == {}
    assert len(ledger_bytes(ctx)) == size


def test_unknown_citizen(ctx: VaultContext) -> None:
    with pytest.raises(NotFound):
        records.write_record(ctx, "cit_nobody", "identity.name", NAME)
    with pytest.raises(NotFound):
        records.read_records(ctx, "cit_nobody")


def test_delete_and_export(ctx: VaultContext) -> None:
    c = citizens.enrol_citizen(ctx)
    records.write_record(ctx, c.id, "identity.name", NAME)
    records.write_record(ctx, c.id, "contact.email", "ada@example.org")
    assert set(records.export_all(ctx, c.id)) == {"identity.name", "contact.email"}
    assert records.delete_records(ctx, c.id, "contact.email") == 1
    assert set(records.read_records(ctx, c.id)) == {"identity.name"}
    with pytest.raises(NotFound):
        records.delete_records(ctx, c.id, "contact.email")
