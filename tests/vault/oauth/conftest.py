"""The whole app for the OAuth flow tests: one per test module (each test registers its
own service and signs up its own citizens)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.webwallet import WebWallet, open_wallet

from wallet.security import AttemptLimiter


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebWallet]:
    with open_wallet(tmp_path_factory.mktemp("oauth")) as w:
        # Every test signs citizens up from the same address: lift the attempt limit.
        w.state.sign_in_limit = AttemptLimiter(limit=10_000, window=60)
        yield w
