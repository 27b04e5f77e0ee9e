"""Why a witness refuses a checkpoint, one class per answer of C2SP tlog-witness.

WitnessError (ledger.errors.LedgerError)
├── BadRequest     400: a malformed body, or an old size above the checkpoint's size
├── Forbidden      403: no valid signature by a key the witness trusts for the origin
├── UnknownLog     404: the witness does not know the checkpoint's origin
├── SizeConflict   409: the old size is not the size it last cosigned (carries that size)
└── Inconsistent   422: a bad proof, a fork at the same size, a bad empty tree
"""

from __future__ import annotations

from ledger.errors import LedgerError

__all__ = ["BadRequest", "Forbidden", "Inconsistent", "SizeConflict", "UnknownLog",
           "WitnessError"]


class WitnessError(LedgerError):
    """Base of the witness's refusals; `status` is the HTTP status the spec names."""

    status = 400


class BadRequest(WitnessError):
    status = 400


class Forbidden(WitnessError):
    status = 403


class UnknownLog(WitnessError):
    status = 404


class SizeConflict(WitnessError):
    status = 409

    def __init__(self, size: int) -> None:
        self.size = size
        super().__init__(f"the latest checkpoint cosigned for this log has size {size}")


class Inconsistent(WitnessError):
    status = 422
