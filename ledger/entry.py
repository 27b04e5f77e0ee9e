"""Ledger entries: their canonical bytes, their time stamps and the hash chain.

The bytes of entry N are the JCS encoding of
``{"v":1,"seq":N,"time":...,"kind":...,"prev":<b64 leaf hash of entry N-1 or "">,"body":{...}}``
(ARCHITECTURE §2), or, for a sealed entry (v2, ARCHITECTURE §10),
``{"v":2,"seq","time","kind","prev","public":{...},"sealed":<b64 SHA-256(salt || JCS(private))>}``:
only the public part of the body is in the bytes, the rest is committed to
(`ledger.sealing`). Parsing insists the bytes are exactly that canonical form, so one
entry has one byte string and one leaf hash.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from ledger.canonical import canonical_json, check_value, encode_checked
from ledger.errors import EncodingError
from ledger.hasher import HASH_SIZE

__all__ = [
    "SEALED_VERSION",
    "VERSION",
    "Clock",
    "Entry",
    "check_kind",
    "check_prev",
    "check_time",
    "decode_b64",
    "encode_entry",
    "encode_sealed_entry",
    "format_time",
    "parse_entry",
    "sealed_entry_bytes",
    "utc_now",
]

#: Entries with their whole body in the bytes (v1); sealed entries are `SEALED_VERSION`.
VERSION = 1
SEALED_VERSION = 2
Clock = Callable[[], datetime]

_KIND = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")
_KEYS = frozenset({"v", "seq", "time", "kind", "prev", "body"})
_SEALED_KEYS = frozenset({"v", "seq", "time", "kind", "prev", "public", "sealed"})


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    """RFC 3339, UTC, millisecond precision, `Z`: e.g. 2026-11-22T10:04:05.123Z."""
    if moment.tzinfo is None:
        raise EncodingError("entry times must be timezone-aware")
    # isoformat is implemented in C; strftime costs ten times as much on every append.
    text = moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds")
    if len(text) != 23:  # years before 1000 or after 9999 have no 4-digit RFC 3339 form
        raise EncodingError(f"time {moment!r} is outside the years 1000-9999")
    return text + "Z"


_known_kinds: set[str] = set()  # kinds already seen to be well formed


_last_good_time = ""


def check_time(time: str) -> None:
    """RFC 3339, UTC, milliseconds, `Z`, and a real calendar instant."""
    global _last_good_time
    if time == _last_good_time and type(time) is str:
        return  # entries of one batch share their time: check it once
    if type(time) is not str or not _TIME.fullmatch(time):
        raise EncodingError(f"time {time!r} is not RFC 3339 UTC with milliseconds")
    try:
        datetime.fromisoformat(time[:-1])  # the shape is fixed above; this checks ranges
    except ValueError:
        raise EncodingError(f"time {time!r} is not a real date and time") from None
    _last_good_time = time


def check_kind(kind: str) -> None:
    if type(kind) is str and kind in _known_kinds:
        return
    if type(kind) is not str or not _KIND.fullmatch(kind):
        raise EncodingError(f"entry kind {kind!r} is not of the form 'noun.verb'")
    if len(_known_kinds) < 256:
        _known_kinds.add(kind)


def check_prev(seq: int, prev: bytes) -> None:
    if len(prev) != (HASH_SIZE if seq else 0):
        raise EncodingError(
            "prev must be empty for entry 0 and the 32-byte leaf hash of the previous entry "
            "otherwise"
        )


def _check_sealed(sealed: bytes) -> None:
    if len(sealed) != HASH_SIZE:
        raise EncodingError(f"sealed must be a {HASH_SIZE}-byte SHA-256 commitment")


class Entry(NamedTuple):
    """A parsed entry (a NamedTuple: the streaming verifier builds one per entry).

    `body` is what the bytes hold: the whole body of a v1 entry, only the `public` part
    of a v2 entry, whose private part is committed to by `sealed` (None for v1).
    """

    seq: int
    time: str
    kind: str
    prev: bytes
    body: Mapping[str, Any]
    v: int = VERSION
    sealed: bytes | None = None

    def encode(self) -> bytes:
        if self.v == VERSION:
            return encode_entry(self.seq, self.time, self.kind, self.prev, self.body)
        if self.v != SEALED_VERSION or self.sealed is None:
            raise EncodingError(f"entry version {self.v!r} needs sealed bytes (v2) or none (v1)")
        return encode_sealed_entry(self.seq, self.time, self.kind, self.prev, self.body,
                                   self.sealed)


def encode_entry(seq: int, time: str, kind: str, prev: bytes, body: Mapping[str, Any]) -> bytes:
    """The canonical bytes of an entry (what is hashed and served)."""
    if type(seq) is not int or seq < 0:
        raise EncodingError(f"seq must be a non-negative integer, got {seq!r}")
    check_time(time)
    check_kind(kind)
    check_prev(seq, prev)
    if not isinstance(body, dict):
        raise EncodingError("body must be a JSON object")
    # Keys in JCS order: body, kind, prev, seq, time, v. kind and time are plain ASCII
    # (checked above), so they need no escaping.
    return b"".join(
        (
            b'{"body":',
            canonical_json(body),
            b',"kind":"',
            kind.encode(),
            b'","prev":"',
            base64.b64encode(prev),
            b'","seq":',
            str(seq).encode(),
            b',"time":"',
            time.encode(),
            b'","v":1}',
        )
    )


def encode_sealed_entry(seq: int, time: str, kind: str, prev: bytes,
                        public: Mapping[str, Any], sealed: bytes, *,
                        public_json: bytes | None = None) -> bytes:
    """The canonical bytes of a v2 entry: its public part and the commitment to the rest.

    `public_json`: `public` already in canonical JSON (a writer that sealed it has it).
    """
    if type(seq) is not int or seq < 0:
        raise EncodingError(f"seq must be a non-negative integer, got {seq!r}")
    check_time(time)
    check_kind(kind)
    check_prev(seq, prev)
    _check_sealed(sealed)
    if not isinstance(public, dict):
        raise EncodingError("public must be a JSON object")
    return sealed_entry_bytes(kind, prev, canonical_json(public) if public_json is None
                              else public_json, sealed, seq, time)


def sealed_entry_bytes(kind: str, prev: bytes, public_json: bytes, sealed: bytes, seq: int,
                       time: str) -> bytes:
    """The bytes of a v2 entry from parts already checked (`encode_sealed_entry` checks
    them; a writer that made them checks the batch's time once)."""
    # Keys in JCS order: kind, prev, public, sealed, seq, time, v.
    return b"".join(
        (
            b'{"kind":"',
            kind.encode(),
            b'","prev":"',
            binascii.b2a_base64(prev, newline=False),
            b'","public":',
            public_json,
            b',"sealed":"',
            binascii.b2a_base64(sealed, newline=False),
            b'","seq":',
            str(seq).encode(),
            b',"time":"',
            time.encode(),
            b'","v":2}',
        )
    )


def decode_b64(text: Any, what: str) -> bytes:
    """Standard base64 in its one canonical spelling (padded, no stray low bits)."""
    if type(text) is not str:
        raise EncodingError(f"{what} must be a base64 string")
    try:
        raw = binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        raise EncodingError(f"{what} is not valid base64") from None
    # Base64 with stray low bits decodes to the same bytes: only one spelling is canonical.
    if binascii.b2a_base64(raw, newline=False).decode() != text:
        raise EncodingError(f"{what} is not in canonical base64")
    return raw


def parse_entry(data: bytes) -> Entry:
    """Parse entry bytes (v1 or v2); EncodingError unless they are an entry in canonical form."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise EncodingError(f"not JSON: {exc}") from None
    if type(obj) is dict and "sealed" in obj:
        return _parse_sealed(obj, data)
    try:
        if type(obj) is not dict or len(obj) != len(_KEYS):
            raise KeyError
        v, seq, time, kind, prev_text, body = (
            obj["v"], obj["seq"], obj["time"], obj["kind"], obj["prev"], obj["body"]
        )
    except KeyError:
        raise EncodingError(
            "an entry has exactly the fields v, seq, time, kind, prev, body"
        ) from None
    if type(v) is not int or v != VERSION:
        raise EncodingError(f"unknown entry version {v!r}")
    if type(seq) is not int or seq < 0:
        raise EncodingError(f"seq must be a non-negative integer, got {seq!r}")
    check_time(time)
    check_kind(kind)
    if type(body) is not dict:
        raise EncodingError("body must be a JSON object")
    prev = decode_b64(prev_text, "prev")
    check_prev(seq, prev)
    # Re-encoding the parsed object must give back the very same bytes: this rejects
    # whitespace, key order, escapes and number forms other than the canonical ones.
    if encode_checked(obj, check_value(body, parsed_ascii=data.isascii())) != data:
        raise EncodingError("entry bytes are not in canonical (RFC 8785) form")
    return Entry(seq, time, kind, prev, body)


def _parse_sealed(obj: dict[str, Any], data: bytes) -> Entry:
    """The v2 half of `parse_entry`: the same rules, with `public` and `sealed`."""
    if obj.keys() != _SEALED_KEYS:
        raise EncodingError(
            "a sealed entry has exactly the fields v, seq, time, kind, prev, public, sealed")
    v, seq, time, kind, public = obj["v"], obj["seq"], obj["time"], obj["kind"], obj["public"]
    if type(v) is not int or v != SEALED_VERSION:
        raise EncodingError(f"a sealed entry is version {SEALED_VERSION}, not {v!r}")
    if type(seq) is not int or seq < 0:
        raise EncodingError(f"seq must be a non-negative integer, got {seq!r}")
    check_time(time)
    check_kind(kind)
    if type(public) is not dict:
        raise EncodingError("public must be a JSON object")
    prev = decode_b64(obj["prev"], "prev")
    check_prev(seq, prev)
    sealed = decode_b64(obj["sealed"], "sealed")
    _check_sealed(sealed)
    if encode_checked(obj, check_value(public, parsed_ascii=data.isascii())) != data:
        raise EncodingError("entry bytes are not in canonical (RFC 8785) form")
    return Entry(seq, time, kind, prev, public, SEALED_VERSION, sealed)
