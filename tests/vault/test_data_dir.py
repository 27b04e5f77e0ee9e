"""The data directory is the owner's alone: folders 0700, files 0600, whatever the umask
(issue 11, bug 6), and a folder left open by an older vault is tightened, with a log line."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from vault.app import create_app
from vault.config import Settings
from vault.storage.database import private_sqlite_files


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def modes(root: Path) -> dict[str, int]:
    """Every file and folder under `root` (and root itself), with its permission bits."""
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = stat.S_IMODE(path.stat().st_mode)
    return found


def loose(root: Path) -> dict[str, str]:
    return {name: f"{mode:o}" for name, mode in modes(root).items()
            if mode != (0o700 if (root / name).is_dir() else 0o600)}


@pytest.mark.parametrize("mask", [0o022, 0o000], ids=["umask-022", "umask-000"])
def test_everything_under_the_data_dir_is_private(tmp_path: Path, mask: int) -> None:
    data = tmp_path / "data"
    with umask(mask):
        with TestClient(create_app(Settings(data_dir=data, demo=True))) as c:
            assert c.get("/wallet").status_code == 200  # and the demo wrote its data
            names = set(modes(data))
            assert {"vault.db", "vault.db-wal", "vault.db-shm", "keys", "keys/ledger.key",
                    "keys/master.json"} <= names, names
            assert loose(data) == {}
        assert loose(data) == {}


def test_a_loose_data_dir_from_an_older_vault_is_tightened(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    with umask(0o022):
        data.mkdir(mode=0o755)
        # A database as an older vault left it: 0644, with its -wal and -shm beside it.
        db = sqlite3.connect(data / "vault.db")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE t (x)")
        db.execute("INSERT INTO t VALUES (1)")
        db.commit()
        reader = sqlite3.connect(data / "vault.db")  # keeps the -wal and -shm files
        reader.execute("SELECT * FROM t").fetchall()
        assert {"vault.db-wal", "vault.db-shm"} <= set(modes(data))
        assert modes(data)["vault.db"] == 0o644 and modes(data)["."] == 0o755
        try:
            with TestClient(create_app(Settings(data_dir=data))):
                assert loose(data) == {}
        finally:
            reader.close()
            db.close()
    warnings = [json.loads(line) for line in capsys.readouterr().err.splitlines()
                if line.startswith("{") and '"warning"' in line]
    assert any(w["message"].startswith("the data directory was open to other users")
               and w["was"] == "755" and w["path"] == str(data) for w in warnings), warnings


def test_a_new_database_file_is_made_private_before_sqlite_opens_it(tmp_path: Path) -> None:
    with umask(0o000):
        private_sqlite_files(tmp_path / "new.db")
        assert stat.S_IMODE((tmp_path / "new.db").stat().st_mode) == 0o600
        # A missing folder is left for SQLite to report, as before.
        private_sqlite_files(tmp_path / "nowhere" / "x.db")
        assert not (tmp_path / "nowhere").exists()
