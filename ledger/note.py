"""C2SP signed-note with Ed25519 (signature type 0x01), and its key strings.

Verifier key: ``<name>+<hex key id>+<base64(0x01 || public key)>``.
Signer key:   ``PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 || seed)>``.
Key ID = SHA-256(name || 0x0A || 0x01 || public key)[:4], big-endian.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import nacl.exceptions
import nacl.signing

from ledger.errors import KeyFormatError, NoteError, SignatureError

__all__ = [
    "MAX_SIGNATURES",
    "Note",
    "NoteSignature",
    "Signer",
    "Verifier",
    "check_key_name",
    "key_id",
    "open_note",
    "parse_key_id",
    "sign_note",
    "typed_key",
]

ED25519 = 0x01
MAX_SIGNATURES = 100
_DASH = "\u2014 "


def key_id(name: str, public_key: bytes, key_type: int = ED25519) -> int:
    """A signed-note key id: the first 4 bytes of SHA-256(name || 0x0A || type || key)."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([key_type]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def check_key_name(name: str) -> None:
    if not name or "+" in name or any(c.isspace() for c in name):
        raise KeyFormatError(f"key name {name!r} must be non-empty, without spaces or '+'")


_HEX8 = re.compile("[0-9a-fA-F]{8}")


def parse_key_id(text: str) -> int:
    # int(x, 16) alone would also take non-ASCII digits and underscores.
    if not _HEX8.fullmatch(text):
        raise KeyFormatError("key id must be 8 hexadecimal digits")
    return int(text, 16)


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise KeyFormatError(f"{what} is not valid base64") from None


def typed_key(text: str, key_type: int, what: str) -> bytes:
    """The 32 key bytes of base64 `text`, which must be `key_type` then 32 bytes (the
    material of a verifier key: 0x01 for a log's, 0x04 for a witness's)."""
    raw = _b64(text, what)
    if len(raw) != 33 or raw[0] != key_type:
        raise KeyFormatError(f"{what} must be type 0x{key_type:02x} followed by 32 bytes")
    return raw[1:]


@dataclass(frozen=True, slots=True)
class Verifier:
    """A known Ed25519 note key."""

    name: str
    key_id: int
    public_key: bytes
    _key: nacl.signing.VerifyKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            key = nacl.signing.VerifyKey(self.public_key)
        except (ValueError, TypeError, nacl.exceptions.CryptoError):
            raise KeyFormatError("verifier key is not an Ed25519 public key") from None
        object.__setattr__(self, "_key", key)  # built once: verifying is the hot path

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3 or len(parts[1]) != 8:
            raise KeyFormatError("verifier key must be <name>+<8 hex digits>+<base64 key>")
        name, hex_id, material = parts
        check_key_name(name)
        given = parse_key_id(hex_id)
        public_key = typed_key(material, ED25519, "verifier key")
        if key_id(name, public_key) != given:
            raise KeyFormatError("verifier key id does not match its name and key")
        return cls(name, given, public_key)

    def __str__(self) -> str:
        material = base64.b64encode(bytes([ED25519]) + self.public_key).decode()
        return f"{self.name}+{self.key_id:08x}+{material}"

    def verify(self, text: bytes, signature: bytes) -> bool:
        try:
            self._key.verify(text, signature)
        except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
            return False
        return True


@dataclass(frozen=True, slots=True)
class Signer:
    """An Ed25519 note key that can sign."""

    name: str
    key_id: int
    seed: bytes

    @classmethod
    def generate(cls, name: str) -> Signer:
        check_key_name(name)
        key = nacl.signing.SigningKey.generate()
        return cls(name, key_id(name, bytes(key.verify_key)), bytes(key))

    @classmethod
    def parse(cls, skey: str) -> Signer:
        parts = skey.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"] or len(parts[3]) != 8:
            raise KeyFormatError("signer key must be PRIVATE+KEY+<name>+<hex id>+<base64>")
        name, hex_id, material = parts[2:]
        check_key_name(name)
        seed = typed_key(material, ED25519, "signer key")
        derived = key_id(name, cls(name, 0, seed).public_key)
        if parse_key_id(hex_id) != derived:
            raise KeyFormatError("signer key id does not match its name and key")
        return cls(name, derived, seed)

    @property
    def public_key(self) -> bytes:
        return bytes(nacl.signing.SigningKey(self.seed).verify_key)

    def verifier(self) -> Verifier:
        return Verifier(self.name, self.key_id, self.public_key)

    def __str__(self) -> str:
        material = base64.b64encode(bytes([ED25519]) + self.seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.key_id:08x}+{material}"

    def __repr__(self) -> str:  # never print the seed by accident
        return f"Signer(name={self.name!r}, key_id={self.key_id:08x})"

    def sign(self, text: bytes) -> bytes:
        return nacl.signing.SigningKey(self.seed).sign(text).signature


@dataclass(frozen=True, slots=True)
class NoteSignature:
    name: str
    key_id: int
    signature: bytes


@dataclass(frozen=True, slots=True)
class Note:
    text: str
    signatures: tuple[NoteSignature, ...]
    verified_by: tuple[Verifier, ...] = ()


_CONTROL = re.compile("[\x00-\x09\x0b-\x1f]")


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    if _CONTROL.search(text):
        raise NoteError("note text must not contain control characters other than newline")


def sign_note(text: str, signers: Sequence[Signer]) -> str:
    """The signed note of `text` (which must end in a newline) by every signer."""
    _check_text(text)
    if not signers:
        raise NoteError("a note needs at least one signer")
    data = text.encode()
    lines = []
    for s in signers:
        blob = s.key_id.to_bytes(4, "big") + s.sign(data)
        lines.append(f"{_DASH}{s.name} {base64.b64encode(blob).decode()}\n")
    return text + "\n" + "".join(lines)


def parse_note(note: str | bytes) -> Note:
    """Split a signed note into text and signatures, without verifying anything."""
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError("note is not valid UTF-8") from None
    _check_text(note)
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no blank line before its signatures")
    text, sig_block = note[: split + 1], note[split + 2 :]
    sigs: list[NoteSignature] = []
    for line in sig_block.split("\n")[:-1]:
        if not line.startswith(_DASH):
            raise NoteError(f"malformed signature line {line[:40]!r}")
        name, sep, b64 = line[len(_DASH) :].partition(" ")
        if not sep or not name or " " in b64:
            raise NoteError(f"malformed signature line {line[:40]!r}")
        try:
            blob = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise NoteError(f"signature by {name!r} is not valid base64") from None
        if base64.b64encode(blob).decode("ascii") != b64:
            # Spare bits set in the last character: one note, one spelling.
            raise NoteError(f"signature by {name!r} is not canonical base64")
        if len(blob) < 5:
            raise NoteError(f"signature by {name!r} is too short")
        sigs.append(NoteSignature(name, int.from_bytes(blob[:4], "big"), blob[4:]))
        if len(sigs) > MAX_SIGNATURES:
            raise NoteError(f"note has more than {MAX_SIGNATURES} signatures")
    if not sigs:
        raise NoteError("note has no signatures")
    return Note(text, tuple(sigs))


def open_note(note: str | bytes, *, expected_verifiers: Iterable[Verifier]) -> Note:
    """Parse a note and verify it against the known keys.

    Signatures by unknown keys (name and key ID not both matching) are ignored; a
    signature by a known key that fails is an error; at least one must verify.
    """
    parsed = parse_note(note)
    known = {(v.name, v.key_id): v for v in expected_verifiers}
    data = parsed.text.encode()
    good: list[Verifier] = []
    for sig in parsed.signatures:
        v = known.get((sig.name, sig.key_id))
        if v is None:
            continue
        if not v.verify(data, sig.signature):
            raise SignatureError(f"signature by {sig.name}+{sig.key_id:08x} does not verify")
        good.append(v)
    if not good:
        raise NoteError("note is not signed by any expected key")
    return Note(parsed.text, parsed.signatures, tuple(good))
