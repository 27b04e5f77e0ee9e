from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest

from ledger.note import Signer
from vault.crypto.keyfiles import load_app_secret, load_ledger_signer
from vault.errors import ConfigError


def test_key_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    a = load_ledger_signer(tmp_path / "keys", origin="example.org/ledger", secret=None, create=True)
    path = tmp_path / "keys" / "ledger.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    b = load_ledger_signer(tmp_path / "keys", origin=None, secret=None, create=True)
    assert str(a) == str(b)
    assert b.name == "example.org/ledger"


def test_refuses_a_key_readable_by_others(tmp_path: Path) -> None:
    load_ledger_signer(tmp_path, origin="o/ledger", secret=None, create=True)
    (tmp_path / "ledger.key").chmod(0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        load_ledger_signer(tmp_path, origin=None, secret=None, create=True)


def test_another_origin_for_an_existing_key_is_refused(tmp_path: Path) -> None:
    load_ledger_signer(tmp_path, origin="a.example/ledger", secret=None, create=True)
    with pytest.raises(ConfigError, match=r"VAULT_LEDGER_ORIGIN=a\.example/ledger"):
        load_ledger_signer(tmp_path, origin="b.example/ledger", secret=None, create=True)


def test_production_does_not_create_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no ledger signing key"):
        load_ledger_signer(tmp_path, origin="o/ledger", secret=None, create=False)
    assert not (tmp_path / "ledger.key").exists()


def test_secret_from_settings_wins_and_malformed_is_clear(tmp_path: Path) -> None:
    s = Signer.generate("env.example/ledger")
    got = load_ledger_signer(tmp_path, origin=None, secret=str(s), create=False)
    assert got.verifier() == s.verifier()
    with pytest.raises(ConfigError, match="malformed"):
        load_ledger_signer(tmp_path, origin=None, secret="PRIVATE+KEY+x+00+AA==", create=False)


def test_signer_repr_does_not_leak_the_seed() -> None:
    s = Signer.generate("o/ledger")
    material = str(s).split("+", 4)[4]  # base64 may itself contain "+"
    assert len(material) == 44
    assert material not in repr(s) and "PRIVATE" not in repr(s)


def test_app_secret_made_once_by_racing_workers(tmp_path: Path) -> None:
    """Workers starting together all get the same secret, never a half-written file."""
    got: list[bytes] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        try:
            got.append(load_app_secret(tmp_path / "keys", secret=None, production=False))
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(set(got)) == 1 and len(got[0]) == 32
    assert list((tmp_path / "keys").iterdir()) == [tmp_path / "keys" / "app.key"]
