"""No plaintext personal data at rest: scan every byte of the database and the ledger."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from vault.services import citizens, records
from vault.services.context import VaultContext

SECRETS = {
    "identity.name": {"given": "Wilhelmina", "family": "Quenneville-Abernathy"},
    "contact.email": "wilhelmina.q@example.org",
    "contact.phone": "+447700900461",
    "identity.date_of_birth": "1958-03-17",
    "address.home": {"lines": ["17 Fenwick Crescent"], "town": "Riverbridge",
                     "postcode": "RB4 7QZ", "local_authority": "Riverbridge"},
}
NEEDLES = [b"Wilhelmina", b"Quenneville", b"wilhelmina.q@example.org", b"7700900461",
           b"1958-03-17", b"Fenwick Crescent", b"RB4 7QZ"]


def _write(ctx: VaultContext) -> str:
    c = citizens.enrol_citizen(ctx)
    for category, value in SECRETS.items():
        records.write_record(ctx, c.id, category, value)
    records.read_records(ctx, c.id)  # reading must not leave plaintext behind either
    return c.id


def _sqlite_files(url: str) -> list[Path]:
    db = Path(url.removeprefix("sqlite:///"))
    return [p for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists()]


def test_no_value_appears_in_any_database_file(ctx: VaultContext, database_url: str) -> None:
    _write(ctx)
    if database_url.startswith("sqlite"):
        blobs = [p.read_bytes() for p in _sqlite_files(database_url)]
        assert blobs, "found no database files to scan"
    else:
        # Every byte PostgreSQL keeps for this database: its data directory.
        with psycopg.connect(database_url.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute("CHECKPOINT")
            datadir = Path(conn.execute("SHOW data_directory").fetchone()[0])  # type: ignore[index]
        files = [p for p in datadir.rglob("*") if p.is_file()]
        if not files:
            pytest.fail("cannot read the PostgreSQL data directory")
        blobs = [p.read_bytes() for p in files]
    for needle in NEEDLES:
        assert not any(needle in b for b in blobs), f"{needle!r} found at rest"
