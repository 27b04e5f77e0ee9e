"""The SDK's surface: it offers the names the Blue Badge example is written against, and
it knows the vault only through HTTP (importing it loads no vault, wallet or ledger code)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import clients.service as sdk

API = {
    "VaultClient", "AsyncVaultClient", "ServiceKey", "PersonalData", "Access",
    "PendingAuthorization", "BackchannelRequest", "Grant", "Release", "GrantStatus",
    "WebhookEvent", "RecordChanged", "verify_webhook", "VaultClientError", "ProtocolError",
    "AuthorizationFailed", "GrantPending", "GrantDenied", "GrantRevoked", "GrantPaused",
    "GrantExpired", "GrantExhausted", "GrantNotYetValid", "TooSoon", "RateLimited",
    "ServiceSuspended", "WebhookInvalid", "RecordInvalid", "SignedRecord", "verify_record",
    "RecordDisputed", "RecordRefused", "RecordWritten", "Provenance", "BatchProvenance",
    "SeriesBatch", "SeriesPage",
}


def test_the_documented_names_are_exported() -> None:
    assert set(sdk.__all__) >= API
    assert set(sdk.__all__) - API == {"Introspection", "VaultUnavailable"}
    for name in sdk.__all__:
        assert getattr(sdk, name).__module__.startswith("clients.service.")


def test_every_error_is_a_vault_client_error() -> None:
    errors = [getattr(sdk, n) for n in sdk.__all__
              if isinstance(getattr(sdk, n), type) and issubclass(getattr(sdk, n), Exception)]
    assert len(errors) == 17
    assert all(issubclass(e, sdk.VaultClientError) for e in errors)
    # Flat: every error but the base derives from the base directly.
    assert {e.__bases__ for e in errors if e is not sdk.VaultClientError} == \
        {(sdk.VaultClientError,)}


def test_importing_the_sdk_loads_nothing_of_the_vault() -> None:
    code = ("import sys, clients.service, clients.service.core, clients.service.webhooks\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('vault', 'wallet', 'ledger'))\n"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60, cwd=Path(__file__).parents[3])
    assert out.stdout.strip() == ""
