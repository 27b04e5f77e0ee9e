"""The wallet app over HTTP on a fresh SQLite vault (tests choosing the database open
their own with `open_wallet(tmp_path, database_url)`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.webwallet import WebWallet, open_wallet


@pytest.fixture
def web(tmp_path: Path) -> Iterator[WebWallet]:
    with open_wallet(tmp_path) as w:
        yield w
