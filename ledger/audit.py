"""Checking a whole ledger as a stream: every seq, prev link, leaf hash, and the root.

Memory stays O(log n) (the right border of the tree), so a ledger of any length can
be checked from the SQL store or from an NDJSON export. The first entry that fails is
named with the reason. A ledger may start with v1 entries and go on with sealed (v2)
ones, never back (ARCHITECTURE §10): a v1 entry after a v2 entry fails. Openings are
not checked here (`ledger.sealing.check_opening`): this is what the public can check.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO

import orjson

from ledger.canonical import check_value, encode_checked
from ledger.checkpoint import Checkpoint
from ledger.entry import SEALED_VERSION, VERSION, check_kind, check_time, parse_entry
from ledger.errors import EncodingError, LogInvalid
from ledger.hasher import HASH_SIZE, new_leaf_hasher
from ledger.tree import CompactRange, TreeHead

__all__ = ["LogAuditor", "LogVerified", "audit_log", "read_ndjson"]

Progress = Callable[[int], None]


def _b64(h: bytes) -> str:
    return binascii.b2a_base64(h, newline=False).decode()


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

    __slots__ = ("_border", "_checked_cp", "_checkpoint", "_prev", "_prev_b64", "_sealed",
                 "_time")

    def __init__(self, checkpoint: Checkpoint | None = None) -> None:
        self._border = CompactRange()
        self._prev = b""
        self._prev_b64 = ""
        self._time = ""
        self._checkpoint = checkpoint
        self._checked_cp = checkpoint is None
        self._sealed = False  # a v2 entry was seen: no v1 entry may follow

    @property
    def size(self) -> int:
        return self._border.size

    def feed(self, data: bytes, stored_leaf_hash: bytes | None = None) -> bytes:
        """Check the next entry; return its leaf hash."""
        hasher = new_leaf_hasher()  # leaf_hash, inlined: once per entry
        hasher.update(data)
        h = hasher.digest()
        time = self._quick_check(data)
        if stored_leaf_hash is not None and stored_leaf_hash != h:
            raise LogInvalid(self.size, "entry bytes do not match their stored leaf hash: "
                                        "the entry was altered")
        if time is None:
            time = self._full_check(data)
        self._border.push(h)
        self._prev, self._prev_b64, self._time = h, _b64(h), time
        cp = self._checkpoint
        if cp is not None and not self._checked_cp and self._border.size == cp.size:
            self._check_root(cp)
        return h

    def _quick_check(self, data: bytes) -> str | None:
        """The entry's time if it is plainly valid, else None (for `_full_check`).

        Accepts only the common case, with the same rules as `parse_entry`, but cheaper:
        `prev` must equal the base64 of the previous leaf hash, which one string compare
        checks along with its encoding. Anything unusual (an unseen kind or time, astral
        keys, any error) is left to `_full_check`, which names the problem.
        """
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            return None
        if type(obj) is not dict:
            return None
        n = len(obj)
        try:
            if n == 7:
                version, body = SEALED_VERSION, obj["public"]
                sealed = obj["sealed"]
                raw = binascii.a2b_base64(sealed, strict_mode=True)  # TypeError if not str
                if len(raw) != HASH_SIZE or _b64(raw) != sealed:  # canonical spelling
                    return None
            elif n == 6 and not self._sealed:
                version, body = VERSION, obj["body"]
            else:
                return None
            seq, time = obj["seq"], obj["time"]
            if not (
                type(seq) is int and seq == self._border.size
                and obj["prev"] == self._prev_b64
                and obj["v"] == version and type(obj["v"]) is int
                and type(body) is dict
            ):
                return None
            check_time(time)  # both cached: cheap for the usual repeated values
            check_kind(obj["kind"])
            if (time < self._time
                    or check_value(body, parsed_ascii=data.isascii())
                    or encode_checked(obj, False) != data):
                return None
        except (KeyError, TypeError, ValueError, EncodingError):
            return None  # binascii.Error is a ValueError
        if version == SEALED_VERSION:
            self._sealed = True
        return time  # type: ignore[no-any-return]

    def _full_check(self, data: bytes) -> str:
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
        if entry.prev != self._prev:
            # The chain is broken between i-1 and i: entry i-1 no longer hashes to what
            # entry i committed to. Name the entry whose bytes changed.
            raise LogInvalid(i - 1, f"entry {i - 1} does not hash to the prev link of entry "
                                    f"{i} (expected {base64.b64encode(entry.prev).decode()}): "
                                    f"entry {i - 1} was altered")
        if entry.time < self._time:
            raise LogInvalid(i, f"time {entry.time} is earlier than the previous entry's "
                                f"{self._time}")
        if entry.v == VERSION and self._sealed:
            raise LogInvalid(i, "a v1 entry after a sealed (v2) entry: once a ledger seals "
                                "its entries, every later entry is sealed")
        self._sealed = self._sealed or entry.v == SEALED_VERSION
        return entry.time

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
        if type(item) is tuple:
            feed(item[0], item[1])
        else:
            feed(item)  # type: ignore[arg-type]
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
