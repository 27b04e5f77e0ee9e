"""The auditor: fetch a vault's ledger over HTTP and verify it without trusting the vault."""

from clients.auditor.fetch import AuditorError, LedgerClient
from clients.auditor.remote import RemoteVerified, verify_remote

__all__ = ["AuditorError", "LedgerClient", "RemoteVerified", "verify_remote"]
