"""A citizen's browser against a vault served over a real socket (`livevault.serve`):
the wallet's own routes over httpx, with a software authenticator for the passkey.

    with serve(Settings(data_dir=tmp_path)) as vault:
        ada = sign_up(vault)                  # a Browser, signed in, with Ada's records
        callback = approve(ada, pending.url)  # the service's link -> its redirect URI
"""

from __future__ import annotations

import httpx
from livevault import LiveVault
from support.vaultworld import give_ada_data
from support.webwallet import Browser

from wallet.passkeys.software import SoftAuthenticator
from wallet.web import WalletState

__all__ = ["approve", "sign_up"]


def sign_up(vault: LiveVault, label: str = "My phone") -> Browser:
    """A new citizen with one passkey, signed in, with a name, birth date and address."""
    assert vault.app is not None
    b = Browser(httpx.Client(base_url=vault.url, follow_redirects=True, timeout=30),  # type: ignore[arg-type]
                device=SoftAuthenticator(origin=vault.url), origin=vault.url)
    r = b.passkey_post("/wallet/signup", {"label": label})
    assert r.status_code == 200, r.text
    state: WalletState = vault.app.state.wallet
    ctx = vault.app.state.vault.ctx
    b.citizen_id = state.sessions.resolve(b.client.cookies.get(state.cookies.session),
                                          now=ctx.clock())
    assert b.citizen_id is not None
    give_ada_data(ctx, b.citizen_id)
    return b


def approve(b: Browser, url: str) -> str:
    """What the citizen's browser does with a service's authorization link: the consent
    screen, Approve with the passkey, and back; the URL it is sent back to."""
    consent = b.get(url)  # follows: authorize -> wallet -> consent screen
    assert consent.status_code == 200, consent.text[:300]
    grant_path = consent.url.path
    assert grant_path.startswith("/wallet/grants/gr_"), consent.url
    r = b.passkey_post(f"{grant_path}/approve")
    assert r.status_code == 200, r.text
    back = b.client.get(r.json()["redirect"], follow_redirects=False)
    assert back.status_code == 303, back.text[:300]
    return str(back.headers["location"])
