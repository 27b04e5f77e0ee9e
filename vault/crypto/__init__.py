"""The only place that touches key material: key files and (later) envelope encryption."""

from vault.crypto.keyfiles import load_ledger_signer

__all__ = ["load_ledger_signer"]
