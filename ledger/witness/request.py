"""The body of ``POST /add-checkpoint`` (C2SP tlog-witness): old size, proof, checkpoint."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from ledger.hasher import HASH_SIZE
from ledger.witness.errors import BadRequest

__all__ = ["MAX_BODY", "MAX_PROOF", "AddCheckpoint", "parse_add_checkpoint"]

#: A client MUST NOT send more than 63 proof lines (tlog-witness, add-checkpoint).
MAX_PROOF = 63
#: Generous for 63 hashes and a checkpoint with its signatures; more is not a request.
MAX_BODY = 64 * 1024
_OLD = re.compile(r"old (0|[1-9][0-9]{0,19})")


@dataclass(frozen=True, slots=True)
class AddCheckpoint:
    old_size: int
    proof: tuple[bytes, ...]
    note: str


def parse_add_checkpoint(body: bytes) -> AddCheckpoint:
    """Split the request into its parts; the note itself is checked by the witness."""
    if len(body) > MAX_BODY:
        raise BadRequest(f"request body is larger than {MAX_BODY} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("request body is not UTF-8") from None
    # The first blank line ends the proof: the checkpoint note has its own blank line
    # later, before its signatures.
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise BadRequest("request body has no blank line before the checkpoint")
    old_line, *proof_lines = head.split("\n")
    match = _OLD.fullmatch(old_line)
    if match is None or int(match.group(1)) >= 2**64:
        raise BadRequest("the first line must be 'old <decimal size>'")
    if len(proof_lines) > MAX_PROOF:
        raise BadRequest(f"a consistency proof has at most {MAX_PROOF} lines")
    proof = tuple(_hash(line) for line in proof_lines)
    return AddCheckpoint(int(match.group(1)), proof, note)


def _hash(line: str) -> bytes:
    try:
        value = base64.b64decode(line, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("a consistency proof line is not base64") from None
    if len(value) != HASH_SIZE:
        raise BadRequest(f"a consistency proof line must hold {HASH_SIZE} bytes")
    return value
