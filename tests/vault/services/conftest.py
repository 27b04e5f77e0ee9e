from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.vaultworld import Clock

from vault.crypto import load_keyring
from vault.services.context import VaultContext
from vault.storage.database import make_engine
from vault.storage.schema import migrate
from wallet.passkeys import PasskeyApprovalVerifier, RelyingParty

ORIGIN = "http://localhost:8000"



@pytest.fixture
def clock() -> Clock:
    return Clock()


def _ctx(url: str, tmp_path: Path, clock: Clock) -> VaultContext:
    engine = make_engine(url)
    migrate(engine)
    keyring = load_keyring(tmp_path / "keys", master_key=None, production=False)
    return VaultContext(engine=engine, keyring=keyring, clock=clock,
                        approvals=PasskeyApprovalVerifier(RelyingParty.from_public_url(ORIGIN)))


@pytest.fixture
def ctx(database_url: str, tmp_path: Path, clock: Clock) -> Iterator[VaultContext]:
    """A vault on SQLite and on PostgreSQL (the test runs on each)."""
    c = _ctx(database_url, tmp_path, clock)
    yield c
    c.engine.dispose()


@pytest.fixture
def sqlite_ctx(tmp_path: Path, clock: Clock) -> Iterator[VaultContext]:
    """A vault on SQLite only, for tests of SQLite's own files."""
    c = _ctx(f"sqlite:///{tmp_path / 'vault.db'}", tmp_path, clock)
    yield c
    c.engine.dispose()
