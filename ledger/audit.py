"""Checking a whole ledger as a stream: every seq, prev link, leaf hash, and the root.

Memory stays O(log n) (the right border of the tree), so a ledger of any length can
be checked from the SQL store or from an NDJSON export. The first entry that fails is
named with the reason.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO

from ledger.checkpoint import Checkpoint
from ledger.entry import parse_entry
from ledger.errors import EncodingError, LogInvalid
from ledger.hasher import leaf_hash
from ledger.tree import CompactRange, TreeHead

__all__ = ["LogAuditor", "LogVerified", "audit_log", "read_ndjson"]

Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class LogVerified:
    head: TreeHead
    checkpoint: Checkpoint | None

    @property
    def uncovered(self) -> int:
        """Entries after the checkpoint (appended since it was signed)."""
        return self.head.size - (self.checkpoint.size if self.checkpoint else 0)


class LogAuditor:
    """Feed entries in order; it raises LogInvalid at the first one that is wrong."""

    __slots__ = ("_border", "_checked_cp", "_checkpoint", "_prev", "_time")

    def __init__(self, checkpoint: Checkpoint | None = None) -> None:
        self._border = CompactRange()
        self._prev = b""
        self._time = ""
        self._checkpoint = checkpoint
        self._checked_cp = checkpoint is None

    @property
    def size(self) -> int:
        return self._border.size

    def feed(self, data: bytes, stored_leaf_hash: bytes | None = None) -> bytes:
        """Check the next entry; return its leaf hash."""
        i = self._border.size
        try:
            entry = parse_entry(data)
        except EncodingError as exc:
            raise LogInvalid(i, f"malformed entry: {exc}") from None
        if entry.seq != i:
            if entry.seq > i:
                raise LogInvalid(i, f"found seq {entry.seq} where seq {i} belongs: "
                                    f"entries {i}..{entry.seq - 1} are missing")
            raise LogInvalid(i, f"found seq {entry.seq} where seq {i} belongs: "
                                "entries are duplicated or out of order")
        h = leaf_hash(data)
        if stored_leaf_hash is not None and stored_leaf_hash != h:
            raise LogInvalid(i, "entry bytes do not match their stored leaf hash: "
                                "the entry was altered")
        if entry.prev != self._prev:
            # The chain is broken between i-1 and i: entry i-1 no longer hashes to what
            # entry i committed to. Name the entry whose bytes changed.
            raise LogInvalid(i - 1, f"entry {i - 1} does not hash to the prev link of entry "
                                    f"{i} (expected {base64.b64encode(entry.prev).decode()}): "
                                    f"entry {i - 1} was altered")
        if entry.time < self._time:
            raise LogInvalid(i, f"time {entry.time} is earlier than the previous entry's "
                                f"{self._time}")
        self._border.append(h)
        self._prev, self._time = h, entry.time
        cp = self._checkpoint
        if cp is not None and not self._checked_cp and self._border.size == cp.size:
            self._check_root(cp)
        return h

    def _check_root(self, cp: Checkpoint) -> None:
        root = self._border.root()
        if root != cp.root:
            raise LogInvalid(max(cp.size - 1, 0), f"the root of entries 0..{cp.size - 1} is "
                             f"{base64.b64encode(root).decode()}, the signed checkpoint says "
                             f"{base64.b64encode(cp.root).decode()}")
        self._checked_cp = True

    def finish(self) -> LogVerified:
        cp = self._checkpoint
        if cp is not None and not self._checked_cp:
            if cp.size == 0:
                self._check_root(cp)
            else:
                raise LogInvalid(self.size, f"the ledger ends after {self.size} entries but "
                                 f"the signed checkpoint covers {cp.size}")
        return LogVerified(self._border.head(), cp)


def audit_log(
    entries: Iterable[bytes] | Iterable[tuple[bytes, bytes | None]],
    *,
    checkpoint: Checkpoint | None = None,
    on_progress: Progress | None = None,
    progress_every: int = 10_000,
) -> LogVerified:
    """Check every entry of a ledger in order, and its root against `checkpoint`.

    `entries` yields entry bytes, or (entry bytes, stored leaf hash) pairs from a store.
    `checkpoint` must already be signature-checked (see `open_checkpoint`).
    """
    auditor = LogAuditor(checkpoint)
    feed = auditor.feed
    n = 0
    for item in entries:
        if isinstance(item, tuple):
            feed(item[0], item[1])
        else:
            feed(item)
        n += 1
        if on_progress is not None and n % progress_every == 0:
            on_progress(n)
    result = auditor.finish()
    if on_progress is not None:
        on_progress(n)
    return result


def read_ndjson(stream: IO[bytes]) -> Iterator[bytes]:
    """Entry bytes from an NDJSON export: one entry a line, exactly the hashed bytes."""
    for line in stream:
        if line.endswith(b"\n"):
            line = line[:-1]
        if line:
            yield line
