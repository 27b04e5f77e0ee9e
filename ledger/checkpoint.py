"""C2SP tlog-checkpoint: ``<origin>\\n<size>\\n<base64 root>\\n`` in a signed note."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from ledger.errors import NoteError
from ledger.hasher import HASH_SIZE
from ledger.note import Signer, Verifier, open_note, sign_note

__all__ = ["Checkpoint", "open_checkpoint", "parse_checkpoint", "sign_checkpoint"]

_SIZE = re.compile(r"0|[1-9][0-9]{0,19}")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode()]
        return "\n".join([*lines, *self.extensions]) + "\n"


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse a checkpoint body (the note text, not yet the signatures)."""
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise NoteError("checkpoint needs origin, size and root lines, each ending in newline")
    origin, size, root_b64, *ext = lines[:-1]
    if not origin:
        raise NoteError("checkpoint origin line is empty")
    if not _SIZE.fullmatch(size) or int(size) >= 2**64:
        raise NoteError(f"checkpoint size {size!r} is not a decimal number below 2**64")
    try:
        root = base64.b64decode(root_b64, validate=True)
    except (binascii.Error, ValueError):
        raise NoteError("checkpoint root is not valid base64") from None
    if len(root) != HASH_SIZE:
        raise NoteError(f"checkpoint root must be {HASH_SIZE} bytes")
    if any(not e for e in ext):
        raise NoteError("checkpoint extension lines must not be empty")
    return Checkpoint(origin, int(size), root, tuple(ext))


def sign_checkpoint(checkpoint: Checkpoint, signer: Signer) -> str:
    return sign_note(checkpoint.text(), [signer])


def open_checkpoint(
    note: str | bytes, *, expected_verifier: Verifier, expected_origin: str | None = None
) -> Checkpoint:
    """Verify a signed checkpoint by the log's key and return its contents.

    The origin must be the key name (C2SP tlog-checkpoint), and `expected_origin`
    if given.
    """
    opened = open_note(note, expected_verifiers=[expected_verifier])
    cp = parse_checkpoint(opened.text)
    origin = expected_origin if expected_origin is not None else expected_verifier.name
    if cp.origin != origin:
        raise NoteError(f"checkpoint origin {cp.origin!r} is not the expected {origin!r}")
    return cp
