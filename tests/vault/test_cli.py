"""`vault ledger verify` and `vault ledger export` on a real database."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ledger.audit import audit_log, read_ndjson
from ledger.hasher import leaf_hash
from ledger.sqlstore import SqlLedger
from vault.app import build_state
from vault.cli import app
from vault.config import Settings
from vault.services.checkpoints import publish_checkpoint

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    state = build_state(Settings(data_dir=tmp_path))
    with state.engine.begin() as conn:
        SqlLedger(conn).append_many(
            [("grant.requested", {"grant_id": f"g_{i}", "n": i}) for i in range(250)])
    publish_checkpoint(state.engine, state.signer)
    state.engine.dispose()
    return tmp_path


def test_verify_ok(data_dir: Path) -> None:
    r = runner.invoke(app, ["ledger", "verify", "--data-dir", str(data_dir), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["ok"] is True and doc["size"] == 250 and doc["checkpoint_size"] == 250


def test_verify_names_the_tampered_entry(data_dir: Path) -> None:
    db = sqlite3.connect(data_dir / "vault.db")
    (data,) = db.execute("SELECT data FROM ledger_entries WHERE seq = 117").fetchone()
    db.execute("UPDATE ledger_entries SET data = ? WHERE seq = 117",
               (data.replace(b'"n":117', b'"n":118'),))
    db.commit()
    r = runner.invoke(app, ["ledger", "verify", "--data-dir", str(data_dir), "--json"])
    assert r.exit_code == 1
    doc = json.loads(r.output)
    assert doc["ok"] is False and doc["index"] == 117


def test_verify_detects_a_rewritten_tail_against_the_checkpoint(data_dir: Path) -> None:
    # Rewrite the last entry and its stored leaf hash: only the signed root catches it.
    db = sqlite3.connect(data_dir / "vault.db")
    (data,) = db.execute("SELECT data FROM ledger_entries WHERE seq = 249").fetchone()
    forged = data.replace(b'"n":249', b'"n":250')
    db.execute("UPDATE ledger_entries SET data = ?, leaf_hash = ? WHERE seq = 249",
               (forged, leaf_hash(forged)))
    db.commit()
    r = runner.invoke(app, ["ledger", "verify", "--data-dir", str(data_dir)])
    assert r.exit_code == 1
    assert "entry 249" in r.output and "checkpoint" in r.output


def test_export_round_trips_and_verifies(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "ledger.ndjson"
    r = runner.invoke(app, ["ledger", "export", "--data-dir", str(data_dir), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert not out.with_name(out.name + ".partial").exists()
    with out.open("rb") as f:
        result = audit_log(read_ndjson(f))
    assert result.head.size == 250


def test_verify_without_a_key_is_a_clear_error(tmp_path: Path) -> None:
    data = tmp_path / "keyless"
    assert runner.invoke(app, ["db", "upgrade", "--data-dir", str(data)]).exit_code == 0
    r = runner.invoke(app, ["ledger", "verify", "--data-dir", str(data)])
    assert r.exit_code == 2
    assert "no ledger signing key" in r.output


@pytest.mark.parametrize("command", ["verify", "export"])
def test_no_vault_is_a_clear_error_and_makes_nothing(tmp_path: Path, command: str) -> None:
    empty = tmp_path / "empty"
    r = runner.invoke(app, ["ledger", command, "--data-dir", str(empty)])
    assert r.exit_code == 2
    assert f"no vault at {empty}" in " ".join(r.output.split())
    assert not empty.exists()
