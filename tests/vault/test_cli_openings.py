"""`vault ledger verify` checks the openings of sealed entries; `vault ledger export
--openings FILE` writes them beside the entries (ledger v1 entries first, then v2)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ledger.audit import audit_log, read_ndjson
from ledger.entry import parse_entry
from ledger.sealing import check_opening, encode_opening, parse_opening
from ledger.sqlstore import SqlLedger
from vault.app import build_state
from vault.cli import app
from vault.config import Settings
from vault.services.checkpoints import publish_checkpoint

runner = CliRunner()


def items(start: int, n: int) -> list[tuple[str, dict[str, object]]]:
    return [("grant.requested", {"grant_id": f"g_{i}", "service_id": "svc",
                                 "subject": f"sub_{i % 7}", "terms": {"n": i}})
            for i in range(start, start + n)]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    state = build_state(Settings(data_dir=tmp_path))
    with state.engine.begin() as conn:
        SqlLedger(conn, version=1).append_many(items(0, 40))
    with state.engine.begin() as conn:
        SqlLedger(conn, version=2).append_many(items(40, 60))
    publish_checkpoint(state.engine, state.signer)
    state.engine.dispose()
    return tmp_path


def verify(data_dir: Path) -> tuple[int, dict[str, object]]:
    r = runner.invoke(app, ["ledger", "verify", "--data-dir", str(data_dir), "--json"])
    return r.exit_code, json.loads(r.output)


def test_verify_checks_every_opening(data_dir: Path) -> None:
    code, doc = verify(data_dir)
    assert code == 0, doc
    assert doc["ok"] is True and doc["size"] == 100 and doc["openings"] == 60


def test_a_changed_salt_or_private_body_is_named(data_dir: Path) -> None:
    db = sqlite3.connect(data_dir / "vault.db")
    (raw,) = db.execute("SELECT opening FROM ledger_entries WHERE seq = 57").fetchone()
    opening = parse_opening(raw)
    db.execute("UPDATE ledger_entries SET opening = ? WHERE seq = 57",
               (encode_opening(57, bytes(32), opening.private),))
    db.commit()
    code, doc = verify(data_dir)
    assert code == 1 and doc["index"] == 57 and "altered" in str(doc["reason"])
    db.execute("UPDATE ledger_entries SET opening = ? WHERE seq = 57",
               (encode_opening(57, opening.salt, {**opening.private, "subject": "sub_x"}),))
    db.commit()
    code, doc = verify(data_dir)
    assert code == 1 and doc["index"] == 57


@pytest.mark.parametrize(("seq", "opening", "says"), [
    (63, None, "missing"), (12, b'{"private":{},"salt":"","seq":12}', "v1 entry"),
    (80, b"{not json", "malformed")])
def test_a_missing_extra_or_malformed_opening_is_named(
        data_dir: Path, seq: int, opening: bytes | None, says: str) -> None:
    db = sqlite3.connect(data_dir / "vault.db")
    db.execute("UPDATE ledger_entries SET opening = ? WHERE seq = ?", (opening, seq))
    db.commit()
    code, doc = verify(data_dir)
    assert code == 1 and doc["index"] == seq and says in str(doc["reason"])


def test_export_writes_the_openings_of_its_entries(data_dir: Path, tmp_path: Path) -> None:
    out, openings = tmp_path / "ledger.ndjson", tmp_path / "openings.ndjson"
    r = runner.invoke(app, ["ledger", "export", "--data-dir", str(data_dir), "--out", str(out),
                            "--openings", str(openings)])
    assert r.exit_code == 0, r.output
    assert not openings.with_name(openings.name + ".partial").exists()
    with out.open("rb") as f:
        assert audit_log(read_ndjson(f)).head.size == 100
    entries = [parse_entry(line) for line in out.read_bytes().splitlines()]
    lines = openings.read_bytes().splitlines()
    assert len(lines) == 60
    for line in lines:
        opening = parse_opening(line)
        assert check_opening(entries[opening.seq], opening)["grant_id"] == f"g_{opening.seq}"
    assert all(b"sub_" not in line for line in out.read_bytes().splitlines()[40:])
    # Without --openings, only the entries (as before).
    r = runner.invoke(app, ["ledger", "export", "--data-dir", str(data_dir)])
    assert r.exit_code == 0 and len(r.stdout_bytes.splitlines()) == 100
