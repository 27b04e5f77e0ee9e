"""Fixtures: the wallet over SQLite and PostgreSQL, and a software authenticator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.walletenv import ORIGIN, Wallet, make_wallet

from wallet.passkeys.software import SoftAuthenticator


@pytest.fixture
def wallet(database_url: str, tmp_path: Path) -> Iterator[Wallet]:
    """The wallet over SQLite, then over PostgreSQL."""
    w = make_wallet(database_url, tmp_path)
    yield w
    w.ctx.engine.dispose()


@pytest.fixture
def device() -> SoftAuthenticator:
    return SoftAuthenticator(origin=ORIGIN)
