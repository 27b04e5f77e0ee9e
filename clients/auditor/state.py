"""What `vault-audit verify --state DIR` leaves for `vault-audit watch` to go on from.

DIR holds one verified point of the ledger:

- ``checkpoint.txt``: the signed checkpoint that was verified (the note, byte for byte);
- ``size``: its tree size, in decimal;
- ``story.json``: `StoryChecker.to_state()` after exactly `size` entries, with the size
  and the right border of the tree at that size (base64, largest subtree first), so new
  entries can be hashed onto it without fetching the old ones again.

Each file is written to a temporary file and renamed over the old one (`os.replace`),
so no reader sees half a file; the size is written into every file, so a set left
mixed by a crash between two renames is refused on loading rather than trusted.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clients.auditor.fetch import AuditorError
from ledger.checkpoint import parse_checkpoint
from ledger.errors import NoteError
from ledger.hasher import HASH_SIZE
from ledger.note import parse_note

__all__ = ["CHECKPOINT", "SIZE", "STORY", "AuditState", "StateError", "load_state", "save_state"]

CHECKPOINT = "checkpoint.txt"
SIZE = "size"
STORY = "story.json"


class StateError(AuditorError):
    """The state directory cannot be read or written, or its files disagree."""


@dataclass(frozen=True, slots=True)
class AuditState:
    """A verified point of the ledger: the checkpoint, and the checks' state there."""

    checkpoint: str  # the signed note
    size: int
    story: dict[str, Any]  # StoryChecker.to_state()
    border: tuple[bytes, ...] = ()  # the tree's right border at `size` (empty: unknown)


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_state(directory: Path, state: AuditState) -> None:
    """Write `state` into `directory` (created if need be), each file atomically."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        doc = {"size": state.size, "story": state.story,
               "border": [base64.b64encode(h).decode() for h in state.border]}
        _write(directory / STORY, json.dumps(doc, separators=(",", ":")))
        _write(directory / CHECKPOINT, state.checkpoint)
        _write(directory / SIZE, f"{state.size}\n")
    except OSError as exc:
        raise StateError(f"cannot write the audit state to {directory}: {exc}") from None


def load_state(directory: Path) -> AuditState | None:
    """The state saved in `directory`, or None if there is none; StateError if it is
    unreadable, or its files disagree about the size."""
    if not (directory / CHECKPOINT).exists():
        return None
    try:
        note = (directory / CHECKPOINT).read_text(encoding="utf-8")
        size = int((directory / SIZE).read_text(encoding="utf-8").strip())
        doc = json.loads((directory / STORY).read_text(encoding="utf-8"))
        border = tuple(binascii.a2b_base64(h, strict_mode=True) for h in doc["border"])
        story, story_size = doc["story"], doc["size"]
        note_size = parse_checkpoint(parse_note(note).text).size
    except (OSError, ValueError, KeyError, TypeError, binascii.Error, NoteError) as exc:
        raise StateError(f"the audit state in {directory} cannot be read: {exc}") from None
    if not size == story_size == note_size:
        raise StateError(f"the audit state in {directory} is inconsistent: {SIZE} says "
                         f"{size}, {STORY} {story_size}, {CHECKPOINT} {note_size}")
    if not isinstance(story, dict) or any(len(h) != HASH_SIZE for h in border) \
            or (border and len(border) != size.bit_count()):
        raise StateError(f"the audit state in {directory} is malformed")
    return AuditState(note, size, story, border)
