"""The witness's rules (C2SP tlog-witness, add-checkpoint), apart from HTTP.

It knows checkpoints, notes and consistency proofs, nothing of the log behind them.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ledger.checkpoint import Checkpoint, parse_checkpoint
from ledger.cosignature import WitnessSigner
from ledger.errors import NoteError, ProofError
from ledger.hasher import EMPTY_ROOT
from ledger.note import Verifier, open_note, parse_note
from ledger.verify import verify_consistency
from ledger.witness.errors import (
    BadRequest,
    Forbidden,
    Inconsistent,
    SizeConflict,
    UnknownLog,
)
from ledger.witness.request import AddCheckpoint, parse_add_checkpoint
from ledger.witness.state import Evidence, Held, WitnessState

__all__ = ["Cosigned", "Witness"]


@dataclass(frozen=True, slots=True)
class Cosigned:
    origin: str
    size: int
    #: The signature line(s) to answer with, each ending in a newline.
    lines: str


class Witness:
    def __init__(self, signer: WitnessSigner, logs: Iterable[Verifier], state: WitnessState,
                 *, clock: Callable[[], float] = time.time) -> None:
        self.signer = signer
        self._logs: dict[str, list[Verifier]] = {}
        for key in logs:  # a log's origin is its key's name (tlog-checkpoint)
            self._logs.setdefault(key.name, []).append(key)
        self._state = state
        self._clock = clock

    @property
    def origins(self) -> list[str]:
        return list(self._logs)

    def add_checkpoint(self, body: bytes) -> Cosigned:
        """Check a submission and cosign it, or raise the refusal the spec names."""
        request = parse_add_checkpoint(body)
        checkpoint = self._open(request.note)
        if request.old_size > checkpoint.size:
            raise BadRequest(f"old size {request.old_size} is above the checkpoint's "
                             f"size {checkpoint.size}")
        if checkpoint.size == 0 and checkpoint.root != EMPTY_ROOT:
            raise Inconsistent("a checkpoint of size 0 must have the empty tree's root")
        if request.old_size == 0 and request.proof:
            raise Inconsistent("a proof from size 0 must be empty")
        now = max(1, int(self._clock()))  # the spec forbids a zero timestamp
        with self._state.transaction() as txn:
            held = txn.held(checkpoint.origin) or Held(0, EMPTY_ROOT, "")
            if request.old_size != held.size:
                raise SizeConflict(held.size)
            problem = _inconsistency(request, held, checkpoint)
            lines = ""
            if problem is None:
                lines = self.signer.cosign(checkpoint_text(request.note), now)
                txn.cosigned(checkpoint.origin,
                             Held(checkpoint.size, checkpoint.root, request.note + lines), now)
            else:
                # Both checkpoints are signed by the log: together they prove it lied to
                # someone. Kept, committed, and only then refused.
                txn.refused(Evidence(
                    checkpoint.origin, now, problem, held.note, request.old_size,
                    "".join(base64.b64encode(h).decode() + "\n" for h in request.proof),
                    request.note))
        if problem is not None:
            raise Inconsistent(problem)
        return Cosigned(checkpoint.origin, checkpoint.size, lines)

    def checkpoint(self, origin_hash: str) -> str | None:
        """The latest cosigned note of the log whose origin hashes (SHA-256, hex) to this."""
        for origin in self._logs:
            if hashlib.sha256(origin.encode()).hexdigest() == origin_hash:
                held = self._state.held(origin)
                return held.note if held else None
        return None

    def _open(self, note: str) -> Checkpoint:
        try:
            text = parse_note(note).text
            origin = parse_checkpoint(text).origin
        except NoteError as e:
            raise BadRequest(f"the checkpoint is malformed: {e}") from None
        keys = self._logs.get(origin)
        if keys is None:
            raise UnknownLog(f"this witness does not know the log {origin!r}")
        try:
            open_note(note, expected_verifiers=keys)
        except NoteError as e:  # a bad signature by its key, or none by its key at all
            raise Forbidden(f"the checkpoint is not signed by the log's key: {e}") from None
        return parse_checkpoint(text)


def checkpoint_text(note: str) -> str:
    return parse_note(note).text


def _inconsistency(request: AddCheckpoint, held: Held, checkpoint: Checkpoint) -> str | None:
    """Why the checkpoint does not extend what the witness holds, or None if it does."""
    if held.size == 0:
        return None
    if checkpoint.size == held.size:
        if checkpoint.root != held.root:
            return f"a different root at size {held.size}: the log forked"
        return None
    try:
        verify_consistency(first=held.size, second=checkpoint.size, proof=request.proof,
                           first_root=held.root, second_root=checkpoint.root)
    except ProofError as e:
        return f"no consistency from size {held.size} to size {checkpoint.size}: {e}"
    return None
