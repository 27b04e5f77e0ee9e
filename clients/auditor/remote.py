"""Verifying a whole remote ledger against its signed checkpoint."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from clients.auditor.fetch import LedgerClient
from ledger.audit import LogVerified, audit_log
from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.note import Verifier

__all__ = ["RemoteVerified", "verify_remote"]


@dataclass(frozen=True, slots=True)
class RemoteVerified:
    checkpoint: Checkpoint
    log: LogVerified
    key: Verifier
    key_pinned: bool


def verify_remote(
    client: LedgerClient,
    *,
    expected_key: Verifier | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> RemoteVerified:
    """Fetch the checkpoint and every entry it covers; check signature, chain and root.

    Without `expected_key` the key is taken from the vault itself (trust on first use):
    the result says so, because only a pinned key protects against a lying operator.
    """
    key = expected_key or Verifier.parse(client.key())
    cp = open_checkpoint(client.checkpoint(), expected_verifier=key)
    progress = None
    if on_progress is not None:
        report = on_progress
        progress = lambda n: report(n, cp.size)  # noqa: E731
    log = audit_log(client.iter_entries(0, cp.size), checkpoint=cp, on_progress=progress)
    return RemoteVerified(cp, log, key, key_pinned=expected_key is not None)
