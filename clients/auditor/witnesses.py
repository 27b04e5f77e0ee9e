"""`--witness VKEY ... --quorum N`: trust a checkpoint only when N of the given witnesses
cosigned it (C2SP tlog-cosignature), so a vault cannot show this auditor a history that
those witnesses have not seen, and so cannot split its view between auditors.

Only valid cosignatures by the given keys count, once per witness; lines by other keys are
ignored and a line by a given key that does not verify is named as forged. A cosignature
dated in the future (beyond a minute of clock skew) does not count either.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from clients.auditor.fetch import AuditorError, LedgerClient
from clients.auditor.watch import CheckpointRefused
from ledger.cosignature import CosignatureCheck, WitnessKey, check_cosignatures
from ledger.errors import LedgerError

__all__ = ["QuorumMissing", "WitnessPolicy", "WitnessedClient"]

#: Seconds a witness's clock may run ahead of ours.
_SKEW = 60


class QuorumMissing(CheckpointRefused):
    """The checkpoint lacks its quorum of valid cosignatures from the given witnesses."""


@dataclass(frozen=True, slots=True)
class WitnessPolicy:
    witnesses: tuple[WitnessKey, ...]
    quorum: int

    @classmethod
    def from_options(cls, keys: Sequence[str] | None, quorum: int | None) -> WitnessPolicy | None:
        """The policy of `--witness` and `--quorum` (None without either); AuditorError
        for keys that do not parse or a quorum the witnesses given cannot reach."""
        if not keys and quorum is None:
            return None
        try:
            witnesses = tuple(dict.fromkeys(WitnessKey.parse(k) for k in keys or []))
        except LedgerError as e:
            raise AuditorError(f"--witness: {e}") from None
        needed = len(witnesses) if quorum is None else quorum
        if not 1 <= needed <= len(witnesses):
            raise AuditorError(f"--quorum {needed} needs at least {max(needed, 1)} --witness "
                               f"keys (got {len(witnesses)})")
        return cls(witnesses, needed)

    def check(self, note: str | bytes, *, now: float | None = None) -> CosignatureCheck:
        when = time.time() if now is None else now
        try:
            return check_cosignatures(note, expected_witnesses=self.witnesses,
                                      not_after=int(when) + _SKEW)
        except LedgerError as e:
            raise QuorumMissing(f"witness-quorum: the checkpoint is malformed: {e}") from None

    def require(self, note: str | bytes, *, now: float | None = None) -> CosignatureCheck:
        """The check, or QuorumMissing naming how many valid cosignatures it has."""
        check = self.check(note, now=now)
        if not check.meets(self.quorum):
            forged = f"; forged or future-dated: {', '.join(check.forged)}" if check.forged \
                else ""
            raise QuorumMissing(
                f"witness-quorum: the checkpoint has {len(check.valid)} valid cosignatures of "
                f"the {self.quorum} needed from the {len(self.witnesses)} witnesses given"
                f"{forged}")
        return check

    def problem(self, note: str | bytes) -> str | None:
        """Why the note lacks its quorum, or None if it has it."""
        try:
            self.require(note)
        except QuorumMissing as e:
            return str(e)
        return None


class WitnessedClient(LedgerClient):
    """A ledger client that serves only checkpoints with the policy's quorum."""

    def __init__(self, base_url: str, *, policy: WitnessPolicy, **kw: Any) -> None:
        super().__init__(base_url, **kw)
        self.policy = policy

    def checkpoint(self) -> str:
        note = super().checkpoint()
        self.policy.require(note)
        return note
