"""A C2SP tlog-witness: cosigns a log's checkpoints that extend what it cosigned before.

It knows checkpoints, notes and consistency proofs only (nothing of the vault): the rules
in `witness`, its memory in `state`, HTTP in `server`, the command `vault-witness` in `cli`.
"""

from ledger.witness.errors import (
    BadRequest,
    Forbidden,
    Inconsistent,
    SizeConflict,
    UnknownLog,
    WitnessError,
)
from ledger.witness.request import AddCheckpoint, parse_add_checkpoint
from ledger.witness.state import Evidence, Held, WitnessState
from ledger.witness.witness import Cosigned, Witness

__all__ = [
    "AddCheckpoint",
    "BadRequest",
    "Cosigned",
    "Evidence",
    "Forbidden",
    "Held",
    "Inconsistent",
    "SizeConflict",
    "UnknownLog",
    "Witness",
    "WitnessError",
    "WitnessState",
    "parse_add_checkpoint",
]
