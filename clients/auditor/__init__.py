"""The auditor: verify a vault's ledger, its grants' stories and consent receipts without
trusting the vault (`vault-audit`). `verify.verify_url` / `verify_export` check a whole
ledger, `watch` keeps checking it, `receipt.verify_receipt` checks one receipt."""

from clients.auditor.fetch import AuditorError, LedgerClient

__all__ = ["AuditorError", "LedgerClient"]
