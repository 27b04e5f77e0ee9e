"""`vault-audit` against a vault served over a real loopback socket."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import httpx
from livevault import serve
from typer.testing import CliRunner

from clients.auditor.cli import app
from ledger.note import Signer
from ledger.sqlstore import SqlLedger
from vault.config import Settings
from vault.storage.database import make_engine

runner = CliRunner()


def _settings(tmp_path: Path, **kw: object) -> Settings:
    return Settings(data_dir=tmp_path, checkpoint_interval=0.05, **kw)  # type: ignore[arg-type]


def _grow(settings: Settings, n: int) -> None:
    engine = make_engine(settings.database)
    with engine.begin() as conn:
        SqlLedger(conn).append_many([("test.filler", {"note": f"g{i}"}) for i in range(n)])
    engine.dispose()


def _wait_for_size(url: str, size: int) -> None:
    """Poll the checkpoint until the publisher covers `size` entries (it must, within 1 s)."""
    deadline = time.monotonic() + 1.0
    while int(httpx.get(f"{url}/ledger/checkpoint").text.split("\n")[1]) < size:
        assert time.monotonic() < deadline, "no checkpoint covered the new entries within 1 s"
        time.sleep(0.02)


def test_verify_a_live_vault_with_a_pinned_key(tmp_path: Path) -> None:
    with serve(_settings(tmp_path, ledger_public=True)) as vault:
        _grow(vault.settings, 2500)  # more than two pages of entries
        key = runner.invoke(app, ["key", vault.url]).output.strip()
        _wait_for_size(vault.url, 2500)
        r = runner.invoke(app, ["verify", vault.url, "--key", key, "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["ok"] and doc["key_pinned"] and doc["size"] == 2500


def test_verify_fails_with_another_key(tmp_path: Path) -> None:
    other = Signer.generate("localhost:8000/ledger").verifier()
    with serve(_settings(tmp_path, ledger_public=True)) as vault:
        r = runner.invoke(app, ["verify", vault.url, "--key", str(other), "--json"])
    assert r.exit_code == 1
    assert "not signed by any expected key" in json.loads(r.output)["reason"]


def test_verify_names_a_tampered_entry(tmp_path: Path) -> None:
    with serve(_settings(tmp_path, ledger_public=True)) as vault:
        _grow(vault.settings, 3)
        _wait_for_size(vault.url, 3)
        db = sqlite3.connect(tmp_path / "vault.db")
        (data,) = db.execute("SELECT data FROM ledger_entries WHERE seq = 1").fetchone()
        db.execute("UPDATE ledger_entries SET data = ? WHERE seq = 1",
                   (data.replace(b'"g1"', b'"g7"'),))
        db.commit()
        r = runner.invoke(app, ["verify", vault.url, "--json"])
    assert r.exit_code == 1
    assert json.loads(r.output)["index"] == 1


def test_private_ledger_needs_the_api_key(tmp_path: Path) -> None:
    with serve(_settings(tmp_path, ledger_public=False, auditor_api_keys="sekrit")) as vault:
        _grow(vault.settings, 5)  # entries to fetch, behind the key
        _wait_for_size(vault.url, 5)
        denied = runner.invoke(app, ["verify", vault.url, "--json"])
        allowed = runner.invoke(app, ["verify", vault.url, "--api-key", "sekrit", "--json"])
    assert denied.exit_code == 2 and "401" in json.loads(denied.output)["reason"]
    assert allowed.exit_code == 0, allowed.output


def test_unreachable_vault_is_a_clear_error() -> None:
    r = runner.invoke(app, ["verify", "http://localhost:9", "--json"])
    assert r.exit_code == 2
    assert "cannot reach" in json.loads(r.output)["reason"]


def test_counts_are_in_words_not_with_s_in_brackets(tmp_path: Path) -> None:
    """"1 entry", "1 new entry", "1 failure": never "1 entries" or "failure(s)"."""
    with serve(_settings(tmp_path, ledger_public=True)) as vault:
        _grow(vault.settings, 1)
        _wait_for_size(vault.url, 1)
        r = runner.invoke(app, ["verify", vault.url])
        assert r.exit_code == 0, r.output
        assert r.stdout.startswith("✓ 1 entry of localhost:")
        assert "  1 entry: 0 grants, 0 approvals and citizen actions verified, 0 accesses " \
               "checked, 0 subjects, 0 passkeys, 0 services" in r.stdout
        state = ["watch", vault.url, "--state", str(tmp_path / "watch"), "--once"]
        first = runner.invoke(app, state)
        assert first.exit_code == 0 and "first run: 1 entry of " in first.stdout, first.output
        _grow(vault.settings, 1)
        _wait_for_size(vault.url, 2)
        second = runner.invoke(app, state)
    assert second.exit_code == 0, second.output
    assert "1 → 2 entries: consistency proof verified, 1 new entry checked" in second.stdout
    for result in (r, first, second):
        assert "(s)" not in result.output and "1 entries" not in result.output
